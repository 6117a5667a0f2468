"""Chapter 6's ``observer_anchor="kl"`` candidate: a KL penalty to the observer's start policy.

:meth:`lfl_lib.ppo.PPO.set_anchor` adds ``-w (ln pi(a|s) - ln pi_0(a|s))`` to each step's
reward (before the reward normalization); the study takes ``w`` from the KL-regularized
learner model's fitted lambda and ``pi_0`` from the observer's start.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

torch.set_num_threads(1)

from lfl_lib.ppo import PPO, PolicySnapshot, PPOConfig  # noqa: E402
from lfl_lib.experiments.study import OBSERVER_ANCHORS, main, make_config, run_study, variant_name  # noqa: E402

# no reward normalization, so that the reward buffer shows the anchor term in the reward's units
TINY = PPOConfig(n_envs=2, n_steps=64, n_epochs=2, n_minibatches=2, anneal_updates=5, norm_reward=False)
ENV = "Hopper-v5"


def _zero_reward(obs: np.ndarray, act: np.ndarray) -> np.ndarray:
    return np.zeros(len(obs))


def _other_policy(ppo: PPO, seed: int) -> PolicySnapshot:
    """A policy unlike ``ppo``'s: other weights, a smaller sigma, another normalization."""
    other = PPO(ENV, TINY, seed=seed)
    other.train_update()
    snap = other.snapshot()
    snap.actor_state["log_std"] = snap.actor_state["log_std"] - 0.3
    other.close()
    return snap


def test_the_anchor_term_is_minus_w_times_the_log_ratio_of_the_sampled_action():
    ppo = PPO(ENV, TINY, seed=0, reward_fn=_zero_reward)
    anchor, w = _other_policy(ppo, seed=5), 0.43
    ppo.set_anchor(anchor, w)
    obs_b, _, logp_b, rew_b, done_b, _, roll = ppo._collect_rollout()
    # recomputed independently for environment 0 with torch's Normal: pi on the observations as the
    # rollout normalized them (the running statistics move during it), pi_0 on the raw ones
    with torch.no_grad():
        a = torch.as_tensor(roll.actions, dtype=torch.float32)
        lp = ppo.actor.dist(torch.from_numpy(obs_b[:, 0])).log_prob(a).sum(-1).double().numpy()
        lp0 = anchor.actor().dist(anchor.normalize(roll.observations)).log_prob(a).sum(-1).double().numpy()
    assert_allclose(lp, logp_b[:, 0], atol=1e-4)  # the rollout's own log-probabilities
    # no time-limit end in 64 steps, terminations not bootstrapped: the reward is the anchor term alone
    assert_allclose(rew_b[:, 0], -w * (lp - lp0), rtol=1e-4, atol=1e-4)
    assert len(ppo.anchor_kl) == 1
    assert_allclose(ppo.anchor_kl[0], np.mean(-rew_b / w), rtol=1e-4)
    # sampled from pi, the log-ratio averages to KL(pi || pi_0) > 0
    assert ppo.anchor_kl[0] > 0


def test_an_anchor_at_the_current_policy_changes_nothing_at_first():
    # fixed observation statistics: with running ones, pi (moving normalization) leaves pi_0 (fixed) at once
    cfg = PPOConfig(**{**TINY.to_dict(), "norm_obs": False})
    plain = PPO(ENV, cfg, seed=3, reward_fn=_zero_reward)
    anchored = PPO(ENV, cfg, seed=3, reward_fn=_zero_reward)
    anchored.set_anchor(anchored.snapshot(), 1.0)
    a, b = plain._collect_rollout(), anchored._collect_rollout()
    assert_array_equal(a[1], b[1])  # the same actions: the anchor draws no random number
    assert_allclose(b[3], a[3], atol=1e-5)  # log-ratio 0 up to float32 rounding
    assert_allclose(anchored.anchor_kl, [0.0], atol=1e-6)


