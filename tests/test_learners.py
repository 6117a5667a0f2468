"""Tests of lfl_lib.learners.soft_policy_iteration (the learners of Table 2 are tested elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from lfl_lib.improvement import soft_improvement
from lfl_lib.learners import soft_policy_iteration
from lfl_lib.mdp import score, uniform_policy


@pytest.mark.parametrize("K", [0, 1, 3])
def test_soft_policy_iteration_returns_k_plus_one_policies(grid, K):
    policies = soft_policy_iteration(grid, 0.3, K)
    assert len(policies) == K + 1
    assert_allclose(policies[0], uniform_policy(25, 4), rtol=0, atol=0)  # pi_1 is uniform
    for prev, nxt in zip(policies, policies[1:]):
        # each policy is the SPI of the previous one, computed the same way
        assert_allclose(nxt, soft_improvement(grid, prev, 0.3), rtol=0, atol=1e-15)
    scores = [score(grid, p, 0.3) for p in policies]
    assert np.all(np.diff(scores) > 0)  # the learner improves


def test_soft_policy_iteration_uses_and_copies_pi0(small_mdp):
    rng = np.random.default_rng(0)
    pi0 = rng.dirichlet(np.ones(2), size=3)
    policies = soft_policy_iteration(small_mdp, 0.5, 2, pi0=pi0)
    assert_allclose(policies[0], pi0, rtol=0, atol=0)
    assert_allclose(policies[1], soft_improvement(small_mdp, pi0, 0.5), rtol=0, atol=1e-15)
    policies[0][0, 0] = 123.0
    assert pi0[0, 0] != 123.0  # the caller's array is not aliased


def test_soft_policy_iteration_depends_on_alpha(grid):
    a = soft_policy_iteration(grid, 0.3, 1)[1]
    b = soft_policy_iteration(grid, 1.0, 1)[1]
    assert np.abs(a - b).max() > 0.01


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(alpha=0.0), r"^alpha must be a finite number > 0"),
        (dict(alpha=np.nan), r"^alpha must be a finite number > 0"),
        (dict(n_improvements=-1), r"^n_improvements must be an integer >= 0"),
        (dict(n_improvements=1.5), r"^n_improvements must be an integer >= 0"),
        (dict(n_improvements=True), r"^n_improvements must be an integer >= 0"),
        (dict(pi0=np.full((3, 2), 0.2)), r"each row of pi0 must sum to 1"),
        (dict(pi0=np.full((2, 2), 0.5)), r"^pi0 must have shape"),
        (dict(pi0=np.array([[1.5, -0.5], [0.5, 0.5], [0.5, 0.5]])), r"^pi0 must have non-negative"),
        (dict(pi0=np.array([[np.inf, 0.5], [0.5, 0.5], [0.5, 0.5]])), r"^pi0 must contain only finite"),
    ],
)
def test_soft_policy_iteration_rejects_bad_input(small_mdp, kwargs, match):
    args = dict(alpha=0.5, n_improvements=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        soft_policy_iteration(small_mdp, **args)
