"""Scaling of the sweep on this machine: the same smoke sweep with 1 and with 2 workers.

    python benchmarks/bench_sweep.py [--out book/data/bench/sweep_scaling.json]

Runs ``lfl sweep --env Reacher-v5 Hopper-v5 --seed 0 1 --preset smoke`` (four
runs) from scratch in a temporary folder, once with ``--workers 1`` and once with
``--workers 2``, and records each sweep's wall time (Ray's start apart from the runs), the
wall time of every run, and the load average. The ratio of the two wall times is the
measured speed-up of two workers over one. Written atomically to a JSON file that the
reproducibility page reads.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lfl_lib._io import write_json

REPO = Path(__file__).resolve().parent.parent
GRID = ["--env", "Reacher-v5", "Hopper-v5", "--seed", "0", "1", "--preset", "smoke", "--no-progress"]


def one(workers: int, tmp: Path) -> dict:
    rec = tmp / f"record_{workers}.json"
    root = tmp / f"root_{workers}"
    load = os.getloadavg()[0]
    t = time.perf_counter()
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "lfl_lib",
            "sweep",
            *GRID,
            "--workers",
            str(workers),
            "--root",
            str(root),
            "--record",
            str(rec),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    wall = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"the sweep with {workers} worker(s) failed:\n{res.stdout}\n{res.stderr}")
    out = json.loads(rec.read_text())
    out["process_wall_s"] = round(wall, 2)
    out["load_before"] = round(load, 2)
    out["load_after"] = round(os.getloadavg()[0], 2)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(REPO / "book" / "data" / "bench" / "sweep_scaling.json"))
    args = p.parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="sweep_bench") as d:
        runs = {w: one(w, Path(d)) for w in (1, 2)}
    for w, r in runs.items():
        print(
            f"{w} worker(s): runs {r['tasks_s']:.1f} s (Ray start {r['ray_start_s']:.1f} s), "
            f"load average {r['load_before']:.2f} -> {r['load_after']:.2f}"
        )
    ratio = runs[1]["tasks_s"] / runs[2]["tasks_s"]
    print(f"speed-up of 2 workers over 1 (wall time of the runs): {ratio:.2f}")
    res = {
        "benchmark": "the same smoke sweep (4 study runs) with 1 and with 2 workers on a local Ray instance",
        "grid": GRID,
        "runs": {str(w): r for w, r in runs.items()},
        "speedup_2_over_1": round(ratio, 3),
        "speedup_2_over_1_with_ray_start": round(runs[1]["wall_time_s"] / runs[2]["wall_time_s"], 3),
        "provenance": {
            "command": "python benchmarks/bench_sweep.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "date_utc": started.strftime("%Y-%m-%d %H:%M"),
            "cpu_count": os.cpu_count(),
        },
    }
    write_json(res, args.out, mkdir=True)
    print(f"written to {Path(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
