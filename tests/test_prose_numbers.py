"""scripts/prose_numbers.py: prose numbers that no cell output prints are listed, the others not."""
import importlib.util
from pathlib import Path

import nbformat

_SPEC = importlib.util.spec_from_file_location("prose_numbers", Path(__file__).parents[1] / "scripts" / "prose_numbers.py")
prose_numbers = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(prose_numbers)


def _notebook(tmp_path: Path, prose: str, printed: str) -> Path:
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("print(...)")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    nb.cells = [nbformat.v4.new_markdown_cell(prose), code]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return path


def test_lists_only_numbers_no_output_prints(tmp_path):
    path = _notebook(tmp_path, "ends at $-0.50 \\pm 0.17$ and 1.07, against 2.25 (section 6 and 12 runs)",
                     "mean -0.50 +- 0.17\nseed 0 1.07\n")
    assert prose_numbers.unsupported(path) == [(0, "2.25")]


def test_sign_dropped_in_prose_is_supported(tmp_path):
    path = _notebook(tmp_path, "a drop of 0.93", "0.57 -> -0.93")
    assert prose_numbers.unsupported(path) == []


def test_cli_reports_and_refuses_missing_file(tmp_path, capsys):
    path = _notebook(tmp_path, "3.14", "2.71")
    assert prose_numbers.main([str(path)]) == 0
    assert "cell 0: 3.14" in capsys.readouterr().out
    assert prose_numbers.main([str(tmp_path / "absent.ipynb")]) == 2
    assert "no such notebook" in capsys.readouterr().err
