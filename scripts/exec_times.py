"""Execute every chapter notebook of the book once and record its wall time.

Usage: python scripts/exec_times.py [--toc _toc.yml] [--out book/data/exec_times.json]
                                    [--only NAME ...]

Each notebook listed in the table of contents (except ``book/reproducibility.ipynb``,
which shows the result) is executed from a fresh ``python3`` kernel, in its own folder,
exactly as ``jupyter nbconvert --execute`` or ``pytest --nbval`` would run it, but
without writing anything back to it. The wall time of each, the date, the machine, its
load average before and after, the versions of the main packages, the figures each
chapter draws and the long runs committed under ``book/data`` (their commands and wall
times) are written to one JSON file, which the reproducibility page of the book
displays: that page depends on this file alone, so it changes only when it is measured
again. ``make exec-times``
runs this script and then re-executes that page.

With ``--only``, only the named notebooks are executed again; the others keep the
entries they already have in the JSON file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toc import toc_docnames  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SELF_PAGE = "book/reproducibility"
PACKAGES = [
    "lfl_lib",
    "numpy",
    "scipy",
    "matplotlib",
    "torch",
    "gymnasium",
    "mujoco",
    "jupyter-book",
    "sphinx",
    "myst-nb",
    "nbclient",
    "ipykernel",
    "nbval",
]


def toc_notebooks(toc_path: Path) -> list[Path]:
    """The .ipynb pages of the table of contents, in reading order."""
    out = []
    for stem in toc_docnames(toc_path):
        path = REPO / f"{stem}.ipynb"
        if stem != SELF_PAGE and path.exists():
            out.append(path)
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


#: Words after which a full stop is an abbreviation, not the end of a sentence ("Fig. 4", "Eq. (5)").
ABBREVIATIONS = ("Fig", "Figs", "Eq", "Eqs", "Sec", "Ch", "ch", "cf", "e.g", "i.e", "vs", "No", "Tab")


def short_caption(caption: str) -> str:
    """The caption up to its first top-level comma, colon or full stop (outside math, code, parentheses).

    A full stop right after one of :data:`ABBREVIATIONS` does not end the caption.
    """
    text = " ".join(caption.split())
    depth, in_math, in_code = 0, False, False
    for i, ch in enumerate(text):
        if ch == "`" and not in_math:
            in_code = not in_code
        elif ch == "$" and not in_code:
            in_math = not in_math
        elif not (in_math or in_code):
            if ch in "([":
                depth += 1
            elif ch in ")]":
                depth -= 1
            elif ch in ".,:;" and depth == 0 and (i + 1 == len(text) or text[i + 1] == " "):
                if ch == "." and text[:i].split(" ")[-1] in ABBREVIATIONS:
                    continue
                return text[:i]
    return text


def chapter_contents(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    """Named figures of a notebook (``mystnb.figure`` cell metadata) and the book/data paths it reads."""
    nb = nbformat.read(path, as_version=4)
    figures, data = [], set()
    for cell in nb.cells:
        fig = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
        if fig.get("name"):
            figures.append({"name": fig["name"], "caption": short_caption(str(fig.get("caption", "")))})
        if cell.cell_type == "code":
            data.update(re.findall(r"data/[A-Za-z0-9_./*-]+", cell.source))
    return figures, sorted(data)


def long_runs(data_dir: Path) -> list[dict[str, object]]:
    """One record per results file under book/data that states its command and wall time."""

    def find(obj):
        if isinstance(obj, dict):
            if "command" in obj and "wall_time_s" in obj:
                return obj
            children = obj.values()
        elif isinstance(obj, list):
            children = obj
        else:
            return None
        for child in children:
            found = find(child)
            if found is not None:
                return found
        return None

    try:  # only results that are committed: an untracked file is not part of the book yet
        listed = subprocess.run(
            ["git", "ls-files", "--", str(data_dir)], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.split()
        tracked = {(REPO / p).resolve() for p in listed}
    except (OSError, subprocess.CalledProcessError):
        tracked = None
    out = []
    for path in sorted(data_dir.rglob("*.json")):
        if path.name == "exec_times.json" or (tracked is not None and path.resolve() not in tracked):
            continue
        try:
            record = find(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
        if record is not None:
            out.append(
                {
                    "file": path.relative_to(data_dir.parent).as_posix(),
                    "command": str(record["command"]),
                    "wall_time_s": float(record["wall_time_s"]),
                    "date": str(record.get("date_utc", record.get("date", ""))),
                }
            )
    return out


def execute(path: Path, timeout: int) -> tuple[float, str]:
    """Run one notebook in a fresh kernel from its own folder; return (seconds, status)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    try:
        client.execute()
        status = "ok"
    except Exception as exc:  # noqa: BLE001 - recorded, and the run goes on
        status = f"error: {type(exc).__name__}"
    return time.perf_counter() - start, status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toc", type=Path, default=REPO / "_toc.yml")
    parser.add_argument("--out", type=Path, default=REPO / "book" / "data" / "exec_times.json")
    parser.add_argument(
        "--only", nargs="*", default=None, help="notebook names (e.g. 02_greedy_vs_soft) to re-run; others are kept"
    )
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per cell")
    args = parser.parse_args(argv)

    notebooks = toc_notebooks(args.toc)
    old = {}
    if args.only is not None and args.out.exists():
        old = {c["notebook"]: c for c in json.loads(args.out.read_text()).get("chapters", [])}
    load_before = os.getloadavg()
    chapters = []
    for path in notebooks:
        rel = path.relative_to(REPO).as_posix()
        if args.only is not None and path.stem not in args.only and rel in old:
            chapters.append(old[rel])
            continue
        print(f"executing {rel} ...", flush=True)
        seconds, status = execute(path, args.timeout)
        print(f"  {seconds:7.1f} s  {status}", flush=True)
        title = next(
            (
                line.lstrip("# ").strip()
                for cell in nbformat.read(path, as_version=4).cells
                if cell.cell_type == "markdown"
                for line in cell.source.splitlines()
                if line.startswith("# ")
            ),
            path.stem,
        )
        figures, data = chapter_contents(path)
        chapters.append(
            {
                "notebook": rel,
                "title": title,
                "seconds": round(seconds, 1),
                "status": status,
                "date": dt.date.today().isoformat(),
                "figures": figures,
                "reads": data,
            }
        )
    record = {
        "command": "make exec-times  (python scripts/exec_times.py)",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": git_commit(),
        "machine": {
            "system": f"{platform.system()} {platform.release()}",
            "cpu": cpu_model(),
            "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "memory_gib": memory_gib(),
            "load_average_1min_before": round(load_before[0], 2),
            "load_average_1min_after": round(os.getloadavg()[0], 2),
        },
        "versions": versions(),
        "chapters": chapters,
        "total_seconds": round(sum(c["seconds"] for c in chapters), 1),
        "long_runs": long_runs(REPO / "book" / "data"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}: "
        f"{len(chapters)} notebooks, {record['total_seconds']:.0f} s in total"
    )
    failed = [c["notebook"] for c in chapters if c["status"] != "ok"]
    if failed:
        print("failed:", ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
