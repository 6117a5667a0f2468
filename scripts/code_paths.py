"""How the book's CPU-sensitive outputs move with the code path that BLAS libraries pick by CPU.

    python scripts/code_paths.py [--out book/data/code_paths.json] [--bench-updates 3]

torch's BLAS (MKL), numpy's OpenBLAS and oneDNN each pick their kernels by the CPU they run
on, so the same float computation can round differently on another x86-64 machine. This
script emulates the other code paths on the machine it runs on, each in a fresh process
(the libraries read their variables once, when they load):

- ``MKL_CBWR`` (MKL's conditional numerical reproducibility branch): AVX2, AVX512, COMPATIBLE;
- ``OPENBLAS_CORETYPE`` (numpy's OpenBLAS kernels): Haswell, SkylakeX, Zen, Prescott;
- ``ONEDNN_MAX_CPU_ISA=AVX2`` and ``ATEN_CPU_CAPABILITY=avx2`` (torch's own kernels).

Under each it recomputes the outputs that the project's code-path check found sensitive
(the reward of ``tests/test_deep_lfl_kl.py::test_default_is_the_paper_path``, the LQ
end-to-end errors of ``book/appendix_lq.ipynb`` and the InvertedPendulum walkthrough of
``book/your_own_learner.ipynb``, whose cells are run from the notebook itself) and records
each output's largest deviation from the native run. It also times a few PPO updates of
``benchmarks/bench_ppo.py``'s HalfCheetah configuration with and without the project's
setting (``lfl_lib.code_paths.PINNED``), interleaved, one thread. Results go to one JSON
file, written atomically, which ``book/reproducibility.ipynb`` reads.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

#: name -> environment of each emulated code path. "native": none of the variables set; every
#: other path starts from the project's setting (MKL_CBWR=AVX2, lfl_lib.code_paths.PINNED) and
#: varies one library. On this machine's Zen 4, OPENBLAS_CORETYPE=SkylakeX and Zen gave the same
#: bits as the native choice and as Haswell respectively, so they are not repeated.
PATHS: dict[str, dict[str, str]] = {
    "native": {},
    "MKL_CBWR=AVX2 (the project's setting)": {"MKL_CBWR": "AVX2"},
    "MKL_CBWR=AVX512": {"MKL_CBWR": "AVX512"},
    "MKL_CBWR=COMPATIBLE": {"MKL_CBWR": "COMPATIBLE"},
    "+ OPENBLAS_CORETYPE=Haswell": {"MKL_CBWR": "AVX2", "OPENBLAS_CORETYPE": "Haswell"},
    "+ OPENBLAS_CORETYPE=Prescott": {"MKL_CBWR": "AVX2", "OPENBLAS_CORETYPE": "Prescott"},
    "+ ONEDNN_MAX_CPU_ISA=AVX2": {"MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}
PROJECT = "MKL_CBWR=AVX2 (the project's setting)"
#: Tolerance (absolute, on every value) with which each output is compared with its stored
#: value, and where; chosen from this script's spreads, with room for the rounding of the
#: printed stored values (3 decimals for losses and errors, 1 for mean returns).
TOLERANCES: dict[str, dict[str, Any]] = {
    "test_deep_lfl_kl reward (8 values)": {
        "abs": 3e-3,
        "checked_by": "tests/test_deep_lfl_kl.py::test_default_is_the_paper_path",
    },
    "appendix_lq errors (observer with KL, KL dropped)": {
        "abs": 0.02,
        "checked_by": "book/appendix_lq.ipynb, the cell after the end-to-end run",
    },
    "your_own_learner learner scores": {
        "abs": 1.0,
        "checked_by": "book/your_own_learner.ipynb, the check cell after the observer",
    },
    "your_own_learner losses": {
        "abs": 0.01,
        "checked_by": "book/your_own_learner.ipynb, the check cell after the observer",
    },
    "your_own_learner observer scores": {
        "abs": 2.0,
        "checked_by": "book/your_own_learner.ipynb, the check cell after the observer",
    },
}
VARIABLES = ("MKL_CBWR", "OPENBLAS_CORETYPE", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")

# Run in a child process, in book/ (the notebooks' working directory): prints one JSON line.
_CHILD = r"""
import json, sys
import numpy as np
sys.path.insert(0, "../tests")

def cells(name, idx):
    nb = json.load(open(name))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    return ["".join(code[i]["source"]) for i in idx]

out = {}
import torch
import test_deep_lfl_kl as t
rolls, s, a = t._data()
reward, _ = t.recover_reward(rolls, t.REF, seed=4)
out["test_deep_lfl_kl reward (8 values)"] = [float(x) for x in reward.reward_fn(s, a)]

ns = {}
for src in cells("appendix_lq.ipynb", [0, 4]):
    exec(src, ns)
out["appendix_lq errors (observer with KL, KL dropped)"] = [
    float(ns["error"](ns["observer"](ns["reward"]))), float(ns["error"](ns["observer"](ns["reward0"])))]

ns = {}
src0, src5, src6 = cells("your_own_learner.ipynb", [0, 5, 6])
exec(src0, ns)
try:
    exec(src5, ns)
    out["your_own_learner rollouts equal the stored ones"] = True
except AssertionError:
    out["your_own_learner rollouts equal the stored ones"] = False
