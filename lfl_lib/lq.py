"""The entropy-regularized linear-quadratic problem: a continuous test bed in closed form.

Linear dynamics :math:`s' = A s + B a + w`, :math:`w \\sim N(0, W)`, a quadratic reward
:math:`r(s, a) = -(s^\\top Q s + a^\\top R a + 2 s^\\top N a)` and Gaussian policies with
linear means :math:`\\pi(a|s) = N(K s + k, \\Sigma)`. Soft policy evaluation and soft
policy improvement (Eq. (2)-(3) of the paper) stay in that family, so every quantity of
Theorem 2 has a closed form (the derivation is in the book's appendix page
``appendix_lq``). That makes the problem a test bed for the continuous Algorithm 1
(:mod:`lfl_lib.deep_lfl`) and for PPO (:mod:`lfl_lib.ppo`).

Conventions. The augmented state is :math:`x = (s, 1)` (dimension ``n + 1``) and
:math:`z = (x, a)`; a quadratic reward is a symmetric matrix :math:`M` with
:math:`r = -z^\\top M z`; a value function is a symmetric matrix :math:`P` with
:math:`V(s) = -x^\\top P x`, its constant in the corner ``P[n, n]``; a policy's mean is
:math:`G x` with :math:`G = [K, k]`. With ``terminal=True`` every transition ends the
episode in an absorbing state of value 0 (a one-step problem, a contextual bandit): the
Bellman equations then have no :math:`s'` term.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from numpy.typing import ArrayLike, NDArray

from .data import Rollout
from .nets import GaussianActor

__all__ = [
    "LQProblem",
    "LinearGaussianPolicy",
    "LQEnv",
    "reward_matrix",
    "log_policy_reward_matrix",
    "quadratic_reward",
    "soft_evaluate",
    "q_matrix",
    "soft_improve",
    "kl_soft_improve",
    "soft_value_of_q",
    "soft_optimal",
    "spi_learner",
    "gaussian_kl",
    "inversion_target",
    "values",
    "rollout",
    "to_actor",
    "from_actor",
]

Array = NDArray[np.float64]


def _mat(x: ArrayLike, name: str, shape: tuple[int, int]) -> Array:
    a = np.array(x, dtype=np.float64, ndmin=2)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite")
    return a


def _logdet(S: Array) -> float:
    sign, ld = np.linalg.slogdet(S)
    if sign <= 0:
        raise ValueError("covariance must be positive definite")
    return float(ld)


@dataclass(frozen=True, eq=False)
class LQProblem:
    """An entropy-regularized linear-quadratic MDP.

    Parameters
    ----------
    A : array, shape (n, n)
    B : array, shape (n, m)
        Dynamics :math:`s' = A s + B a + w`.
    Q : array, shape (n, n)
        State cost, symmetric positive semi-definite.
    R : array, shape (m, m)
        Action cost, symmetric positive definite.
    N : array, shape (n, m), optional
        Cross cost (default 0): :math:`r = -(s^\\top Q s + a^\\top R a + 2 s^\\top N a)`.
    W : array, shape (n, n), optional
        Covariance of the dynamics noise (default 0: deterministic).
    gamma, alpha : float
        Discount in [0, 1) and entropy weight > 0.
    start_cov : array, shape (n, n), optional
        Covariance of the start state :math:`s_0 \\sim N(0, \\cdot)` (default identity).
    horizon : int
        Episode length of :func:`rollout` and :class:`LQEnv`: a time-limit truncation, so
        the infinite-horizon closed forms still apply. Ignored when ``terminal``.
    terminal : bool
        Every transition terminates (absorbing, value 0): a one-step problem.
    """

    A: Array
    B: Array
    Q: Array
    R: Array
    N: Array | None = None
    W: Array | None = None
    gamma: float = 0.9
    alpha: float = 0.5
    start_cov: Array | None = None
    horizon: int = 50
    terminal: bool = False
    n: int = field(init=False)
    m: int = field(init=False)

    def __post_init__(self) -> None:
        A = np.array(self.A, dtype=np.float64, ndmin=2)
        n = A.shape[0]
        B = np.array(self.B, dtype=np.float64, ndmin=2)
        if B.shape[0] != n:
            raise ValueError(f"B must have n = {n} rows; got shape {B.shape}")
        m = B.shape[1]
        set_ = lambda k, v: object.__setattr__(self, k, v)
        set_("n", n)
        set_("m", m)
        set_("A", _mat(A, "A", (n, n)))
        set_("B", _mat(B, "B", (n, m)))
        set_("Q", _mat(self.Q, "Q", (n, n)))
        set_("R", _mat(self.R, "R", (m, m)))
        set_("N", np.zeros((n, m)) if self.N is None else _mat(self.N, "N", (n, m)))
        set_("W", np.zeros((n, n)) if self.W is None else _mat(self.W, "W", (n, n)))
        set_("start_cov", np.eye(n) if self.start_cov is None else _mat(self.start_cov, "start_cov", (n, n)))
        for name in ("Q", "R", "W", "start_cov"):
            X = getattr(self, name)
            if not np.allclose(X, X.T):
                raise ValueError(f"{name} must be symmetric")
        if np.linalg.eigvalsh(self.R).min() <= 0:
            raise ValueError("R must be positive definite")
        if (
            np.linalg.eigvalsh(cast(Array, self.W)).min() < -1e-12
            or np.linalg.eigvalsh(cast(Array, self.start_cov)).min() < -1e-12
        ):
            raise ValueError("W and start_cov must be positive semi-definite")
        if not 0.0 <= float(self.gamma) < 1.0:
            raise ValueError(f"gamma must be in [0, 1); got {self.gamma!r}")
        if not float(self.alpha) > 0:
            raise ValueError(f"alpha must be > 0; got {self.alpha!r}")
        if int(self.horizon) < 1:
            raise ValueError(f"horizon must be a positive integer; got {self.horizon!r}")
        set_("gamma", float(self.gamma))
        set_("alpha", float(self.alpha))
        set_("horizon", int(self.horizon))

    @property
    def bellman_gamma(self) -> float:
        """The discount in the Bellman equations: ``gamma``, or 0 when every step is terminal."""
        return 0.0 if self.terminal else self.gamma

    def augmented(self) -> tuple[Array, Array, Array]:
        """:math:`(\\bar A, \\bar B, \\bar W)` of the augmented state :math:`x = (s, 1)`."""
        n, m = self.n, self.m
        Ab = np.zeros((n + 1, n + 1))
        Ab[:n, :n] = self.A
        Ab[n, n] = 1.0
        Bb = np.zeros((n + 1, m))
        Bb[:n] = self.B
        Wb = np.zeros((n + 1, n + 1))
        Wb[:n, :n] = self.W
        return Ab, Bb, Wb

    def reward(self, s: ArrayLike, a: ArrayLike) -> Array:
        """:math:`r(s, a)` on batches ``s`` (T, n) and ``a`` (T, m); shape (T,)."""
        return quadratic_reward(reward_matrix(self), s, a)


@dataclass(frozen=True, eq=False)
class LinearGaussianPolicy:
    """:math:`\\pi(a|s) = N(K s + k, \\Sigma)`.

    Parameters
    ----------
    K : array, shape (m, n)
    k : array, shape (m,)
    cov : array, shape (m, m), symmetric positive definite
    """

    K: Array
    k: Array
    cov: Array

    def __post_init__(self) -> None:
        K = np.array(self.K, dtype=np.float64, ndmin=2)
        m = K.shape[0]
        object.__setattr__(self, "K", K)
        k = np.array(self.k, dtype=np.float64).reshape(-1)
        if k.shape != (m,):
            raise ValueError(f"k must have shape ({m},); got {k.shape}")
        object.__setattr__(self, "k", k)
        cov = _mat(self.cov, "cov", (m, m))
        if not np.allclose(cov, cov.T) or np.linalg.eigvalsh(cov).min() <= 0:
            raise ValueError("cov must be symmetric positive definite")
        object.__setattr__(self, "cov", 0.5 * (cov + cov.T))

    @property
    def G(self) -> Array:
        """The mean as a map of the augmented state, :math:`G = [K, k]`, shape (m, n + 1)."""
        return np.hstack([self.K, self.k[:, None]])

    def mean(self, s: ArrayLike) -> Array:
        return np.atleast_2d(np.asarray(s, dtype=np.float64)) @ self.K.T + self.k

    def log_prob(self, s: ArrayLike, a: ArrayLike) -> Array:
        """:math:`\\ln \\pi(a|s)`; shape (T,)."""
        d = np.atleast_2d(np.asarray(a, dtype=np.float64)) - self.mean(s)
        P = np.linalg.inv(self.cov)
        return -0.5 * np.einsum("ti,ij,tj->t", d, P, d) - 0.5 * _logdet(2 * np.pi * self.cov)

    def entropy(self) -> float:
        """:math:`\\frac12 \\ln\\det(2\\pi e \\Sigma)`, the same at every state."""
        return 0.5 * _logdet(2 * np.pi * np.e * self.cov)

    def sample(self, s: ArrayLike, rng: np.random.Generator) -> Array:
        mu = self.mean(s)
        L = np.linalg.cholesky(self.cov)
        return mu + rng.standard_normal(mu.shape) @ L.T


# ------------------------------------------------------------------ quadratic forms


def _z(s: ArrayLike, a: ArrayLike) -> Array:
    s = np.atleast_2d(np.asarray(s, dtype=np.float64))
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    return np.hstack([s, np.ones((len(s), 1)), a])


def reward_matrix(problem: LQProblem) -> Array:
    """The problem's reward as :math:`M` with :math:`r = -z^\\top M z`, shape (n+1+m, n+1+m)."""
    n, m = problem.n, problem.m
    M = np.zeros((n + 1 + m, n + 1 + m))
    M[:n, :n] = problem.Q
    M[n + 1 :, n + 1 :] = problem.R
    M[:n, n + 1 :] = problem.N
    M[n + 1 :, :n] = cast(Array, problem.N).T
    return M


