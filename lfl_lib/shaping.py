"""Reward shaping in entropy-regularized RL (Lemma 1 and Theorem 1).

The transform :math:`r'(s, a) = r(s, a) + g(s) - \\gamma E_{s'|s,a}[g(s')]` shifts every
soft Q-function by :math:`g(s)` (Lemma 1), hence leaves soft improvements and the
optimal soft policy unchanged (Theorem 1).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import check_reward, check_state_function
from .mdp import TabularMDP, check_mdp

__all__ = ["shaping_term", "shape_reward"]


def shaping_term(mdp: TabularMDP, g: ArrayLike) -> NDArray[np.float64]:
    """:math:`\\mathrm{sh}_g(s, a) = g(s) - \\gamma E_{s'\\sim P(\\cdot|s,a)}[g(s')]`, shape (S, A)."""
    check_mdp(mdp)
    g = check_state_function(g, mdp.n_states, "g")
    return g[:, None] - mdp.gamma * (mdp.P @ g)


def shape_reward(mdp: TabularMDP, g: ArrayLike, r: ArrayLike | None = None) -> NDArray[np.float64]:
    """The shaped reward of Lemma 1: :math:`r(s, a) + g(s) - \\gamma E_{s'}[g(s')]`.

    Parameters
    ----------
    mdp : TabularMDP
        Gives the dynamics and the discount (and the reward when ``r`` is omitted).
    g : array_like, shape (S,)
        The potential, any real function of the state.
    r : array_like, shape (S, A), optional
        The reward to shape; ``mdp.r`` by default.

    Returns
    -------
    ndarray, shape (S, A)
    """
    check_mdp(mdp)
    base = mdp.r if r is None else check_reward(r, mdp.n_states, mdp.n_actions, "r")
    return base + shaping_term(mdp, g)