out["your_own_learner learner scores"] = [float(ns["scores"][u]) for u in ns["observed"]]
exec(src6.replace("rollouts = load_rollouts([log_dir", "rollouts = load_rollouts([DATA / 'rollouts'"), ns)
out["your_own_learner losses"] = [float(v) for v in ns["info"].values()]
out["your_own_learner observer scores"] = [float(x) for x in ns["observer"].scores]
print("CODE_PATHS_JSON " + json.dumps(out))
"""


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", LFL_NATIVE_CODE_PATH="1")
    env.update(extra)
    return env


def outputs(extra: dict[str, str]) -> dict[str, Any]:
    """The sensitive outputs computed in a fresh process under the variables ``extra``."""
    res = subprocess.run(
        [sys.executable, "-c", _CHILD], cwd=REPO / "book", env=_env(extra), capture_output=True, text=True, check=True
    )
    line = next(x for x in res.stdout.splitlines() if x.startswith("CODE_PATHS_JSON "))
    return json.loads(line.removeprefix("CODE_PATHS_JSON "))


def spread(native: Any, other: Any) -> dict[str, float] | bool:
    """Largest absolute and relative deviation of ``other`` from ``native`` (booleans: equal or not)."""
    if isinstance(native, bool):
        return native == other
    import numpy as np

    x, y = np.asarray(native, float), np.asarray(other, float)
    return {"abs": float(np.abs(y - x).max()), "rel": float((np.abs(y - x) / np.maximum(np.abs(x), 1e-12)).max())}


_BENCH = r"""
import json, time, sys
sys.path.insert(0, "benchmarks")
import torch
torch.set_num_threads(1)
from bench_ppo import Ours
from lfl_lib.ppo import PPOConfig
ours = Ours("HalfCheetah-v5", PPOConfig(n_steps=int(sys.argv[2])))
ours.run()  # warm-up
t = []
for _ in range(int(sys.argv[1])):
    w = time.perf_counter(); ours.run(); t.append(time.perf_counter() - w)
print("BENCH_JSON " + json.dumps(t))
"""


def bench(extra: dict[str, str], updates: int, n_steps: int) -> list[float]:
    """Wall seconds of ``updates`` PPO updates (HalfCheetah, the paper's PPO settings but ``n_steps``)."""
    res = subprocess.run(
        [sys.executable, "-c", _BENCH, str(updates), str(n_steps)],
        cwd=REPO,
        env=_env(extra),
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in res.stdout.splitlines() if x.startswith("BENCH_JSON "))
    return json.loads(line.removeprefix("BENCH_JSON "))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(REPO / "book" / "data" / "code_paths.json"))
    p.add_argument("--bench-updates", type=int, default=3, help="timed PPO updates per round")
    p.add_argument("--bench-steps", type=int, default=512, help="steps per env per update (paper: 2048)")
    p.add_argument("--bench-rounds", type=int, default=2, help="interleaved rounds (pinned, native)")
    p.add_argument("--paths", nargs="*", default=list(PATHS), help="subset of the code paths")
    p.add_argument(
        "--tolerances-only",
        action="store_true",
        help="rewrite only the tolerances of an existing --out file (no recomputation)",
    )
    args = p.parse_args(argv)
    if args.tolerances_only:
        result = json.loads(Path(args.out).read_text())
        result["tolerances"] = TOLERANCES
        _write(Path(args.out), result)
        return 0
    sys.path.insert(0, str(REPO))
    from lfl_lib.code_paths import PINNED

    assert PATHS[PROJECT] == PINNED, "PROJECT must name the project's setting"

    runs = {}
    for name in args.paths:
        print(f"outputs under {name} ...", flush=True)
        runs[name] = outputs(PATHS[name])
    ref = runs[PROJECT]
    spreads = {out: {name: spread(ref[out], r[out]) for name, r in runs.items() if name != PROJECT} for out in ref}
    timing: dict[str, list[float]] = {"native": [], "pinned": []}
    for _ in range(args.bench_rounds):
        for name, extra in (("pinned", dict(PINNED)), ("native", {})):
            print(f"bench {name} ...", flush=True)
            timing[name] += bench(extra, args.bench_updates, args.bench_steps)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if ln.startswith("Model name")), "")
    flags = next((ln.split(":", 1)[1].split() for ln in cpu.splitlines() if ln.startswith("Flags")), [])
    result = {
        "paths": {name: PATHS[name] for name in runs},
        "outputs": runs,
        "project_path": PROJECT,
        "tolerances": TOLERANCES,
        "spread_from_project_path": spreads,
        "bench": {
            "what": f"wall seconds per PPO update, HalfCheetah-v5, PPOConfig(n_steps={args.bench_steps}), one thread",
            "seconds": timing,
            "best_pinned_over_native": min(timing["pinned"]) / min(timing["native"]),
        },
        "provenance": {
            "cpu": model,
            "avx": sorted(f for f in flags if f.startswith("avx")),
            "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python " + " ".join(["scripts/code_paths.py", *sys.argv[1:]]),
        },
    }
    _write(Path(args.out), result)
    return 0


def _write(out: Path, result: dict[str, Any]) -> None:
    """Write ``result`` to ``out`` atomically (a temporary file in the same folder, then a rename)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=out.parent, delete=False, suffix=".tmp") as f:
        json.dump(result, f, indent=1)
    os.replace(f.name, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    raise SystemExit(main())
