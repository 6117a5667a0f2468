"""A grid of MuJoCo study runs on Ray: environments x seeds x estimators x options of the study.

``lfl sweep --env Reacher-v5 Hopper-v5 --seed 0..2 --estimator paper fix`` runs
every combination as one task on Ray, a distributed engine for Python. Each task is one run of
:mod:`lfl_lib.experiments.study` through its Python API (:func:`~lfl_lib.experiments.study.run_study`),
so everything that makes a study run safe holds for a sweep: the run checkpoints after every PPO update and stage, writes its
files atomically, refuses a folder that holds another configuration, and a finished run
is not redone. A killed sweep started again with the same arguments therefore skips the
finished runs, resumes the unfinished ones from their checkpoints, and writes nothing twice.

Where the results go: exactly where ``make study`` (``lfl study``) puts them, under the sweep's
root (``--root``, default the current folder):
``book/data/mujoco[_ESTIMATOR]`` for the paper preset and ``runs/mujoco/results-smoke[_ESTIMATOR]``
for the smoke preset, with the checkpoints in ``runs/mujoco/ENV_seedN_PRESET[_ESTIMATOR]``.
A run with extra study options (``--option KEY=VALUE``: any option of
:data:`lfl_lib.experiments.study.RUN_OPTIONS`, e.g. ``window=10..30:5``) goes under ``runs/sweep/KEY=VALUE[_...]/`` instead, so that
it never meets a run of another configuration.

Estimators that share a learner: when ``paper`` is in the grid, the other estimators of the
same environment, seed and options start after the paper run and copy its learner
(``--learner-from``, as ``make study ESTIMATOR=...`` does) instead of training it again.

Ray: without ``--address`` the sweep starts a local Ray instance with one task per core
(``--workers`` to choose) and one torch thread per task; with ``--address HOST:PORT`` it
joins a running cluster (``ray start --head`` on one machine, ``ray start --address=HOST:PORT``
on the others; see the README). On a cluster each machine needs this repository and its
environment at the same place; the runs write under each machine's working folder and the
sweep copies every results file back to the machine it was started on. Checkpoints stay
where their run ran: to resume an interrupted run on another machine, share ``runs/``
(e.g. over NFS); otherwise an interrupted run that lands elsewhere starts over there.

One failing task does not stop the others: its error is reported with its environment,
seed and estimator, and the exit status is 0 only if every task succeeded (1 otherwise,
2 for bad arguments).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import platform
import re
import shlex
import signal
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, cast

import numpy as np

from .._io import git_commit, versions, write_text
from . import study
from .._validate import check_positive_int

__all__ = [
    "Task",
    "Outcome",
    "make_grid",
    "parse_seeds",
    "parse_option",
    "study_folders",
    "run_task",
    "run_sweep",
    "final_score",
    "summary_table",
    "main",
]

#: The environments of the paper's Table 3 (the default grid).
PAPER_ENVS: tuple[str, ...] = tuple(study.DEFAULT_WINDOWS)
#: Options the sweep sets itself (the grid's axes and the folders), not accepted in --option.
RESERVED = {"env", "seed", "estimator", "preset", "out", "run-dir", "learner-from", "no-progress"}


@dataclass(frozen=True)
class Task:
    """One study run of the grid.

    Attributes
    ----------
    env_id, seed, estimator, preset : str, int, str, str
        The run's axes (see :func:`lfl_lib.experiments.study.make_config`).
    options : tuple of (str, str)
        Extra options of the study's command line, e.g. ``(("window", "10..30:5"),)``.
    out, run_dir : str
        The results folder and the checkpoint folder, relative to the sweep's root.
    learner_from : str or None
        The run folder (relative) whose learner this run copies, when that run finished.
    after : int or None
        Index of the task that must finish first (the paper run that owns the learner).
    """

    env_id: str
    seed: int
    estimator: str
    preset: str
    options: tuple[tuple[str, str], ...] = ()
    out: str = ""
    run_dir: str = ""
    learner_from: str | None = None
    after: int | None = None

    @property
    def label(self) -> str:
        """``ENV seed N ESTIMATOR`` (and the options), as errors and the progress report name the task."""
        extra = " ".join([self.preset, *(f"{k}={v}" for k, v in self.options)])
        return f"{self.env_id} seed {self.seed} {self.estimator} [{extra}]"

    @property
    def results(self) -> str:
        """The results file, relative to the sweep's root."""
        return f"{self.out}/{self.env_id}_seed{self.seed}.json"

    def argv(self, learner_from: bool = True) -> list[str]:
        """The study's command line for this run (paths relative to the sweep's root)."""
        args = ["--env", self.env_id, "--seed", str(self.seed), "--preset", self.preset, "--estimator", self.estimator]
        for k, v in self.options:
            args += [f"--{k}", v]
        args += ["--out", self.out, "--run-dir", self.run_dir, "--no-progress"]
        if learner_from and self.learner_from is not None:
            args += ["--learner-from", self.learner_from]
        return args


