"""Tests of lfl_lib.trajectories: the Trajectory type, sampling, counts and estimated dynamics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from lfl_lib.mdp import random_mdp, uniform_policy
from lfl_lib.trajectories import (
    Trajectory,
    check_trajectories,
    estimate_transitions,
    pair_counts,
    sample_trajectories,
    sample_trajectory,
    transition_counts,
)

from conftest import random_positive_policy, seeds


def test_trajectory_accepts_integer_arrays_and_freezes_them():
    tr = Trajectory(states=[0, 1, 2], actions=np.array([1, 0]), n_states=3, n_actions=2)
    assert len(tr) == 2
    assert tr.states.dtype == np.int64 and tr.actions.dtype == np.int64
    with pytest.raises(ValueError):
        tr.states[0] = 1  # read-only


def test_trajectory_accepts_whole_floats():
    tr = Trajectory(states=np.array([0.0, 2.0]), actions=np.array([1.0]))
    assert_array_equal(tr.states, [0, 2])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(states=[0], actions=[]), "at least one action"),
        (dict(states=[0, 1], actions=[0, 1]), "one longer than actions"),
        (dict(states=[0, 1, 2, 3], actions=[0, 1]), "one longer than actions"),
        (dict(states=[0, -1], actions=[0]), "states must be non-negative"),
        (dict(states=[0, 1], actions=[-2]), "actions must be non-negative"),
        (dict(states=[0, 3], actions=[0], n_states=3), r"states must lie in \[0, 2\]"),
        (dict(states=[0, 1], actions=[2], n_actions=2), r"actions must lie in \[0, 1\]"),
        (dict(states=[0, 0.5], actions=[0]), "states must contain integers"),
        (dict(states=[[0, 1]], actions=[0]), "1-d array"),
        (dict(states=["a", "b"], actions=[0]), "states must contain integers"),
        (dict(states=[True, False], actions=[0]), "states must contain integers"),
    ],
)
def test_trajectory_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Trajectory(**kwargs)


def test_check_trajectories_rejects_bad_lists():
    tr = Trajectory(states=[0, 4], actions=[1])
    with pytest.raises(ValueError, match="at least 2"):
        check_trajectories([tr], 5, 2, minimum=2)
    with pytest.raises(ValueError, match="at least 1"):
        check_trajectories([], 5, 2)
    with pytest.raises(ValueError, match="single Trajectory"):
        check_trajectories(tr, 5, 2)
    with pytest.raises(ValueError, match=r"trajectories\[1\] must be a Trajectory"):
        check_trajectories([tr, (np.zeros(2), np.zeros(1))], 5, 2)
    with pytest.raises(ValueError, match=r"trajectories\[0\]: states must lie in \[0, 3\]"):
        check_trajectories([tr], 4, 2)
    with pytest.raises(ValueError, match=r"actions must lie in \[0, 0\]"):
        check_trajectories([tr], 5, 1)


def test_sampled_transitions_are_possible_and_reproducible(grid):
    pi = uniform_policy(grid.n_states, grid.n_actions)
    tr = sample_trajectory(grid, pi, 500, np.random.default_rng(3))
    assert len(tr) == 500 and tr.states[0] == grid.start
    assert np.all(grid.P[tr.states[:-1], tr.actions, tr.states[1:]] > 0)
    again = sample_trajectory(grid, pi, 500, np.random.default_rng(3))
    assert_array_equal(tr.states, again.states)
    assert_array_equal(tr.actions, again.actions)


@settings(max_examples=15)
@given(seed=seeds)
def test_action_frequencies_match_the_policy(seed):
    """In every state visited n times, action frequencies are within 5 binomial sd (+1/n) of pi."""
    rng = np.random.default_rng(seed)
    mdp = random_mdp(3, 3, rng, gamma=0.9)
    pi = random_positive_policy(rng, 3, 3)
    tr = sample_trajectory(mdp, pi, 6000, rng)
    counts = pair_counts(tr, 3, 3)
    n = counts.sum(axis=1, keepdims=True)
    visited = n[:, 0] > 0
    freq = counts[visited] / n[visited]
    sd = np.sqrt(pi[visited] * (1 - pi[visited]) / n[visited])
    assert np.all(np.abs(freq - pi[visited]) <= 5 * sd + 1.0 / n[visited])


@settings(max_examples=15)
@given(seed=seeds)
def test_transition_frequencies_match_the_dynamics(seed):
    """Estimated P(s'|s, a) within 5 binomial sd (+1/n) of the true P for every observed pair."""
    rng = np.random.default_rng(seed)
    mdp = random_mdp(3, 2, rng, gamma=0.9)
    trajs = sample_trajectories(mdp, [uniform_policy(3, 2)] * 2, 3000, rng)
    n = transition_counts(trajs, 3, 2).sum(axis=2)
    P_hat = estimate_transitions(trajs, 3, 2, prior=1e-9)
    seen = n > 0
    sd = np.sqrt(mdp.P * (1 - mdp.P) / np.maximum(n, 1)[..., None])
    assert np.all((np.abs(P_hat - mdp.P) <= 5 * sd + 1.0 / np.maximum(n, 1)[..., None])[seen])


def test_transition_estimate_smoothing_by_hand():
    # 3 states, 2 actions; (0, 0) seen twice (to 1 and to 2), (1, 1) once (to 0).
    tr = Trajectory(states=[0, 1, 0, 2], actions=[0, 1, 0])
    P_hat = estimate_transitions([tr], 3, 2, prior=0.3)
    assert_allclose(P_hat[0, 0], [(0 + 0.1) / 2.3, (1 + 0.1) / 2.3, (1 + 0.1) / 2.3], rtol=1e-14)
    assert_allclose(P_hat[1, 1], [(1 + 0.1) / 1.3, 0.1 / 1.3, 0.1 / 1.3], rtol=1e-14)
    assert_allclose(P_hat[2, 0], [1 / 3] * 3, rtol=1e-14)  # never seen: uniform
    assert_allclose(P_hat.sum(axis=2), 1.0, rtol=1e-14)
    assert_allclose(transition_counts([tr, tr], 3, 2).sum(), 6)


@given(prior=st.floats(min_value=1e-6, max_value=10.0))
def test_transition_estimate_is_a_stochastic_array(prior):
    tr = Trajectory(states=[0, 1, 1, 2, 0], actions=[1, 1, 0, 1])
    P_hat = estimate_transitions([tr], 3, 2, prior=prior)
    assert P_hat.shape == (3, 2, 3) and np.all(P_hat > 0)
    assert_allclose(P_hat.sum(axis=2), 1.0, rtol=1e-12)


def test_sampling_and_estimation_reject_bad_input(grid):
    pi = uniform_policy(grid.n_states, grid.n_actions)
    with pytest.raises(ValueError, match="numpy.random.Generator"):
        sample_trajectory(grid, pi, 10, rng=0)
    with pytest.raises(ValueError, match="n_steps"):
        sample_trajectory(grid, pi, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="start"):
        sample_trajectory(grid, pi, 5, np.random.default_rng(0), start=25)
    with pytest.raises(ValueError, match="prior"):
        estimate_transitions([Trajectory(states=[0, 1], actions=[0])], 2, 1, prior=0.0)
