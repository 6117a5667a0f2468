"""Tests of lfl_lib.deep_lfl (Algorithm 1, continuous case) on synthetic Gaussian learners."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

torch.set_num_threads(1)  # small networks: one thread is faster on a shared machine

from lfl_lib.deep_lfl import DeepLfLConfig, gaussian_kl, recover_reward
from lfl_lib.ppo import GaussianActor, Rollout

FAST = DeepLfLConfig(policy_steps=300, kl_steps=50, reward_init_steps=300, consistency_steps=100, lr=1e-2)


def _rollout(rng, mean_gain, std, n=512, obs_dim=3, terminal_every=0):
    """States ~ N(0, I); actions ~ N(mean_gain * s[:2], std^2)."""
    s = rng.normal(size=(n, obs_dim))
    s2 = s + 0.1 * rng.normal(size=(n, obs_dim))
    a = mean_gain * s[:, :2] + std * rng.normal(size=(n, 2))
    term = np.zeros(n, bool)
    if terminal_every:
        term[::terminal_every] = True
    return Rollout(s, a, s2, term, np.zeros(n, bool))


def test_gaussian_kl_matches_the_closed_form():
    torch.manual_seed(0)
    p, q = GaussianActor(3, 2, (8,)), GaussianActor(3, 2, (8,))
    with torch.no_grad():
        q.log_std += torch.tensor([0.3, -0.2])
    s = torch.randn(5, 3)
    got = gaussian_kl(p, q, s).detach().numpy()
    mp, mq = p.mean(s).detach().numpy(), q.mean(s).detach().numpy()
    sp, sq = p.log_std.exp().detach().numpy(), q.log_std.exp().detach().numpy()
    want = (np.log(sq / sp) + (sp ** 2 + (mp - mq) ** 2) / (2 * sq ** 2) - 0.5).sum(1)
    assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_needs_two_rollouts():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least 2"):
        recover_reward([_rollout(rng, 1.0, 0.5)], FAST)


def test_rollouts_must_share_sizes():
    rng = np.random.default_rng(0)
    r1 = _rollout(rng, 1.0, 0.5)
    r2 = _rollout(rng, 1.0, 0.5, obs_dim=4)
    with pytest.raises(ValueError, match=r"rollouts\[1\]"):
        recover_reward([r1, r2], FAST)


def test_reward_prefers_the_actions_of_the_improved_policy():
    # the learner moves from a noisy, wrong-signed policy to a precise one: a = 2 s[:2]
    rng = np.random.default_rng(1)
    rolls = [_rollout(rng, g, sd) for g, sd in [(-1.0, 1.0), (0.5, 0.7), (2.0, 0.3)]]
    states = []
    reward, info = recover_reward(rolls, FAST, seed=0, checkpoint=states.append)
    s = rng.normal(size=(200, 3))
    good = reward.reward_fn(s, 2.0 * s[:, :2])
    bad = reward.reward_fn(s, -1.0 * s[:, :2])
    assert np.mean(good > bad) > 0.95
    assert set(info) == {"policy_nll", "kl_mse", "bc_nll", "consistency"}
    # behaviour cloning (stage 3) recovers the last rollout's standard deviation 0.3
    bc_log_std = states[2]["reward_init"]["policy.log_std"].numpy()
    assert_allclose(bc_log_std, np.log(0.3), atol=0.1)
    # the policy fits of stage 1 order the learner's noise levels 1.0 > 0.7 > 0.3
    fitted = [p["log_std"].numpy().mean() for p in states[0]["policies"]]
    assert fitted[0] > fitted[1] > fitted[2]


def test_resuming_from_a_stage_checkpoint_gives_the_same_reward():
    rng = np.random.default_rng(2)
    rolls = [_rollout(rng, g, sd, n=256, terminal_every=50) for g, sd in [(0.0, 1.0), (1.0, 0.5)]]
    states = []
    full, _ = recover_reward(rolls, FAST, seed=3, checkpoint=states.append)
    assert len(states) == 4  # one checkpoint per stage
    resumed, _ = recover_reward(rolls, FAST, seed=3, state=states[1])  # policies and rho done
    for k, v in full.state_dict().items():
        assert_allclose(v.numpy(), resumed.state_dict()[k].numpy(), rtol=0, atol=0, err_msg=k)
    # a finished state skips every stage and returns the stored reward
    done, _ = recover_reward(rolls, FAST, seed=99, state=states[-1])
    for k, v in full.state_dict().items():
        assert_allclose(v.numpy(), done.state_dict()[k].numpy(), rtol=0, atol=0, err_msg=k)


def test_config_checks():
    with pytest.raises(ValueError, match="alpha_model"):
        DeepLfLConfig(alpha_model=0.0)
    with pytest.raises(ValueError, match="policy_steps"):
        DeepLfLConfig(policy_steps=0)
