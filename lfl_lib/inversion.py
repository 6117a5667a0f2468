"""Exact inversion of a soft policy improvement (Theorem 2, Section 4.3).

Given :math:`\\pi_2 = \\mathrm{SPI}_r(\\pi_1)`, the reward

.. math:: r_{1\\to 2}(s, a) = \\alpha \\ln \\pi_2(a|s)
          + \\alpha\\gamma E_{s'}\\big[\\mathrm{KL}(\\pi_1(\\cdot|s')\\,\\|\\,\\pi_2(\\cdot|s'))\\big]

equals :math:`r` up to a shaping :math:`f(s) - \\gamma E[f(s')]`. When the true reward
depends on the state only, the regression of Eq. (4) separates a state reward from a
shaping; it is a linear least-squares problem solved here exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import as_float_array, check_alpha, check_policy, check_reward
from .mdp import TabularMDP, check_mdp

__all__ = ["kl_divergence", "invert_soft_improvement", "StateOnlyFit", "state_only_regression"]


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
    p = check_policy(p, *p.shape, name="pi1")
    q = check_policy(q, *q.shape, name="pi2")
    support = p > 0
    if np.any(support & (q <= 0)):
        raise ValueError("pi2 must be > 0 wherever pi1 > 0 (otherwise the KL divergence is infinite)")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(support, p * (np.log(np.where(support, p, 1.0)) - np.log(np.where(support, q, 1.0))), 0.0)
    return terms.sum(axis=1)


def invert_soft_improvement(
    mdp: TabularMDP, pi1: ArrayLike, pi2: ArrayLike, alpha: float
) -> NDArray[np.float64]:
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
    return StateOnlyFit(sol[:S], sol[S:], float(np.sqrt(np.mean(resid**2))), int(rank))
