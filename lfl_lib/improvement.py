"""Policy improvement: greedy (Eq. 1) and soft (Eq. 3).

Greedy improvement picks, in each state, an action maximising the unregularized
:math:`Q^{\\pi}(s, a)`; the result is deterministic. Soft policy improvement (SPI) is the
greedy step of the entropy-regularized problem, whose unique solution is the Boltzmann
policy :math:`\\pi_2(a|s) \\propto \\exp(Q^{\\pi_1}_{soft}(s, a)/\\alpha)` (Eq. 3).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import check_policy
from .mdp import TabularMDP, check_mdp, soft_evaluate, softmax_policy

__all__ = ["q_values", "greedy_improvement", "soft_improvement"]


def q_values(mdp: TabularMDP, pi: ArrayLike) -> NDArray[np.float64]:
    """Unregularized action values :math:`Q^\\pi(s, a) = r(s, a) + \\gamma E[V^\\pi(s')]`, shape (S, A)."""
    check_mdp(mdp)
    pi = check_policy(pi, mdp.n_states, mdp.n_actions)
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    V = np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma * P_pi, (pi * mdp.r).sum(axis=1))
    return mdp.r + mdp.gamma * (mdp.P @ V)


def greedy_improvement(mdp: TabularMDP, pi: ArrayLike) -> NDArray[np.float64]:
    """Greedy improvement (Eq. 1): the deterministic policy :math:`\\arg\\max_a Q^{\\pi}(s, a)`.

    Ties are broken towards the lowest action index, so the result is always one
    deterministic policy of the set :math:`\\mathcal{G}(\\pi)`.

    Returns
    -------
    ndarray, shape (S, A)
        A one-hot policy.
    """
    Q = q_values(mdp, pi)
    pi2 = np.zeros_like(Q)
    pi2[np.arange(mdp.n_states), np.argmax(Q, axis=1)] = 1.0
    return pi2


def soft_improvement(mdp: TabularMDP, pi: ArrayLike, alpha: float) -> NDArray[np.float64]:
    """Soft policy improvement :math:`\\mathrm{SPI}_r(\\pi)` (Eq. 3).

    Parameters
    ----------
    mdp : TabularMDP
    pi : array_like, shape (S, A)
    alpha : float
        Entropy weight, > 0.

    Returns
    -------
    ndarray, shape (S, A)
        :math:`\\pi_2(a|s) = \\exp(Q^{\\pi}_{soft}(s, a)/\\alpha) / \\sum_b \\exp(Q^{\\pi}_{soft}(s, b)/\\alpha)`.
    """
    Q, _ = soft_evaluate(mdp, pi, alpha)
    return softmax_policy(Q, alpha)
