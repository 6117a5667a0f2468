"""Tabular MDPs and exact entropy-regularized (soft) dynamic programming.

This module implements Section 4 of the paper up to Eq. (3): the soft objective

.. math:: J_{soft}(\\pi) = E_\\pi\\Big[\\sum_{t\\ge 0} \\gamma^t \\big(r(s_t, a_t)
          + \\alpha \\mathcal{H}(\\pi(\\cdot|s_t))\\big)\\Big],

the soft Bellman evaluation equation

.. math:: Q^\\pi(s, a) = r(s, a) + \\gamma E_{s'}\\big[V^\\pi(s')\\big], \\qquad
          V^\\pi(s) = E_{a\\sim\\pi}\\big[Q^\\pi(s, a) - \\alpha \\ln \\pi(a|s)\\big],

and its optimality counterpart :math:`V^*(s) = \\alpha \\ln \\sum_a \\exp(Q^*(s, a)/\\alpha)`.
Array conventions: ``P[s, a, s']``, ``r[s, a]``, ``pi[s, a]``, ``Q[s, a]``, ``V[s]``, all float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import logsumexp

from ._validate import (
    PROB_ATOL,
    as_float_array,
    check_alpha,
    check_gamma,
    check_policy,
    check_positive_int,
    check_reward,
    check_state_function,
)

__all__ = [
    "TabularMDP",
    "check_mdp",
    "policy_entropy",
    "soft_evaluate",
    "soft_optimal",
    "score",
    "expected_return",
    "discounted_entropy",
    "uniform_policy",
    "softmax_policy",
    "random_mdp",
]


@dataclass(frozen=True, eq=False)
class TabularMDP:
    """A finite MDP :math:`(S, A, P, r, \\gamma)` with a start state (or a start distribution).

    Parameters
    ----------
    P : array_like, shape (S, A, S)
        Transition probabilities ``P[s, a, s'] = P(s'|s, a)``; each ``P[s, a]`` sums to 1.
    r : array_like, shape (S, A)
        Reward ``r[s, a]``.
    gamma : float
        Discount factor in [0, 1).
    start : int, default 0
        Index of the start state; the score :math:`J(\\pi)` is the value of this state
        (unless ``start_distribution`` is given).
    start_distribution : array_like, shape (S,), optional
        (keyword-only) Probabilities of the start states; when given, :math:`J(\\pi) = \\sum_s
        \\mu_0(s) V^\\pi(s)` and ``start`` must have positive probability.
    terminal : array_like of bool, shape (S,), optional
        (keyword-only) Terminal states. A terminal state is **absorbing with value 0**: every
        ``P[t, a]`` must put probability 1 on ``t`` itself, its rewards are set to 0, and
        no entropy is collected there, so that :math:`V^\\pi(t) = 0` for every policy,
        as when an episode ends (:meth:`from_gymnasium` builds such MDPs).

    Raises
    ------
    ValueError
        If a shape is wrong, a probability is negative or a row does not sum to 1,
        a number is NaN or inf, ``gamma`` is outside [0, 1), or ``start`` is out of range.
    """

    P: NDArray[np.float64]
    r: NDArray[np.float64]
    gamma: float
    start: int = 0
    start_distribution: NDArray[np.float64] | None = field(default=None, kw_only=True)
    terminal: NDArray[np.bool_] | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        P = as_float_array(self.P, "P", ndim=3)
        S, A, S2 = P.shape
        if S2 != S or S == 0 or A == 0:
            raise ValueError(f"P must have shape (S, A, S) with S, A >= 1; got {P.shape}")
        if np.any(P < 0):
            raise ValueError(f"P must have non-negative entries; found min {P.min():.3g}")
        sums = P.sum(axis=2)
        if np.any(np.abs(sums - 1.0) > PROB_ATOL):
            s, a = np.argwhere(np.abs(sums - 1.0) > PROB_ATOL)[0]
            raise ValueError(f"each P[s, a, :] must sum to 1; P[{s}, {a}, :] sums to {sums[s, a]:.6g}")
        r = check_reward(self.r, S, A, "r")
        gamma = check_gamma(self.gamma)
        if isinstance(self.start, bool) or not isinstance(self.start, (int, np.integer)):
            raise ValueError(f"start must be an integer state index; got {self.start!r}")
        if not 0 <= int(self.start) < S:
            raise ValueError(f"start must be in [0, {S - 1}]; got {self.start}")
        P = P.copy()
        r = r.copy()
        if self.start_distribution is not None:
            mu = as_float_array(self.start_distribution, "start_distribution", ndim=1)
            if mu.shape != (S,) or np.any(mu < 0) or abs(mu.sum() - 1.0) > PROB_ATOL:
                raise ValueError(
                    f"start_distribution must be {S} non-negative probabilities summing to 1; "
                    f"got shape {mu.shape}, sum {mu.sum():.6g}"
                )
            if mu[int(self.start)] <= 0:
                raise ValueError(
                    f"start must have positive probability under start_distribution; got start={self.start}"
                )
            mu = mu.copy()
            mu.setflags(write=False)
            object.__setattr__(self, "start_distribution", mu)
        if self.terminal is not None:
            term = np.asarray(self.terminal)
            if term.shape != (S,) or term.dtype.kind not in "bui" or not np.isin(term, (0, 1)).all():
                raise ValueError(
                    f"terminal must be a boolean mask of shape ({S},); got {term.dtype} of shape {term.shape}"
                )
            term = term.astype(bool)
            idx = np.flatnonzero(term)
            if np.any(P[idx, :, idx] != 1.0):
                raise ValueError(
                    "terminal states must be absorbing: P[t, a, t] must be 1 for every terminal t "
                    "(TabularMDP.from_gymnasium builds them so)"
                )
            r[term] = 0.0
            term.setflags(write=False)
            object.__setattr__(self, "terminal", term)
        P.setflags(write=False)
        r.setflags(write=False)
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "r", r)
        object.__setattr__(self, "gamma", gamma)
        object.__setattr__(self, "start", int(self.start))

    @property
    def n_states(self) -> int:
        """Number of states S."""
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        """Number of actions A."""
        return self.P.shape[1]

    @property
    def start_probs(self) -> NDArray[np.float64]:
        """The start distribution :math:`\\mu_0`, shape (S,) (one-hot on ``start`` when none was given)."""
        if self.start_distribution is not None:
            return self.start_distribution
        mu = np.zeros(self.n_states)
        mu[self.start] = 1.0
        return mu

    def with_reward(self, r: ArrayLike) -> "TabularMDP":
        """The same dynamics, discount, start and terminal states with another reward ``r[s, a]``."""
        return TabularMDP(
            self.P,
            cast(NDArray[np.float64], r),
            self.gamma,
            self.start,
            start_distribution=self.start_distribution,
            terminal=self.terminal,
        )

    @classmethod
    def from_gymnasium(cls, env: Any, gamma: float = 0.99, terminal: str = "absorbing") -> "TabularMDP":
        """The MDP of a gymnasium toy-text environment that exposes its transition table.

        Works with every environment whose unwrapped form has ``P[s][a]``, a list of
        ``(probability, next_state, reward, terminated)`` (FrozenLake, CliffWalking, Taxi).
        ``r[s, a]`` is the expected reward of the step; the start distribution is the
        environment's ``initial_state_distrib`` (``start`` is its most likely state). A
        state that some step enters with ``terminated=True`` is terminal, and becomes

        - with ``terminal="absorbing"`` (the default, the task as gymnasium defines it):
          **absorbing with value 0** (see the class: ``mdp.terminal`` marks it);
        - with ``terminal="reset"``: a *reset cell* as in the paper's grid world, from
          which every action leads to a start state drawn from the start distribution,
          with reward 0 (a continuing task: ending an episode costs the time to come back).

        Parameters
        ----------
        env : gymnasium.Env
            A toy-text environment (wrappers are looked through).
        gamma : float, default 0.99
            Discount factor in [0, 1) (gymnasium environments do not define one).
        terminal : {"absorbing", "reset"}, default "absorbing"

        Raises
        ------
        ValueError
            If ``env`` has no transition table, or a state is entered both with and
            without termination.
        """
        if terminal not in ("absorbing", "reset"):
            raise ValueError(f"terminal must be 'absorbing' or 'reset'; got {terminal!r}")
        u = getattr(env, "unwrapped", env)
        table = getattr(u, "P", None)
        if not isinstance(table, dict) or not table:
            raise ValueError(
                f"env must expose a transition table env.unwrapped.P (toy-text environments); got {type(u).__name__}"
            )
        S = len(table)
        A = len(table[0])
        P = np.zeros((S, A, S))
        r = np.zeros((S, A))
        term = np.zeros(S, dtype=bool)
        for s in range(S):
            if len(table[s]) != A:
                raise ValueError(f"env.unwrapped.P[{s}] has {len(table[s])} actions; P[0] has {A}")
            for a in range(A):
                for prob, s2, rew, done in table[s][a]:
                    P[s, a, s2] += prob
                    r[s, a] += prob * rew
                    term[s2] |= bool(done) and prob > 0
        mu = getattr(u, "initial_state_distrib", None)
        if mu is None:
            mu = np.zeros(S)
            mu[int(getattr(u, "s", 0))] = 1.0
        mu = np.asarray(mu, dtype=np.float64)
        mu = mu / mu.sum()
        # a terminal state must never be entered without termination from a state that play
        # can reach (the table's moves out of terminal states are never played: replaced below)
        live_in = np.zeros(S, dtype=bool)
        seen = mu > 0
        stack = list(np.flatnonzero(seen & ~term))
        while stack:
            s = int(stack.pop())
            for a in range(A):
                for prob, s2, _, done in table[s][a]:
                    if prob > 0 and not done:
                        live_in[s2] = True
                        if not seen[s2] and not term[s2]:
                            seen[s2] = True
                            stack.append(s2)
        mixed = np.flatnonzero(term & live_in)
        if mixed.size:
            raise ValueError(
                f"state {mixed[0]} is entered both with and without termination; "
                "it cannot be made an absorbing terminal state"
            )
        P[term] = 0.0
        r[term] = 0.0
        if terminal == "reset":
            P[term] = mu
            return cls(P, r, gamma, int(np.argmax(mu)), start_distribution=mu)
        for t in np.flatnonzero(term):
            P[t, :, t] = 1.0
        return cls(P, r, gamma, int(np.argmax(mu)), start_distribution=mu, terminal=term)

    def expect_next(self, f: ArrayLike) -> NDArray[np.float64]:
        """:math:`E_{s'\\sim P(\\cdot|s, a)}[f(s')]` as an array of shape (S, A)."""
        f = check_state_function(f, self.n_states, "f")
        return self.P @ f

    def policy_transition(self, pi: ArrayLike) -> NDArray[np.float64]:
        """State-to-state matrix :math:`P_\\pi[s, s'] = \\sum_a \\pi(a|s) P(s'|s, a)`."""
        pi = check_policy(pi, self.n_states, self.n_actions)
        return np.einsum("sa,sat->st", pi, self.P)


def check_mdp(mdp: object, name: str = "mdp") -> "TabularMDP":
    """Raise :class:`ValueError` unless ``mdp`` is a :class:`TabularMDP`; return it."""
    if not isinstance(mdp, TabularMDP):
        raise ValueError(f"{name} must be a lfl_lib.mdp.TabularMDP; got {type(mdp).__name__}")
    return mdp


def uniform_policy(n_states: int, n_actions: int) -> NDArray[np.float64]:
    """The uniform policy :math:`\\pi(a|s) = 1/|A|`, shape (S, A)."""
    n_states = check_positive_int(n_states, "n_states")
    n_actions = check_positive_int(n_actions, "n_actions")
    return np.full((n_states, n_actions), 1.0 / n_actions)


def softmax_policy(Q: ArrayLike, alpha: float) -> NDArray[np.float64]:
    """The Boltzmann policy :math:`\\pi(a|s) \\propto \\exp(Q(s, a)/\\alpha)` (Eq. 3), computed stably."""
    alpha = check_alpha(alpha)
    Q = as_float_array(Q, "Q", ndim=2)
    z = Q / alpha
    return np.exp(z - logsumexp(z, axis=1, keepdims=True))


def policy_entropy(pi: ArrayLike) -> NDArray[np.float64]:
    """Shannon entropy :math:`\\mathcal{H}(\\pi(\\cdot|s)) = -\\sum_a \\pi \\ln \\pi` per state, with 0 ln 0 = 0."""
    pi = as_float_array(pi, "pi", ndim=2)
    pi = check_policy(pi, *pi.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(pi > 0, pi * np.log(np.where(pi > 0, pi, 1.0)), 0.0)
    return -terms.sum(axis=1)


def _logsumexp_rows(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """:math:`\\ln\\sum_a \\exp z[s, a]` per row, computed stably (a fast path for the loops below)."""
    zmax = z.max(axis=1)
    return zmax + np.log(np.exp(z - zmax[:, None]).sum(axis=1))


def _live_entropy(mdp: TabularMDP, pi: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per-state entropy, 0 at terminal states (no entropy is collected once an episode ended)."""
    h = policy_entropy(pi)
    if mdp.terminal is not None:
        h = np.where(mdp.terminal, 0.0, h)
    return h


