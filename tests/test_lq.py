"""Tests of lfl_lib.lq: the closed forms of the entropy-regularized linear-quadratic problem
against numerical integration, Monte Carlo and the theorems they must satisfy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from lfl_lib import lq

#: The problem of the end-to-end tests: marginally stable (eigenvalue 1), one action.
PROBLEM = lq.LQProblem(
    A=[[1.0, 0.2], [0.0, 0.9]],
    B=[[0.0], [0.5]],
    Q=np.eye(2),
    R=[[0.5]],
    N=[[0.1], [0.0]],
    W=0.01 * np.eye(2),
    gamma=0.9,
    alpha=0.5,
)
PI1 = lq.LinearGaussianPolicy([[-0.5, -0.5]], [0.3], [[1.0]])


def _deterministic(p: lq.LQProblem, **kw) -> lq.LQProblem:
    args = dict(A=p.A, B=p.B, Q=p.Q, R=p.R, N=p.N, gamma=p.gamma, alpha=p.alpha)
    args.update(kw)
    return lq.LQProblem(**args)


def _random_problem(seed: int, terminal: bool = False) -> tuple[lq.LQProblem, lq.LinearGaussianPolicy]:
    """A random stable problem (n = 2, m = 1 or 2) and a random policy that keeps it stable."""
    rng = np.random.default_rng(seed)
    n, m = 2, int(rng.integers(1, 3))
    A = rng.normal(size=(n, n))
    A *= rng.uniform(0.3, 0.9) / max(abs(np.linalg.eigvals(A)))
    B = rng.normal(size=(n, m))
    L = rng.normal(size=(m, m))
    Rm = L @ L.T + 0.5 * np.eye(m)
    N = 0.3 * rng.normal(size=(n, m))
    L = rng.normal(size=(n, n))
    Qm = L @ L.T + N @ np.linalg.solve(Rm, N.T)  # the cost is jointly convex
    prob = lq.LQProblem(
        A=A, B=B, Q=Qm, R=Rm, N=N, gamma=rng.uniform(0.5, 0.95), alpha=rng.uniform(0.2, 2.0), terminal=terminal
    )
    K = 0.1 * rng.normal(size=(m, n))
    while max(abs(np.linalg.eigvals(A + B @ K))) >= 0.95:  # keep the policy stabilizing
        K *= 0.5
    L = rng.normal(size=(m, m))
    cov = L @ L.T + 0.3 * np.eye(m)
    return prob, lq.LinearGaussianPolicy(K, rng.normal(size=m), cov)


def _trapezoid_soft_value(Q_of_a, alpha, grid):
    """alpha ln int exp(Q(a)/alpha) da on a fine 1-D grid (log-sum-exp for stability)."""
    q = Q_of_a(grid) / alpha
    c = q.max()
    return alpha * (c + np.log(np.trapezoid(np.exp(q - c), grid)))


def test_soft_evaluation_matches_monte_carlo():
    P = lq.soft_evaluate(PROBLEM, PI1)
    rng = np.random.default_rng(0)
    s0 = np.array([1.0, -0.5])
    n, T = 4000, 120  # gamma^120 < 1e-5
    S = np.tile(s0, (n, 1))
    ret, disc = np.zeros(n), 1.0
    for _ in range(T):
        a = PI1.sample(S, rng)
        ret += disc * (PROBLEM.reward(S, a) - PROBLEM.alpha * PI1.log_prob(S, a))
        S = S @ PROBLEM.A.T + a @ PROBLEM.B.T + 0.1 * rng.standard_normal(S.shape)
        disc *= PROBLEM.gamma
    se = ret.std() / np.sqrt(n)
    assert abs(lq.values(P, s0[None])[0] - ret.mean()) < 4 * se, (lq.values(P, s0[None])[0], ret.mean(), se)


def test_soft_optimal_satisfies_the_soft_bellman_optimality_equation():
    # W = 0 makes E[V(s')] exact; the soft maximum over a is done by numerical integration
    prob = _deterministic(PROBLEM)
    pi, P = lq.soft_optimal(prob)
    H = lq.q_matrix(prob, P)
    rng = np.random.default_rng(1)
    grid = np.linspace(-12, 12, 20001)
    for s in rng.normal(size=(4, 2)):
        Q_of_a = lambda a, s=s: lq.quadratic_reward(H, np.tile(s, (len(a), 1)), a[:, None])
        assert_allclose(_trapezoid_soft_value(Q_of_a, prob.alpha, grid), lq.values(P, s[None])[0], rtol=1e-8)
        # Q* = r + gamma V*(s') at a few actions
        a = rng.normal(size=(3, 1))
        s2 = s @ prob.A.T + a @ prob.B.T
        assert_allclose(
            lq.quadratic_reward(H, np.tile(s, (3, 1)), a),
            prob.reward(np.tile(s, (3, 1)), a) + prob.gamma * lq.values(P, s2),
            rtol=1e-10,
        )
    # the optimal policy is exp((Q* - V*)/alpha)
    s, a = rng.normal(size=(5, 2)), rng.normal(size=(5, 1))
    assert_allclose(prob.alpha * pi.log_prob(s, a), lq.quadratic_reward(H, s, a) - lq.values(P, s), rtol=1e-9)


def test_noise_enters_the_value_only_through_its_constant():
    p0, _ = lq.soft_optimal(_deterministic(PROBLEM))
    p1, P1 = lq.soft_optimal(PROBLEM)
    assert_allclose(p1.G, p0.G, rtol=1e-10)
    assert_allclose(p1.cov, p0.cov, rtol=1e-10)
    # E[V(s')] over the noise: a Monte Carlo check of the trace term
    H = lq.q_matrix(PROBLEM, P1)
    rng = np.random.default_rng(2)
    s, a = np.array([[0.5, -1.0]]), np.array([[0.3]])
    w = 0.1 * rng.standard_normal((200_000, 2))
    ev = lq.values(P1, s @ PROBLEM.A.T + a @ PROBLEM.B.T + w).mean()
    assert_allclose(lq.quadratic_reward(H, s, a)[0], PROBLEM.reward(s, a)[0] + PROBLEM.gamma * ev, rtol=1e-3)


def test_soft_policy_iteration_improves_and_converges_to_the_optimum():
    pis = lq.spi_learner(PROBLEM, PI1, 6)
    s = np.random.default_rng(3).normal(size=(50, 2))
    vals = [lq.values(lq.soft_evaluate(PROBLEM, p), s) for p in pis]
    for v, w in zip(vals[:-1], vals[1:]):
        assert np.all(w >= v - 1e-9)  # policy improvement theorem, at every state
    opt, P = lq.soft_optimal(PROBLEM)
    assert_allclose(pis[-1].G, opt.G, atol=1e-9)
    assert_allclose(pis[-1].cov, opt.cov, atol=1e-9)
    assert_allclose(lq.soft_evaluate(PROBLEM, opt), P, rtol=1e-8, atol=1e-10)
    # the optimal mean is the discounted LQR gain; the covariance is alpha/2 (R + gamma B'PB)^-1
    Pss = P[:2, :2]
    Haa = PROBLEM.R + PROBLEM.gamma * PROBLEM.B.T @ Pss @ PROBLEM.B
    Has = PROBLEM.N.T + PROBLEM.gamma * PROBLEM.B.T @ Pss @ PROBLEM.A
    assert_allclose(opt.K, -np.linalg.solve(Haa, Has), rtol=1e-9)
    assert_allclose(opt.cov, PROBLEM.alpha / 2 * np.linalg.inv(Haa), rtol=1e-9)


def test_soft_improvement_is_the_normalized_exponential_of_q():
    prob = _deterministic(PROBLEM)
    pi2 = lq.soft_improve(prob, PI1)
    H = lq.q_matrix(prob, lq.soft_evaluate(prob, PI1))
    grid = np.linspace(-12, 12, 20001)
    for s in np.random.default_rng(4).normal(size=(3, 2)):
        Q_of_a = lambda a, s=s: lq.quadratic_reward(H, np.tile(s, (len(a), 1)), a[:, None])
        log_z = _trapezoid_soft_value(Q_of_a, prob.alpha, grid) / prob.alpha
        a = np.array([[-1.0], [0.2], [1.5]])
        assert_allclose(pi2.log_prob(np.tile(s, (3, 1)), a), Q_of_a(a[:, 0]) / prob.alpha - log_z, rtol=1e-8)


@given(st.integers(0, 2**31 - 1))
def test_theorem_2_in_closed_form(seed):
    # r(s, a) = alpha ln pi2(a|s) + alpha gamma KL(pi1 || pi2)(s') + V~(s) - gamma V~(s'), per sample when W = 0
    prob, pi1 = _random_problem(seed)
    pi2 = lq.soft_improve(prob, pi1)
    Vt = lq.soft_value_of_q(prob, lq.q_matrix(prob, lq.soft_evaluate(prob, pi1)))
    rng = np.random.default_rng(seed)
    s, a = rng.normal(size=(20, prob.n)), rng.normal(size=(20, prob.m))
    s2 = s @ prob.A.T + a @ prob.B.T
    target = lq.inversion_target(prob, pi1, pi2, s, a, s2)
    want = prob.reward(s, a) - lq.values(Vt, s) + prob.gamma * lq.values(Vt, s2)
    assert_allclose(target, want, rtol=1e-7, atol=1e-7 * np.abs(want).max())


@given(st.integers(0, 2**31 - 1))
def test_theorem_2_with_terminal_transitions(seed):
    # an absorbing terminal s' of value 0: r = alpha ln pi2 + V~(s), no term at s'
    prob, pi1 = _random_problem(seed, terminal=True)
    pi2 = lq.soft_improve(prob, pi1)
    Vt = lq.soft_value_of_q(prob, lq.q_matrix(prob, lq.soft_evaluate(prob, pi1)))
    rng = np.random.default_rng(seed)
    s, a = rng.normal(size=(20, prob.n)), rng.normal(size=(20, prob.m))
    target = lq.inversion_target(prob, pi1, pi2, s, a, rng.normal(size=(20, prob.n)))
    want = prob.reward(s, a) - lq.values(Vt, s)
    assert_allclose(target, want, rtol=1e-7, atol=1e-7 * np.abs(want).max())


@given(st.integers(0, 2**31 - 1))
def test_the_reward_alpha_ln_pi_is_soft_optimal_for_pi(seed):
    # so an observer that drops the KL term imitates the last policy it fits
    prob, pi = _random_problem(seed)
    opt, P = lq.soft_optimal(prob, lq.log_policy_reward_matrix(pi, prob.alpha))
    assert_allclose(opt.G, pi.G, atol=1e-8)
    assert_allclose(opt.cov, pi.cov, atol=1e-8)
    assert_allclose(P, 0.0, atol=1e-8)  # V* = 0


@given(st.integers(0, 2**31 - 1))
def test_shaping_keeps_the_soft_optimal_policy(seed):
    prob, _ = _random_problem(seed)
    rng = np.random.default_rng(seed)
    L = rng.normal(size=(prob.n + 1, prob.n + 1))
    Phi = 0.2 * (L + L.T)  # potential f(s) = -x'Phi x
    # r + f(s) - gamma f(s') as a quadratic in z (W = 0: no trace term)
    Ab, Bb, _ = prob.augmented()
    AB = np.hstack([Ab, Bb])
    M = lq.reward_matrix(prob)
    E = np.zeros_like(M)
    E[: prob.n + 1, : prob.n + 1] = Phi
    M_shaped = M + E - prob.gamma * AB.T @ Phi @ AB
    s, a = rng.normal(size=(5, prob.n)), rng.normal(size=(5, prob.m))
    assert_allclose(
        lq.quadratic_reward(M_shaped, s, a),
        prob.reward(s, a) + lq.values(Phi, s) - prob.gamma * lq.values(Phi, s @ prob.A.T + a @ prob.B.T),
        rtol=1e-9,
        atol=1e-9,
    )
    try:
        shaped, _ = lq.soft_optimal(prob, M_shaped)
    except ValueError:
        return  # this shaping makes Q(s, .) unbounded in a: no soft-optimal policy to compare
    opt, _ = lq.soft_optimal(prob)
    assert_allclose(shaped.G, opt.G, atol=1e-7)
    assert_allclose(shaped.cov, opt.cov, atol=1e-7)


def test_log_policy_reward_matrix_is_the_log_density():
    pi = lq.LinearGaussianPolicy([[0.3, -1.0], [0.5, 0.2]], [0.1, -0.2], [[0.5, 0.1], [0.1, 0.3]])
    s, a = np.random.default_rng(5).normal(size=(6, 2)), np.random.default_rng(6).normal(size=(6, 2))
    assert_allclose(
        lq.quadratic_reward(lq.log_policy_reward_matrix(pi, 0.7), s, a), 0.7 * pi.log_prob(s, a), rtol=1e-12
    )
    from scipy.stats import multivariate_normal

    want = [multivariate_normal(pi.mean(x[None])[0], pi.cov).logpdf(y) for x, y in zip(s, a)]
    assert_allclose(pi.log_prob(s, a), want, rtol=1e-12)
    assert_allclose(pi.entropy(), multivariate_normal(np.zeros(2), pi.cov).entropy(), rtol=1e-12)


def test_gaussian_kl_against_monte_carlo():
    p = lq.LinearGaussianPolicy([[0.3, -1.0]], [0.1], [[0.5]])
    q = lq.LinearGaussianPolicy([[0.0, -0.5]], [0.4], [[0.2]])
    s = np.array([[0.5, 1.0]])
    a = p.sample(np.tile(s, (200_000, 1)), np.random.default_rng(7))
    mc = np.mean(p.log_prob(np.tile(s, (len(a), 1)), a) - q.log_prob(np.tile(s, (len(a), 1)), a))
    assert_allclose(lq.gaussian_kl(p, q, s)[0], mc, rtol=1e-2)


def test_unstable_policy_and_bad_input_are_refused():
    with pytest.raises(ValueError, match="stabilize"):
        lq.soft_evaluate(PROBLEM, lq.LinearGaussianPolicy([[0.0, 4.0]], [0.0], [[1.0]]))
    with pytest.raises(ValueError, match="B must have n = 2 rows"):
        lq.LQProblem(A=np.eye(2), B=np.ones((3, 1)), Q=np.eye(2), R=[[1.0]])
    with pytest.raises(ValueError, match="R must be positive definite"):
        lq.LQProblem(A=np.eye(2), B=np.ones((2, 1)), Q=np.eye(2), R=[[0.0]])
    with pytest.raises(ValueError, match="gamma must be in"):
        lq.LQProblem(A=np.eye(2), B=np.ones((2, 1)), Q=np.eye(2), R=[[1.0]], gamma=1.0)
    with pytest.raises(ValueError, match="Q must have shape"):
        lq.LQProblem(A=np.eye(2), B=np.ones((2, 1)), Q=np.eye(3), R=[[1.0]])
    with pytest.raises(ValueError, match="cov must be symmetric positive definite"):
        lq.LinearGaussianPolicy([[0.0, 0.0]], [0.0], [[-1.0]])
    with pytest.raises(ValueError, match="k must have shape"):
        lq.LinearGaussianPolicy([[0.0, 0.0]], [0.0, 1.0], [[1.0]])


def test_rollout_episodes_and_flags():
    prob = lq.LQProblem(A=PROBLEM.A, B=PROBLEM.B, Q=PROBLEM.Q, R=PROBLEM.R, horizon=7)
    ro = lq.rollout(prob, PI1, 30, np.random.default_rng(8))
    assert ro.observations.shape == (30, 2) and ro.actions.shape == (30, 1)
    assert np.flatnonzero(ro.truncations).tolist() == [6, 13, 20, 27] and not ro.terminations.any()
    # W = 0: s' = A s + B a exactly; inside an episode the next row starts where s' is
    assert_allclose(ro.next_observations, ro.observations @ prob.A.T + ro.actions @ prob.B.T, rtol=1e-12)
    cont = ~ro.truncations[:-1]
    assert_allclose(ro.observations[1:][cont], ro.next_observations[:-1][cont])
    one = lq.rollout(_deterministic(prob, terminal=True), PI1, 5, np.random.default_rng(8))
    assert one.terminations.all() and not one.truncations.any()


def test_environment_follows_the_problem():
    env = lq.LQEnv(PROBLEM)
    s, _ = env.reset(seed=0)
    a = np.array([0.4])
    s2, r, term, trunc, _ = env.step(a)
    assert_allclose(r, PROBLEM.reward(s[None], a[None])[0], rtol=1e-12)
    assert np.linalg.norm(s2 - (PROBLEM.A @ s + PROBLEM.B @ a)) < 0.6  # noise sd 0.1 per coordinate
    assert not term and not trunc


def test_actor_bridge_round_trip():
    pi = lq.LinearGaussianPolicy([[0.3, -1.0]], [0.2], [[0.4]])
    mean, std = np.array([0.5, -1.0]), np.array([2.0, 0.5])
    actor = lq.to_actor(pi, mean, std)
    s, a = np.random.default_rng(9).normal(size=(10, 2)), np.random.default_rng(10).normal(size=(10, 1))
    x = torch.as_tensor((s - mean) / std, dtype=torch.float32)
    got = actor.log_prob(x, torch.as_tensor(a, dtype=torch.float32)).detach().numpy()
    assert_allclose(got, pi.log_prob(s, a), rtol=1e-5)
    back = lq.from_actor(actor, mean, std)
    assert_allclose(back.G, pi.G, rtol=1e-6)
    assert_allclose(back.cov, pi.cov, rtol=1e-6)