def log_policy_reward_matrix(policy: LinearGaussianPolicy, scale: float = 1.0) -> Array:
    """:math:`M` of the reward :math:`\\mathrm{scale} \\cdot \\ln \\pi(a|s)` (a quadratic in z)."""
    m, d = policy.K.shape[0], policy.K.shape[1] + 1
    U = np.hstack([-policy.G, np.eye(m)])  # a - G x = U z
    M = 0.5 * scale * U.T @ np.linalg.inv(policy.cov) @ U
    M[d - 1, d - 1] += 0.5 * scale * _logdet(2 * np.pi * policy.cov)
    return M


def quadratic_reward(M: Array, s: ArrayLike, a: ArrayLike) -> Array:
    """:math:`-z^\\top M z` with :math:`z = (s, 1, a)`; shape (T,)."""
    z = _z(s, a)
    return -np.einsum("ti,ij,tj->t", z, M, z)


def values(P: Array, s: ArrayLike) -> Array:
    """:math:`V(s) = -x^\\top P x` with :math:`x = (s, 1)`; shape (T,)."""
    s = np.atleast_2d(np.asarray(s, dtype=np.float64))
    x = np.hstack([s, np.ones((len(s), 1))])
    return -np.einsum("ti,ij,tj->t", x, P, x)