# ------------------------------------------------------------------ the grid


def parse_seeds(items: Sequence[str]) -> list[int]:
    """Seeds from ``["0", "3"]``, ``["0..4"]`` (inclusive) or a mix; duplicates removed, order kept."""
    seeds: list[int] = []
    for item in items:
        try:
            if ".." in item:
                lo, hi = (int(x) for x in item.split(".."))
                new = list(range(lo, hi + 1))
            else:
                new = [int(item)]
        except ValueError as exc:
            raise ValueError(f"seed must be an integer or a range like '0..4'; got {item!r}") from exc
        for s in new:
            check_positive_int(s, "seed", minimum=0)
            if s not in seeds:
                seeds.append(s)
    if not seeds:
        raise ValueError("seed: give at least one seed")
    return seeds


def parse_option(text: str) -> tuple[str, str]:
    """``"window=10..30:5"`` -> ``("window", "10..30:5")``: an option of the study's command line."""
    key, sep, value = text.partition("=")
    key = key.strip().removeprefix("--")
    if not sep or not re.fullmatch(r"[a-z][a-z0-9-]*", key) or not value:
        raise ValueError(
            f"option must look like KEY=VALUE with KEY an option of the study (e.g. window=10..20); got {text!r}"
        )
    if key in RESERVED:
        raise ValueError(f"option {key!r} is set by the sweep itself (use its own argument); got {text!r}")
    if key not in study.RUN_OPTIONS:
        raise ValueError(
            f"option {key!r} is not an option of a study run (expected one of "
            f"{', '.join(study.RUN_OPTIONS)}); got {text!r}"
        )
    return key, value


def _tag(options: tuple[tuple[str, str], ...]) -> str:
    """A folder name for a set of options (characters other than letters, digits and ``=.,:-`` become ``_``)."""
    return "_".join(re.sub(r"[^A-Za-z0-9=.,:-]", "_", f"{k}={v}") for k, v in options)


def study_folders(
    env_id: str, seed: int, preset: str, estimator: str, options: tuple[tuple[str, str], ...] = ()
) -> tuple[str, str]:
    """(results folder, checkpoint folder), relative to the root, of one run.

    Without options these are the study's defaults (where ``make study`` puts a run);
    with options, folders of their own under ``runs/sweep/``.
    """
    suffix = "" if estimator == "paper" else f"_{estimator}"
    run = f"{env_id}_seed{seed}_{preset}{suffix}"
    if not options:
        out = ("book/data/mujoco" if preset == "paper" else "runs/mujoco/results-smoke") + suffix
        return out, f"runs/mujoco/{run}"
    base = f"runs/sweep/{_tag(options)}"
    return f"{base}/results-{preset}{suffix}", f"{base}/{run}"


def make_grid(
    envs: Sequence[str],
    seeds: Sequence[int],
    estimators: Sequence[str],
    presets: Sequence[str] = ("paper",),
    options: Sequence[tuple[str, str]] = (),
    share_learner: bool = True,
) -> list[Task]:
    """Every combination of the axes as a :class:`Task`, checked before anything runs.

    ``options`` holds (key, value) pairs; the values given for one key form one more axis
    of the grid. Raises ValueError on an unknown environment, estimator or preset (through
    :func:`lfl_lib.experiments.study.make_config`) or an empty axis.
    """
    for name, axis in (("env", envs), ("seed", seeds), ("estimator", estimators), ("preset", presets)):
        if not axis:
            raise ValueError(f"{name}: the grid needs at least one value")
    envs, estimators, presets = (list(dict.fromkeys(a)) for a in (envs, estimators, presets))
    for env_id, preset, est in itertools.product(envs, presets, estimators):
        study.make_config(env_id, seeds[0], preset, estimator=est)  # raises ValueError on bad input
    keys: dict[str, list[str]] = {}
    for k, v in options:
        keys.setdefault(k, [])
        if v not in keys[k]:
            keys[k].append(v)
    option_sets = [tuple(zip(keys, vals)) for vals in itertools.product(*keys.values())] if keys else [()]
    tasks: list[Task] = []
    for opts, preset, env_id, seed in itertools.product(option_sets, presets, envs, seeds):
        owner: int | None = None
        for est in sorted(estimators, key=lambda e: e != "paper"):  # the paper run first
            out, run = study_folders(env_id, seed, preset, est, opts)
            if est == "paper":
                owner = len(tasks)
                tasks.append(Task(env_id, seed, est, preset, opts, out, run))
            elif owner is not None and share_learner:
                tasks.append(Task(env_id, seed, est, preset, opts, out, run, tasks[owner].run_dir, owner))
            else:
                tasks.append(Task(env_id, seed, est, preset, opts, out, run))
    return tasks


