"""Tests of lfl_lib.tabular_lfl: Algorithm 1 for tabular MDPs (Section 5, Eq. 5)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from conftest import random_consistency_problem, seeds
from lfl_lib.gridworld import ALPHA, ALPHA_MODEL
from lfl_lib.learners import soft_policy_iteration
from lfl_lib.mdp import score, soft_optimal
from lfl_lib.tabular_lfl import (
    _entropy_ml_exact,
    consistency_fit,
    estimate_policies,
    fit_lfl,
    observer_score,
    recover_reward,
    targets,
)
from lfl_lib.trajectories import Trajectory, sample_trajectories


@pytest.fixture(scope="module")
def spi_policies(grid):
    return soft_policy_iteration(grid, ALPHA, 3)


@pytest.fixture(scope="module")
def spi_trajectories(grid, spi_policies):
    return sample_trajectories(grid, spi_policies, 1000, np.random.default_rng(7))


def _equal_weights(tk):
    return np.full(tk.shape, 1.0 / tk[0].size)


@pytest.mark.parametrize("K", [1, 3])
def test_exact_policies_recover_a_reward_whose_optimal_policy_is_optimal(grid, K):
    """Infinite-data limit: exact SPI policies and dynamics, alpha_model = alpha (Theorem 2 + Eq. 5)."""
    pols = soft_policy_iteration(grid, ALPHA, K)
    tk = targets(pols, grid.P, grid.gamma, ALPHA)
    # Every pair is in the loss, so the ridges only pin the common shaping: make them tiny.
    r, f = consistency_fit(tk, _equal_weights(tk), grid.P, grid.gamma, ridge_r=1e-10, ridge_f=1e-12)
    pi_obs, _, _ = soft_optimal(grid.with_reward(r), ALPHA)
    pi_star, _, _ = soft_optimal(grid, ALPHA)
    # Ridges of 1e-10 against weights of 1e-2 bias the solution by ~1e-8 of its size (~20),
    # soft_optimal stops at 1e-12: policies and scores agree to 1e-6.
    assert_allclose(pi_obs, pi_star, atol=1e-6)
    assert_allclose(observer_score(grid, r, ALPHA).J, score(grid, pi_star, ALPHA), atol=1e-6)
    # The data term vanishes: every target is r plus its own shaping (same bias).
    B = np.repeat(np.eye(25), 4, axis=0) - grid.gamma * grid.P.reshape(100, 25)
    for k in range(K):
        assert_allclose(tk[k].ravel(), r.ravel() + B @ f[k], atol=1e-6)


def test_exact_and_adam_solvers_agree_on_a_small_problem():
    """Both minimise the same convex loss: same optimal value, same planned policy."""
    mdp, tk, w = random_consistency_problem(0, 4)
    r_ex, f_ex = consistency_fit(tk, w, mdp.P, mdp.gamma, solver="exact")
    r_ad, f_ad = consistency_fit(tk, w, mdp.P, mdp.gamma, solver="adam", n_steps=4000, lr=0.02)
    B = np.repeat(np.eye(4), 2, axis=0) - mdp.gamma * mdp.P.reshape(8, 4)

    def data_loss(r, f):
        return sum((w[k].ravel() * (tk[k].ravel() - r.ravel() - B @ f[k]) ** 2).sum() for k in range(2))

    assert data_loss(r_ex, f_ex) <= data_loss(r_ad, f_ad) + 1e-12
    assert_allclose(data_loss(r_ad, f_ad), data_loss(r_ex, f_ex), rtol=1e-3, atol=1e-6)
    # r is defined up to a common shaping; the optimal soft policies must agree.
    pi_ex, _, _ = soft_optimal(mdp.with_reward(r_ex), 0.5)
    pi_ad, _, _ = soft_optimal(mdp.with_reward(r_ad), 0.5)
    assert_allclose(pi_ad, pi_ex, atol=1e-3)


@given(seed=seeds, lam=st.floats(min_value=0.05, max_value=2.0))
def test_entropy_ml_estimate_satisfies_the_optimality_conditions(seed, lam):
    """KKT of max sum_a p_a ln pi_a + lam H(pi): p_a/pi_a - lam (ln pi_a + 1) is the same for every a."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 6, size=(5, 4)).astype(float)
    pi = _entropy_ml_exact(counts, lam)
    assert_allclose(pi.sum(axis=1), 1.0, rtol=1e-12)
    n = counts.sum(axis=1, keepdims=True)
    visited = n[:, 0] > 0
    p = counts[visited] / n[visited]
    g = p / pi[visited] - lam * (np.log(pi[visited]) + 1)
    assert_allclose(g - g.mean(axis=1, keepdims=True), 0.0, atol=1e-7)
    assert_allclose(pi[~visited], 0.25)


