"""Tests of lfl_lib.improvement: greedy improvement (Eq. 1) and soft policy improvement (Eq. 3)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from numpy.testing import assert_allclose
from scipy.special import logsumexp, xlogy

from conftest import alphas, mdps, random_policy, seeds
from lfl_lib.improvement import greedy_improvement, q_values, soft_improvement
from lfl_lib.mdp import TabularMDP, score, soft_evaluate, uniform_policy

# Exact evaluations are linear solves; 1e-9 absorbs rounding with a wide margin.
EXACT = dict(rtol=1e-9, atol=1e-9)


def _values(mdp, pi):
    """Unregularized (Q, V) by an independent iteration of the Bellman operator."""
    Q = np.zeros_like(mdp.r)
    for _ in range(800):  # gamma <= 0.95: 0.95**800 < 1e-17
        Q = mdp.r + mdp.gamma * np.einsum("sat,t->sa", mdp.P, (pi * Q).sum(axis=1))
    return Q, (pi * Q).sum(axis=1)


@given(mdp=mdps(), seed=seeds)
def test_q_values_are_the_unregularized_action_values(mdp, seed):
    pi = random_policy(np.random.default_rng(seed), mdp.n_states, mdp.n_actions)
    Q_ref, _ = _values(mdp, pi)
    assert_allclose(q_values(mdp, pi), Q_ref, **EXACT)


@given(mdp=mdps(), seed=seeds)
def test_greedy_improvement_is_deterministic_and_greedy(mdp, seed):
    pi = random_policy(np.random.default_rng(seed), mdp.n_states, mdp.n_actions)
    pi2 = greedy_improvement(mdp, pi)
    assert pi2.shape == pi.shape
    assert set(np.unique(pi2)) <= {0.0, 1.0} and np.all(pi2.sum(axis=1) == 1.0)  # one-hot rows
    Q = q_values(mdp, pi)
    assert_allclose((pi2 * Q).sum(axis=1), Q.max(axis=1), rtol=0, atol=1e-12)  # picks a maximiser


@given(mdp=mdps(), seed=seeds)
def test_policy_improvement_theorem(mdp, seed):
    pi = random_policy(np.random.default_rng(seed), mdp.n_states, mdp.n_actions)
    Q1, V1 = _values(mdp, pi)
    Q2, V2 = _values(mdp, greedy_improvement(mdp, pi))
    # Q^{pi'} >= Q^{pi} and V^{pi'} >= V^{pi} pointwise; slack for rounding only
    tol = 1e-9 * (1 + np.abs(V1).max())
    assert np.all(V2 >= V1 - tol)
    assert np.all(Q2 >= Q1 - tol)


def test_greedy_breaks_ties_towards_the_lowest_action():
    mdp = TabularMDP(np.full((2, 3, 2), 0.5), np.zeros((2, 3)), 0.9)
    assert_allclose(greedy_improvement(mdp, uniform_policy(2, 3)), [[1, 0, 0], [1, 0, 0]], rtol=0, atol=0)


def test_greedy_policy_iteration_on_the_grid_reaches_a_fixed_point_better_than_uniform(grid):
    pi = uniform_policy(25, 4)
    for _ in range(50):
        new = greedy_improvement(grid, pi)
        if np.array_equal(new, pi):
            break
        pi = new
    else:
        pytest.fail("greedy policy iteration did not converge in 50 steps")
    # a deterministic optimal policy: its V is a fixed point of the Bellman optimality operator
    Q = q_values(grid, pi)
    V = Q.max(axis=1)
    assert_allclose(V, (pi * Q).sum(axis=1), rtol=0, atol=1e-12)
    assert V[0] > 0  # it reaches the +10 objective rather than wandering (uniform: V < 0)


@given(mdp=mdps(), alpha=alphas, seed=seeds)
def test_spi_is_the_softmax_of_soft_q(mdp, alpha, seed):
    pi = random_policy(np.random.default_rng(seed), mdp.n_states, mdp.n_actions)
    Q, _ = soft_evaluate(mdp, pi, alpha)
    expected = np.exp(Q / alpha - logsumexp(Q / alpha, axis=1, keepdims=True))
    pi2 = soft_improvement(mdp, pi, alpha)
    assert_allclose(pi2, expected, rtol=1e-10, atol=1e-14)  # same formula, different rounding
    assert np.all(pi2 > 0)  # soft policies are never deterministic


@given(mdp=mdps(min_actions=2), alpha=alphas, seed=seeds)
def test_spi_maximises_expected_q_plus_entropy_over_the_simplex(mdp, alpha, seed):
    rng = np.random.default_rng(seed)
    pi = random_policy(rng, mdp.n_states, mdp.n_actions)
    Q, _ = soft_evaluate(mdp, pi, alpha)
    pi2 = soft_improvement(mdp, pi, alpha)

    def objective(p):
        return (p * Q).sum(axis=1) - alpha * xlogy(p, p).sum(axis=1)

    best = objective(pi2)
    # the maximum of E_p[Q] + alpha H(p) is alpha logsumexp(Q / alpha) (Gibbs variational principle)
    assert_allclose(best, alpha * logsumexp(Q / alpha, axis=1), rtol=1e-10, atol=1e-10)
    for _ in range(20):
        # random points of the simplex, and small perturbations of pi2 that stay on it
        other = rng.dirichlet(np.ones(mdp.n_actions), size=mdp.n_states)
        assert np.all(objective(other) <= best + 1e-10)
        eps = 1e-3 * rng.standard_normal(pi2.shape)
        eps -= eps.mean(axis=1, keepdims=True)
        near = np.clip(pi2 + eps, 1e-300, None)
        near /= near.sum(axis=1, keepdims=True)
        assert np.all(objective(near) <= best + 1e-12)


def test_spi_strictly_improves_on_the_grid_and_converges_to_the_optimum(grid, grid_optimal):
    alpha = 0.3
    pi = uniform_policy(25, 4)
    scores = [score(grid, pi, alpha)]
    for _ in range(30):
        pi = soft_improvement(grid, pi, alpha)
        scores.append(score(grid, pi, alpha))
    assert np.all(np.diff(scores[:6]) > 1e-3)  # strictly increasing while far from the optimum
    assert np.all(np.diff(scores) >= -1e-10)  # never decreasing
    J_star = score(grid, grid_optimal[0], alpha)
    assert scores[-1] <= J_star + 1e-9
    # soft policy iteration converges (fast): after 30 steps, within 1e-6 of J*
    assert abs(scores[-1] - J_star) < 1e-6


def test_optimal_soft_policy_is_a_fixed_point_of_spi(grid, grid_optimal):
    pi_star = grid_optimal[0]
    assert_allclose(soft_improvement(grid, pi_star, 0.3), pi_star, rtol=0, atol=1e-9)  # VI tolerance


@pytest.mark.parametrize(
    "pi, match",
    [
        (np.full((3, 2), 0.6), r"each row of pi must sum to 1"),
        (np.array([[0.5, 0.5], [-0.5, 1.5], [0.5, 0.5]]), r"^pi must have non-negative"),
        (np.full((2, 2), 0.5), r"^pi must have shape"),
        (np.array([[0.5, 0.5], [np.nan, 1.0], [0.5, 0.5]]), r"^pi must contain only finite"),
    ],
)
def test_improvements_reject_bad_policies(small_mdp, pi, match):
    with pytest.raises(ValueError, match=match):
        greedy_improvement(small_mdp, pi)
    with pytest.raises(ValueError, match=match):
        soft_improvement(small_mdp, pi, 0.5)
    with pytest.raises(ValueError, match=match):
        q_values(small_mdp, pi)


@pytest.mark.parametrize("alpha", [0.0, -0.3, np.nan, np.inf])
def test_soft_improvement_rejects_bad_alpha(small_mdp, alpha):
    with pytest.raises(ValueError, match=r"^alpha must be a finite number > 0"):
        soft_improvement(small_mdp, uniform_policy(3, 2), alpha)
