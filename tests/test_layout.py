"""Tests of the package's layout: the library apart from the experiment drivers, and the ``lfl`` command."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import lfl_lib
from lfl_lib.__main__ import COMMANDS, main

PACKAGE = Path(lfl_lib.__file__).resolve().parent
#: The entry points that may name the drivers: the ``lfl`` dispatcher and the two aliases
#: ``python -m lfl_lib.study|sweep`` (whose import sits under ``if __name__ == "__main__"``).
ENTRY_POINTS = {"__main__.py", "study.py", "sweep.py"}


def _library_files() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if "experiments" not in p.relative_to(PACKAGE).parts]


def _imported_modules(path: Path, source: str | None = None) -> list[str]:
    """Every module that ``path`` (or ``source`` placed at ``path``) imports; relative names resolved."""
    tree = ast.parse(path.read_text() if source is None else source)
    package = ".".join(("lfl_lib", *path.relative_to(PACKAGE).parent.parts))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            names.append(mod)
            names += [f"{mod}.{a.name}" for a in node.names]
    return names


def _imports_under_main_guard_only(path: Path) -> bool:
    """True when the module's top level has no import of lfl_lib.experiments outside ``if __name__ == "__main__"``."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, (ast.Import, ast.ImportFrom)) and "experiments" in ast.unparse(sub):
                return False
    return True


def test_the_library_never_imports_the_experiment_drivers():
    files = _library_files()
    assert len(files) > 15 and PACKAGE / "mdp.py" in files
    offenders = {
        str(p.relative_to(PACKAGE)): [m for m in _imported_modules(p) if m.startswith("lfl_lib.experiments")]
        for p in files
        if p.name not in ENTRY_POINTS
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_aliases_import_the_drivers_only_when_run():
    for name in ("study.py", "sweep.py"):
        assert _imports_under_main_guard_only(PACKAGE / name), name
    assert any(m.startswith("lfl_lib.experiments") for m in _imported_modules(PACKAGE / "study.py"))


def test_the_import_check_sees_a_relative_import():
    # the check above must be able to fail: relative and absolute imports of the drivers are seen
    source = "from .experiments import study\nfrom . import experiments\nimport lfl_lib.experiments.sweep\n"
    names = _imported_modules(PACKAGE / "observer.py", source)
    assert (
        "lfl_lib.experiments.sweep" in names and "lfl_lib.experiments" in names and "lfl_lib.experiments.study" in names
    )


def test_no_library_path_is_computed_from_its_own_file():
    users = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "__file__" in p.read_text()]
    assert users == ["_io.py"]  # git is asked about the running code's commit there; no output path


def test_recovering_a_reward_needs_no_mujoco():
    code = (
        "import sys; import lfl_lib.deep_lfl, lfl_lib.lq, lfl_lib.nets, lfl_lib.data, lfl_lib.tabular_lfl; "
        "print('mujoco' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_importing_ppo_leaves_mujocos_warning_handler_alone():
    code = "import mujoco, sys; import lfl_lib.ppo as p; print(p._quiet_mujoco.cache_info().currsize)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_lfl_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in COMMANDS)
    assert main(["no-such-command"]) == 2
    assert "unknown subcommand 'no-such-command'" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert f"usage: lfl {name}" in capsys.readouterr().out


def test_the_lfl_script_is_python_m_lfl_lib():
    import tomllib

    scripts = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"lfl": "lfl_lib.__main__:main"}
