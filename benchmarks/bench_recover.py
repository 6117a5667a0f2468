"""Recovery time and peak memory against the log's size (continuous Algorithm 1, paper preset).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_recover.py [--sizes 2000 10000 100000]
        [--policies 10] [--out book/data/bench_recover.json] [--append]

Each size runs in its own process (one torch thread): ``policies`` rollouts of ``size``
transitions each, 17-d observations and 6-d actions (HalfCheetah's sizes), drawn at random
with a policy that changes from one rollout to the next, recovered by
:func:`lfl_lib.deep_lfl.recover_reward` at the paper preset (1000/100/3000/1000 Adam steps).
Up to ``DeepLfLConfig.minibatch`` (4096) transitions per policy every step is full batch
(the paper); beyond, every step takes a minibatch of 4096 per policy, so the time levels off.
Reported per size: wall time, CPU time, the process's peak resident memory (``ru_maxrss``,
the data included) and the size of the log itself (``log_mib``: the rollouts' arrays as passed in). With ``--append``, the rows of the sizes run (each with its own command, date
and git commit) are added to those of an existing ``--out`` file, replacing rows of the same
size and number of policies.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _machine import machine

_RUN = r"""
import json, resource, sys, time
import numpy as np, torch
from lfl_lib.data import Rollout
from lfl_lib.deep_lfl import recover_reward
torch.set_num_threads(1)
T, K = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
W = rng.normal(size=(17, 6)) / 4
D = []
for k in range(K):
    s = rng.normal(size=(T, 17))
    a = np.tanh(s @ W) * (k + 1) / K + rng.normal(size=(T, 6)) * (1.0 - 0.05 * k)
    D.append(Rollout(s, a, s + 0.05 * rng.normal(size=(T, 17)), np.arange(T) % 1000 == 999))
log_mib = sum(x.nbytes for r in D for x in (r.observations, r.actions, r.next_observations, r.terminations)
              if x is not None) / 2**20
t0, c0 = time.perf_counter(), time.process_time()
reward, info = recover_reward(D, None, seed=0)
print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "log_mib": log_mib,
                  "losses": {k: float(v) for k, v in info.items()}}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000, 100000])
    p.add_argument("--policies", type=int, default=10)
    p.add_argument("--out", type=Path, default=Path("book/data/bench_recover.json"))
    p.add_argument("--append", action="store_true", help="add the rows to those of an existing --out file")
    args = p.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    rows = []
    for T in args.sizes:
        out = subprocess.run(
            [sys.executable, "-c", _RUN, str(T), str(args.policies)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        row = {
            "transitions_per_policy": T,
            "policies": args.policies,
            **json.loads(out.stdout.strip().splitlines()[-1]),
        }
        rows.append(row)
        print(
            f"{T:>8} x {args.policies}: {row['wall_s']:7.1f} s wall, {row['cpu_s']:7.1f} s CPU, "
            f"peak {row['peak_rss_mib']:6.0f} MiB",
            flush=True,
        )
    from lfl_lib._io import git_commit, read_json, write_json

    command = "python " + " ".join(sys.argv)
    if args.append and args.out.exists():
        result = read_json(args.out, "--out")
        new = {(r["transitions_per_policy"], r["policies"]) for r in rows}
        stamp = {"command": command, "date": time.strftime("%Y-%m-%d", time.gmtime()), "git_commit": git_commit()}
        result["rows"] = [r for r in result["rows"] if (r["transitions_per_policy"], r["policies"]) not in new]
        result["rows"] += [{**r, **stamp} for r in rows]
        write_json(result, args.out, sort_keys=False)
        print(f"appended to {args.out}")
        return
    result = {
        "command": command,
        "preset": "paper (DeepLfLConfig defaults: 1000/100/3000/1000 Adam steps, minibatch 4096)",
        "data": "random rollouts, 17-d observations, 6-d actions (HalfCheetah's sizes)",
        "threads": 1,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "rows": rows,
    }
    write_json(result, args.out, sort_keys=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
