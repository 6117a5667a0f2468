"""Tests of lfl_lib.mdp: TabularMDP, soft evaluation, the optimal soft policy, J(pi)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.special import logsumexp, xlogy

from lfl_lib.mdp import (
    TabularMDP,
    discounted_entropy,
    expected_return,
    policy_entropy,
    random_mdp,
    score,
    soft_evaluate,
    soft_optimal,
    softmax_policy,
    uniform_policy,
)

from conftest import alphas, mdps, random_policy, seeds

# Exact evaluation is one linear solve of a well-conditioned system (gamma <= 0.95):
# results agree with independent computations to ~1e-12 relative; 1e-9 leaves margin.
EXACT = dict(rtol=1e-9, atol=1e-9)
# soft_optimal stops when ||V_k+1 - V_k|| < 1e-12, so its error is <= 1e-12 gamma/(1-gamma)
# <= 2e-11 for gamma <= 0.95, amplified at most by 1/(1-gamma) in value comparisons.
VI = dict(rtol=1e-8, atol=1e-8)


def _entropy(pi):
    return -xlogy(pi, pi).sum(axis=1)


def _iterative_soft_evaluation(mdp, pi, alpha, n_iter):
    """Independent reference: iterate the soft Bellman evaluation operator from Q = 0."""
    Q = np.zeros_like(mdp.r)
    for _ in range(n_iter):
        V = (pi * Q).sum(axis=1) + alpha * _entropy(pi)
        Q = mdp.r + mdp.gamma * np.einsum("sat,t->sa", mdp.P, V)
    V = (pi * Q).sum(axis=1) + alpha * _entropy(pi)
    return Q, V


# ---------------------------------------------------------------------------
# TabularMDP validation
# ---------------------------------------------------------------------------

P_OK = np.full((2, 2, 2), 0.5)
R_OK = np.zeros((2, 2))


def _bad_P_rowsum():
    P = P_OK.copy()
    P[1, 0] = [0.5, 0.6]
    return P


def _with(arr, idx, value):
    arr = arr.copy()
    arr[idx] = value
    return arr


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(P=np.full((2, 2), 0.5)), r"^P must have 3 dimensions"),
        (dict(P=np.full((2, 2, 3), 1 / 3)), r"^P must have shape \(S, A, S\)"),
        (dict(P=np.zeros((0, 2, 0))), r"^P must have shape"),
        (dict(P=_bad_P_rowsum()), r"P\[1, 0, :\] sums to 1\.1"),
        (dict(P=_with(P_OK, (0, 0), [1.5, -0.5])), r"^P must have non-negative"),
        (dict(P=_with(P_OK, (0, 0, 0), np.nan)), r"^P must contain only finite"),
        (dict(P=[[["a", "b"]]]), r"^P must be an array of real numbers"),
        (dict(r=np.zeros((2, 3))), r"^r must have shape \(n_states, n_actions\) = \(2, 2\)"),
        (dict(r=np.zeros(2)), r"^r must have 2 dimensions"),
        (dict(r=_with(R_OK, (1, 1), np.inf)), r"^r must contain only finite"),
        (dict(r=_with(R_OK, (0, 1), np.nan)), r"^r must contain only finite"),
        (dict(gamma=1.0), r"^gamma must be in \[0, 1\)"),
        (dict(gamma=-0.1), r"^gamma must be in \[0, 1\)"),
        (dict(gamma=np.nan), r"^gamma must be in \[0, 1\)"),
        (dict(gamma="0.9x"), r"^gamma must be a number"),
        (dict(start=2), r"^start must be in \[0, 1\]"),
        (dict(start=-1), r"^start must be in \[0, 1\]"),
        (dict(start=1.0), r"^start must be an integer"),
        (dict(start=True), r"^start must be an integer"),
    ],
)
def test_tabular_mdp_rejects_bad_input(kwargs, match):
    args = dict(P=P_OK, r=R_OK, gamma=0.9, start=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        TabularMDP(**args)


def test_tabular_mdp_copies_and_freezes_its_arrays():
    P = P_OK.copy()
    r = R_OK.copy()
    mdp = TabularMDP(P, r, 0.5, start=np.int64(1))
    P[0, 0] = [1.0, 0.0]
    r[0, 0] = 7.0
    assert mdp.P[0, 0, 0] == 0.5 and mdp.r[0, 0] == 0.0  # later edits of the inputs do not leak in
    assert mdp.P.dtype == np.float64 and mdp.r.dtype == np.float64
    assert isinstance(mdp.start, int) and mdp.start == 1
    assert (mdp.n_states, mdp.n_actions) == (2, 2)
    with pytest.raises(ValueError):
        mdp.r[0, 0] = 1.0  # read-only


def test_with_reward_keeps_dynamics_and_validates():
    mdp = random_mdp(3, 2, np.random.default_rng(1), gamma=0.7)
    mdp2 = mdp.with_reward(np.ones((3, 2)))
    assert_allclose(mdp2.P, mdp.P, rtol=0, atol=0)  # the very same numbers
    assert mdp2.gamma == mdp.gamma and mdp2.start == mdp.start
    assert_allclose(mdp2.r, 1.0, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"^r must have shape"):
        mdp.with_reward(np.ones((2, 3)))


def test_expect_next_and_policy_transition(small_mdp):
    rng = np.random.default_rng(2)
    f = rng.standard_normal(3)
    # exact arithmetic up to summation order of 3 terms
    assert_allclose(small_mdp.expect_next(f), np.einsum("sat,t->sa", small_mdp.P, f), rtol=1e-12, atol=1e-12)
    pi = random_policy(rng, 3, 2)
    Ppi = small_mdp.policy_transition(pi)
    assert_allclose(Ppi, sum(pi[:, [a]] * small_mdp.P[:, a, :] for a in range(2)), rtol=1e-12, atol=1e-12)
    assert_allclose(Ppi.sum(axis=1), 1.0, rtol=0, atol=1e-12)  # still a stochastic matrix
    with pytest.raises(ValueError, match=r"^f must have shape"):
        small_mdp.expect_next(np.ones(4))
    with pytest.raises(ValueError, match=r"^f must contain only finite"):
        small_mdp.expect_next(np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match=r"each row of pi must sum to 1"):
        small_mdp.policy_transition(np.full((3, 2), 0.4))


# ---------------------------------------------------------------------------
# Helpers: uniform, softmax, entropy, random_mdp
# ---------------------------------------------------------------------------


def test_uniform_policy():
    pi = uniform_policy(3, 4)
    assert pi.shape == (3, 4)
    assert_allclose(pi, 0.25, rtol=0, atol=0)
    for bad, name in [((0, 2), "n_states"), ((2, 0), "n_actions"), ((2.5, 2), "n_states")]:
        with pytest.raises(ValueError, match=name):
            uniform_policy(*bad)


def test_softmax_policy_is_stable_and_correct():
    Q = np.array([[0.0, np.log(3.0)], [1000.0, 1000.0], [-1000.0, 0.0]])
    pi = softmax_policy(Q, 1.0)
    # hand values: [1/4, 3/4], [1/2, 1/2], [e^-1000 ~ 0, 1]; exact up to rounding
    assert_allclose(pi, [[0.25, 0.75], [0.5, 0.5], [0.0, 1.0]], rtol=1e-12, atol=1e-300)
    assert np.all(np.isfinite(pi))
    assert_allclose(softmax_policy(2 * Q, 2.0), pi, rtol=1e-12, atol=1e-300)  # depends on Q / alpha only
    with pytest.raises(ValueError, match=r"^alpha must be"):
        softmax_policy(Q, 0.0)
    with pytest.raises(ValueError, match=r"^Q must contain only finite"):
        softmax_policy(np.array([[0.0, np.inf]]), 1.0)
    with pytest.raises(ValueError, match=r"^Q must have 2 dimensions"):
        softmax_policy(np.zeros(3), 1.0)


def test_policy_entropy_values_and_validation():
    pi = np.array([[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]])
    # ln 4, 0 (0 ln 0 = 0), ln 2: closed forms, exact up to rounding
    assert_allclose(policy_entropy(pi), [np.log(4), 0.0, np.log(2)], rtol=1e-14, atol=1e-15)
    with pytest.raises(ValueError, match=r"^pi must contain only finite"):
        policy_entropy(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match=r"each row of pi must sum to 1"):
        policy_entropy(np.array([[0.3, 0.3]]))
    with pytest.raises(ValueError, match=r"^pi must have non-negative"):
        policy_entropy(np.array([[1.5, -0.5]]))


def test_random_mdp_is_valid_reproducible_and_sparse():
    a = random_mdp(6, 3, np.random.default_rng(5), gamma=0.8, sparsity=0.7)
    b = random_mdp(6, 3, np.random.default_rng(5), gamma=0.8, sparsity=0.7)
    assert_allclose(a.P, b.P, rtol=0, atol=0)  # same seed, same MDP
    assert_allclose(a.r, b.r, rtol=0, atol=0)
    assert a.gamma == 0.8 and a.P.shape == (6, 3, 6) and a.r.shape == (6, 3)
    assert np.mean(a.P == 0) > 0.3  # sparsity zeroed entries
    assert np.all((a.P > 0).sum(axis=2) >= 1)
    c = random_mdp(6, 3, np.random.default_rng(6), gamma=0.8)
    assert not np.allclose(a.r, c.r)  # another seed, another MDP
    assert np.all(c.P > 0)  # dense by default


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(rng=0), r"^rng must be a numpy.random.Generator"),
        (dict(n_states=0), r"n_states"),
        (dict(n_actions=0), r"n_actions"),
        (dict(sparsity=1.0), r"^sparsity must be in \[0, 1\)"),
        (dict(sparsity=np.nan), r"^sparsity must be in \[0, 1\)"),
        (dict(gamma=1.0), r"^gamma must be in"),
        (dict(reward_scale=np.inf), r"^reward_scale must be"),
        (dict(reward_scale=-1.0), r"^reward_scale must be"),
    ],
)
def test_random_mdp_rejects_bad_input(kwargs, match):
    args = dict(n_states=3, n_actions=2, rng=np.random.default_rng(0), gamma=0.9)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        random_mdp(**args)


# ---------------------------------------------------------------------------
# Soft evaluation
# ---------------------------------------------------------------------------


@given(mdp=mdps(), alpha=alphas, seed=seeds)
def test_soft_evaluate_solves_the_soft_bellman_evaluation_equation(mdp, alpha, seed):
    pi = random_policy(np.random.default_rng(seed), mdp.n_states, mdp.n_actions)
    Q, V = soft_evaluate(mdp, pi, alpha)
    assert Q.shape == (mdp.n_states, mdp.n_actions) and V.shape == (mdp.n_states,)
    scale = 1.0 + np.abs(V).max()
    # Q = r + gamma E[V(s')]  and  V(s) = E_pi[Q(s, a) - alpha ln pi(a|s)]
    assert_allclose(Q, mdp.r + mdp.gamma * np.einsum("sat,t->sa", mdp.P, V), rtol=0, atol=1e-10 * scale)
    assert_allclose(V, (pi * Q).sum(axis=1) + alpha * _entropy(pi), rtol=0, atol=1e-10 * scale)


@given(mdp=mdps(), alpha=alphas, seed=seeds)
def test_soft_evaluate_matches_iterative_evaluation(mdp, alpha, seed):
    pi = random_policy(np.random.default_rng(seed), mdp.n_states, mdp.n_actions)
    Q, V = soft_evaluate(mdp, pi, alpha)
    # gamma <= 0.95: 800 sweeps shrink the initial error by 0.95**800 < 1e-17
    Q_it, V_it = _iterative_soft_evaluation(mdp, pi, alpha, 800)
    assert_allclose(Q, Q_it, **EXACT)
    assert_allclose(V, V_it, **EXACT)


@given(mdp=mdps(), alpha=alphas, seed=seeds)
def test_score_is_expected_return_plus_discounted_entropy(mdp, alpha, seed):
    pi = random_policy(np.random.default_rng(seed), mdp.n_states, mdp.n_actions)
    J = score(mdp, pi, alpha)
    assert isinstance(J, float)
    _, V = soft_evaluate(mdp, pi, alpha)
    assert J == V[mdp.start]  # the score is the value of the start state, not of state 0
    assert_allclose(J, expected_return(mdp, pi) + discounted_entropy(mdp, pi, alpha), **EXACT)
    # the entropy part is linear in alpha and non-negative
    assert discounted_entropy(mdp, pi, alpha) >= 0.0
    assert_allclose(discounted_entropy(mdp, pi, 2 * alpha), 2 * discounted_entropy(mdp, pi, alpha), **EXACT)


@pytest.mark.parametrize("r, gamma, alpha", [([1.0], 0.5, 0.3), ([0.0, 1.0, -2.0], 0.9, 0.7), ([3.0, 3.0], 0.0, 1.0)])
def test_one_state_closed_forms(r, gamma, alpha):
    A = len(r)
    r = np.array([r])
    mdp = TabularMDP(np.ones((1, A, 1)), r, gamma)
    # uniform policy: V = (mean r + alpha ln A) / (1 - gamma)
    _, V = soft_evaluate(mdp, uniform_policy(1, A), alpha)
    assert_allclose(V, (r.mean() + alpha * np.log(A)) / (1 - gamma), **EXACT)
    # optimal: V* = alpha ln sum_a exp(r_a / alpha) / (1 - gamma), pi* = softmax(r / alpha)
    pi, Q, V = soft_optimal(mdp, alpha)
    V_star = alpha * logsumexp(r / alpha) / (1 - gamma)
    assert_allclose(V, [V_star], **VI)
    assert_allclose(Q, r + gamma * V_star, **VI)
    assert_allclose(pi, np.exp(r / alpha) / np.exp(r / alpha).sum(), **VI)
    # a deterministic policy earns no entropy: V = r_0 / (1 - gamma)
    det = np.zeros((1, A))
    det[0, 0] = 1.0
    assert_allclose(score(mdp, det, alpha), r[0, 0] / (1 - gamma), **EXACT)
    assert_allclose(expected_return(mdp, det), r[0, 0] / (1 - gamma), **EXACT)


def test_gamma_zero_is_one_step():
    mdp = random_mdp(4, 3, np.random.default_rng(3), gamma=0.0)
    pi = random_policy(np.random.default_rng(4), 4, 3)
    Q, V = soft_evaluate(mdp, pi, 0.5)
    assert_allclose(Q, mdp.r, rtol=0, atol=0)
    assert_allclose(V, (pi * mdp.r).sum(axis=1) + 0.5 * _entropy(pi), rtol=1e-12, atol=1e-12)


def test_two_state_chain_closed_form():
    # state 0 -> state 1 (absorbing) whatever the action; r(0, .) = (1, 2), r(1, .) = (0, 0)
    P = np.zeros((2, 2, 2))
    P[:, :, 1] = 1.0
    r = np.array([[1.0, 2.0], [0.0, 0.0]])
    mdp = TabularMDP(P, r, 0.9)
    alpha = 0.5
    pi = np.array([[0.2, 0.8], [0.5, 0.5]])
    V1 = alpha * np.log(2) / (1 - 0.9)
    V0 = 0.2 * 1 + 0.8 * 2 + alpha * _entropy(pi[:1])[0] + 0.9 * V1
    Q, V = soft_evaluate(mdp, pi, alpha)
    assert_allclose(V, [V0, V1], **EXACT)
    assert_allclose(Q, [[1 + 0.9 * V1, 2 + 0.9 * V1], [0.9 * V1, 0.9 * V1]], **EXACT)


@pytest.mark.parametrize(
    "pi, alpha, match",
    [
        (np.full((3, 3), 1 / 3), 0.5, r"^pi must have shape \(n_states, n_actions\) = \(3, 2\)"),
        (np.full(3, 0.5), 0.5, r"^pi must have 2 dimensions"),
        (np.full((3, 2), 0.6), 0.5, r"each row of pi must sum to 1; row 0"),
        (np.array([[0.5, 0.5], [1.2, -0.2], [0.5, 0.5]]), 0.5, r"^pi must have non-negative entries"),
        (np.array([[0.5, 0.5], [np.nan, 0.5], [0.5, 0.5]]), 0.5, r"^pi must contain only finite"),
        (np.array([[0.5, 0.5], [np.inf, 0.5], [0.5, 0.5]]), 0.5, r"^pi must contain only finite"),
        (np.full((3, 2), 0.5), 0.0, r"^alpha must be a finite number > 0"),
        (np.full((3, 2), 0.5), -1.0, r"^alpha must be a finite number > 0"),
        (np.full((3, 2), 0.5), np.nan, r"^alpha must be a finite number > 0"),
        (np.full((3, 2), 0.5), np.inf, r"^alpha must be a finite number > 0"),
        (np.full((3, 2), 0.5), "big", r"^alpha must be a positive number"),
    ],
)
@pytest.mark.parametrize("fn", [soft_evaluate, score, discounted_entropy])
def test_evaluation_functions_reject_bad_input(small_mdp, fn, pi, alpha, match):
    with pytest.raises(ValueError, match=match):
        fn(small_mdp, pi, alpha)


def test_expected_return_rejects_bad_policy(small_mdp):
    with pytest.raises(ValueError, match=r"each row of pi must sum to 1"):
        expected_return(small_mdp, np.full((3, 2), 0.2))
    with pytest.raises(ValueError, match=r"^pi must have shape"):
        expected_return(small_mdp, np.full((2, 2), 0.5))


# ---------------------------------------------------------------------------
# Optimal soft policy
# ---------------------------------------------------------------------------


@given(mdp=mdps(), alpha=alphas)
def test_soft_optimal_satisfies_the_soft_bellman_optimality_equation(mdp, alpha):
    pi, Q, V = soft_optimal(mdp, alpha)
    assert_allclose(Q, mdp.r + mdp.gamma * np.einsum("sat,t->sa", mdp.P, V), **VI)
    assert_allclose(V, alpha * logsumexp(Q / alpha, axis=1), **VI)
    assert_allclose(pi, np.exp((Q - V[:, None]) / alpha), **VI)
    assert_allclose(pi.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    # (Q, V) are also the soft evaluation of pi itself
    Q_pi, V_pi = soft_evaluate(mdp, pi, alpha)
    assert_allclose(Q_pi, Q, **VI)
    assert_allclose(V_pi, V, **VI)


@given(mdp=mdps(), alpha=alphas, seed=seeds)
def test_optimal_soft_policy_beats_random_policies(mdp, alpha, seed):
    rng = np.random.default_rng(seed)
    pi_star, _, V_star = soft_optimal(mdp, alpha)
    J_star = score(mdp, pi_star, alpha)
    for _ in range(5):
        pi = random_policy(rng, mdp.n_states, mdp.n_actions)
        _, V = soft_evaluate(mdp, pi, alpha)
        # value-iteration error (<= 2e-11) is the only slack
        assert np.all(V <= V_star + 1e-9)
        assert score(mdp, pi, alpha) <= J_star + 1e-9


def test_soft_optimal_on_a_known_mdp_differs_from_uniform():
    # one state, two actions with rewards 0 and 1: uniform is strictly suboptimal
    mdp = TabularMDP(np.ones((1, 2, 1)), [[0.0, 1.0]], 0.5)
    pi, _, _ = soft_optimal(mdp, 0.5)
    assert pi[0, 1] > 0.8  # e^2 / (1 + e^2) = 0.88
    assert score(mdp, pi, 0.5) > score(mdp, uniform_policy(1, 2), 0.5) + 0.1


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(alpha=0.0), ValueError, r"^alpha must be"),
        (dict(alpha=np.nan), ValueError, r"^alpha must be"),
        (dict(alpha=0.5, tol=0.0), ValueError, r"^tol must be a finite number > 0"),
        (dict(alpha=0.5, tol=np.nan), ValueError, r"^tol must be a finite number > 0"),
        (dict(alpha=0.5, tol="small"), ValueError, r"^tol must be a finite number > 0"),
        (dict(alpha=0.5, max_iter=0), ValueError, r"^max_iter must be an integer >= 1"),
        (dict(alpha=0.5, max_iter=2), RuntimeError, r"did not reach tol"),
    ],
)
def test_soft_optimal_rejects_bad_input(small_mdp, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        soft_optimal(small_mdp, **kwargs)


@given(st.data())
def test_soft_optimal_with_gamma_zero_is_softmax_of_reward(data):
    mdp = data.draw(mdps(gamma=st.just(0.0)))
    alpha = data.draw(alphas)
    pi, Q, V = soft_optimal(mdp, alpha)
    assert_allclose(Q, mdp.r, rtol=0, atol=1e-12)
    assert_allclose(pi, softmax_policy(mdp.r, alpha), rtol=1e-12, atol=1e-12)