def q_matrix(problem: LQProblem, P: Array, M: Array | None = None) -> Array:
    """:math:`H` with :math:`Q(s, a) = r + \\gamma E[V(s')] = -z^\\top H z`, for :math:`V = -x^\\top P x`.

    :math:`H = M + \\gamma [\\bar A\\ \\bar B]^\\top P [\\bar A\\ \\bar B] + \\gamma\\,
    \\mathrm{tr}(P \\bar W)\\, e e^\\top`, e the constant coordinate.
    """
    M = reward_matrix(problem) if M is None else M
    Ab, Bb, Wb = problem.augmented()
    g = problem.bellman_gamma
    AB = np.hstack([Ab, Bb])
    H = M + g * AB.T @ P @ AB
    H[problem.n, problem.n] += g * float(np.trace(P @ Wb))
    return 0.5 * (H + H.T)


def soft_evaluate(problem: LQProblem, policy: LinearGaussianPolicy, M: Array | None = None) -> Array:
    """Soft policy evaluation (Eq. (2)) in closed form: :math:`P` with :math:`V^\\pi(s) = -x^\\top P x`.

    :math:`V^\\pi(s) = E_{a\\sim\\pi}[Q^\\pi(s, a)] + \\alpha \\mathcal H(\\pi)`, i.e.
    :math:`P = T^\\top H T + (\\mathrm{tr}(H_{aa}\\Sigma) - \\alpha\\mathcal H)\\, e e^\\top`
    with :math:`T = [I; G]` and :math:`H` = :func:`q_matrix` of P: a linear equation in P,
    solved exactly.

    Raises
    ------
    ValueError
        If the policy does not stabilize the discounted system
        (:math:`\\sqrt\\gamma\\,\\rho(A + BK) \\ge 1`: infinite value).
    """
    n = problem.n
    d = n + 1
    g = problem.bellman_gamma
    if g > 0 and np.sqrt(g) * max(abs(np.linalg.eigvals(problem.A + problem.B @ policy.K))) >= 1.0:
        raise ValueError("policy must stabilize the discounted system: sqrt(gamma) * rho(A + B K) < 1")
    M = reward_matrix(problem) if M is None else M
    T = np.vstack([np.eye(d), policy.G])
    const = float(np.trace(M[d:, d:] @ policy.cov)) - problem.alpha * policy.entropy()
    C = T.T @ M @ T
    C[n, n] += const
    Ab, Bb, Wb = problem.augmented()
    F = Ab + Bb @ policy.G
    Nz = Bb @ policy.cov @ Bb.T + Wb
    # P - g F'PF - g tr(P Nz) e e' = C, as a linear system in vec(P)
    L = np.eye(d * d) - g * np.kron(F.T, F.T)
    e = np.zeros((d, d))
    e[n, n] = 1.0
    L -= g * np.outer(e.reshape(-1), Nz.T.reshape(-1))
    P = np.linalg.solve(L, C.reshape(-1)).reshape(d, d)
    return 0.5 * (P + P.T)


