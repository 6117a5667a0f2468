"""Tests of lfl_lib.inversion: the KL divergence, Theorem 2 on the grid, state-only regression."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import logsumexp

from lfl_lib.gridworld import ALPHA, state_reward
from lfl_lib.improvement import soft_improvement
from lfl_lib.inversion import StateOnlyFit, invert_soft_improvement, kl_divergence, state_only_regression
from lfl_lib.mdp import soft_evaluate, soft_optimal, uniform_policy
from lfl_lib.shaping import shaping_term

# r_{1->2} and the shaping potential are built from exact linear solves on the grid
# (values O(100) at gamma = 0.96): ~1e-12 error; 1e-9 leaves margin.
EXACT = dict(rtol=1e-9, atol=1e-9)
# soft_optimal: error <= 2.4e-11 on V at gamma = 0.96.
VI = dict(rtol=1e-8, atol=1e-8)


# ---------------------------------------------------------------------------
# KL divergence
# ---------------------------------------------------------------------------


def test_kl_divergence_values():
    p = np.array([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8], [0.0, 1.0]])
    q = np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.0, 1.0]])
    expected = [np.log(2), 0.0, 0.2 * np.log(0.4) + 0.8 * np.log(1.6), 0.0]  # 0 ln 0 = 0, hand values
    assert_allclose(kl_divergence(p, q), expected, rtol=1e-13, atol=1e-15)
    rng = np.random.default_rng(0)
    a, b = rng.dirichlet(np.ones(4), size=(2, 10))
    assert np.all(kl_divergence(a, b) > 0)  # Gibbs' inequality, strict for a != b
    assert_allclose(kl_divergence(a, a), 0.0, rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    "p, q, match",
    [
        (np.full((2, 2), 0.5), np.full((2, 3), 1 / 3), r"pi1 and pi2 must have the same shape"),
        (np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]]), r"pi2 must be > 0 wherever pi1 > 0"),
        (np.array([[np.nan, 0.5]]), np.array([[0.5, 0.5]]), r"^pi1 must contain only finite"),
        (np.array([[0.5, 0.5]]), np.array([[0.5, np.inf]]), r"^pi2 must contain only finite"),
        (np.array([[0.6, 0.6]]), np.array([[0.5, 0.5]]), r"each row of pi1 must sum to 1"),
        (np.array([[0.5, 0.5]]), np.array([[1.5, -0.5]]), r"^pi2 must have non-negative"),
        (np.array([0.5, 0.5]), np.array([0.5, 0.5]), r"^pi1 must have 2 dimensions"),
    ],
)
def test_kl_divergence_rejects_bad_input(p, q, match):
    with pytest.raises(ValueError, match=match):
        kl_divergence(p, q)


# ---------------------------------------------------------------------------
# Theorem 2 on the grid
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grid_pair(grid):
    pi1 = uniform_policy(25, 4)
    pi2 = soft_improvement(grid, pi1, ALPHA)
    return pi1, pi2, invert_soft_improvement(grid, pi1, pi2, ALPHA)


def test_r12_formula_on_the_grid(grid, grid_pair):
    pi1, pi2, r12 = grid_pair
    # written out with explicit loops, independently of the vectorised library code
    expected = np.empty((25, 4))
    for s in range(25):
        for a in range(4):
            ekl = sum(grid.P[s, a, t] * np.sum(pi1[t] * np.log(pi1[t] / pi2[t])) for t in range(25))
            expected[s, a] = ALPHA * np.log(pi2[s, a]) + ALPHA * grid.gamma * ekl
    assert_allclose(r12, expected, rtol=1e-12, atol=1e-12)


def test_r12_explains_the_improvement_and_the_optimum(grid, grid_pair, grid_optimal):
    pi1, pi2, r12 = grid_pair
    observer = grid.with_reward(r12)
    # SPI under r12 turns pi1 into pi2 (the reward explains the observed improvement) ...
    assert_allclose(soft_improvement(observer, pi1, ALPHA), pi2, **EXACT)
    # ... and its optimal soft policy is the true one (Theorem 2)
    assert_allclose(soft_optimal(observer, ALPHA)[0], grid_optimal[0], **VI)


def test_r12_minus_r_is_a_shaping_with_the_closed_form_potential(grid, grid_pair):
    pi1, _, r12 = grid_pair
    # alpha ln pi2 = Q1 - W with W = alpha logsumexp(Q1 / alpha), and alpha KL(pi1 || pi2) = W - V1,
    # so r12 = r - W + gamma E[W(s')]: a shaping with potential g = -W.
    Q1, _ = soft_evaluate(grid, pi1, ALPHA)
    W = ALPHA * logsumexp(Q1 / ALPHA, axis=1)
    assert_allclose(r12, grid.r + shaping_term(grid, -W), **EXACT)


def test_inversion_uses_only_dynamics_not_the_reward(grid, grid_pair):
    pi1, pi2, r12 = grid_pair
    other = grid.with_reward(np.zeros((25, 4)))
    assert_allclose(invert_soft_improvement(other, pi1, pi2, ALPHA), r12, rtol=0, atol=0)


@pytest.mark.parametrize(
    "pi1, pi2, alpha, match",
    [
        ("uniform", "zero", 0.3, r"^pi2 must be > 0 everywhere"),
        ("uniform", "bad_rows", 0.3, r"each row of pi2 must sum to 1"),
        ("bad_rows", "uniform", 0.3, r"each row of pi1 must sum to 1"),
        ("negative", "uniform", 0.3, r"^pi1 must have non-negative"),
        ("uniform", "negative", 0.3, r"^pi2 must have non-negative"),
        ("uniform", "wrong_shape", 0.3, r"^pi2 must have shape"),
        ("wrong_shape", "uniform", 0.3, r"^pi1 must have shape"),
        ("nan", "uniform", 0.3, r"^pi1 must contain only finite"),
        ("uniform", "uniform", 0.0, r"^alpha must be a finite number > 0"),
        ("uniform", "uniform", -1.0, r"^alpha must be a finite number > 0"),
        ("uniform", "uniform", np.inf, r"^alpha must be a finite number > 0"),
    ],
)
def test_invert_soft_improvement_rejects_bad_input(small_mdp, pi1, pi2, alpha, match):
    policies = {
        "uniform": np.full((3, 2), 0.5),
        "zero": np.array([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5]]),
        "bad_rows": np.full((3, 2), 0.3),
        "negative": np.array([[1.2, -0.2], [0.5, 0.5], [0.5, 0.5]]),
        "wrong_shape": np.full((2, 2), 0.5),
        "nan": np.array([[np.nan, 0.5], [0.5, 0.5], [0.5, 0.5]]),
    }
    with pytest.raises(ValueError, match=match):
        invert_soft_improvement(small_mdp, policies[pi1], policies[pi2], alpha)


def test_invert_accepts_a_deterministic_pi1(small_mdp):
    # pi1 may have zeros (KL is finite as long as pi2 > 0)
    pi1 = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    pi2 = soft_improvement(small_mdp, pi1, 0.5)
    r12 = invert_soft_improvement(small_mdp, pi1, pi2, 0.5)
    assert np.all(np.isfinite(r12))
    assert_allclose(soft_improvement(small_mdp.with_reward(r12), pi1, 0.5), pi2, **EXACT)


# ---------------------------------------------------------------------------
# State-only regression (Eq. 4 solved exactly)
# ---------------------------------------------------------------------------


def test_state_only_regression_recovers_a_shaped_state_reward(grid):
    rng = np.random.default_rng(3)
    f_true = 4 * rng.standard_normal(25)
    r_sa = state_reward()[:, None] + shaping_term(grid, f_true)
    fit = state_only_regression(grid, r_sa)
    assert isinstance(fit, StateOnlyFit)
    r, f, residual, rank = fit
    assert (r is fit.r, f is fit.f, residual == fit.residual, rank == fit.rank) == (True,) * 4
    assert fit.rank == 49 and fit.residual < 1e-10
    # fit reproduces r_sa exactly (least squares with a zero-residual solution)
    assert_allclose(fit.r[:, None] + shaping_term(grid, fit.f), r_sa, **EXACT)
    # unidentified direction: (r, f) -> (r - (1 - gamma) c, f + c); so r is recovered up to a
    # constant c (1 - gamma) and f up to c
    c = (fit.f - f_true).mean()
    assert_allclose(fit.f - f_true, c, **EXACT)
    assert_allclose(fit.r - state_reward(), -(1 - grid.gamma) * c, **EXACT)


def test_state_only_regression_reports_residual_for_action_dependent_rewards(grid):
    r_sa = np.zeros((25, 4))
    r_sa[:, 1] = 1.0  # not a state reward plus a shaping
    fit = state_only_regression(grid, r_sa)
    assert fit.residual > 0.1


@pytest.mark.parametrize(
    "r_sa, match",
    [
        (np.zeros((3, 3)), r"^r_sa must have shape \(n_states, n_actions\) = \(3, 2\)"),
        (np.zeros(6), r"^r_sa must have 2 dimensions"),
        (np.array([[0.0, 1.0], [np.inf, 1.0], [0.0, 0.0]]), r"^r_sa must contain only finite"),
    ],
)
def test_state_only_regression_rejects_bad_input(small_mdp, r_sa, match):
    with pytest.raises(ValueError, match=match):
        state_only_regression(small_mdp, r_sa)


def test_kl_divergence_checks_pi2_as_it_checks_pi1():
    # the messages name the argument and say what was expected (mutation testing found these unchecked)
    with pytest.raises(ValueError, match=r"^pi2 must have 2 dimensions"):
        kl_divergence(np.array([[0.5, 0.5]]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match=r"^pi2 must have 2 dimensions"):
        kl_divergence(np.array([[0.5, 0.5]]), np.full((1, 1, 2), 0.5))
    with pytest.raises(
        ValueError, match=r"^pi2 must be > 0 wherever pi1 > 0 \(otherwise the KL divergence is infinite\)$"
    ):
        kl_divergence(np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]]))
