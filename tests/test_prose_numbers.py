"""scripts/prose_numbers.py: typed numbers in prose are flagged; glued, the paper's, settings and references are not."""

import importlib.util
from pathlib import Path

import nbformat
import pytest

_SPEC = importlib.util.spec_from_file_location(
    "prose_numbers", Path(__file__).parents[1] / "scripts" / "prose_numbers.py"
)
prose_numbers = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(prose_numbers)


def _notebook(tmp_path: Path, prose: str) -> Path:
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("glue('x', 0.5)")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="4.18 0.93\n")]
    nb.cells = [nbformat.v4.new_markdown_cell(prose), code]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return path


def test_typed_numbers_are_flagged_in_text_and_in_math():
    assert prose_numbers.typed_numbers("ends at $-0.50 \\pm 0.17$ and 1.07, with 12 runs.") == ["0.50", "0.17", "1.07"]
    # a number at the end of a sentence is still a number
    assert prose_numbers.typed_numbers("the learner scores 4.18.") == ["4.18"]


@pytest.mark.parametrize(
    "text",
    [
        "the observer scores {glue:text}`obs_mean:.2f`",  # glued
        "the paper prints {paper}`4.68` $\\pm$ {paper}`0.24`",  # the paper's
        "with $\\alpha_m = 0.7$, $\\gamma=0.96$ and $\\lambda_{\\text{GAE}} = 0.95$",  # settings in math
        "a grid $\\epsilon \\in \\{0.05, 0.25, 0.5, 1\\}$ of settings",  # a parameter's set of values
        "Section 5.4, sections 5.4 and 5.5, Table 2, Eq. (5), Fig. 4",  # references
        "## 5.3 Table 2",  # a heading's number
        "`lr=0.5` in code, a [link](https://x.org/v1.2/a.html), rliable 1.2.0",
        "```python\nx = 0.5\n```",  # a code block
        ":label: ex-0.5\n",  # a directive option
        "10 runs, seeds 1000-1009, 31% of the book",  # integers
    ],
)
def test_not_typed_numbers(text):
    assert prose_numbers.typed_numbers(text) == []


def test_prose_inside_a_directive_is_checked():
    assert prose_numbers.typed_numbers("```{exercise}\n:label: ex-a\n\nShow that J = 4.18.\n```") == ["4.18"]


def test_an_estimate_named_like_a_setting_is_not_a_setting():
    assert prose_numbers.typed_numbers("$\\hat\\lambda = 0.42$") == ["0.42"]
    assert prose_numbers.typed_numbers("$\\lambda \\in [0.38, 0.47]$") == ["0.38", "0.47"]  # an interval is a result


def test_page_numbers_and_cli(tmp_path, capsys):
    path = _notebook(tmp_path, "glued {glue:text}`x:.2f`, typed 0.93")
    assert prose_numbers.page_numbers(path) == [(0, "0.93")]
    assert prose_numbers.main([str(path)]) == 1
    assert "cell 0: 0.93 is typed" in capsys.readouterr().out
    clean = _notebook(tmp_path, "glued {glue:text}`x:.2f`")
    assert prose_numbers.main([str(clean)]) == 0
    assert prose_numbers.main([str(tmp_path / "absent.ipynb")]) == 2
    assert "no such page" in capsys.readouterr().err


def test_every_page_of_the_book_passes():
    """The book itself: every page of _toc.yml, except the listed exemptions, has no typed number."""
    pages = prose_numbers.toc_pages()
    assert len(pages) > 20
    assert prose_numbers.check(pages) == {}