# ------------------------------------------------------------------ one task


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _remove_stale_temp_files(run_dir: Path, out: Path, results_name: str) -> None:
    """Delete the temporary files (``NAME.XXXX.tmp``, or ``NAME.tmpPID`` of older versions) that a killed earlier try left.

    The study writes every file as a temporary file renamed into place, so a run killed in the
    middle of a write leaves the old file intact and a temporary one beside it. A task owns
    its run folder and results file (the sweep gives every run its own), so any such file is
    stale when the task starts.
    """
    stale = [f for f in run_dir.rglob("*.tmp*")] if run_dir.is_dir() else []
    stale += list(out.glob(results_name + ".*tmp*")) if out.is_dir() else []
    for f in stale:
        if re.search(r"\.tmp\d*$", f.name) and f.is_file():
            f.unlink()


def run_task(task: dict[str, Any], root: str | None = None, learner_from: bool = True) -> dict[str, Any]:
    """Run one study run in this process (:func:`lfl_lib.experiments.study.run_study`), its folders under ``root``.

    Parameters
    ----------
    task : dict
        A :class:`Task` as a dict (what travels to a Ray worker).
    root : str, optional
        The folder the task's relative paths start from; default the current folder
        (on a cluster: each machine's working folder).
    learner_from : bool
        Copy the learner of ``task["learner_from"]`` when that folder holds one.

    Returns
    -------
    dict
        ``status`` ("ok", "skipped": already complete, or "failed"), ``log`` (the study's summary
        line, its error, or the traceback of an unexpected error), ``results_text`` (the
        results file, when there is one), ``wall_s`` and ``host``.
    """
    t = Task(**{**task, "options": tuple(tuple(o) for o in task["options"])})
    base = Path(root) if root is not None else Path.cwd()
    results = base / t.results
    use_source = bool(learner_from and t.learner_from is not None and (base / t.learner_from / "learner.pt").exists())
    existed = results.exists()
    t0 = time.perf_counter()
    try:
        base.mkdir(parents=True, exist_ok=True)
        _remove_stale_temp_files(base / t.run_dir, base / t.out, Path(t.results).name)
        cfg = study.config_from_options(t.env_id, t.seed, t.preset, t.estimator, t.options)
        res = study.run_study(
            cfg,
            base / t.out,
            base / t.run_dir,
            progress=False,
            command="lfl study " + shlex.join(t.argv(use_source)),
            learner_from=base / t.learner_from if use_source and t.learner_from else None,
        )
        code, log = 0, study.summary(cfg, res)
    except ValueError as exc:
        code, log = 2, f"error: {exc}"
    except Exception:  # noqa: BLE001 - any error of one run is reported, the others go on
        code, log = -1, traceback.format_exc()
    ok = code == 0 and results.exists()
    if code == 0 and not ok:
        log += f"\nthe study finished but wrote no results file at {results}"
    return {
        "status": ("skipped" if existed else "ok") if ok else "failed",
        "code": code,
        "log": _tail(log),
        "results_text": results.read_text() if ok else None,
        "wall_s": round(time.perf_counter() - t0, 2),
        "host": platform.node(),
        "learner_copied": use_source,
    }


# ------------------------------------------------------------------ the sweep on Ray


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ValueError("the sweep needs Ray: pip install -c constraints.txt -e '.[sweep]' (or make sweep)") from exc
    return ray


