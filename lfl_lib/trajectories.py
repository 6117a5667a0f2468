"""Observed trajectories: the data of Section 5, and the counts the observer draws from them.

In Section 5 the observer no longer sees the learner's policies, only a trajectory
:math:`D_k = \\{(s^1_k, a^1_k), \\dots, (s^T_k, a^T_k)\\}` sampled from each policy
:math:`\\pi_k`. A :class:`Trajectory` stores the visited states (one more than the
actions: the state reached after the last action is kept, so that every pair comes
with its successor) and the actions. This module samples such trajectories from a
:class:`~lfl_lib.mdp.TabularMDP` and a policy, counts them, and estimates the
dynamics from them.

Smoothing of the transition estimate (:func:`estimate_transitions`): a Dirichlet
prior of total mass ``prior`` spread evenly over the S successor states, that is

.. math:: \\hat P(s'|s, a) = \\frac{n(s, a, s') + \\beta / S}{n(s, a) + \\beta},

so that a pair that was observed keeps (almost) its empirical frequencies and a pair
that was never observed gets the uniform distribution over states.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import check_policy, check_positive_int
from .mdp import TabularMDP

__all__ = [
    "Trajectory",
    "sample_trajectory",
    "sample_trajectories",
    "check_trajectories",
    "pair_counts",
    "transition_counts",
    "estimate_transitions",
]


def _as_index_array(x: ArrayLike, name: str) -> NDArray[np.int64]:
    """Convert ``x`` to a 1-d int64 array, refusing floats that are not whole numbers."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-d array of integers; got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        if arr.dtype.kind == "b" or arr.dtype.kind not in "f":
            raise ValueError(f"{name} must contain integers; got dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must contain integers; found a non-integer value")
    return arr.astype(np.int64)


@dataclass(frozen=True, eq=False)
class Trajectory:
    """A trajectory :math:`s_0, a_0, s_1, a_1, \\dots, a_{T-1}, s_T` of one fixed policy.

    Parameters
    ----------
    states : array_like of int, shape (T + 1,)
        Visited states; ``states[t + 1]`` is the state reached by ``actions[t]`` from ``states[t]``.
    actions : array_like of int, shape (T,)
        Actions taken, T >= 1.
    n_states, n_actions : int, optional
        When given, every state must lie in ``[0, n_states)`` and every action in
        ``[0, n_actions)``; without them only non-negativity is checked (use
        :func:`check_trajectories` once the sizes are known).

    Raises
    ------
    ValueError
        If an array is not 1-d integer, ``states`` is not one longer than ``actions``,
        ``actions`` is empty, or an index is negative or out of range.
    """

    states: NDArray[np.int64]
    actions: NDArray[np.int64]
    n_states: int | None = None
    n_actions: int | None = None

    def __post_init__(self) -> None:
        states = _as_index_array(self.states, "states")
        actions = _as_index_array(self.actions, "actions")
        if actions.size == 0:
            raise ValueError("actions must hold at least one action (an empty trajectory carries no data)")
        if states.size != actions.size + 1:
            raise ValueError(
                f"states must be one longer than actions (T + 1 states for T actions); "
                f"got {states.size} states and {actions.size} actions"
            )
        for arr, name, bound in ((states, "states", self.n_states), (actions, "actions", self.n_actions)):
            if arr.min() < 0:
                raise ValueError(f"{name} must be non-negative indices; found {arr.min()}")
            if bound is not None:
                bound = check_positive_int(bound, f"n_{name}")
                if arr.max() >= bound:
                    raise ValueError(f"{name} must lie in [0, {bound - 1}]; found {arr.max()}")
        states.setflags(write=False)
        actions.setflags(write=False)
        object.__setattr__(self, "states", states)
        object.__setattr__(self, "actions", actions)

    def __len__(self) -> int:
        """T, the number of state-action pairs."""
        return int(self.actions.size)

    def check_sizes(self, n_states: int, n_actions: int, name: str = "trajectory") -> None:
        """Raise ValueError unless every state is < n_states and every action < n_actions."""
        if self.states.max() >= n_states:
            raise ValueError(f"{name}: states must lie in [0, {n_states - 1}]; found {self.states.max()}")
        if self.actions.max() >= n_actions:
            raise ValueError(f"{name}: actions must lie in [0, {n_actions - 1}]; found {self.actions.max()}")


def check_trajectories(
    trajectories: Sequence[Trajectory], n_states: int, n_actions: int, minimum: int = 1
) -> list[Trajectory]:
    """Check a list of trajectories against the sizes of the MDP; return it as a list.

    Raises
    ------
    ValueError
        If there are fewer than ``minimum`` trajectories, an element is not a
        :class:`Trajectory`, or a state or action is out of range.
    """
    n_states = check_positive_int(n_states, "n_states")
    n_actions = check_positive_int(n_actions, "n_actions")
    if isinstance(trajectories, Trajectory):
        raise ValueError("trajectories must be a list of Trajectory objects, one per policy; got a single Trajectory")
    try:
        trajs = list(trajectories)
    except TypeError as exc:
        raise ValueError(
            f"trajectories must be a list of Trajectory objects; got {type(trajectories).__name__}"
        ) from exc
    if len(trajs) < minimum:
        raise ValueError(f"trajectories must hold at least {minimum} Trajectory objects; got {len(trajs)}")
    for k, tr in enumerate(trajs):
        if not isinstance(tr, Trajectory):
            raise ValueError(f"trajectories[{k}] must be a Trajectory; got {type(tr).__name__}")
        tr.check_sizes(n_states, n_actions, f"trajectories[{k}]")
    return trajs


