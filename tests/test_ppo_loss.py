"""PPO's loss pieces on handcrafted batches (values and gradients), their use in
``PPO.train_update``, and one learning test: PPO solves a linear-quadratic bandit."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

torch.set_num_threads(1)  # small networks: one thread is faster on a shared machine

import lfl_lib.ppo as ppo_mod
from lfl_lib import lq
from lfl_lib.ppo import PPO, PPOConfig, clipped_surrogate_loss, normalize_advantages, value_loss

# ------------------------------------------------------------------ the clipped surrogate

# (ratio, advantage) pairs with clip 0.2; per sample, min(rho A, clip(rho, 0.8, 1.2) A) and its
# derivative in rho, worked by hand
CLIP = 0.2
RATIO = [0.5, 0.9, 1.0, 1.1, 1.5, 0.5, 1.5, 0.7, 1.3]
ADV = [1.0, 1.0, -1.0, -2.0, 1.0, -1.0, -1.0, 2.0, 0.5]
OBJECTIVE = [0.5, 0.9, -1.0, -2.2, 1.2, -0.8, -1.5, 1.4, 0.6]
# zero where the ratio left [0.8, 1.2] in the direction its advantage favours (samples 4, 5, 8)
D_OBJECTIVE = [1.0, 1.0, -1.0, -2.0, 0.0, 0.0, -1.0, 2.0, 0.0]


def test_clipped_surrogate_values_on_a_handcrafted_batch():
    got = clipped_surrogate_loss(torch.tensor(RATIO, dtype=torch.float64), torch.tensor(ADV, dtype=torch.float64), CLIP)
    assert_allclose(float(got), -np.mean(OBJECTIVE), rtol=1e-12)


def test_clipped_surrogate_gradient_vanishes_outside_the_clip_range_in_the_advantage_direction():
    ratio = torch.tensor(RATIO, dtype=torch.float64, requires_grad=True)
    clipped_surrogate_loss(ratio, torch.tensor(ADV, dtype=torch.float64), CLIP).backward()
    assert_allclose(ratio.grad.numpy(), -np.array(D_OBJECTIVE) / len(RATIO), rtol=0, atol=1e-15)


def test_clipped_surrogate_gradient_through_the_log_probabilities():
    # as in train_update: ratio = exp(new_logp - old_logp); d loss / d new_logp = -rho * dObj/drho / n
    old = torch.zeros(len(RATIO), dtype=torch.float64)
    new = torch.log(torch.tensor(RATIO, dtype=torch.float64)).requires_grad_(True)
    clipped_surrogate_loss((new - old).exp(), torch.tensor(ADV, dtype=torch.float64), CLIP).backward()
    want = -np.array(RATIO) * np.array(D_OBJECTIVE) / len(RATIO)
    assert_allclose(new.grad.numpy(), want, rtol=1e-12, atol=1e-15)
    assert np.all(new.grad.numpy()[[4, 5, 8]] == 0.0)


def test_inside_the_clip_range_the_surrogate_is_the_plain_policy_gradient_loss():
    rng = np.random.default_rng(0)
    ratio = torch.tensor(rng.uniform(0.85, 1.15, 50))
    adv = torch.tensor(rng.normal(size=50))
    assert_allclose(float(clipped_surrogate_loss(ratio, adv, 0.2)), float(-(ratio * adv).mean()), rtol=1e-12)
    # a wider clip range never makes the objective smaller (the loss larger)
    wide = torch.tensor(rng.uniform(0.0, 3.0, 50))
    assert float(clipped_surrogate_loss(wide, adv, 0.5)) <= float(clipped_surrogate_loss(wide, adv, 0.1)) + 1e-12


# ------------------------------------------------------------------ value loss, advantages


def test_value_loss_value_and_gradient():
    v = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    ret = torch.tensor([0.0, 2.0, 5.0], dtype=torch.float64)
    loss = value_loss(v, ret)
    assert_allclose(float(loss.detach()), 0.5 * (1 + 0 + 4) / 3, rtol=1e-12)
    loss.backward()
    assert_allclose(v.grad.numpy(), [1 / 3, 0.0, -2 / 3], rtol=1e-12)


def test_advantage_normalization():
    adv = torch.tensor([1.0, 2.0, 3.0, 6.0], dtype=torch.float64)
    got = normalize_advantages(adv).numpy()
    sd = np.std([1, 2, 3, 6], ddof=1)  # torch's default std is the unbiased one
    assert_allclose(got, (np.array([1, 2, 3, 6]) - 3.0) / (sd + 1e-8), rtol=1e-12)
    assert_allclose(got.mean(), 0.0, atol=1e-12)
    assert_allclose(got.std(ddof=1), 1.0, rtol=1e-7)
    # equal advantages: zeros, not NaN
    assert_allclose(normalize_advantages(torch.full((5,), 3.0)).numpy(), 0.0, atol=0)


# ------------------------------------------------------------------ a linear-quadratic bandit

# one step per episode, r = -(s'Qs + a'Ra + 2 s'Na): the best action is a = -R^{-1} N's
BANDIT = lq.LQProblem(A=np.zeros((2, 2)), B=np.zeros((2, 1)), Q=np.eye(2), R=[[1.0]], N=[[0.8], [-0.5]], terminal=True)
BANDIT_ID = "LfLTestLQBandit-v0"
if BANDIT_ID not in gym.registry:
    gym.register(id=BANDIT_ID, entry_point=functools.partial(lq.LQEnv, BANDIT))
BANDIT_CFG = PPOConfig(
    n_envs=4, n_steps=64, n_epochs=10, n_minibatches=4, lr=5e-3, anneal_updates=100, hidden=(16,), norm_reward=False
)


def test_train_update_uses_the_loss_pieces(monkeypatch):
    calls = {"adv": [], "clip": [], "surrogate_adv": [], "value": 0}
    norm0, surr0, val0 = normalize_advantages, clipped_surrogate_loss, value_loss

    def norm(adv, *args):
        out = norm0(adv, *args)
        calls["adv"].append(out.detach().clone())
        return out

    def surr(ratio, adv, clip):
        calls["clip"].append(clip)
        calls["surrogate_adv"].append(adv.detach().clone())
        return surr0(ratio, adv, clip)

    def val(v, r):
        calls["value"] += 1
        return val0(v, r)

    monkeypatch.setattr(ppo_mod, "normalize_advantages", norm)
    monkeypatch.setattr(ppo_mod, "clipped_surrogate_loss", surr)
    monkeypatch.setattr(ppo_mod, "value_loss", val)
    cfg = PPOConfig(n_envs=2, n_steps=32, n_epochs=2, n_minibatches=4, clip_coef=0.25, anneal_updates=4, hidden=(8,))
    ppo = PPO(BANDIT_ID, cfg, seed=0)
    ppo.train_update()
    ppo.train_update()
    n = 2 * cfg.n_epochs * cfg.n_minibatches
    assert calls["value"] == n and len(calls["adv"]) == n
    # the clip range decays linearly: 0.25 in update 1, 0.25 * (1 - 1/4) in update 2
    assert calls["clip"] == [0.25] * (n // 2) + [0.25 * 0.75] * (n // 2)
    # the surrogate gets the normalized advantages
    for a, b in zip(calls["adv"], calls["surrogate_adv"]):
        assert torch.equal(a, b)


def test_ppo_learns_the_best_action_of_a_linear_quadratic_bandit():
    # 12 updates of 256 steps; the mean action's gain starts near 0, |K*| = 0.94
    ppo = PPO(BANDIT_ID, BANDIT_CFG, seed=0)
    k_star = -BANDIT.N.T / BANDIT.R[0, 0]
    s = np.random.default_rng(0).normal(size=(500, 2))

    def gain():
        mu = ppo.snapshot().mean_action(s)
        return np.linalg.lstsq(np.hstack([s, np.ones((500, 1))]), mu, rcond=None)[0].T

    assert np.linalg.norm(gain()[:, :2] - k_star) > 0.9
    sigma0 = float(ppo.actor.log_std.detach().exp()[0])
    for _ in range(12):
        ppo.train_update()
    g = gain()
    assert np.linalg.norm(g[:, :2] - k_star) < 0.15, g
    assert abs(g[0, 2]) < 0.1
    assert float(ppo.actor.log_std.detach().exp()[0]) < 0.5 * sigma0  # it grows confident


def test_gae_names_the_expected_and_the_given_number_of_value_rows():
    from lfl_lib.ppo import gae_advantages

    with pytest.raises(ValueError, match=r"^values must have T \+ 1 = 4 rows; got 3$"):
        gae_advantages(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 2)), 0.9, 0.9)
