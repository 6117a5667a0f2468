"""Tests of lfl_lib.experiments.learner_logs on a learner of three updates."""

from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose

from lfl_lib.experiments import learner_logs as ll
from lfl_lib.experiments import study


def test_extended_updates():
    assert ll.extended_updates((10, 15, 20, 25, 30), 1.5) == 45
    assert ll.extended_updates((30, 40), 1.01) == 41
    with pytest.raises(ValueError, match="extend"):
        ll.extended_updates((1, 2), 0.5)


@pytest.mark.slow
def test_a_tiny_log_records_returns_trajectories_and_paper_code(tmp_path, monkeypatch):
    monkeypatch.setitem(study.DEFAULT_WINDOWS, "Reacher-v5", (1, 2))
    run_dir, out = tmp_path / "run", tmp_path / "out"
    path = ll.run_learner_log("Reacher-v5", 0, 1.5, episodes=2, run_dir=run_dir, out=out, progress=False)
    d = json.loads(path.read_text())
    assert d["updates"] == [1, 2, 3] and d["unseen"] == [3] and d["window"] == [1, 2]
    # the released code's queue: 10 values per update, recorded for every update
    assert sorted(d["paper_code"]) == ["1", "2", "3"]
    assert all(len(v) == 10 and np.all(np.isfinite(v)) for v in d["paper_code"].values())
    traj = ll.load_trajectories(run_dir, 3, "mean")
    assert_allclose(traj["returns"].mean(), d["mean_return"][2], rtol=1e-12)
    # the same command again resumes: nothing is retrained, the file is the same
    before = ll._safe_io.load(run_dir / "learner.pt")["paper_code"]
    path2 = ll.run_learner_log("Reacher-v5", 0, 1.5, episodes=2, run_dir=run_dir, out=out, progress=False)
    d2 = json.loads(path2.read_text())
    assert d2["paper_code"] == d["paper_code"] and d2["mean_return"] == d["mean_return"]
    assert ll._safe_io.load(run_dir / "learner.pt")["paper_code"] == before
