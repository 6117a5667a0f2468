"""Tests of the sweep (lfl_lib.experiments.sweep): the grid, one task in-process, and a smoke sweep on a local Ray.

The Ray part (a smoke sweep of two runs, killed in the middle and started again, and a sweep
with a failing run) starts Ray three times and takes a few minutes on two cores: it runs when
``LFL_SWEEP_TESTS=1`` (``make test-sweep``, called by ``.ci/run``), not in ``make test``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from numpy.testing import assert_allclose

from lfl_lib.experiments import study
from lfl_lib.experiments.study import make_config, run_study
from lfl_lib.experiments.sweep import (
    Outcome,
    main,
    make_grid,
    parse_option,
    parse_seeds,
    run_task,
    study_folders,
    summary_table,
)

SMOKE = ["--preset", "smoke", "--no-progress"]


def _fake_results(cfg: dict | None, final: float) -> dict:
    """The keys of a results file that the study's summary line and the sweep's table read
    (in the layout of files with and without scoring protocols)."""
    part = {"returns": [], "score": [], "normalized": []}
    scores = {"final_observer_normalized": final}
    return {
        "config": cfg,
        "wall_time_s": 1.0,
        "final_observer_normalized": final,
        "learner": part,
        "observer": part,
        "scores": {p: scores for p in getattr(study, "PROTOCOLS", ("mean-return",))},
    }


# ------------------------------------------------------------------ the grid (no Ray)


def test_parse_seeds_and_options():
    assert parse_seeds(["0..2", "5", "1"]) == [0, 1, 2, 5]
    with pytest.raises(ValueError, match="seed must be an integer or a range"):
        parse_seeds(["zero"])
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        parse_seeds(["-1"])
    assert parse_option("window=10..30:5") == ("window", "10..30:5")
    assert parse_option("--learner-updates=8") == ("learner-updates", "8")
    for bad in ("window", "=3", "Window=3", "window="):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            parse_option(bad)
    with pytest.raises(ValueError, match="set by the sweep itself"):
        parse_option("seed=3")


def test_grid_axes_order_and_shared_learners():
    tasks = make_grid(["Reacher-v5", "Hopper-v5"], [0, 1], ["fix", "paper"], ["smoke"])
    assert len(tasks) == 8
    for t in tasks:
        if t.estimator == "paper":
            assert t.after is None and t.learner_from is None
        else:  # starts after the paper run of the same env and seed and copies its learner
            owner = tasks[t.after]
            assert (owner.estimator, owner.env_id, owner.seed) == ("paper", t.env_id, t.seed)
            assert t.learner_from == owner.run_dir and t.after < tasks.index(t)
    assert all(
        t.learner_from is None for t in make_grid(["Reacher-v5"], [0], ["paper", "fix"], ["smoke"], share_learner=False)
    )
    # every value of an option is one more axis, each in folders of its own
    opt = make_grid(["Reacher-v5"], [0], ["paper"], ["smoke"], [("window", "2..4"), ("window", "2,4")])
    assert [t.options for t in opt] == [(("window", "2..4"),), (("window", "2,4"),)]
    assert len({t.out for t in opt}) == len({t.run_dir for t in opt}) == 2
    assert all(t.run_dir.startswith("runs/sweep/window=") for t in opt)
    assert ["--window", "2..4"] == opt[0].argv()[8:10]


def test_bad_grid_is_refused_before_anything_runs(tmp_path, capsys):
    assert main(["--env", "NoSuchEnv-v0", "--root", str(tmp_path), *SMOKE]) == 2
    assert "registered gymnasium environment id" in capsys.readouterr().err
    assert main(["--env", "Reacher-v5", "--seed", "x", "--root", str(tmp_path), *SMOKE]) == 2
    assert main(["--env", "Reacher-v5", "--workers", "0", "--root", str(tmp_path), *SMOKE]) == 2
    assert "workers must be an integer >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: an estimator that lfl_lib.experiments.study does not list
        main(["--estimator", "better", "--dry-run"])
    assert not any(tmp_path.iterdir())


def test_estimator_choices_come_from_the_study(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in study.ESTIMATORS)


def test_folders_are_where_the_study_puts_a_run(tmp_path, monkeypatch):
    """Without options, the sweep's folders are run_study's defaults (what make study uses)."""
    monkeypatch.chdir(tmp_path)  # the study's default folders are relative to the current one
    for preset, est in (("smoke", "paper"), ("smoke", "fix"), ("paper", "paper"), ("paper", "fix")):
        cfg = make_config("Reacher-v5", 3, preset, estimator=est)
        out, run = study_folders("Reacher-v5", 3, preset, est)
        # a complete results file (with the scores of issue 14) where the sweep expects it: returned without running
        path = tmp_path / out / "Reacher-v5_seed3.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"config": cfg.to_dict(), "scores": {}, "marker": preset + est}))
        assert run_study(cfg, progress=False)["marker"] == preset + est
        path.unlink()
        # a run folder of another configuration where the sweep expects the checkpoints: refused, named
        (tmp_path / run).mkdir(parents=True)
        (tmp_path / run / "config.json").write_text(json.dumps({"seed": -1}))
        with pytest.raises(ValueError, match=f"run folder {run} holds another configuration"):
            run_study(cfg, progress=False)


def test_a_failing_task_reports_its_error(tmp_path):
    """One task in this process (what a Ray worker runs): the study's error comes back, nothing is written."""
    t = make_grid(["Reacher-v5"], [0], ["paper"], ["smoke"], [("window", "0..3")])[0]
    r = run_task(asdict(t), str(tmp_path))
    assert r["status"] == "failed" and r["code"] == 2 and r["results_text"] is None
    assert "within the learner's updates" in r["log"]
    assert not any(tmp_path.iterdir())


