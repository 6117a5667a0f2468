"""Learners: algorithms whose successive policies the observer sees.

Each learner returns the list of its policies :math:`[\\pi_1, \\dots, \\pi_{K+1}]`, the
sequence that Learning from a Learner inverts.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import check_alpha, check_policy, check_positive_int
from .improvement import soft_improvement
from .mdp import TabularMDP, uniform_policy

__all__ = ["soft_policy_iteration"]


def soft_policy_iteration(
    mdp: TabularMDP, alpha: float, n_improvements: int, pi0: ArrayLike | None = None
) -> list[NDArray[np.float64]]:
    """Soft policy iteration: repeated SPI steps (Eq. 3) from ``pi0``.

    Parameters
    ----------
    mdp : TabularMDP
    alpha : float
        The learner's entropy weight, > 0.
    n_improvements : int
        K, the number of soft improvements, >= 0.
    pi0 : array_like, shape (S, A), optional
        First policy :math:`\\pi_1`; uniform by default, as in the paper.

    Returns
    -------
    list of ndarray, each of shape (S, A)
        :math:`[\\pi_1, \\pi_2 = \\mathrm{SPI}(\\pi_1), \\dots, \\pi_{K+1}]`, K + 1 policies.
    """
    alpha = check_alpha(alpha)
    K = check_positive_int(n_improvements, "n_improvements", minimum=0)
    if pi0 is None:
        pi = uniform_policy(mdp.n_states, mdp.n_actions)
    else:
        pi = check_policy(pi0, mdp.n_states, mdp.n_actions, "pi0").copy()
    policies = [pi]
    for _ in range(K):
        pi = soft_improvement(mdp, pi, alpha)
        policies.append(pi)
    return policies
