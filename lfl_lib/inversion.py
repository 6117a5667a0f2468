"""Exact inversion of a soft policy improvement (Theorem 2, Section 4.3).

Given :math:`\\pi_2 = \\mathrm{SPI}_r(\\pi_1)`, the reward

.. math:: r_{1\\to 2}(s, a) = \\alpha \\ln \\pi_2(a|s)
          + \\alpha\\gamma E_{s'}\\big[\\mathrm{KL}(\\pi_1(\\cdot|s')\\,\\|\\,\\pi_2(\\cdot|s'))\\big]

equals :math:`r` up to a shaping :math:`f(s) - \\gamma E[f(s')]`. When the true reward
depends on the state only, the regression of Eq. (4) separates a state reward from a
shaping; it is a linear least-squares problem solved here exactly.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import (
    as_float_array,
    check_alpha,
    check_gamma,
    check_policy,
    check_positive_int,
    check_real,
    check_reward,
)
from .mdp import TabularMDP, check_mdp

__all__ = [
    "kl_divergence",
    "invert_soft_improvement",
    "StateOnlyFit",
    "state_only_regression",
    "check_kl_weight",
    "invert_kl_improvement",
    "value_iteration_fit",
    "invert_value_iteration",
    "AbsorbingFit",
    "absorbing_state_fit",
]


def kl_divergence(pi1: ArrayLike, pi2: ArrayLike) -> NDArray[np.float64]:
    """:math:`\\mathrm{KL}(\\pi_1(\\cdot|s)\\,\\|\\,\\pi_2(\\cdot|s))` per state, with 0 ln 0 = 0.

    Raises
    ------
    ValueError
        If either argument is not a policy array (rows of non-negative finite numbers
        summing to 1), if their shapes differ, or if :math:`\\pi_2(a|s) = 0` where
        :math:`\\pi_1(a|s) > 0` (infinite divergence).
    """
    p = as_float_array(pi1, "pi1", ndim=2)
    q = as_float_array(pi2, "pi2", ndim=2)
    if p.shape != q.shape:
        raise ValueError(f"pi1 and pi2 must have the same shape; got {p.shape} and {q.shape}")
    p = check_policy(p, p.shape[0], p.shape[1], name="pi1")
    q = check_policy(q, q.shape[0], q.shape[1], name="pi2")
    support = p > 0
    if np.any(support & (q <= 0)):
        raise ValueError("pi2 must be > 0 wherever pi1 > 0 (otherwise the KL divergence is infinite)")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(support, p * (np.log(np.where(support, p, 1.0)) - np.log(np.where(support, q, 1.0))), 0.0)
    return terms.sum(axis=1)


def invert_soft_improvement(mdp: TabularMDP, pi1: ArrayLike, pi2: ArrayLike, alpha: float) -> NDArray[np.float64]:
    """The reward :math:`r_{1\\to 2}` of Theorem 2 that explains :math:`\\pi_2 = \\mathrm{SPI}(\\pi_1)`.

    Only the dynamics and discount of ``mdp`` are used, never its reward.

    Parameters
    ----------
    mdp : TabularMDP
    pi1, pi2 : array_like, shape (S, A)
        Two consecutive policies; ``pi2`` must be positive everywhere (a soft policy).
    alpha : float
        The entropy weight the observer assumes, > 0.

    Returns
    -------
    ndarray, shape (S, A)
        :math:`\\alpha \\ln \\pi_2(a|s) + \\alpha\\gamma \\sum_{s'} P(s'|s,a)\\, \\mathrm{KL}(\\pi_1(\\cdot|s')\\|\\pi_2(\\cdot|s'))`.
    """
    check_mdp(mdp)
    alpha = check_alpha(alpha)
    pi1 = check_policy(pi1, mdp.n_states, mdp.n_actions, "pi1")
    pi2 = check_policy(pi2, mdp.n_states, mdp.n_actions, "pi2")
    if np.any(pi2 <= 0):
        raise ValueError("pi2 must be > 0 everywhere: a soft improvement never gives zero probability")
    kl = kl_divergence(pi1, pi2)
    return alpha * np.log(pi2) + alpha * mdp.gamma * (mdp.P @ kl)


class StateOnlyFit(NamedTuple):
    """Result of :func:`state_only_regression`: unpacks as ``r, f, residual, rank = fit``."""

    r: NDArray[np.float64]
    """State reward :math:`r_\\phi(s)`, shape (S,)."""
    f: NDArray[np.float64]
    """Shaping potential :math:`f(s)`, shape (S,)."""
    residual: float
    """Root-mean-square residual of Eq. (4) over all (s, a)."""
    rank: int
    """Rank of the design matrix (2S minus the dimension of the unidentified directions)."""


def state_only_regression(mdp: TabularMDP, r_sa: ArrayLike) -> StateOnlyFit:
    """Fit :math:`r_{sa}(s, a) \\approx r(s) + f(s) - \\gamma E_{s'}[f(s')]` (Eq. 4) exactly.

    The loss :math:`\\sum_{s,a} (r_{sa}(s,a) - r(s) - f(s) + \\gamma E[f(s')])^2` is a convex
    quadratic in :math:`(r, f)`; it is minimised by one least-squares solve. The problem
    always leaves a constant undetermined (adding :math:`c` to :math:`f` and
    :math:`-(1-\\gamma)c` to :math:`r` changes nothing); the minimum-norm solution is returned.

    Parameters
    ----------
    mdp : TabularMDP
        Dynamics and discount.
    r_sa : array_like, shape (S, A)
        The state-action reward to explain, e.g. :math:`r_{1\\to 2}`.

    Returns
    -------
    StateOnlyFit
    """
    check_mdp(mdp)
    r_sa = check_reward(r_sa, mdp.n_states, mdp.n_actions, "r_sa")
    S, A = mdp.n_states, mdp.n_actions
    eye = np.eye(S)
    # Row (s, a): coefficient 1 on r(s); on f: e_s - gamma P[s, a, :].
    design_r = np.repeat(eye, A, axis=0)
    design_f = design_r - mdp.gamma * mdp.P.reshape(S * A, S)
    design = np.hstack([design_r, design_f])
    target = r_sa.reshape(S * A)
    sol, _, rank, _ = np.linalg.lstsq(design, target, rcond=None)
    resid = target - design @ sol
    return StateOnlyFit(
        sol[:S].astype(np.float64), sol[S:].astype(np.float64), float(np.sqrt(np.mean(resid**2))), int(rank)
    )


# ----------------------------------------------------------------------------- other learner models


def check_kl_weight(kl_weight: float, name: str = "kl_weight") -> float:
    """Return ``kl_weight`` as a float after checking that it is finite and >= 0."""
    try:
        lam = float(kl_weight)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a finite number >= 0; got {kl_weight!r}") from exc
    if not np.isfinite(lam) or lam < 0.0:
        raise ValueError(f"{name} must be a finite number >= 0; got {kl_weight!r}")
    return lam


def invert_kl_improvement(
    mdp: TabularMDP, pi1: ArrayLike, pi2: ArrayLike, alpha: float, kl_weight: float
) -> NDArray[np.float64]:
    """The reward that explains one KL-regularized soft policy improvement exactly.

    The learner's step is
    :math:`\\pi_2(a|s) \\propto \\pi_1(a|s)^{\\lambda/(\\alpha+\\lambda)}\\exp(Q^{\\pi_1}(s,a)/(\\alpha+\\lambda))`
    (soft policy improvement with a penalty :math:`\\lambda\\,\\mathrm{KL}(\\pi\\|\\pi_1)`;
    :math:`\\lambda = 0` is SPI, Eq. 3). The reward

    .. math:: r(s,a) = (\\alpha+\\lambda)\\ln\\pi_2(a|s) - \\lambda\\ln\\pi_1(a|s)
              + \\gamma(\\alpha+\\lambda) E_{s'}\\big[\\mathrm{KL}(\\pi_1(\\cdot|s')\\|\\pi_2(\\cdot|s'))\\big]

    equals the learner's reward up to a shaping (the generalisation of Theorem 2 that
    the book's chapter "What kind of learner?" proves). With ``kl_weight=0`` the result
    is :func:`invert_soft_improvement` itself.

    Parameters
    ----------
    mdp : TabularMDP
        Only its dynamics and discount are used.
    pi1, pi2 : array_like, shape (S, A)
        Two consecutive policies, both > 0 everywhere when ``kl_weight > 0``
        (``pi2`` > 0 always).
    alpha : float
        Entropy weight, > 0.
    kl_weight : float
        :math:`\\lambda \\ge 0`.

    Returns
    -------
    ndarray, shape (S, A)
    """
    lam = check_kl_weight(kl_weight)
    if lam == 0.0:
        return invert_soft_improvement(mdp, pi1, pi2, alpha)
    check_mdp(mdp)
    alpha = check_alpha(alpha)
    pi1 = check_policy(pi1, mdp.n_states, mdp.n_actions, "pi1")
    pi2 = check_policy(pi2, mdp.n_states, mdp.n_actions, "pi2")
    if np.any(pi1 <= 0) or np.any(pi2 <= 0):
        raise ValueError("pi1 and pi2 must be > 0 everywhere when kl_weight > 0 (ln pi1 enters the reward)")
    beta = alpha + lam
    return beta * np.log(pi2) - lam * np.log(pi1) + beta * mdp.gamma * (mdp.P @ kl_divergence(pi1, pi2))


def value_iteration_fit(
    targets_k: NDArray[np.float64],
    weights_k: NDArray[np.float64],
    P: NDArray[np.float64],
    gamma: float,
    r0: float = 0.0,
    ridge_r: float = 0.0,
    ridge_v: float = 0.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Eq. (5) with one potential per policy: the soft value iteration model, by least squares.

    Minimises
    :math:`\\sum_k \\sum_{s,a} w_k(s,a)\\big(t_k(s,a) - r(s,a) + V_k(s) - \\gamma\\sum_{s'}P(s'|s,a)V_{k-1}(s')\\big)^2
    + \\mu\\|r - r_0\\|^2 + \\epsilon\\sum_k\\|V_k\\|^2`
    over :math:`r` and the potentials :math:`V_0, \\dots, V_K`, where :math:`t_k = \\alpha\\ln\\pi_{k+1}`
    for K consecutive value-iteration policies. The potential of equation k on the
    current state is that of equation k + 1 on the next state: this is what makes the
    model differ from K separate shapings. Solved by its normal equations (a dense system
    of size S*A + (K+1)*S); with both ridges 0, by the minimum-norm least-squares solution.

    Parameters
    ----------
    targets_k, weights_k : ndarray, shape (K, S, A)
    P : ndarray, shape (S, A, S)
    gamma : float
    r0, ridge_r, ridge_v : float

    Returns
    -------
    r : ndarray, shape (S, A)
    V : ndarray, shape (K + 1, S)
    """
    K, S, A = targets_k.shape
    SA = S * A
    E = np.repeat(np.eye(S), A, axis=0)  # (SA, S)
    gP = gamma * P.reshape(SA, S)
    n = SA + (K + 1) * S
    T = targets_k.reshape(K, SA)
    W = weights_k.reshape(K, SA)
    # residual_k = t_k - A_k x with A_k = [I on r, -E on V_k, +gamma P on V_{k-1}].
    M = np.zeros((n, n))
    b = np.zeros(n)

    def sl(j: int) -> slice:  # the block of V_j
        return slice(SA + j * S, SA + (j + 1) * S)

    idx = np.arange(SA)
    for k in range(1, K + 1):
        w = W[k - 1]
        t = T[k - 1]
        WE = w[:, None] * E
        WgP = w[:, None] * gP
        M[idx, idx] += w
        M[:SA, sl(k)] -= WE
        M[sl(k), :SA] -= WE.T
        M[:SA, sl(k - 1)] += WgP
        M[sl(k - 1), :SA] += WgP.T
        M[sl(k), sl(k)] += E.T @ WE
        M[sl(k - 1), sl(k - 1)] += gP.T @ WgP
        M[sl(k), sl(k - 1)] -= E.T @ WgP
        M[sl(k - 1), sl(k)] -= WgP.T @ E
        b[:SA] += w * t
        b[sl(k)] -= E.T @ (w * t)
        b[sl(k - 1)] += gP.T @ (w * t)
    if ridge_r > 0 or ridge_v > 0:
        M[idx, idx] += ridge_r
        b[:SA] += ridge_r * r0
        M[np.arange(SA, n), np.arange(SA, n)] += ridge_v
        x = np.linalg.solve(M, b)
    else:
        x = np.linalg.lstsq(M, b, rcond=None)[0]
    return x[:SA].reshape(S, A), x[SA:].reshape(K + 1, S)


def invert_value_iteration(mdp: TabularMDP, policies: Sequence[ArrayLike], alpha: float) -> NDArray[np.float64]:
    """The reward that explains consecutive soft value iteration policies exactly.

    A soft value iteration learner (:func:`lfl_lib.learners.soft_value_iteration`) has
    :math:`\\pi_{k+1} = \\mathrm{softmax}(Q_k/\\alpha)` with :math:`Q_k = r + \\gamma P V_{k-1}` and
    :math:`V_k = \\alpha\\ln\\sum_a\\exp(Q_k/\\alpha)`, so that

    .. math:: r(s,a) = \\alpha\\ln\\pi_{k+1}(a|s) + V_k(s) - \\gamma E_{s'}[V_{k-1}(s')]

    for every k: a shaping whose potential changes from one step to the next. Eq. (5)
    with one potential per policy (:func:`value_iteration_fit`) has an exact solution;
    its reward equals the learner's up to a shaping (book chapter "What kind of learner?").

    Parameters
    ----------
    mdp : TabularMDP
        Only its dynamics and discount are used.
    policies : sequence of array_like, each of shape (S, A)
        Two or more consecutive value-iteration policies, each > 0 everywhere (each must
        come from a backup: the uniform first policy of the book's SVI learner does not).
    alpha : float
        Entropy weight, > 0.

    Returns
    -------
    ndarray, shape (S, A)
    """
    check_mdp(mdp)
    alpha = check_alpha(alpha)
    if isinstance(policies, np.ndarray) and policies.ndim == 3:
        policies = list(policies)
    if not isinstance(policies, (list, tuple)) or len(policies) < 2:
        raise ValueError("policies must be a sequence of two or more (S, A) policies")
    pols = [check_policy(p, mdp.n_states, mdp.n_actions, f"policies[{i}]") for i, p in enumerate(policies)]
    for i, p in enumerate(pols):
        if np.any(p <= 0):
            raise ValueError(f"policies[{i}] must be > 0 everywhere (a value-iteration policy is a softmax)")
    tk = alpha * np.log(np.array(pols))
    r, _ = value_iteration_fit(tk, np.ones_like(tk), mdp.P, mdp.gamma)
    return r


# ----------------------------------------------------------------------------- an absorbing state with its own reward


class AbsorbingFit(NamedTuple):
    """Result of :func:`absorbing_state_fit`."""

    reward: NDArray[np.float64]
    """Fitted :math:`r(s, a)`, shape (S, A); NaN on the pairs that no transition visits."""
    absorbing_reward: float
    """Fitted reward of the absorbing state (the minimum-norm solution's value)."""
    identified: bool
    """Whether Eq. (5) fixes the absorbing reward relative to the mean visited reward."""
    loss: float
    """Sum of squared residuals at the minimum."""


def _absorbing_rollout(
    roll: tuple[ArrayLike, ArrayLike, ArrayLike, ArrayLike], k: int, S: int, A: int
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[np.float64]]:
    """The checked arrays ``(states, actions, next_states, targets)`` of rollout ``k`` of :func:`absorbing_state_fit`."""
    if len(roll) != 4:
        raise ValueError(f"rollouts[{k}] must be (states, actions, next_states, targets), got {len(roll)} items")
    s, a, sp = (np.asarray(x) for x in roll[:3])
    t = as_float_array(roll[3], f"rollouts[{k}] targets", ndim=1)
    if not (s.shape == a.shape == sp.shape == t.shape) or s.ndim != 1:
        raise ValueError(f"rollouts[{k}]: states, actions, next_states and targets must be 1-D of one length")
    for name, x, hi in (("states", s, S - 1), ("actions", a, A - 1), ("next_states", sp, S)):
        if x.size and (not np.issubdtype(x.dtype, np.integer) or x.min() < 0 or x.max() > hi):
            raise ValueError(f"rollouts[{k}] {name} must be integers in [0, {hi}]")
    return s, a, sp, t


def absorbing_state_fit(
    rollouts: Sequence[tuple[ArrayLike, ArrayLike, ArrayLike, ArrayLike]],
    n_states: int,
    n_actions: int,
    gamma: float,
    absorbing_target: float | None = None,
) -> AbsorbingFit:
    """Eq. (5) on tabular transitions, with a termination as an absorbing state with a free reward.

    The treatment of terminations of DAC (Kostrikov et al., 2018) applied to the consistency
    loss: a terminated transition goes to one absorbing state :math:`s_\\varnothing`
    that has its own shaping value :math:`f_k(s_\\varnothing)` per rollout and its own reward
    :math:`r_\\varnothing`. The loss

    .. math:: \\sum_k \\sum_{(s,a,s',t) \\in D_k} \\big(t - r(s,a) - f_k(s) + \\gamma f_k(s')\\big)^2
              + \\sum_k \\big(t_\\varnothing - r_\\varnothing - (1-\\gamma) f_k(s_\\varnothing)\\big)^2

    is minimized by one least-squares solve; the second sum, one self-transition of the
    absorbing state per rollout with target :math:`t_\\varnothing`, is there only when
    ``absorbing_target`` is given. A common constant added to every reward (and
    :math:`-c/(1-\\gamma)` to every shaping) never changes the loss, so what can be fixed is
    :math:`r_\\varnothing` *relative* to the visited rewards; ``identified`` says whether it is.

    Parameters
    ----------
    rollouts : sequence of tuple
        One tuple ``(states, actions, next_states, targets)`` of equal-length 1-D arrays per
        rollout :math:`D_k`; ``next_states`` equal
        to ``n_states`` marks a termination (the absorbing state); ``targets`` are
        :math:`\\alpha\\ln\\hat\\pi_{k+1}(a|s) + \\alpha\\gamma\\rho_k(s')` or any other.
    n_states, n_actions : int
        Sizes of the live state and action sets.
    gamma : float
        Discount in [0, 1).
    absorbing_target : float, optional
        Target :math:`t_\\varnothing` of the absorbing state's self-transition (the learner
        takes no action there, so any value is a convention); None for no such equation.

    Returns
    -------
    AbsorbingFit

    Raises
    ------
    ValueError
        When ``rollouts`` is empty, an array has another length or an index is out of range.
    """
    S = check_positive_int(n_states, "n_states")
    A = check_positive_int(n_actions, "n_actions")
    gamma = check_gamma(gamma)
    if len(rollouts) == 0:
        raise ValueError("rollouts must hold at least one (states, actions, next_states, targets) tuple")
    if absorbing_target is not None:
        absorbing_target = check_real(absorbing_target, "absorbing_target")
    parsed = [_absorbing_rollout(roll, k, S, A) for k, roll in enumerate(rollouts)]
    K = len(parsed)
    visited = np.unique(np.concatenate([s * A + a for s, a, _, _ in parsed]))
    col = {int(p): i for i, p in enumerate(visited)}
    n_r = visited.size
    n = n_r + 1 + K * (S + 1)  # visited rewards, r_abs, then f_k over the live states and s_abs

    def f(k: int, state: NDArray[np.int64] | int) -> NDArray[np.int64] | int:
        return n_r + 1 + k * (S + 1) + state

    rows, y = [], []
    for k, (s, a, sp, t) in enumerate(parsed):
        M = np.zeros((s.size, n))
        i = np.arange(s.size)
        M[i, [col[int(p)] for p in s * A + a]] += 1.0
        M[i, f(k, s)] += 1.0
        M[i, f(k, sp)] -= gamma
        rows.append(M)
        y.append(t)
        if absorbing_target is not None:
            row = np.zeros((1, n))
            row[0, n_r] = 1.0
            row[0, f(k, S)] = 1.0 - gamma
            rows.append(row)
            y.append(np.array([absorbing_target]))
    design, target = np.vstack(rows), np.concatenate(y)
    sol = np.linalg.lstsq(design, target, rcond=None)[0]
    resid = target - design @ sol
    # r_abs - mean(visited r) is fixed iff its coefficient vector is orthogonal to the null space
    _, sv, vt = np.linalg.svd(design)
    rank = int(np.sum(sv > sv.max() * max(design.shape) * np.finfo(float).eps))
    e = np.zeros(n)
    e[n_r] = 1.0
    e[:n_r] = -1.0 / n_r
    identified = bool(np.linalg.norm(vt[rank:] @ e) < 1e-8)
    reward = np.full(S * A, np.nan)
    reward[visited] = sol[:n_r]
    return AbsorbingFit(reward.reshape(S, A), float(sol[n_r]), identified, float(resid @ resid))
