"""Tests of lfl_lib.shaping: the shaping transform, Lemma 1 and Theorem 1 on the grid."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from lfl_lib.gridworld import ALPHA
from lfl_lib.improvement import soft_improvement
from lfl_lib.mdp import TabularMDP, score, soft_evaluate, soft_optimal, uniform_policy
from lfl_lib.shaping import shape_reward, shaping_term

# Exact evaluation is a 25x25 linear solve (condition ~ 1/(1-gamma) = 25): ~1e-12 error.
EXACT = dict(rtol=1e-9, atol=1e-9)
# soft_optimal: error <= 1e-12 * gamma / (1 - gamma) = 2.4e-11 on V at gamma = 0.96.
VI = dict(rtol=1e-8, atol=1e-8)


def test_shaping_term_by_hand():
    # two states, two actions; from state 0: a=0 stays, a=1 goes to 1 w.p. 0.75
    P = np.array([[[1.0, 0.0], [0.25, 0.75]], [[0.5, 0.5], [0.0, 1.0]]])
    mdp = TabularMDP(P, np.zeros((2, 2)), 0.5)
    g = np.array([2.0, -4.0])
    # sh(s, a) = g(s) - 0.5 * E[g(s')]
    expected = np.array(
        [
            [2.0 - 0.5 * 2.0, 2.0 - 0.5 * (0.25 * 2.0 - 0.75 * 4.0)],
            [-4.0 - 0.5 * (1.0 - 2.0), -4.0 - 0.5 * (-4.0)],
        ]
    )
    assert_allclose(shaping_term(mdp, g), expected, rtol=0, atol=1e-15)
    r = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert_allclose(shape_reward(mdp, g, r), r + expected, rtol=0, atol=1e-15)
    assert_allclose(shape_reward(mdp.with_reward(r), g), r + expected, rtol=0, atol=1e-15)  # default: mdp.r
    assert_allclose(shaping_term(mdp, np.zeros(2)), 0.0, rtol=0, atol=0)


def test_constant_potential_on_the_grid_adds_a_constant(grid):
    # g = c everywhere: sh = (1 - gamma) c for every (s, a)
    assert_allclose(shaping_term(grid, np.full(25, 5.0)), (1 - 0.96) * 5.0, rtol=1e-12, atol=0)


def test_lemma1_on_the_grid(grid, grid_optimal):
    rng = np.random.default_rng(11)
    g = 5 * rng.standard_normal(25)
    shaped = grid.with_reward(shape_reward(grid, g))
    pis = [uniform_policy(25, 4), grid_optimal[0], rng.dirichlet(np.ones(4), size=25)]
    for pi in pis:
        Q, V = soft_evaluate(grid, pi, ALPHA)
        Qs, Vs = soft_evaluate(shaped, pi, ALPHA)
        assert_allclose(Qs, Q + g[:, None], **EXACT)  # Q shifts by g(s), the same for every action
        assert_allclose(Vs, V + g, **EXACT)
        assert_allclose(score(shaped, pi, ALPHA), score(grid, pi, ALPHA) + g[0], **EXACT)


def test_theorem1_on_the_grid(grid, grid_optimal):
    g = 5 * np.random.default_rng(12).standard_normal(25)
    shaped = grid.with_reward(shape_reward(grid, g))
    pi1 = uniform_policy(25, 4)
    # SPI is unchanged (soft policies are exactly representable: 1e-12 covers rounding)
    assert_allclose(soft_improvement(shaped, pi1, ALPHA), soft_improvement(grid, pi1, ALPHA), rtol=0, atol=1e-12)
    pi_s, Q_s, V_s = soft_optimal(shaped, ALPHA)
    pi_star, Q_star, V_star = grid_optimal
    assert_allclose(pi_s, pi_star, **VI)
    assert_allclose(Q_s, Q_star + g[:, None], **VI)
    assert_allclose(V_s, V_star + g, **VI)


def test_action_dependent_term_breaks_invariance_on_the_grid(grid, grid_optimal):
    # a bonus for moving x-1 (up), of the same size as a shaping, is not of the form
    # g(s) - gamma E[g(s')]: it changes the optimal soft policy and SPI.
    h = np.zeros((25, 4))
    h[:, 1] = 2.0
    tweaked = grid.with_reward(grid.r + h)
    pi_t, _, _ = soft_optimal(tweaked, ALPHA)
    assert np.abs(pi_t - grid_optimal[0]).max() > 0.1
    assert np.mean(pi_t[:, 1]) > np.mean(grid_optimal[0][:, 1]) + 0.1  # it pushes towards a = 1
    pi1 = uniform_policy(25, 4)
    assert np.abs(soft_improvement(tweaked, pi1, ALPHA) - soft_improvement(grid, pi1, ALPHA)).max() > 0.1


@pytest.mark.parametrize(
    "g, match",
    [
        (np.zeros(4), r"^g must have shape \(n_states,\) = \(3,\)"),
        (np.zeros((3, 1)), r"^g must have 1 dimensions"),
        (np.array([0.0, np.nan, 1.0]), r"^g must contain only finite"),
        (np.array([0.0, -np.inf, 1.0]), r"^g must contain only finite"),
    ],
)
def test_shaping_rejects_bad_potential(small_mdp, g, match):
    with pytest.raises(ValueError, match=match):
        shaping_term(small_mdp, g)
    with pytest.raises(ValueError, match=match):
        shape_reward(small_mdp, g)


@pytest.mark.parametrize(
    "r, match",
    [
        (np.zeros((3, 3)), r"^r must have shape \(n_states, n_actions\) = \(3, 2\)"),
        (np.zeros(3), r"^r must have 2 dimensions"),
        (np.array([[0.0, 1.0], [np.nan, 1.0], [0.0, 0.0]]), r"^r must contain only finite"),
    ],
)
def test_shape_reward_rejects_bad_reward(small_mdp, r, match):
    with pytest.raises(ValueError, match=match):
        shape_reward(small_mdp, np.zeros(3), r)