def test_the_anchor_survives_a_checkpoint_and_an_unanchored_one_clears_it():
    ppo = PPO(ENV, TINY, seed=1, reward_fn=_zero_reward)
    ppo.set_anchor(ppo.snapshot(), 0.5)
    ppo.train_update()
    state = ppo.state_dict()
    resumed = PPO(ENV, TINY, seed=1, reward_fn=_zero_reward)
    resumed.load_state_dict(state)
    assert resumed.anchor_weight == 0.5 and resumed.anchor_kl == ppo.anchor_kl
    for k, v in ppo.anchor.actor_state.items():
        assert torch.equal(v, resumed.anchor.actor_state[k])
    # both continue exactly alike
    ppo.train_update(), resumed.train_update()
    assert ppo.anchor_kl == resumed.anchor_kl
    for p, q in zip(ppo.actor.parameters(), resumed.actor.parameters()):
        assert torch.equal(p, q)
    # a checkpoint without an anchor (older ones) removes it
    resumed.load_state_dict(PPO(ENV, TINY, seed=1).state_dict())
    assert resumed.anchor is None and resumed.anchor_kl == []


def test_set_anchor_refuses_bad_input():
    ppo = PPO(ENV, TINY, seed=0)
    snap = ppo.snapshot()
    for w in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="weight must be a finite number > 0"):
            ppo.set_anchor(snap, w)
    with pytest.raises(TypeError, match="policy must be a PolicySnapshot or None"):
        ppo.set_anchor({"actor_state": {}}, 1.0)
    reacher = PPO("Reacher-v5", TINY, seed=0)
    with pytest.raises(ValueError, match="policy must act on 10 observations and 2 actions; got 11 and 3"):
        reacher.set_anchor(snap, 1.0)
    assert reacher.anchor is None and ppo.anchor is None  # nothing half-set


def test_the_anchor_option_is_checked_named_and_stored_only_when_used(tmp_path, capsys):
    assert OBSERVER_ANCHORS == ("none", "kl")
    assert "observer_anchor" not in make_config(ENV).to_dict()
    cfg = make_config(ENV, kl_weight=None, terminal="bootstrap", observer_anchor="kl")
    assert cfg.to_dict()["observer_anchor"] == "kl"
    assert variant_name(cfg) == "paper_kl-fit_terminal-bootstrap_anchor-kl"
    with pytest.raises(ValueError, match="observer_anchor must be one of 'none', 'kl'; got 'clip'"):
        make_config(ENV, kl_weight=None, observer_anchor="clip")
    with pytest.raises(ValueError, match="kl_weight must be 'fit' .* got 0"):
        make_config(ENV, observer_anchor="kl")
    args = ["--env", ENV, "--preset", "smoke", "--out", str(tmp_path / "o"), "--run-dir", str(tmp_path / "r")]
    assert main(args + ["--observer-anchor", "kl"]) == 2
    assert "kl_weight must be 'fit'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(args + ["--kl-weight", "fit", "--observer-anchor", "tight"])
    assert not (tmp_path / "o").exists() and not (tmp_path / "r").exists()


def test_an_anchored_smoke_run_stores_the_weight_and_the_anchor_kl(tmp_path):
    learner = make_config(ENV, seed=0, preset="smoke", kl_weight=None, terminal="bootstrap")
    base = run_study(learner, out_dir=tmp_path / "o1", run_dir=tmp_path / "r1", progress=False)
    cfg = make_config(ENV, seed=0, preset="smoke", kl_weight=None, terminal="bootstrap", observer_anchor="kl")
    res = run_study(cfg, out_dir=tmp_path / "o2", run_dir=tmp_path / "r2", progress=False, learner_from=tmp_path / "r1")
    assert res["learner"] == base["learner"]
    assert res["recovery_losses"] == base["recovery_losses"]  # the same recovery: only the observer differs
    obs = res["observer"]
    assert obs["anchor_weight"] == pytest.approx(res["recovery_losses"]["kl_weight"], rel=1e-6)
    assert len(obs["anchor_kl"]) == cfg.observer_updates and all(np.isfinite(obs["anchor_kl"]))
    assert obs["returns"][0] == base["observer"]["returns"][0]  # the same clone, scored before any update
    assert "anchor_kl" not in base["observer"]
