"""Benchmark of the tabular Algorithm 1 (chapter 5): one run, and the whole Table 2.

Usage::

    .venv/bin/python benchmarks/bench_tabular.py [--out book/data/tabular/bench_tabular.json]

Prints the median time of one call of ``recover_reward`` on the SPI learner's four
trajectories of 1000 pairs (and on the Q-learning learner's 51), then the wall time of
Table 2 at 10 runs: 4 learners x seeds 0-9, each run generating the learner's policies,
sampling the observed trajectories, recovering the reward and scoring the observer.
The target is the whole table in under 10 s on 2 cores. The printed numbers are also
written, with provenance, to a JSON file that chapter 5 reads (atomic write).

Then the extended Table 2 of chapter 8 at 10 runs: six learners x seeds 0-9, each run
observed under the paper's model and under ``learner_model="auto"`` (same 10 s target). It
runs in a child process with one BLAS thread (``OPENBLAS_NUM_THREADS=1``): on a shared
2-core machine the small dense solves of its model selection are several times faster so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from lfl_lib.gridworld import ALPHA_MODEL, make_gridworld
from lfl_lib._io import provenance, write_json
from lfl_lib.experiments.table2 import LEARNERS, PIPELINE_FILES, learner_policies, run_many, summarize
from lfl_lib.tabular_lfl import recover_reward
from lfl_lib.trajectories import sample_trajectories


def time_one_run(name: str, repeats: int = 5) -> float:
    """Median seconds of one recover_reward call on learner ``name``'s trajectories (seed 0)."""
    mdp = make_gridworld()
    pols = learner_policies(name, mdp, np.random.default_rng(0))
    trajs = sample_trajectories(mdp, pols, 1000, np.random.default_rng(1))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        recover_reward(trajs, mdp.n_states, mdp.n_actions, mdp.gamma, ALPHA_MODEL)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


_EXTENDED = """
import json, time
from lfl_lib.experiments.table2_extended import extended_table
t0, c0 = time.perf_counter(), time.process_time()
ext = extended_table(range(10), progress=False)
print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                  "summary": ext["summary"]}))
"""


def time_extended_table() -> dict:
    """Wall and CPU seconds of the extended Table 2 at 10 runs, in a one-BLAS-thread child process."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _EXTENDED], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("book/data/tabular/bench_tabular.json"))
    args = parser.parse_args(argv)
    start = time.time()
    print(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPU cores")
    one_run_ms = {}
    for name in ("SPI", "Q-learning"):
        n = LEARNERS[name] + 1
        one_run_ms[name] = time_one_run(name) * 1e3
        print(f"one run of Algorithm 1, {name} ({n} trajectories of 1000 pairs): {one_run_ms[name]:.1f} ms")
    t0, c0 = time.perf_counter(), time.process_time()
    results = run_many(list(LEARNERS), range(10))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    summary = summarize(results)
    load = os.getloadavg()[0]
    print(
        f"whole Table 2 (4 learners x 10 runs, learners + sampling + Algorithm 1 + scoring): "
        f"{wall:.1f} s wall, {cpu:.1f} s CPU"
    )
    print(f"load average during the run: {load:.1f}")
    for name, s in summary.items():
        print(f"  {name:<10} observer {s['observer_J']:.2f} +- {s['observer_J_std']:.2f}")
    ext = time_extended_table()
    ext["load_average"] = os.getloadavg()[0]
    print(
        f"extended Table 2 (6 learners x 10 runs, paper model and auto): {ext['wall_s']:.1f} s wall, "
        f"{ext['cpu_s']:.1f} s CPU (target 10 s); load average {ext['load_average']:.1f}"
    )
    for name, s in ext["summary"].items():
        print(f"  {name:<10} learner {s['learner_J']:.2f}  paper {s['paper_J']:.2f}  auto {s['auto_J']:.2f}")
    prov = provenance(" ".join(["python benchmarks/bench_tabular.py", *argv]), time.time() - start, PIPELINE_FILES)
    write_json(
        {
            "cpu_count": os.cpu_count(),
            "one_run_ms": one_run_ms,
            "n_trajectories": {name: LEARNERS[name] + 1 for name in one_run_ms},
            "table2_10runs": {
                "wall_s": wall,
                "cpu_s": cpu,
                "load_average": load,
                "observer_J": {n: [s["observer_J"], s["observer_J_std"]] for n, s in summary.items()},
            },
            "extended_table2_10runs": {k: ext[k] for k in ("wall_s", "cpu_s", "load_average")},
            "provenance": prov,
        },
        args.out,
        sort_keys=False,
        mkdir=True,
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