def _policy_of_q(problem: LQProblem, H: Array) -> LinearGaussianPolicy:
    d = problem.n + 1
    Haa, Hax = H[d:, d:], H[d:, :d]
    if np.linalg.eigvalsh(Haa).min() <= 0:
        raise ValueError("Q(s, .) must be strictly concave in the action (H_aa positive definite)")
    Hinv = np.linalg.inv(Haa)
    G = -Hinv @ Hax
    return LinearGaussianPolicy(G[:, :-1], G[:, -1], (0.5 * problem.alpha * Hinv).astype(np.float64))


def soft_improve(problem: LQProblem, policy: LinearGaussianPolicy, M: Array | None = None) -> LinearGaussianPolicy:
    """Soft policy improvement (Eq. (3)): :math:`\\pi'(a|s) \\propto \\exp(Q^\\pi(s, a) / \\alpha)`.

    With :math:`Q^\\pi = -z^\\top H z`: :math:`\\pi' = N(-H_{aa}^{-1} H_{ax} x,\\ \\frac\\alpha2 H_{aa}^{-1})`.
    """
    return _policy_of_q(problem, q_matrix(problem, soft_evaluate(problem, policy, M), M))


def kl_soft_improve(
    problem: LQProblem, policy: LinearGaussianPolicy, kl_weight: float, M: Array | None = None
) -> LinearGaussianPolicy:
    r"""KL-regularized soft improvement: :math:`\pi'(a|s) \propto \pi(a|s)^{\lambda/(\alpha+\lambda)}
    \exp(Q^\pi(s, a)/(\alpha+\lambda))`, with :math:`\lambda` = ``kl_weight`` >= 0.

    The step of the KL-regularized learner (book chapter "What kind of learner?"); ``kl_weight=0``
    is :func:`soft_improve`. With :math:`Q^\pi = -z^\top H z` and :math:`a - Gx = Dz`,
    :math:`D = [-G, I]`, the log-density is :math:`-z^\top H' z/(\alpha+\lambda)` up to terms in s,
    :math:`H' = H + \frac\lambda2 D^\top\Sigma^{-1}D`: so
    :math:`\pi' = N(-H'^{-1}_{aa} H'_{ax} x,\ \frac{\alpha+\lambda}2 H'^{-1}_{aa})`.
    """
    lam = float(kl_weight)
    if not (np.isfinite(lam) and lam >= 0):
        raise ValueError(f"kl_weight must be a finite number >= 0; got {kl_weight!r}")
    H = q_matrix(problem, soft_evaluate(problem, policy, M), M)
    m = problem.m
    D = np.hstack([-policy.G, np.eye(m)])
    Hk = H + 0.5 * lam * D.T @ np.linalg.inv(policy.cov) @ D
    d = problem.n + 1
    Haa, Hax = Hk[d:, d:], Hk[d:, :d]
    Hinv = np.linalg.inv(Haa)
    G = -Hinv @ Hax
    return LinearGaussianPolicy(G[:, :-1], G[:, -1], 0.5 * (problem.alpha + lam) * Hinv)


