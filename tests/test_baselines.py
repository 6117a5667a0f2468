"""Tests of lfl_lib.baselines: behaviour cloning and maximum-entropy IRL (chapter 7)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from lfl_lib.baselines import (
    behaviour_cloning,
    demo_log_likelihood,
    maxent_irl,
    pooled_counts,
    soft_optimal_from,
)
from lfl_lib.experiments.baselines import METHODS, compare_run
from lfl_lib.gridworld import ALPHA, make_gridworld
from lfl_lib.mdp import random_mdp, soft_optimal
from lfl_lib.trajectories import Trajectory, sample_trajectory


@pytest.fixture(scope="module")
def grid():
    return make_gridworld()


def _stationary_counts(mdp, pi, total=1.0):
    """Exact 'infinite data' counts n(s, a) = d(s) pi(a|s), d the discounted occupancy from the start."""
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    d = np.linalg.solve((np.eye(mdp.n_states) - mdp.gamma * P_pi).T, np.eye(mdp.n_states)[mdp.start])
    d = d / d.sum()
    return total * d[:, None] * pi


# ----------------------------------------------------------------------------- behaviour cloning


def test_bc_is_smoothed_frequencies():
    tr = Trajectory(states=[0, 1, 0, 1, 2], actions=[0, 2, 0, 3])
    pi = behaviour_cloning(tr, n_states=3, n_actions=4, prior=1.0)
    # state 0: action 0 twice; state 1: actions 2 and 3 once each; state 2 unvisited.
    assert_allclose(pi[0], [(2 + 0.25) / 3, 0.25 / 3, 0.25 / 3, 0.25 / 3])
    assert_allclose(pi[1], [0.25 / 3, 0.25 / 3, 1.25 / 3, 1.25 / 3])
    assert_allclose(pi[2], np.full(4, 0.25))
    assert_allclose(pi.sum(axis=1), 1.0)


def test_bc_of_a_long_trajectory_returns_the_policy(grid):
    pi_star, _, _ = soft_optimal(grid, ALPHA)
    # Mix with uniform so that every state is visited often.
    pi = 0.5 * pi_star + 0.5 / grid.n_actions
    tr = sample_trajectory(grid, pi, 100_000, np.random.default_rng(0))
    pi_bc = behaviour_cloning(tr, grid.n_states, grid.n_actions)
    assert np.max(np.abs(pi_bc - pi)) < 0.05


def test_bc_pools_a_list_of_trajectories():
    a = Trajectory(states=[0, 1], actions=[0])
    b = Trajectory(states=[0, 1], actions=[1])
    assert_allclose(pooled_counts([a, b], 2, 2), [[1, 1], [0, 0]])
    assert_allclose(behaviour_cloning([a, b], 2, 2, prior=1e-12)[0], [0.5, 0.5])


# ----------------------------------------------------------------------------- the likelihood


def test_soft_optimal_from_agrees_with_value_iteration():
    mdp = random_mdp(6, 3, np.random.default_rng(1), gamma=0.9)
    pi, Q, V = soft_optimal_from(mdp, 0.5)
    pi2, Q2, V2 = soft_optimal(mdp, 0.5)
    assert_allclose(pi, pi2, atol=1e-10)
    assert_allclose(V, V2, atol=1e-9)
    # Warm start from another soft policy reaches the same point.
    pi3, _, _ = soft_optimal_from(mdp, 0.5, pi0=np.full((6, 3), 1 / 3) * 0.5 + 0.5 * pi2)
    assert_allclose(pi3, pi2, atol=1e-10)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    mdp = random_mdp(5, 3, rng, gamma=0.9)
    r = rng.standard_normal((5, 3))
    n = rng.integers(0, 4, size=(5, 3)).astype(float)
    _, g, _ = demo_log_likelihood(mdp, r, n, 0.4)
    eps = 1e-6
    fd = np.zeros_like(r)
    for i in range(5):
        for j in range(3):
            e = np.zeros_like(r)
            e[i, j] = eps
            fd[i, j] = (demo_log_likelihood(mdp, r + e, n, 0.4)[0] - demo_log_likelihood(mdp, r - e, n, 0.4)[0]) / (
                2 * eps
            )
    assert_allclose(g, fd, atol=1e-7)


def test_gradient_is_zero_at_the_true_reward_for_exact_demonstrations():
    mdp = random_mdp(6, 3, np.random.default_rng(3), gamma=0.9)
    pi, _, _ = soft_optimal(mdp, 0.5)
    n = _stationary_counts(mdp, pi, total=1000.0)
    ll, g, pi_r = demo_log_likelihood(mdp, mdp.r, n, 0.5)
    assert np.max(np.abs(g)) < 1e-9
    # ... and any other reward explains the data worse.
    ll_other, _, _ = demo_log_likelihood(mdp, np.zeros_like(mdp.r), n, 0.5)
    assert ll > ll_other


def test_shaping_leaves_the_likelihood_unchanged():
    rng = np.random.default_rng(4)
    mdp = random_mdp(5, 2, rng, gamma=0.8)
    n = rng.integers(1, 5, size=(5, 2)).astype(float)
    f = rng.standard_normal(5)
    r_shaped = mdp.r + f[:, None] - mdp.gamma * (mdp.P @ f)
    ll1, _, _ = demo_log_likelihood(mdp, mdp.r, n, 0.3)
    ll2, _, _ = demo_log_likelihood(mdp, r_shaped, n, 0.3)
    assert ll1 == pytest.approx(ll2, abs=1e-10)


# ----------------------------------------------------------------------------- max-ent IRL


@pytest.mark.parametrize("features", ["state", "state_action"])
def test_maxent_irl_recovers_a_reward_with_the_demonstrators_policy(features):
    mdp = random_mdp(8, 3, np.random.default_rng(7), gamma=0.9)
    if features == "state":  # a realizable demonstrator: its reward depends on the state only
        mdp = mdp.with_reward(np.repeat(mdp.r[:, :1], 3, axis=1))
    pi_true, _, _ = soft_optimal(mdp, 0.5)
    n = _stationary_counts(mdp, pi_true, total=1000.0)  # "infinitely long" demonstrations
    ll0, _, _ = demo_log_likelihood(mdp, np.zeros((8, 3)), n, 0.5)
    ll_true, _, _ = demo_log_likelihood(mdp, mdp.r, n, 0.5)
    res = maxent_irl(mdp, None, 0.5, features=features, ridge=0.0, gtol=1e-9, max_iter=3000, counts=n)
    assert res.success and res.grad_norm < 1e-8
    assert ll0 < res.log_likelihood <= ll_true + 1e-12
    assert res.log_likelihood == pytest.approx(ll_true, abs=1e-9)
    # The soft-optimal policy of the recovered reward is the demonstrator's ...
    assert_allclose(res.pi, pi_true, atol=1e-5)
    assert_allclose(res.pi, soft_optimal(mdp.with_reward(res.r), 0.5)[0], atol=1e-8)
    # ... though the reward itself need not be the true one (the likelihood only sees the policy).


def test_maxent_irl_on_sampled_demonstrations_increases_the_likelihood(grid):
    pi_star, _, _ = soft_optimal(grid, ALPHA)
    tr = sample_trajectory(grid, pi_star, 1000, np.random.default_rng(5))
    res = maxent_irl(grid, tr, ALPHA)
    assert res.success and res.grad_norm < 1e-5
    ll0, _, _ = demo_log_likelihood(grid, np.zeros((25, 4)), pooled_counts(tr, 25, 4), ALPHA)
    assert res.log_likelihood > ll0 + 0.5


def test_maxent_irl_state_action_features_fit_at_least_as_well(grid):
    pi_star, _, _ = soft_optimal(grid, ALPHA)
    tr = sample_trajectory(grid, pi_star, 2000, np.random.default_rng(6))
    rs = maxent_irl(grid, tr, ALPHA, features="state", ridge=1e-3)
    rsa = maxent_irl(grid, tr, ALPHA, features="state_action", ridge=1e-3)
    assert rsa.log_likelihood >= rs.log_likelihood - 1e-6
    assert np.allclose(rs.r, rs.r[:, :1])  # r(s): the same for every action


# ----------------------------------------------------------------------------- the comparison


def test_lfl_column_is_the_observer_of_table2(grid):
    from lfl_lib.experiments.table2 import run_once

    scores = compare_run("SPI", 0, mdp=grid, methods=["learner_last", "lfl"])
    ref = run_once("SPI", 0, mdp=grid)
    assert scores["learner_last"] == pytest.approx(ref.learner_J, abs=1e-9)
    assert scores["lfl"] == pytest.approx(ref.observer_J, abs=1e-9)


def test_compare_run_returns_every_method(grid):
    out = compare_run("random", 1, mdp=grid, n_pairs=200)
    assert list(out) == list(METHODS)
    assert all(np.isfinite(v) for v in out.values())


# ----------------------------------------------------------------------------- bad input


def test_bad_input_names_the_argument(grid):
    tr = Trajectory(states=[0, 1], actions=[0])
    with pytest.raises(ValueError, match="prior"):
        behaviour_cloning(tr, 25, 4, prior=0.0)
    with pytest.raises(ValueError, match="n_states"):
        behaviour_cloning(tr, 0, 4)
    with pytest.raises(ValueError, match=r"trajectories\[0\]"):
        behaviour_cloning([Trajectory(states=[0, 30], actions=[0])], 25, 4)
    with pytest.raises(ValueError, match="trajectories"):
        behaviour_cloning([], 25, 4)
    with pytest.raises(ValueError, match="mdp"):
        maxent_irl("grid", tr, ALPHA)
    with pytest.raises(ValueError, match="alpha"):
        maxent_irl(grid, tr, 0.0)
    with pytest.raises(ValueError, match="features"):
        maxent_irl(grid, tr, ALPHA, features="pixels")
    with pytest.raises(ValueError, match="ridge"):
        maxent_irl(grid, tr, ALPHA, ridge=-1.0)
    with pytest.raises(ValueError, match="exactly one"):
        maxent_irl(grid, tr, ALPHA, counts=np.ones((25, 4)))
    with pytest.raises(ValueError, match="counts"):
        demo_log_likelihood(grid, np.zeros((25, 4)), -np.ones((25, 4)), ALPHA)
    with pytest.raises(ValueError, match="r must have shape"):
        demo_log_likelihood(grid, np.zeros((25, 3)), np.ones((25, 4)), ALPHA)
    with pytest.raises(ValueError, match="pi0"):
        soft_optimal_from(grid, ALPHA, pi0=np.eye(25, 4))
    with pytest.raises(ValueError, match="name"):
        compare_run("PPO", 0, mdp=grid)
    with pytest.raises(ValueError, match="methods"):
        compare_run("SPI", 0, mdp=grid, methods=["gail"])