def _start_value(mdp: TabularMDP, V: NDArray[np.float64]) -> float:
    """The value of the start state, or its expectation under the start distribution."""
    if mdp.start_distribution is None:
        return float(V[mdp.start])
    return float(mdp.start_distribution @ V)


def _evaluate_state_values(
    mdp: TabularMDP, pi: NDArray[np.float64], per_state: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Solve :math:`(I - \\gamma P_\\pi) V = c` for the per-state payoff ``c``."""
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    return np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma * P_pi, per_state)


def soft_evaluate(mdp: TabularMDP, pi: ArrayLike, alpha: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Exact soft policy evaluation by one linear solve (Section 4, soft Bellman evaluation equation).

    Solves :math:`(I - \\gamma P_\\pi) V = r_\\pi + \\alpha \\mathcal{H}_\\pi` and sets
    :math:`Q = r + \\gamma P V`.

    Parameters
    ----------
    mdp : TabularMDP
    pi : array_like, shape (S, A)
        A policy; rows sum to 1.
    alpha : float
        Entropy weight :math:`\\alpha > 0`. (Use :func:`expected_return` for :math:`\\alpha = 0`.)

    Returns
    -------
    Q : ndarray, shape (S, A)
        Soft action values :math:`Q^\\pi_{soft}`.
    V : ndarray, shape (S,)
        Soft state values :math:`V^\\pi(s) = E_{a\\sim\\pi}[Q^\\pi(s,a) - \\alpha\\ln\\pi(a|s)]`.
    """
    check_mdp(mdp)
    alpha = check_alpha(alpha)
    pi = check_policy(pi, mdp.n_states, mdp.n_actions)
    c = (pi * mdp.r).sum(axis=1) + alpha * _live_entropy(mdp, pi)
    V = _evaluate_state_values(mdp, pi, c)
    Q = mdp.r + mdp.gamma * (mdp.P @ V)
    return Q, V


def expected_return(mdp: TabularMDP, pi: ArrayLike) -> float:
    """Plain discounted return :math:`E_\\pi[\\sum_t \\gamma^t r(s_t, a_t)]` from the start state."""
    check_mdp(mdp)
    pi = check_policy(pi, mdp.n_states, mdp.n_actions)
    V = _evaluate_state_values(mdp, pi, (pi * mdp.r).sum(axis=1))
    return _start_value(mdp, V)


def discounted_entropy(mdp: TabularMDP, pi: ArrayLike, alpha: float) -> float:
    """The entropy part :math:`\\alpha E_\\pi[\\sum_t \\gamma^t \\mathcal{H}(\\pi(\\cdot|s_t))]` of :math:`J_{soft}`.

    ``score(mdp, pi, alpha) == expected_return(mdp, pi) + discounted_entropy(mdp, pi, alpha)``.
    """
    check_mdp(mdp)
    alpha = check_alpha(alpha)
    pi = check_policy(pi, mdp.n_states, mdp.n_actions)
    V = _evaluate_state_values(mdp, pi, alpha * _live_entropy(mdp, pi))
    return _start_value(mdp, V)


def soft_optimal(
    mdp: TabularMDP, alpha: float, tol: float = 1e-12, max_iter: int = 100_000
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """The optimal soft policy by soft value iteration (soft Bellman optimality equation).

    Iterates :math:`V \\leftarrow \\alpha \\ln \\sum_a \\exp\\big((r + \\gamma P V)/\\alpha\\big)`
    until the sup-norm change is below ``tol`` (a :math:`\\gamma`-contraction), then returns
    :math:`\\pi^*(a|s) \\propto \\exp(Q^*(s, a)/\\alpha)`.

    Parameters
    ----------
    mdp : TabularMDP
    alpha : float
        Entropy weight, > 0.
    tol : float, default 1e-12
        Stopping tolerance on :math:`\\|V_{k+1} - V_k\\|_\\infty`.
    max_iter : int, default 100000

    Returns
    -------
    pi : ndarray, shape (S, A)
    Q : ndarray, shape (S, A)
    V : ndarray, shape (S,)

    Raises
    ------
    ValueError
        On bad ``alpha`` or ``tol``.
    RuntimeError
        If ``max_iter`` iterations do not reach ``tol``.
    """
    check_mdp(mdp)
    alpha = check_alpha(alpha)
    try:
        tol_ok = bool(np.isfinite(tol) and tol > 0)
    except TypeError:
        tol_ok = False
    if not tol_ok:
        raise ValueError(f"tol must be a finite number > 0; got {tol!r}")
    max_iter = check_positive_int(max_iter, "max_iter")
    V = np.zeros(mdp.n_states)
    for _ in range(max_iter):
        Q = mdp.r + mdp.gamma * (mdp.P @ V)
        V_new = alpha * _logsumexp_rows(Q / alpha)
        if mdp.terminal is not None:
            V_new[mdp.terminal] = 0.0
        done = np.max(np.abs(V_new - V)) < tol
        V = V_new
        if done:
            break
    else:
        raise RuntimeError(f"soft value iteration did not reach tol={tol} in {max_iter} iterations")
    Q = mdp.r + mdp.gamma * (mdp.P @ V)
    return softmax_policy(Q, alpha), Q, V


def score(mdp: TabularMDP, pi: ArrayLike, alpha: float) -> float:
    """:math:`J_{soft}(\\pi)`: the soft value of the start state (the score of Tables 1 and 2).

    With a start distribution :math:`\\mu_0`, the expected soft value :math:`\\sum_s \\mu_0(s) V^\\pi(s)`.
    """
    _, V = soft_evaluate(mdp, pi, alpha)
    return _start_value(mdp, V)


def random_mdp(
    n_states: int,
    n_actions: int,
    rng: np.random.Generator,
    gamma: float = 0.9,
    reward_scale: float = 1.0,
    sparsity: float = 0.0,
) -> TabularMDP:
    """A random MDP with stochastic dynamics, for checking theorems numerically.

    Each ``P[s, a]`` is drawn from a flat Dirichlet distribution; a fraction ``sparsity``
    of its entries is then zeroed (one entry is always kept) and the row renormalised.
    Rewards are i.i.d. normal with standard deviation ``reward_scale``.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator; got {type(rng).__name__}")
    n_states = check_positive_int(n_states, "n_states")
    n_actions = check_positive_int(n_actions, "n_actions")
    if not (np.isfinite(reward_scale) and reward_scale >= 0):
        raise ValueError(f"reward_scale must be a finite number >= 0; got {reward_scale!r}")
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1); got {sparsity}")
    P = rng.dirichlet(np.ones(n_states), size=(n_states, n_actions))
    if sparsity > 0:
        mask = rng.random(P.shape) >= sparsity
        keep = rng.integers(n_states, size=(n_states, n_actions))
        mask[np.arange(n_states)[:, None], np.arange(n_actions)[None, :], keep] = True
        P = P * mask
        P /= P.sum(axis=2, keepdims=True)
    r = reward_scale * rng.standard_normal((n_states, n_actions))
    return TabularMDP(P, r, gamma, start=0)
