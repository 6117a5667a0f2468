"""Hypothesis property tests of the paper's results on random stochastic MDPs.

Each MDP has Dirichlet dynamics (some rows sparse), N(0, 1) rewards, 1..8 states,
1..4 actions, gamma in [0, 0.95] and a random start state (see conftest.py).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.special import logsumexp

from conftest import alphas, mdps, random_policy, random_positive_policy, random_state_function, seeds
from lfl_lib.improvement import soft_improvement
from lfl_lib.inversion import invert_soft_improvement, state_only_regression
from lfl_lib.mdp import TabularMDP, score, soft_evaluate, soft_optimal
from lfl_lib.shaping import shape_reward, shaping_term

# Exact evaluation: a linear solve with condition <= (1 + gamma)/(1 - gamma) <= 39; values are
# O(10-100), so errors are ~1e-12. Tolerances are relative to the scale of the values.
EXACT_REL = 1e-9
# soft_optimal: ||V - V*|| <= 1e-12 gamma / (1 - gamma) <= 2e-11.
VI = dict(rtol=1e-8, atol=1e-8)


def _scale(*arrays):
    return 1.0 + max(np.abs(a).max() for a in arrays)


# ---------------------------------------------------------------------------
# Lemma 1 and Theorem 1
# ---------------------------------------------------------------------------


@given(mdp=mdps(), alpha=alphas, seed=seeds)
def test_lemma1_shaping_shifts_soft_q_by_g(mdp, alpha, seed):
    rng = np.random.default_rng(seed)
    pi = random_policy(rng, mdp.n_states, mdp.n_actions)  # any policy, zeros included
    g = random_state_function(rng, mdp.n_states)
    Q, V = soft_evaluate(mdp, pi, alpha)
    Qs, Vs = soft_evaluate(mdp.with_reward(shape_reward(mdp, g)), pi, alpha)
    atol = EXACT_REL * _scale(Q, g)
    assert_allclose(Qs, Q + g[:, None], rtol=0, atol=atol)
    assert_allclose(Vs, V + g, rtol=0, atol=atol)


@given(mdp=mdps(), alpha=alphas, seed=seeds)
def test_theorem1_spi_and_optimal_policy_unchanged_by_shaping(mdp, alpha, seed):
    rng = np.random.default_rng(seed)
    pi = random_policy(rng, mdp.n_states, mdp.n_actions)
    g = random_state_function(rng, mdp.n_states)
    shaped = mdp.with_reward(shape_reward(mdp, g))
    # SPI: Q shifts by g(s) (Lemma 1), a per-state constant that the softmax cancels
    assert_allclose(soft_improvement(shaped, pi, alpha), soft_improvement(mdp, pi, alpha), rtol=0, atol=1e-9)
    pi_s, Q_s, _ = soft_optimal(shaped, alpha)
    pi_o, Q_o, _ = soft_optimal(mdp, alpha)
    assert_allclose(pi_s, pi_o, **VI)
    assert_allclose(Q_s, Q_o + g[:, None], rtol=0, atol=1e-8 * _scale(Q_o, g))


# ---------------------------------------------------------------------------
# Monotone improvement under SPI
# ---------------------------------------------------------------------------


@given(mdp=mdps(), alpha=alphas, seed=seeds)
def test_spi_improves_pointwise(mdp, alpha, seed):
    pi = random_policy(np.random.default_rng(seed), mdp.n_states, mdp.n_actions)
    Q1, V1 = soft_evaluate(mdp, pi, alpha)
    pi2 = soft_improvement(mdp, pi, alpha)
    Q2, V2 = soft_evaluate(mdp, pi2, alpha)
    slack = EXACT_REL * _scale(V1)  # rounding only
    assert np.all(V2 >= V1 - slack)
    assert np.all(Q2 >= Q1 - slack)
    assert score(mdp, pi2, alpha) >= score(mdp, pi, alpha) - slack
    # the one-step gain is at least the per-state gap alpha logsumexp(Q1/alpha) - V1 >= 0
    gap = alpha * logsumexp(Q1 / alpha, axis=1) - V1
    assert np.all(gap >= -slack)
    assert np.all(V2 - V1 >= gap - slack)
    # and never beyond the optimum
    _, _, V_star = soft_optimal(mdp, alpha)
    assert np.all(V2 <= V_star + 1e-8 * _scale(V_star))


# ---------------------------------------------------------------------------
# Theorem 2
# ---------------------------------------------------------------------------


@given(mdp=mdps(), alpha=alphas, seed=seeds)
def test_theorem2_inverted_reward_gives_the_same_optimal_soft_policy(mdp, alpha, seed):
    pi1 = random_policy(np.random.default_rng(seed), mdp.n_states, mdp.n_actions)
    pi2 = soft_improvement(mdp, pi1, alpha)
    r12 = invert_soft_improvement(mdp, pi1, pi2, alpha)
    observer = mdp.with_reward(r12)
    assert_allclose(soft_improvement(observer, pi1, alpha), pi2, rtol=1e-8, atol=1e-10)
    assert_allclose(soft_optimal(observer, alpha)[0], soft_optimal(mdp, alpha)[0], **VI)


@given(mdp=mdps(), alpha=alphas, seed=seeds)
def test_theorem2_difference_is_a_shaping(mdp, alpha, seed):
    pi1 = random_policy(np.random.default_rng(seed), mdp.n_states, mdp.n_actions)
    pi2 = soft_improvement(mdp, pi1, alpha)
    diff = invert_soft_improvement(mdp, pi1, pi2, alpha) - mdp.r
    # solve diff(s, a) = g(s) - gamma E[g(s')] for g by least squares; the system has full
    # column rank (it contains I - gamma P_pi for every deterministic pi), so g is unique
    S, A = mdp.n_states, mdp.n_actions
    design = np.repeat(np.eye(S), A, axis=0) - mdp.gamma * mdp.P.reshape(S * A, S)
    g, *_ = np.linalg.lstsq(design, diff.reshape(-1), rcond=None)
    scale = _scale(diff)
    assert_allclose(shaping_term(mdp, g), diff, rtol=0, atol=EXACT_REL * scale)  # zero residual
    # and g is the closed form -alpha logsumexp(Q^{pi1}/alpha)
    Q1, _ = soft_evaluate(mdp, pi1, alpha)
    assert_allclose(g, -alpha * logsumexp(Q1 / alpha, axis=1), rtol=0, atol=1e-8 * scale)


@given(mdp=mdps(min_actions=2), alpha=alphas, seed=seeds)
def test_inversion_is_linear_in_the_assumed_alpha(mdp, alpha, seed):
    # an observer that assumes 2 alpha recovers 2 r_{1->2}: twice the true reward plus a shaping
    pi1 = random_positive_policy(np.random.default_rng(seed), mdp.n_states, mdp.n_actions)
    pi2 = soft_improvement(mdp, pi1, alpha)
    r_wrong = invert_soft_improvement(mdp, pi1, pi2, 2 * alpha)
    r_right = invert_soft_improvement(mdp, pi1, pi2, alpha)
    assert_allclose(r_wrong, 2 * r_right, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# Counterexample: an action-dependent term is not a shaping
# ---------------------------------------------------------------------------


def test_counterexample_action_dependent_term_changes_the_optimal_policy():
    # one state, two actions, zero reward: pi* is uniform. Adding h(s, a) = (1, 0), which is not
    # of the form g(s) - gamma E[g(s')] (that would be the same for both actions here), makes
    # pi*(a=0) = e^{1/alpha} / (1 + e^{1/alpha}).
    alpha, gamma = 0.5, 0.9
    mdp = TabularMDP(np.ones((1, 2, 1)), np.zeros((1, 2)), gamma)
    pi0, _, _ = soft_optimal(mdp, alpha)
    assert_allclose(pi0, [[0.5, 0.5]], **VI)
    pi_h, _, _ = soft_optimal(mdp.with_reward([[1.0, 0.0]]), alpha)
    p = np.exp(1 / alpha) / (1 + np.exp(1 / alpha))
    assert_allclose(pi_h, [[p, 1 - p]], **VI)
    # while a true shaping of the same size leaves it uniform
    pi_g, _, _ = soft_optimal(mdp.with_reward(shape_reward(mdp, [1.0])), alpha)
    assert_allclose(pi_g, [[0.5, 0.5]], **VI)


@given(mdp=mdps(min_states=2, min_actions=2, sparse=False, gamma=st.floats(0.3, 0.95)), alpha=alphas, seed=seeds)
def test_action_dependent_terms_break_lemma1(mdp, alpha, seed):
    # with h(s, a) random, Q^{pi, r + h} - Q^{pi, r} depends on the action
    rng = np.random.default_rng(seed)
    pi = random_policy(rng, mdp.n_states, mdp.n_actions)
    h = rng.standard_normal((mdp.n_states, mdp.n_actions))
    Q, _ = soft_evaluate(mdp, pi, alpha)
    Qh, _ = soft_evaluate(mdp.with_reward(mdp.r + h), pi, alpha)
    d = Qh - Q
    assert np.abs(d - d.mean(axis=1, keepdims=True)).max() > 1e-3


# ---------------------------------------------------------------------------
# State-only regression
# ---------------------------------------------------------------------------


@given(mdp=mdps(min_actions=2, sparse=False, gamma=st.floats(0.05, 0.95)), alpha=alphas, seed=seeds)
def test_state_only_regression_recovers_a_state_reward_up_to_a_constant(mdp, alpha, seed):
    rng = np.random.default_rng(seed)
    r_state = rng.standard_normal(mdp.n_states)
    true = mdp.with_reward(np.repeat(r_state[:, None], mdp.n_actions, axis=1))
    pi1 = random_policy(rng, mdp.n_states, mdp.n_actions)
    pi2 = soft_improvement(true, pi1, alpha)
    fit = state_only_regression(true, invert_soft_improvement(true, pi1, pi2, alpha))
    # dense random dynamics with >= 2 actions and gamma > 0 leave only the constant unidentified
    assert fit.rank == 2 * mdp.n_states - 1
    scale = _scale(fit.r, fit.f)
    assert fit.residual < EXACT_REL * scale
    d = fit.r - r_state
    assert_allclose(d, d.mean(), rtol=0, atol=1e-8 * scale)
