"""Tests of Algorithm 1's state-term reward form (DeepLfLConfig reward_form="state-term").

Theorem 2: the reward of a soft improvement pi_k -> pi_{k+1} is, up to a shaping,
alpha ln pi_{k+1}(a|s) + alpha KL(pi_k(.|s) || pi_{k+1}(.|s)): a log-density plus a state term.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from numpy.testing import assert_allclose

from lfl_lib import lq
from lfl_lib.deep_lfl import DeepLfLConfig, RewardModel, recover_reward
from lfl_lib.experiments import lq_state_term as lst
from lfl_lib.improvement import soft_improvement
from lfl_lib.mdp import TabularMDP, random_mdp, soft_optimal, uniform_policy
from lfl_lib.observer import load_reward, save_reward


def _kl_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.sum(p * (np.log(p) - np.log(q)), axis=1)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_theorem_2_state_term_is_a_shaping_of_the_true_reward(seed):
    # exact tabular case: r' = alpha ln pi_2 + alpha KL(pi_1 || pi_2)(s) equals r + Phi(s) - gamma E Phi(s')
    rng = np.random.default_rng(seed)
    mdp = random_mdp(5, 3, rng)
    alpha = float(rng.uniform(0.2, 2.0))
    logits = rng.normal(size=(5, 3))
    pi1 = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    pi2 = soft_improvement(mdp, pi1, alpha)
    r_alt = alpha * np.log(pi2) + alpha * _kl_rows(pi1, pi2)[:, None]
    # solve Phi(s) - gamma sum_s' P(s'|s,a) Phi(s') = r_alt(s,a) - r(s,a) for all (s, a), by least squares
    S, A = mdp.r.shape
    Mphi = np.repeat(np.eye(S), A, axis=0) - mdp.gamma * mdp.P.reshape(S * A, S)
    diff = (r_alt - mdp.r).reshape(-1)
    phi, *_ = np.linalg.lstsq(Mphi, diff, rcond=None)
    assert_allclose(Mphi @ phi, diff, atol=1e-8 * max(1.0, np.abs(diff).max()))
    # hence the same soft-optimal policy
    p_true = soft_optimal(mdp, alpha)[0]
    p_alt = soft_optimal(TabularMDP(mdp.P, r_alt, mdp.gamma, mdp.start), alpha)[0]
    assert_allclose(p_alt, p_true, atol=1e-7)


def test_theorem_2_state_term_in_closed_form_on_the_lq_problem():
    # the same identity with Gaussian policies: the soft-optimal mean of alpha ln pi_2 + alpha KL is the optimum
    assert lst.theorem2_state_term_error(lst.PROBLEM, lst.PI1) < 1e-10
    # without the state term (alpha ln pi_2 alone) the optimum is pi_2's own mean, far from it
    pi2 = lq.soft_improve(lst.PROBLEM, lst.PI1)
    assert lst.observer_error(lst.PROBLEM, lq.log_policy_reward_matrix(pi2, lst.PROBLEM.alpha)) > 0.6


def test_state_term_matrix_is_the_quadratic():
    rng = np.random.default_rng(0)
    U, b = rng.normal(size=(2, 2)), rng.normal(size=2)
    mean, std = rng.normal(size=2), rng.uniform(0.5, 2.0, 2)
    s = rng.normal(size=(7, 2)); a = rng.normal(size=(7, 1))
    u = (s - mean) / std
    want = np.einsum("ni,ij,nj->n", u, U, u) + u @ b
    assert_allclose(lq.quadratic_reward(lst.state_term_matrix(lst.PROBLEM, U, b, mean, std), s, a), want, rtol=1e-10)


def test_default_is_the_log_density_and_options_are_validated():
    cfg = DeepLfLConfig()
    assert cfg.reward_form == "log-density"
    assert "reward_form" not in cfg.to_dict() and "state_term" not in cfg.to_dict()
    d = DeepLfLConfig(reward_form="state-term").to_dict()
    assert d["reward_form"] == "state-term" and d["state_term"] == "mlp"
    with pytest.raises(ValueError, match="reward_form"):
        DeepLfLConfig(reward_form="density")
    with pytest.raises(ValueError, match="state_term"):
        DeepLfLConfig(state_term="cubic")
    with pytest.raises(ValueError, match="state_term"):
        RewardModel(2, 1, np.zeros(2), np.ones(2), (), state_term="cubic")


@pytest.mark.parametrize("term", ["mlp", "quadratic"])
def test_state_term_starts_at_zero_and_survives_save_and_load(term, tmp_path):
    torch.manual_seed(0)
    plain = RewardModel(3, 2, np.zeros(3), np.ones(3), (8,))
    torch.manual_seed(0)
    model = RewardModel(3, 2, np.zeros(3), np.ones(3), (8,), state_term=term)
    x, a = np.random.default_rng(0).normal(size=(5, 3)), np.random.default_rng(1).normal(size=(5, 2))
    assert np.array_equal(model.reward_fn(x, a), plain.reward_fn(x, a))  # g = 0 and the same log-density
    with torch.no_grad():
        for p in model.g.parameters():
            p.add_(0.3)
    save_reward(model, tmp_path / "r.pt")
    back = load_reward(tmp_path / "r.pt")
    assert back.state_term == term
    assert_allclose(back.reward_fn(x, a), model.reward_fn(x, a), rtol=1e-6)
    assert not np.allclose(back.reward_fn(x, a), plain.reward_fn(x, a))


def test_state_term_form_recovers_the_soft_optimal_policy_of_the_lq_problem():
    # one soft improvement observed (1024 transitions per policy); the learner's last policy is 0.67 from the
    # optimum. Measured when written, seed 0: state-term form 0.20, log-density form 0.21 (about 20 CPU s).
    # book/data/reward_bench/lq_state_term.json has seeds 0-2, two improvements, and the fits without the KL term
    out = lst.run(0, without_kl=False)
    assert out["learner_error"] > 0.6
    assert out["state-term"]["error"] < 0.3, out
    assert out["log-density"]["error"] < 0.3, out  # in the LQ problem the log-density form lands near it too
    assert out["state-term"]["sd_state_term"] > 0.0 and out["log-density"]["sd_state_term"] == 0.0
