"""Benchmark of the tabular Algorithm 1 (chapter 5): one run, and the whole Table 2.

Usage::

    .venv/bin/python benchmarks/bench_tabular.py

Prints the median time of one call of ``recover_reward`` on the SPI learner's four
trajectories of 1000 pairs (and on the Q-learning learner's 51), then the wall time of
Table 2 at 10 runs: 4 learners x seeds 0-9, each run generating the learner's policies,
sampling the observed trajectories, recovering the reward and scoring the observer.
The target is the whole table in under 10 s on 2 cores.

Then the extended Table 2 of chapter 8 at 10 runs: six learners x seeds 0-9, each run
observed under the paper's model and under ``learner_model="auto"`` (same target, 10 s).
BLAS runs with one thread (``OPENBLAS_NUM_THREADS=1`` unless set): on a shared 2-core
machine the small dense solves of Algorithm 1 are several times faster that way.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import platform
import time

import numpy as np

from lfl_lib.gridworld import ALPHA_MODEL, make_gridworld
from lfl_lib.table2 import LEARNERS, learner_policies, run_many, summarize
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


def main() -> None:
    print(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPU cores")
    for name in ("SPI", "Q-learning"):
        n = LEARNERS[name] + 1
        print(f"one run of Algorithm 1, {name} ({n} trajectories of 1000 pairs): {time_one_run(name) * 1e3:.1f} ms")
    t0, c0 = time.perf_counter(), time.process_time()
    results = run_many(list(LEARNERS), range(10))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    summary = summarize(results)
    print(f"whole Table 2 (4 learners x 10 runs, learners + sampling + Algorithm 1 + scoring): "
          f"{wall:.1f} s wall, {cpu:.1f} s CPU")
    print(f"load average during the run: {os.getloadavg()[0]:.1f}")
    for name, s in summary.items():
        print(f"  {name:<10} observer {s['observer_J']:.2f} +- {s['observer_J_std']:.2f}")
    from lfl_lib.table2_extended import extended_table

    t0, c0 = time.perf_counter(), time.process_time()
    ext = extended_table(range(10), progress=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"extended Table 2 (6 learners x 10 runs, paper model and auto): {wall:.1f} s wall, {cpu:.1f} s CPU"
          f" (target 10 s); load average {os.getloadavg()[0]:.1f}")
    for name, s in ext["summary"].items():
        print(f"  {name:<10} learner {s['learner_J']:.2f}  paper {s['paper_J']:.2f}  auto {s['auto_J']:.2f}")


if __name__ == "__main__":
    main()
