"""Mutation score of the modules that carry the paper's mathematics (``make mutation``).

Each module is mutated by mutmut in a scratch copy of the package and its tests (nothing
is written into the working tree but the results), against its own fast test files only,
one module at a time. The score of each module goes to ``book/data/mutation/<name>.json``
(atomic write) with the command, the mutmut version, the git commit, the wall time and the
surviving mutants with their diffs; ``book/repro_mutation.ipynb`` shows them.

Usage: ``python scripts/mutation.py [NAME ...]`` (default: every module below).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "book" / "data" / "mutation"

#: name -> (source file, fast test files, mutant-name patterns (None: every function of the file))
MODULES: dict[str, tuple[str, list[str], list[str] | None]] = {
    "shaping": ("lfl_lib/shaping.py", ["tests/test_shaping.py"], None),
    "improvement": ("lfl_lib/improvement.py", ["tests/test_improvement.py"], None),
    "inversion": ("lfl_lib/inversion.py", ["tests/test_inversion.py"], None),
    "mdp": (
        "lfl_lib/mdp.py",
        ["tests/test_mdp.py", "tests/test_check_mdp.py", "tests/test_data.py", "tests/test_mdp_mutants.py"],
        None,
    ),
    "tabular_lfl": (
        "lfl_lib/tabular_lfl.py",
        [
            "tests/test_tabular_lfl.py",
            "tests/test_learner_models.py",
            "tests/test_data.py",
            "tests/test_tabular_lfl_mutants.py",
        ],
        None,
    ),
    "deep_lfl_targets": (
        "lfl_lib/deep_lfl.py",
        ["tests/test_deep_lfl.py"],
        [
            "lfl_lib.deep_lfl.x_gaussian_kl__mutmut_*",
            "lfl_lib.deep_lfl.x_live_mask__mutmut_*",
            "lfl_lib.deep_lfl.x_divergence_targets__mutmut_*",
            "lfl_lib.deep_lfl.x_consistency_targets__mutmut_*",
            "lfl_lib.deep_lfl.x_consistency_residual__mutmut_*",
        ],
    ),
    "ppo_loss": (
        "lfl_lib/ppo.py",
        [
            "tests/test_ppo_loss.py",
            "tests/test_ppo.py::test_gae_with_lambda_one_is_the_discounted_return_minus_the_value",
            "tests/test_ppo.py::test_gae_stops_at_an_episode_end",
            "tests/test_ppo.py::test_gae_checks_the_value_rows",
        ],
        [
            "lfl_lib.ppo.x_normalize_advantages__mutmut_*",
            "lfl_lib.ppo.x_clipped_surrogate_loss__mutmut_*",
            "lfl_lib.ppo.x_value_loss__mutmut_*",
            "lfl_lib.ppo.x_gae_advantages__mutmut_*",
        ],
    ),
    # the PPO update outside its loss functions: the decay of the learning rate and clip range, the
    # critic's return targets, the minibatches (the advantages are gae_advantages, scored above)
    "ppo_update": (
        "lfl_lib/ppo.py",
        [
            "tests/test_ppo.py::test_annealed_fraction_decays_linearly_to_zero",
            "tests/test_ppo.py::test_return_targets_are_the_advantages_plus_the_values_of_the_visited_states",
            "tests/test_ppo.py::test_minibatch_indices_cut_one_fresh_permutation_per_epoch",
            "tests/test_ppo.py::test_minibatch_indices_draw_each_permutation_at_the_start_of_its_epoch",
            "tests/test_ppo.py::test_minibatch_indices_with_a_size_that_does_not_divide_and_of_one_sample",
        ],
        [
            "lfl_lib.ppo.x_annealed_fraction__mutmut_*",
            "lfl_lib.ppo.x_return_targets__mutmut_*",
            "lfl_lib.ppo.x_minibatch_indices__mutmut_*",
        ],
    ),
}

#: committed data files that some of the mapped tests read (copied into the scratch copy and into mutmut's)
TEST_DATA = ["book/data/tabular"]

PYPROJECT = """[tool.mutmut]
source_paths = ["lfl_lib"]
only_mutate = [{source!r}]
also_copy = {data!r}
pytest_add_cli_args = ["-x", "-q", "-p", "no:cacheprovider"]
pytest_add_cli_args_test_selection = {tests!r}
use_git_change_detection = false

[tool.pytest.ini_options]
testpaths = ["tests"]
markers = ["slow: long-running tests (not in make test)"]
"""


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would leave the committed file private
    os.replace(tmp, path)


def run_module(name: str) -> dict:
    source, tests, patterns = MODULES[name]
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix=f"lfl_mutation_{name}_") as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "lfl_lib", work / "lfl_lib", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        for d in TEST_DATA:
            shutil.copytree(ROOT / d, work / d)
        (work / "pyproject.toml").write_text(PYPROJECT.format(source=source, tests=tests, data=TEST_DATA))
        env = dict(os.environ, OMP_NUM_THREADS="1")
        # launched with -c, not -m: sys.path[0] is then '', which follows mutmut into mutants/,
        # so the tests import the mutated copy (with -m it would stay on the unmutated one)
        mutmut = [sys.executable, "-c", "from mutmut.__main__ import cli; cli()"]
        cmd = [*mutmut, "run", "--max-children", "1", *(patterns or [])]
        print(f"[{name}] mutmut {' '.join(cmd[3:])} (tests: {' '.join(tests)})", flush=True)
        subprocess.run(cmd, cwd=work, env=env, check=False)
        res = subprocess.run(
            [*mutmut, "results", "--all", "true"], cwd=work, env=env, capture_output=True, text=True, check=False
        )
        status: dict[str, str] = {}
        for line in res.stdout.splitlines():
            if ":" in line:
                key, st = line.rsplit(":", 1)
                status[key.strip()] = st.strip()
        if patterns:
            import fnmatch

            status = {k: v for k, v in status.items() if any(fnmatch.fnmatch(k, p) for p in patterns)}
        survivors = {}
        for k, v in status.items():
            if v in ("survived", "no tests"):
                show = subprocess.run(
                    [*mutmut, "show", k], cwd=work, env=env, capture_output=True, text=True, check=False
                )
                survivors[k] = show.stdout.strip()
    counts: dict[str, int] = {}
    for v in status.values():
        counts[v] = counts.get(v, 0) + 1
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    total = len(status)
    return {
        "module": name,
        "source": source,
        "functions": patterns or "all",
        "tests": tests,
        "command": f"python scripts/mutation.py {name}",
        "mutmut_command": "mutmut run --max-children 1" + (" " + " ".join(patterns) if patterns else ""),
        "counts": counts,
        "total": total,
        "killed": killed,
        "score": killed / total if total else None,
        "survivors": survivors,
        "versions": {"mutmut": version("mutmut"), "python": platform.python_version(), "torch": version("torch")},
        "git_commit": _git_commit(),
        "wall_s": round(time.time() - t0, 1),
    }


def main(argv: list[str]) -> int:
    names = argv or list(MODULES)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        print(f"unknown module(s) {unknown}; expected some of {list(MODULES)}", file=sys.stderr)
        return 2
    for name in names:
        out = run_module(name)
        _write_json(OUT / f"{name}.json", out)
        print(f"[{name}] {out['killed']}/{out['total']} killed ({out['counts']}) in {out['wall_s']} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