def _descendants(pid: int) -> set[int]:
    """Process ids of all descendants of ``pid`` (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _start_ray(ray: Any, address: str | None, workers: int | None, attempts: int = 3) -> None:
    """Join the cluster at ``address``, or start a local instance with ``workers`` CPUs.

    A local start can fail on a loaded machine (Ray's raylet waits a fixed time for its
    agent process to start): it is tried ``attempts`` times, and the processes of a failed
    try are ended.
    """
    common = dict(log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)
    if address is not None:
        ray.init(address=address, **common)
        return
    for i in range(attempts):
        before = _descendants(os.getpid())
        try:
            ray.init(address="local", num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, **common)
            return
        except Exception:  # noqa: BLE001 - Ray raises a bare Exception when its node fails to start
            ray.shutdown()
            for pid in _descendants(os.getpid()) - before:  # what this try started and left behind
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            if i == attempts - 1:
                raise
            print(
                f"sweep: the local Ray instance failed to start (try {i + 1} of {attempts}); trying again",
                file=sys.stderr,
            )


class _Progress:
    """Tasks done, running and failed, and the time elapsed: one line rewritten on a terminal,
    a new line at each change otherwise."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self.tty = enabled and sys.stderr.isatty()
        self.t0 = time.perf_counter()
        self.last = ""

    def line(self, done: int, running: int, failed: int) -> str:
        el = int(time.perf_counter() - self.t0)
        return (
            f"sweep: {done}/{self.total} done, {running} running, {failed} failed, "
            f"elapsed {el // 3600:d}:{el // 60 % 60:02d}:{el % 60:02d}"
        )

    def show(self, done: int, running: int, failed: int) -> None:
        if not self.enabled:
            return
        text = self.line(done, running, failed)
        if self.tty:
            sys.stderr.write("\r" + text + "\x1b[K")
            sys.stderr.flush()
        elif text.rsplit(", elapsed", 1)[0] != self.last.rsplit(", elapsed", 1)[0]:
            print(text, file=sys.stderr, flush=True)
        self.last = text

    def write(self, text: str) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[K")
        print(text, file=sys.stderr, flush=True)
        if self.tty and self.last:
            sys.stderr.write(self.last)
            sys.stderr.flush()

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


@dataclass
class Outcome:
    """What happened to one task (``status``: ok, skipped, failed, or not run)."""

    task: Task
    status: str = "not run"
    log: str = ""
    wall_s: float = 0.0
    host: str = ""
    learner_copied: bool = False
    results: dict[str, Any] | None = field(default=None, repr=False)


def run_sweep(
    tasks: Sequence[Task],
    workers: int | None = None,
    address: str | None = None,
    root: str | Path | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    timing: dict[str, float] | None = None,
) -> list[Outcome]:
    """Run ``tasks`` as Ray tasks, at most ``workers`` at a time; return one :class:`Outcome` per task.

    Parameters
    ----------
    tasks : sequence of Task
        From :func:`make_grid`; a task with ``after`` starts once that task has finished.
    workers : int, optional
        Tasks running at once; default the CPUs of the Ray cluster (local: this machine's cores).
    address : str, optional
        ``HOST:PORT`` of a running Ray cluster (default: start a local instance).
    root : path, optional
        Where the relative folders of the tasks start (default: the current folder). Given
        explicitly, it must be reachable at the same path from every machine.
    progress : bool
        Show a progress bar (tasks done, running, failed, elapsed).
    echo : callable, optional
        Where the line of each finished task goes (default: standard error).
    timing : dict, optional
        Filled with ``ray_start_s`` (starting or joining Ray) and ``tasks_s`` (from the first
        task submitted to the last one finished).
    """
    ray = _import_ray()
    if workers is not None:
        workers = check_positive_int(workers, "workers")
    local_root = Path(root) if root is not None else Path.cwd()
    # a local worker runs in this folder; a worker on another machine in its own working folder
    task_root = str(local_root.resolve()) if root is not None or address is None else None
    outcomes = [Outcome(t) for t in tasks]
    t0 = time.perf_counter()
    _start_ray(ray, address, workers)
    t_tasks = time.perf_counter()
    try:
        cap = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        remote = ray.remote(num_cpus=1, max_retries=0)(run_task)
        waiting = list(range(len(tasks)))
        inflight: dict[Any, int] = {}
        failed = finished = 0
        bar = _Progress(len(tasks), progress)
        say = echo or bar.write
        while waiting or inflight:
            _submit_ready(
                tasks, outcomes, waiting, inflight, cap, lambda task, share: remote.remote(task, task_root, share)
            )
            bar.show(finished, len(inflight), failed)
            if not inflight:
                continue
            done, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
            for ref in done:
                i = inflight.pop(ref)
                o = outcomes[i]
                _fill_outcome(o, _result(ray, ref), local_root)
                if o.status == "failed":
                    failed += 1
                    say(f"FAILED  {tasks[i].label}  ({o.host or 'no host'}):\n" + _indent(o.log))
                else:
                    say(f"{o.status:7s} {tasks[i].label}  {o.wall_s:.0f} s" + (f"  on {o.host}" if address else ""))
                finished += 1
                bar.show(finished, len(inflight), failed)
        bar.close()
    finally:
        t_end = time.perf_counter()
        ray.shutdown()
    if timing is not None:
        timing.update(ray_start_s=round(t_tasks - t0, 2), tasks_s=round(t_end - t_tasks, 2))
    elapsed = time.perf_counter() - t0
    n = {s: sum(o.status == s for o in outcomes) for s in ("ok", "skipped", "failed")}
    (echo or (lambda text: print(text, file=sys.stderr, flush=True)))(
        f"sweep: {n['ok']} ran, {n['skipped']} already complete, {n['failed']} failed, elapsed {elapsed:.0f} s"
    )
    return outcomes


def _submit_ready(
    tasks: Sequence[Task],
    outcomes: list[Outcome],
    waiting: list[int],
    inflight: dict[Any, int],
    cap: int,
    submit: Callable[[dict[str, Any], bool], Any],
) -> None:
    """Submit the waiting tasks whose learner is ready, in order, while fewer than ``cap`` run."""
    for i in list(waiting):
        if len(inflight) >= cap:
            break
        dep = tasks[i].after
        if dep is not None and outcomes[dep].status == "not run":
            continue  # its learner is still being trained
        share = dep is None or outcomes[dep].status in ("ok", "skipped")
        inflight[submit(asdict(tasks[i]), share)] = i
        waiting.remove(i)


def _result(ray: Any, ref: Any) -> dict[str, Any]:
    """What a finished task returned, or a failure when its worker died."""
    try:
        return ray.get(ref)
    except Exception as exc:  # noqa: BLE001 - a worker that died (killed, out of memory)
        return {
            "status": "failed",
            "log": f"{type(exc).__name__}: {_tail(str(exc), 5)}",
            "wall_s": 0.0,
            "host": "",
            "results_text": None,
        }


def _fill_outcome(o: Outcome, r: dict[str, Any], local_root: Path) -> None:
    """Fill ``o`` from the task's return ``r``; write its results file here when the worker's is elsewhere."""
    o.status, o.log, o.wall_s, o.host = r["status"], r["log"], r["wall_s"], r["host"]
    o.learner_copied = bool(r.get("learner_copied"))
    if r.get("results_text"):
        o.results = json.loads(r["results_text"])
        local = local_root / o.task.results
        if not local.exists():  # a run on another machine without a shared folder
            local.parent.mkdir(parents=True, exist_ok=True)
            write_text(r["results_text"], local)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


# ------------------------------------------------------------------ the summary


def final_score(results: dict[str, Any], protocol: str = "mean-return") -> float | None:
    """The final observer's normalized score of a results file under ``protocol``."""
    scores = getattr(study, "protocol_scores", None)
    if scores is not None:
        value = scores(results, protocol)["final_observer_normalized"]
    elif protocol == "mean-return":
        value = results.get("final_observer_normalized")
    else:
        raise ValueError(
            f"protocol must be 'mean-return' with this version of lfl_lib.experiments.study; got {protocol!r}"
        )
    return None if value is None else float(value)


def summary_table(outcomes: Sequence[Outcome], protocol: str = "mean-return") -> str:
    """The final observer's normalized score per run, one row per (preset, options, env, estimator).

    Columns: one per seed, then the mean and standard deviation over the seeds that have a
    score (0 = the first observed learner policy, 1 = the last, as in the paper).
    """
    seeds = sorted({o.task.seed for o in outcomes})
    rows: dict[tuple[str, str, str, str], dict[int, str]] = {}
    values: dict[tuple[str, str, str, str], list[float]] = {}
    for o in outcomes:
        t = o.task
        key = (t.preset, _tag(t.options) or "-", t.env_id, t.estimator)
        cell = o.status if o.results is None else "n/a"
        if o.results is not None:
            v = final_score(o.results, protocol)
            if v is not None:
                cell = f"{v:.2f}"
                values.setdefault(key, []).append(v)
        rows.setdefault(key, {})[t.seed] = cell
    head = ["preset", "options", "env", "estimator", *(f"seed {s}" for s in seeds), "mean", "sd"]
    body = []
    for key, cells in rows.items():
        vals = values.get(key, [])
        body.append(
            [
                *key,
                *(cells.get(s, "") for s in seeds),
                f"{np.mean(vals):.2f}" if vals else "",
                f"{np.std(vals, ddof=1):.2f}" if len(vals) > 1 else "",
            ]
        )
    widths = [max(len(str(r[i])) for r in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *body]]
    title = f"final observer score, normalized (0 = first observed learner policy, 1 = last), protocol {protocol}"
    return "\n".join([title, lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def _record(
    path: Path,
    args_list: Sequence[str],
    outcomes: Sequence[Outcome],
    elapsed: float,
    workers: int | None,
    address: str | None,
    protocol: str,
    timing: dict[str, float],
) -> None:
    rec: dict[str, Any] = {
        "command": "lfl sweep " + " ".join(shlex.quote(a) for a in args_list),
        "workers": workers,
        "address": address,
        "wall_time_s": round(elapsed, 2),
        "cpu_count": os.cpu_count(),
        **timing,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "git_commit": git_commit(),
        "versions": versions(),
        "tasks": [
            {
                "label": o.task.label,
                "env_id": o.task.env_id,
                "seed": o.task.seed,
                "estimator": o.task.estimator,
                "preset": o.task.preset,
                "options": [list(x) for x in o.task.options],
                "status": o.status,
                "wall_s": o.wall_s,
                "host": o.host,
                "learner_copied": o.learner_copied,
                "final_observer_normalized": None if o.results is None else final_score(o.results, protocol),
            }
            for o in outcomes
        ],
    }
    try:
        import ray

        rec["versions"]["ray"] = ray.__version__
    except ImportError:
        pass
    write_text(json.dumps(rec, indent=1, sort_keys=True) + "\n", path)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns 0 if every task succeeded, 1 if one failed, 2 on bad input."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    protocols = list(getattr(study, "PROTOCOLS", ("mean-return",)))
    p = argparse.ArgumentParser(prog="lfl sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("--env", nargs="+", default=list(PAPER_ENVS), help="gymnasium ids (default: the paper's four)")
    p.add_argument("--seed", nargs="+", default=["0", "1", "2"], help="seeds, e.g. 0 1 2 or 0..4 (default 0 1 2)")
    p.add_argument(
        "--estimator",
        nargs="+",
        default=["paper"],
        choices=list(study.ESTIMATORS),
        help="estimators of lfl_lib.experiments.study (default: paper)",
    )
    p.add_argument("--preset", nargs="+", default=["paper"], choices=["paper", "smoke"])
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the study's command line, e.g. window=10..30:5; repeat a key for an axis",
    )
    p.add_argument(
        "--no-share-learner",
        action="store_true",
        help="train the learner again for every estimator instead of copying the paper run's",
    )
    p.add_argument("--workers", type=int, default=None, help="tasks at once (default: one per core of the cluster)")
    p.add_argument("--address", default=None, help="HOST:PORT of a running Ray cluster (default: a local instance)")
    p.add_argument(
        "--root", default=None, help="folder that results and checkpoints go under (default: the repository)"
    )
    p.add_argument("--protocol", default="mean-return", choices=protocols, help="scoring protocol of the summary")
    p.add_argument(
        "--record", default=None, help="also write the sweep's outcome (tasks, times, scores) to this JSON file"
    )
    p.add_argument("--dry-run", action="store_true", help="list the tasks and exit")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(args_list)
    try:
        seeds = parse_seeds(args.seed)
        options = [parse_option(o) for o in args.option]
        tasks = make_grid(args.env, seeds, args.estimator, args.preset, options, not args.no_share_learner)
        if args.workers is not None:
            check_positive_int(args.workers, "workers")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        for t in tasks:
            print(f"{t.label}:  lfl study {shlex.join(t.argv())}")
        return 0
    t0, timing = time.perf_counter(), cast(dict[str, float], {})
    try:
        outcomes = run_sweep(tasks, args.workers, args.address, args.root, progress=not args.no_progress, timing=timing)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - t0
    print(summary_table(outcomes, args.protocol))
    bad = [o for o in outcomes if o.status not in ("ok", "skipped")]
    if bad:
        print(f"\n{len(bad)} of {len(outcomes)} runs failed:", file=sys.stderr)
        for o in bad:
            print(f"  {o.task.label}: {o.log.splitlines()[-1] if o.log else o.status}", file=sys.stderr)
    if args.record:
        _record(Path(args.record), args_list, outcomes, elapsed, args.workers, args.address, args.protocol, timing)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