def soft_value_of_q(problem: LQProblem, H: Array) -> Array:
    """:math:`\\tilde P` with :math:`\\alpha \\ln \\int \\exp(Q(s, a)/\\alpha)\\, da = -x^\\top \\tilde P x`.

    :math:`\\tilde P = H_{xx} - H_{xa} H_{aa}^{-1} H_{ax} - \\frac\\alpha2 \\ln\\det(\\pi\\alpha H_{aa}^{-1})\\, e e^\\top`.
    It is the soft value of the improved policy's Q and, in Theorem 2, the potential of the
    shaping (:func:`inversion_target`).
    """
    d = problem.n + 1
    new = _policy_of_q(problem, H)
    Pt = H[:d, :d] - H[:d, d:] @ np.linalg.solve(H[d:, d:], H[d:, :d])
    Pt[problem.n, problem.n] -= 0.5 * problem.alpha * _logdet(2 * np.pi * new.cov)
    return 0.5 * (Pt + Pt.T)


def soft_optimal(
    problem: LQProblem, M: Array | None = None, tol: float = 1e-12, max_iter: int = 100_000
) -> tuple[LinearGaussianPolicy, Array]:
    """The optimal soft policy of the reward ``M`` (default: the problem's) and its value.

    Soft value iteration :math:`\\tilde P \\leftarrow` :func:`soft_value_of_q` (:func:`q_matrix`
    (:math:`\\tilde P`)) from 0, a Riccati recursion, until the largest change is below
    ``tol`` (relative to the largest entry). The optimal mean :math:`K^* s + k^*` does not
    depend on :math:`\\alpha`; the covariance is :math:`\\frac\\alpha2 H_{aa}^{-1}`.

    Returns
    -------
    policy : LinearGaussianPolicy
    P : array, shape (n + 1, n + 1)
        :math:`V^*(s) = -x^\\top P x`.
    """
    d = problem.n + 1
    P = np.zeros((d, d))
    for _ in range(max_iter):
        P_new = soft_value_of_q(problem, q_matrix(problem, P, M))
        if np.max(np.abs(P_new - P)) <= tol * max(1.0, np.max(np.abs(P_new))):
            P = P_new
            break
        P = P_new
    else:
        raise ValueError(f"soft value iteration did not converge in {max_iter} iterations")
    return _policy_of_q(problem, q_matrix(problem, P, M)), P


def spi_learner(problem: LQProblem, policy: LinearGaussianPolicy, n_improvements: int) -> list[LinearGaussianPolicy]:
    """:math:`\\pi_1 = ` ``policy`` and ``n_improvements`` soft improvements: a list of n + 1 policies."""
    out = [policy]
    for _ in range(int(n_improvements)):
        out.append(soft_improve(problem, out[-1]))
    return out


def gaussian_kl(p: LinearGaussianPolicy, q: LinearGaussianPolicy, s: ArrayLike) -> Array:
    """:math:`KL(p(\\cdot|s) \\| q(\\cdot|s))` of two linear Gaussian policies; shape (T,)."""
    m = p.cov.shape[0]
    Qi = np.linalg.inv(q.cov)
    dm = q.mean(s) - p.mean(s)
    return 0.5 * (np.trace(Qi @ p.cov) + np.einsum("ti,ij,tj->t", dm, Qi, dm) - m + _logdet(q.cov) - _logdet(p.cov))


def inversion_target(
    problem: LQProblem,
    pi1: LinearGaussianPolicy,
    pi2: LinearGaussianPolicy,
    s: ArrayLike,
    a: ArrayLike,
    s_next: ArrayLike,
) -> Array:
    """Theorem 2's sampled target :math:`\\alpha \\ln \\pi_2(a|s) + \\alpha\\gamma KL(\\pi_1 \\| \\pi_2)(s')`.

    The term at :math:`s'` is dropped when the problem is ``terminal``. When
    :math:`\\pi_2 = ` :func:`soft_improve` :math:`(\\pi_1)` its expectation over
    :math:`s'` equals :math:`r(s, a) - \\tilde V(s) + \\gamma E[\\tilde V(s')]`, with
    :math:`\\tilde V` of :func:`soft_value_of_q` applied to :math:`Q^{\\pi_1}` (exactly, per
    sample, when W = 0).
    """
    out = problem.alpha * pi2.log_prob(s, a)
    if problem.bellman_gamma > 0:
        out = out + problem.alpha * problem.gamma * gaussian_kl(pi1, pi2, s_next)
    return out


# ------------------------------------------------------------------ data


def _psd_sqrt(S: Array) -> Array:
    """L with L L^T = S for a positive semi-definite S."""
    lam, V = np.linalg.eigh(S)
    return V * np.sqrt(np.clip(lam, 0.0, None))


