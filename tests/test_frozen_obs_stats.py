"""Chapter 6's ``observer_obs_stats="frozen"`` candidate: the observer's normalization held fixed.

:meth:`lfl_lib.ppo.PPO.freeze_obs_stats` stops the running observation statistics, so that
a policy fitted under them (the behaviour clone) stays the same policy on raw states.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal

torch.set_num_threads(1)

from lfl_lib.ppo import PPO, PPOConfig  # noqa: E402
from lfl_lib.experiments.study import OBSERVER_OBS_STATS, main, make_config, run_study, variant_name  # noqa: E402

TINY = PPOConfig(n_envs=2, n_steps=64, n_epochs=2, n_minibatches=2, anneal_updates=5)
ENV = "Hopper-v5"


def test_frozen_statistics_do_not_move_and_running_ones_do():
    ppo = PPO(ENV, TINY, seed=0)
    ppo.train_update()
    assert not ppo.obs_stats_frozen
    ppo.freeze_obs_stats()
    mean, var = ppo._obs_stats()
    snap = ppo.snapshot()
    ppo.train_update()
    m2, v2 = ppo._obs_stats()
    assert_array_equal(m2, mean) and assert_array_equal(v2, var)
    # the clone's weights read through the same statistics: the same policy on raw states
    assert_array_equal(ppo.snapshot().obs_mean, snap.obs_mean)
    ppo.freeze_obs_stats(False)
    ppo.train_update()
    assert not np.array_equal(ppo._obs_stats()[0], mean)


def test_frozen_survives_a_checkpoint_and_an_older_checkpoint_runs():
    ppo = PPO(ENV, TINY, seed=2)
    ppo.freeze_obs_stats()
    ppo.train_update()
    resumed = PPO(ENV, TINY, seed=2)
    resumed.load_state_dict(ppo.state_dict())
    assert resumed.obs_stats_frozen
    ppo.train_update(), resumed.train_update()
    for p, q in zip(ppo.actor.parameters(), resumed.actor.parameters()):
        assert torch.equal(p, q)
    assert_array_equal(ppo._obs_stats()[0], resumed._obs_stats()[0])
    resumed.load_state_dict(PPO(ENV, TINY, seed=2).state_dict())  # no flag: running, as before
    assert not resumed.obs_stats_frozen


def test_freeze_refuses_bad_input():
    with pytest.raises(ValueError, match="freeze_obs_stats needs config.norm_obs=True"):
        PPO(ENV, PPOConfig(**{**TINY.to_dict(), "norm_obs": False}), seed=0).freeze_obs_stats()
    with pytest.raises(ValueError, match="frozen must be True or False; got 'yes'"):
        PPO(ENV, TINY, seed=0).freeze_obs_stats("yes")


def test_the_option_is_checked_named_and_stored_only_when_used(tmp_path, capsys):
    assert OBSERVER_OBS_STATS == ("running", "frozen")
    assert "observer_obs_stats" not in make_config(ENV).to_dict()
    cfg = make_config(ENV, kl_weight=None, terminal="bootstrap", observer_obs_stats="frozen")
    assert cfg.to_dict()["observer_obs_stats"] == "frozen"
    assert variant_name(cfg) == "paper_kl-fit_terminal-bootstrap_frozen-stats"
    with pytest.raises(ValueError, match="observer_obs_stats must be one of 'running', 'frozen'; got 'fixed'"):
        make_config(ENV, observer_obs_stats="fixed")
    with pytest.raises(SystemExit):
        main(["--env", ENV, "--preset", "smoke", "--observer-obs-stats", "fixed",
              "--out", str(tmp_path / "o"), "--run-dir", str(tmp_path / "r")])
    assert not (tmp_path / "o").exists() and not (tmp_path / "r").exists()


def test_a_frozen_smoke_run_keeps_the_clone_statistics(tmp_path):
    from lfl_lib._safe_io import load_checkpoint as _load

    base_cfg = make_config(ENV, seed=0, preset="smoke", kl_weight=None, terminal="bootstrap")
    base = run_study(base_cfg, out_dir=tmp_path / "o1", run_dir=tmp_path / "r1", progress=False)
    cfg = make_config(ENV, seed=0, preset="smoke", kl_weight=None, terminal="bootstrap", observer_obs_stats="frozen")
    res = run_study(cfg, out_dir=tmp_path / "o2", run_dir=tmp_path / "r2", progress=False, learner_from=tmp_path / "r1")
    assert res["learner"] == base["learner"] and res["recovery_losses"] == base["recovery_losses"]
    assert res["observer"]["returns"][0] == base["observer"]["returns"][0]  # the same clone, scored first
    state = _load(tmp_path / "r2" / "observer.pt", ["ppo"])["ppo"]
    assert state["obs_stats_frozen"] is True
    # the statistics at the end are the clone's: the mean and variance of the last observed rollout's states
    last = _load(sorted((tmp_path / "r2" / "observed").glob("update_*.pt"))[-1], ["rollout"])["rollout"]
    from lfl_lib.data import Rollout

    states = Rollout(**last).observations
    mean, var, _ = state["envs"]["obs_rms"]
    np.testing.assert_allclose(mean, states.mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(var, states.var(0), rtol=1e-12, atol=1e-12)