def test_a_finished_task_is_skipped(tmp_path):
    t = make_grid(["Reacher-v5"], [2], ["paper"], ["smoke"])[0]
    cfg = make_config("Reacher-v5", 2, "smoke")
    results = tmp_path / t.results
    results.parent.mkdir(parents=True)
    results.write_text(json.dumps(_fake_results(cfg.to_dict(), 0.5)))
    before = results.stat().st_mtime_ns
    r = run_task(asdict(t), str(tmp_path))
    assert r["status"] == "skipped" and json.loads(r["results_text"])["final_observer_normalized"] == 0.5
    assert results.stat().st_mtime_ns == before and not (tmp_path / t.run_dir).exists()


def test_summary_table():
    tasks = make_grid(["Reacher-v5", "Hopper-v5"], [0, 1], ["paper"], ["smoke"])
    outs = [Outcome(t, "ok", results=_fake_results(None, 0.1 * (i + 1))) for i, t in enumerate(tasks)]
    outs[-1] = Outcome(tasks[-1], "failed")
    table = summary_table(outs)
    lines = table.splitlines()
    assert lines[1].split() == ["preset", "options", "env", "estimator", "seed", "0", "seed", "1", "mean", "sd"]
    assert lines[3].split() == ["smoke", "-", "Reacher-v5", "paper", "0.10", "0.20", "0.15", "0.07"]
    assert lines[4].split() == ["smoke", "-", "Hopper-v5", "paper", "0.30", "failed", "0.30"]


# ------------------------------------------------------------------ on a local Ray instance

ray_tests = pytest.mark.skipif(
    os.environ.get("LFL_SWEEP_TESTS") != "1",
    reason="starts Ray (minutes): run with LFL_SWEEP_TESTS=1 (make test-sweep)",
)


def _children(pid: int) -> set[int]:
    from lfl_lib.experiments.sweep import _descendants

    return _descendants(pid)


def _alive(pids: set[int]) -> set[int]:
    out = set()
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(p)
    return out


@ray_tests
def test_smoke_sweep_killed_and_resumed(tmp_path):
    pytest.importorskip("ray")
    root = tmp_path / "root"
    cmd = [
        sys.executable,
        "-m",
        "lfl_lib",
        "sweep",
        "--env",
        "Reacher-v5",
        "Hopper-v5",
        "--seed",
        "0",
        "--workers",
        "2",
        "--root",
        str(root),
        *SMOKE,
    ]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ck = root / "runs/mujoco/Hopper-v5_seed0_smoke/learner.pt"
    deadline = time.time() + 400
    done = 0
    while time.time() < deadline and proc.poll() is None:
        if ck.exists():
            try:
                done = torch.load(ck, weights_only=False)["ppo"]["update"]
            except Exception:  # noqa: BLE001 - replaced while reading
                done = 0
            if done >= 2:
                break
        time.sleep(0.05)
    family = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)  # the sweep's own process, abruptly
    output = proc.communicate()[0]
    assert 2 <= done < 4, "the sweep must be killed while the Hopper learner runs:\n" + output
    # nothing of the sweep keeps running: its Ray workers (the study runs) stop with it
    t_end = time.time() + 90
    while _alive(family) and time.time() < t_end:
        time.sleep(1)
    left = _alive(family)
    for p in left:  # tidy up before failing
        os.kill(p, signal.SIGKILL)
    assert not left, f"processes of the killed sweep still alive: {sorted(left)}"
    results = root / "runs/mujoco/results-smoke/Hopper-v5_seed0.json"
    assert not results.exists()
    kept = root / "runs/mujoco/Hopper-v5_seed0_smoke/observed/update_002.pt"
    stamp = kept.stat().st_mtime_ns

    # the same command again: resumes the unfinished runs and completes
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert kept.stat().st_mtime_ns == stamp, "a completed PPO update was redone"
    assert "Reacher-v5" in again.stdout and "Hopper-v5" in again.stdout  # the summary table
    for env in ("Reacher-v5", "Hopper-v5"):
        assert (root / f"runs/mujoco/results-smoke/{env}_seed0.json").exists()
    assert not [p for p in root.rglob("*") if ".tmp" in p.name], "a half-written file was left"
    # exact resume: the numbers of an uninterrupted run
    ref = run_study(make_config("Hopper-v5", 0, "smoke"), tmp_path / "ref", tmp_path / "ref_run", progress=False)
    resumed = json.loads(results.read_text())
    for part in ("learner", "observer"):
        assert_allclose(resumed[part]["returns"], ref[part]["returns"], rtol=0, atol=0)


