"""Tests of lfl_lib.experiments.reward_observers: its checks, the learner's normalization and the table."""

from __future__ import annotations

import json

import pytest

from lfl_lib.experiments import reward_observers as ro


@pytest.mark.parametrize(
    "args, match",
    [
        (("true", "Hopper-v5", 0, "absorbing", 30), "reward must be one of"),
        (("trex", "Hopper-v5", 0, "sometimes", 30), "terminal must be one of"),
        (("trex", "Pendulum-v1", 0, "absorbing", 30), "env_id must be one of"),
        (("trex", "Hopper-v5", -1, "absorbing", 30), "seed must be an int >= 0"),
        (("trex", "Hopper-v5", 0, "absorbing", 0), "updates must be an int >= 1"),
    ],
)
def test_bad_arguments_are_refused_by_name(args, match, tmp_path):
    r, e, s, t, u = args
    with pytest.raises(ValueError, match=match):
        ro.run_reward_observer(r, e, s, t, u, runs=tmp_path, out=tmp_path, ck_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written


def test_learner_scores_are_the_first_and_last_observed_checkpoints(tmp_path):
    log = {"updates": list(range(1, 8)), "mean_return": [0, 1, 2, 3, 4, 5, 6], "sampled_return": [9, 8, 7, 6, 5, 4, 3]}
    (tmp_path / "Hopper-v5_seed3.json").write_text(json.dumps(log))
    got = ro._learner_scores("Hopper-v5", 3, tmp_path, [2, 4, 5])
    assert got == {"mean-return": [1, 4], "sampled-return": [8, 5]}
    # a log that recorded the released code's queue adds the paper-code protocol (the queue's mean)
    log["paper_code"] = {str(u): [u, u + 1.0] for u in log["updates"]}
    (tmp_path / "Hopper-v5_seed3.json").write_text(json.dumps(log))
    got = ro._learner_scores("Hopper-v5", 3, tmp_path, [2, 4, 5])
    assert got["paper-code"] == [2.5, 5.5] and got["mean-return"] == [1, 4]


def test_the_table_reads_every_file(tmp_path):
    for seed, final in ((0, 1.25), (1, -0.5)):
        p = ro.observer_path(tmp_path, "trex", "bootstrap", "Reacher-v5", seed)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(
            json.dumps(
                {
                    "reward": "trex",
                    "terminal": "bootstrap",
                    "env_id": "Reacher-v5",
                    "seed": seed,
                    "start_normalized": {"mean-return": 0.9},
                    "final_normalized": {"mean-return": final},
                }
            )
        )
    rows = ro.observer_table(tmp_path)
    assert [(r["seed"], r["final"], r["start"]) for r in rows] == [(0, 1.25, 0.9), (1, -0.5, 0.9)]
    assert ro.observer_table(tmp_path, "paper-code") == []  # no file holds that protocol
    assert (
        ro.observer_path("o", "trex", "absorbing", "Hopper-v5", 2).as_posix() == "o/trex_absorbing/Hopper-v5_seed2.json"
    )