def test_dirichlet_estimate_by_hand():
    tr = Trajectory(states=[0, 0, 0, 1], actions=[1, 1, 0])
    uni, prev = estimate_policies([tr, tr], 3, 2, estimator="dirichlet", prior=2.0, prior_mean="previous")
    assert_allclose(uni[0], [(1 + 1) / 5, (2 + 1) / 5])
    assert_allclose(uni[2], [0.5, 0.5])
    assert_allclose(prev[0], [(1 + 2 * 0.4) / 5, (2 + 2 * 0.6) / 5])


def test_recovered_reward_is_proportional_to_alpha_model(grid, spi_trajectories):
    """In the tabular algorithm alpha_model only sets the scale of the reward."""
    r1 = recover_reward(spi_trajectories, 25, 4, grid.gamma, 0.35)
    r2 = recover_reward(spi_trajectories, 25, 4, grid.gamma, 0.7)
    assert r1.shape == (25, 4) and np.all(np.isfinite(r1))
    assert_allclose(r2, 2 * r1, rtol=1e-8, atol=1e-8)


def test_fit_lfl_details_are_consistent(grid, spi_trajectories):
    res = fit_lfl(spi_trajectories, 25, 4, grid.gamma, ALPHA_MODEL)
    assert len(res.policies) == 4 and res.targets.shape == (3, 25, 4)
    assert res.shapings.shape == (3, 25) and res.P_hat.shape == (25, 4, 25)
    assert_allclose(res.weights.sum(axis=(1, 2)), 1.0)
    for pi in res.policies:
        assert_allclose(pi.sum(axis=1), 1.0)
        assert np.all(pi > 0)


def test_observer_beats_the_uniform_policy_by_far(grid, spi_trajectories, spi_policies):
    """A statistical check (one fixed seed): the default estimator's observer is far above pi_1 = uniform."""
    r = recover_reward(spi_trajectories, 25, 4, grid.gamma, ALPHA_MODEL)
    obs = observer_score(grid, r, ALPHA)
    assert obs.J > score(grid, spi_policies[0], ALPHA) + 15.0
    assert_allclose(obs.J, obs.ret + obs.entropy, rtol=1e-10)


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(trajectories=[]), "at least 2"),
        (dict(trajectories="ab"), r"trajectories\[0\] must be a Trajectory"),
        (dict(trajectories=None), "list of Trajectory"),
        (dict(n_states=3), r"states must lie in \[0, 2\]"),
        (dict(n_actions=1), r"actions must lie in \[0, 0\]"),
        (dict(gamma=1.0), r"gamma must be in \[0, 1\)"),
        (dict(gamma=-0.1), r"gamma must be in \[0, 1\)"),
        (dict(alpha_model=0.0), "alpha_model must be a finite number > 0"),
        (dict(alpha_model=-1.0), "alpha_model must be a finite number > 0"),
        (dict(weights="some"), "weights must be"),
        (dict(solver="cvx"), "solver must be"),
        (dict(policy_estimator="counts"), "estimator must be"),
        (dict(policy_prior=0.0), "prior must be"),
    ],
)
def test_recover_reward_rejects_bad_input(change, match):
    good = [Trajectory(states=[0, 1, 2, 3], actions=[0, 1, 1]), Trajectory(states=[3, 2], actions=[1])]
    kwargs = dict(trajectories=good, n_states=4, n_actions=2, gamma=0.9, alpha_model=0.7)
    kwargs.update(change)
    with pytest.raises(ValueError, match=match):
        recover_reward(**kwargs)


def test_recover_reward_rejects_a_single_trajectory_and_mismatched_elements():
    tr = Trajectory(states=[0, 1], actions=[0])
    with pytest.raises(ValueError, match="at least 2"):
        recover_reward([tr], 2, 1, 0.9, 0.7)
    with pytest.raises(ValueError, match="single Trajectory"):
        recover_reward(tr, 2, 1, 0.9, 0.7)
    with pytest.raises(ValueError, match=r"trajectories\[1\] must be a Trajectory"):
        recover_reward([tr, ([0, 1], [0])], 2, 1, 0.9, 0.7)