def rollout(problem: LQProblem, policy: LinearGaussianPolicy, n_steps: int, rng: np.random.Generator) -> Rollout:
    """``n_steps`` transitions of ``policy``: episodes of ``horizon`` steps from :math:`s_0 \\sim N(0, \\cdot)`.

    An episode ends by truncation after ``horizon`` steps, or by termination after each
    step when the problem is ``terminal``; the last episode may be cut short.
    """
    n_steps = int(n_steps)
    if n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer; got {n_steps!r}")
    n, m = problem.n, problem.m
    S = np.zeros((n_steps, n))
    A = np.zeros((n_steps, m))
    S2 = np.zeros((n_steps, n))
    term = np.zeros(n_steps, bool)
    trunc = np.zeros(n_steps, bool)
    L0, Lw = _psd_sqrt(cast(Array, problem.start_cov)), _psd_sqrt(cast(Array, problem.W))
    horizon = 1 if problem.terminal else problem.horizon
    s = L0 @ rng.standard_normal(n)
    t_ep = 0
    for t in range(n_steps):
        a = policy.sample(s[None], rng)[0]
        s2 = problem.A @ s + problem.B @ a + Lw @ rng.standard_normal(n)
        S[t], A[t], S2[t] = s, a, s2
        t_ep += 1
        if t_ep == horizon:
            term[t], trunc[t] = problem.terminal, not problem.terminal
            s, t_ep = L0 @ rng.standard_normal(n), 0
        else:
            s = s2
    return Rollout(S, A, S2, term, trunc)


class LQEnv(gym.Env):  # type: ignore[type-arg]
    """The problem as a gymnasium environment (Box spaces, unbounded), for :class:`lfl_lib.ppo.PPO`.

    Register it with a fixed problem, e.g.
    ``gymnasium.register("MyLQ-v0", entry_point=functools.partial(LQEnv, problem))``.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, problem: LQProblem) -> None:
        self.problem = problem
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (problem.n,), np.float64)
        self.action_space = gym.spaces.Box(-np.inf, np.inf, (problem.m,), np.float64)
        self._s = np.zeros(problem.n)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):  # type: ignore[override]
        super().reset(seed=seed)
        self._s = self.np_random.multivariate_normal(np.zeros(self.problem.n), cast(Array, self.problem.start_cov))
        self._t = 0
        return self._s.copy(), {}

    def step(self, action: NDArray[np.float64]):  # type: ignore[override]
        p = self.problem
        a = np.asarray(action, dtype=np.float64).reshape(p.m)
        r = float(p.reward(self._s[None], a[None])[0])
        w = self.np_random.multivariate_normal(np.zeros(p.n), cast(Array, p.W)) if np.any(p.W) else 0.0
        self._s = p.A @ self._s + p.B @ a + w
        self._t += 1
        return self._s.copy(), r, p.terminal, (not p.terminal) and self._t >= p.horizon, {}


# ------------------------------------------------------------------ torch bridge


def to_actor(policy: LinearGaussianPolicy, mean: ArrayLike, std: ArrayLike) -> GaussianActor:
    """A linear :class:`~lfl_lib.nets.GaussianActor` (``hidden=()``) acting like ``policy`` on standardized states.

    The actor sees :math:`(s - \\mathrm{mean}) / \\mathrm{std}` (as behind
    :class:`lfl_lib.deep_lfl.Standardizer`); ``policy.cov`` must be diagonal.
    """
    m, n = policy.K.shape
    if not np.allclose(policy.cov, np.diag(np.diag(policy.cov))):
        raise ValueError("policy.cov must be diagonal (GaussianActor has one log-std per action)")
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    actor = GaussianActor(n, m, ())
    lin = cast(nn.Linear, actor.mean[0])
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(policy.K * std[None, :]))
        lin.bias.copy_(torch.as_tensor(policy.k + policy.K @ mean))
        actor.log_std.copy_(torch.as_tensor(0.5 * np.log(np.diag(policy.cov))))
    return actor


def from_actor(actor: GaussianActor, mean: ArrayLike, std: ArrayLike) -> LinearGaussianPolicy:
    """The :class:`LinearGaussianPolicy` of a linear actor (``hidden=()``) on standardized states."""
    layers = list(actor.mean)
    if len(layers) != 1 or not isinstance(layers[0], torch.nn.Linear):
        raise ValueError("actor must be linear (GaussianActor built with hidden=())")
    Wt = layers[0].weight.detach().double().numpy()
    b = layers[0].bias.detach().double().numpy()
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    K = Wt / std[None, :]
    return LinearGaussianPolicy(K, b - K @ mean, np.diag(np.exp(2 * actor.log_std.detach().double().numpy())))