@ray_tests
def test_a_failing_run_does_not_stop_the_others(tmp_path):
    pytest.importorskip("ray")
    root = tmp_path / "root"
    ok = make_grid(["Reacher-v5"], [1], ["paper"], ["smoke"])[0]
    cmd = [
        sys.executable,
        "-m",
        "lfl_lib",
        "sweep",
        "--env",
        "Reacher-v5",
        "--seed",
        "1",
        "--workers",
        "2",
        "--root",
        str(root),
        "--option",
        "learner-updates=4",
        "--option",
        "learner-updates=1",
        "--record",
        str(tmp_path / "record.json"),
        *SMOKE,
    ]
    res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 1, res.stdout + res.stderr
    # the failure is reported with its environment, seed and estimator, and the study's reason
    assert "FAILED  Reacher-v5 seed 1 paper [smoke learner-updates=1]" in res.stderr
    assert "within the learner's updates 1..1" in res.stderr
    rec = json.loads((tmp_path / "record.json").read_text())
    assert [t["status"] for t in rec["tasks"]] == ["ok", "failed"]
    good = root / "runs/sweep/learner-updates=4/results-smoke/Reacher-v5_seed1.json"
    assert json.loads(good.read_text())["config"] == make_config("Reacher-v5", 1, "smoke").to_dict()
    assert ok.env_id in res.stdout


# ------------------------------------------------------------------ the scheduler, on a stand-in for Ray


class _FakeRay:
    """Runs each submitted task at once; ``ray.get`` of a task that 'died' raises."""

    def __init__(self, returns):
        self.returns, self.calls, self.order = returns, [], []

    def remote(self, **_):
        def wrap(fn):
            fake = self

            class R:
                @staticmethod
                def remote(task, root, share):
                    fake.calls.append((task["env_id"], task["estimator"], share))
                    return len(fake.calls) - 1

            return R

        return wrap

    def cluster_resources(self):
        return {"CPU": 2}

    def wait(self, refs, num_returns, timeout):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        env, est, _ = self.calls[ref]
        r = self.returns[(env, est)]
        if isinstance(r, Exception):
            raise r
        return r

    def shutdown(self):
        pass


def test_run_sweep_schedules_after_the_learner_and_records_each_outcome(tmp_path, monkeypatch):
    from lfl_lib.experiments import sweep

    tasks = make_grid(["Reacher-v5", "Hopper-v5"], [0], ["paper", "fix"], ["smoke"])
    ok = {"status": "ok", "log": "", "wall_s": 3.0, "host": "h", "results_text": json.dumps({"seed": 0})}
    fake = _FakeRay(
        {
            ("Reacher-v5", "paper"): ok,
            ("Reacher-v5", "fix"): dict(ok, learner_copied=True),
            ("Hopper-v5", "paper"): RuntimeError("worker died"),
            ("Hopper-v5", "fix"): dict(ok, results_text=None),
        }
    )
    monkeypatch.setattr(sweep, "_import_ray", lambda: fake)
    monkeypatch.setattr(sweep, "_start_ray", lambda ray, address, workers: None)
    lines = []
    outcomes = sweep.run_sweep(tasks, workers=1, root=tmp_path, progress=False, echo=lines.append)
    by = {(o.task.env_id, o.task.estimator): o for o in outcomes}
    # one at a time, each "fix" run after its paper run; the learner is shared only from a finished run
    assert fake.calls == [
        ("Reacher-v5", "paper", True),
        ("Reacher-v5", "fix", True),
        ("Hopper-v5", "paper", True),
        ("Hopper-v5", "fix", False),
    ]
    assert by[("Reacher-v5", "fix")].learner_copied and by[("Reacher-v5", "paper")].results == {"seed": 0}
    assert (
        by[("Hopper-v5", "paper")].status == "failed" and "RuntimeError: worker died" in by[("Hopper-v5", "paper")].log
    )
    assert (tmp_path / by[("Reacher-v5", "paper")].task.results).exists()  # written here: no shared folder
    assert not (tmp_path / by[("Hopper-v5", "fix")].task.results).exists()
    assert lines[-1].startswith("sweep: 3 ran, 0 already complete, 1 failed")
    assert any(line.startswith("FAILED  Hopper-v5 seed 0 paper") for line in lines)