def sample_trajectory(
    mdp: TabularMDP,
    pi: ArrayLike,
    n_steps: int,
    rng: np.random.Generator,
    start: int | None = None,
    _cP: list | None = None,
) -> Trajectory:
    """Run ``pi`` for ``n_steps`` steps in ``mdp`` from ``start`` (the MDP's start state by default).

    One continuous run: the grid world has no terminal state (its reset cells send the
    agent back to the start), so T state-action pairs are one trajectory.

    Parameters
    ----------
    mdp : TabularMDP
    pi : array_like, shape (S, A)
    n_steps : int
        T >= 1, the number of state-action pairs.
    rng : numpy.random.Generator
        The only source of randomness.
    start : int, optional

    Returns
    -------
    Trajectory
        With T + 1 states and T actions.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator; got {type(rng).__name__}")
    pi = check_policy(pi, mdp.n_states, mdp.n_actions)
    T = check_positive_int(n_steps, "n_steps")
    s = mdp.start if start is None else int(start)
    if not 0 <= s < mdp.n_states:
        raise ValueError(f"start must be in [0, {mdp.n_states - 1}]; got {start}")
    cP = _cumulative_lists(mdp.P) if _cP is None else _cP
    states, actions = _rollout(_cumulative_lists(pi), cP, s, rng.random((T, 2)))
    return Trajectory(states=states, actions=actions, n_states=mdp.n_states, n_actions=mdp.n_actions)


def _cumulative_lists(probs: NDArray[np.float64]) -> list:
    """Cumulative sums along the last axis as nested lists, the last entry of each set to 2.

    With the last entry above any uniform draw in [0, 1), ``bisect_right`` always returns
    a valid index, even when rounding leaves the true total just below 1.
    """
    cum = np.cumsum(probs, axis=-1)
    cum[..., -1] = 2.0
    return cum.tolist()


def _rollout(cpi: list, cP: list, s: int, u: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Inverse-CDF sampling of ``len(u)`` steps from pre-drawn uniforms ``u`` of shape (T, 2).

    ``cpi`` and ``cP`` come from :func:`_cumulative_lists`. Runs on Python lists with
    :func:`bisect.bisect_right` (a step costs about a microsecond, where a NumPy call
    per step costs several).
    """
    T = u.shape[0]
    states = [s] * (T + 1)
    actions = [0] * T
    for t, (u_a, u_s) in enumerate(u.tolist()):
        a = bisect_right(cpi[s], u_a)
        s = bisect_right(cP[s][a], u_s)
        actions[t] = a
        states[t + 1] = s
    return np.array(states, dtype=np.int64), np.array(actions, dtype=np.int64)


def sample_trajectories(
    mdp: TabularMDP, policies: Sequence[ArrayLike], n_steps: int, rng: np.random.Generator
) -> list[Trajectory]:
    """One trajectory of ``n_steps`` pairs per policy, each from the start state, in order."""
    cP = _cumulative_lists(mdp.P)
    return [sample_trajectory(mdp, pi, n_steps, rng, _cP=cP) for pi in policies]


def pair_counts(traj: Trajectory, n_states: int, n_actions: int) -> NDArray[np.float64]:
    """Visit counts :math:`n(s, a)` of a trajectory, shape (S, A)."""
    traj.check_sizes(n_states, n_actions)
    flat = traj.states[:-1] * n_actions + traj.actions
    return np.bincount(flat, minlength=n_states * n_actions).reshape(n_states, n_actions).astype(np.float64)


def transition_counts(trajectories: Sequence[Trajectory], n_states: int, n_actions: int) -> NDArray[np.float64]:
    """Counts :math:`n(s, a, s')` pooled over trajectories, shape (S, A, S).

    Pooling is right because the dynamics are the same whatever the policy.
    """
    trajs = check_trajectories(trajectories, n_states, n_actions)
    counts = np.zeros(n_states * n_actions * n_states)
    for tr in trajs:
        flat = (tr.states[:-1] * n_actions + tr.actions) * n_states + tr.states[1:]
        counts += np.bincount(flat, minlength=counts.size)
    return counts.reshape(n_states, n_actions, n_states)


def estimate_transitions(
    trajectories: Sequence[Trajectory], n_states: int, n_actions: int, prior: float = 1e-3
) -> NDArray[np.float64]:
    """Smoothed empirical dynamics :math:`\\hat P(s'|s, a)`, shape (S, A, S).

    :math:`\\hat P(s'|s,a) = (n(s,a,s') + \\beta/S) / (n(s,a) + \\beta)` with
    :math:`\\beta` = ``prior`` > 0: a Dirichlet prior of total mass :math:`\\beta` spread
    evenly over the successors. With the default :math:`\\beta = 10^{-3}` a pair seen
    once keeps more than 99.9 % of its mass on the observed successor, and a pair never
    seen gets the uniform distribution.
    """
    if not (np.isfinite(prior) and prior > 0):
        raise ValueError(f"prior must be a finite number > 0; got {prior!r}")
    counts = transition_counts(trajectories, n_states, n_actions)
    return (counts + prior / n_states) / (counts.sum(axis=2, keepdims=True) + prior)
