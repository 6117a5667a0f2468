"""Baselines on the data of Table 2: behaviour cloning and maximum-entropy IRL.

Learning from a Learner sees one trajectory per policy of an improving learner. Two
standard answers use the same data differently (chapter 7 of the book):

**Behaviour cloning** (:func:`behaviour_cloning`) fits a tabular policy to observed
pairs by maximum likelihood, smoothed by a Dirichlet prior of total mass
:math:`\\beta` per state spread evenly over the actions,

.. math:: \\hat\\pi(a|s) = \\frac{n(s, a) + \\beta / |A|}{n(s) + \\beta},

so that an unvisited state gets the uniform policy. The observer plays
:math:`\\hat\\pi` directly.

**Maximum-entropy inverse RL** (:func:`maxent_irl`) treats the observed pairs as
demonstrations of the soft-optimal policy of an unknown reward,
:math:`\\pi_r(a|s) = \\exp\\big((Q^*_r(s, a) - V^*_r(s))/\\alpha\\big)` (the model of
Eq. 3 at the optimum; Ziebart et al. 2008, in its discounted, causal form), and maximises
the regularized log-likelihood of the pairs,

.. math:: \\ell(\\theta) = \\frac{1}{T}\\sum_{s, a} n(s, a) \\ln \\pi_{r_\\theta}(a|s)
          - \\frac{\\lambda}{2}\\|\\theta\\|^2, \\qquad r_\\theta = \\Phi\\theta,

over a tabular reward: state-only, :math:`r(s)` (``features="state"``), or
state-action, :math:`r(s, a)` (``features="state_action"``). The dynamics are known
(the true ones), as in Ziebart et al.; LfL estimates them from the data instead.

The gradient is exact. Writing :math:`\\Psi = (I - \\gamma P\\Pi_r)^{-1}` for the
state-action successor matrix of :math:`\\pi_r` (row :math:`(s, a)`: the discounted
state-action visitation counts of a run that starts in :math:`s` with action
:math:`a` and then follows :math:`\\pi_r`), :math:`\\partial Q^*_r / \\partial r = \\Psi`
and :math:`\\partial V^*_r(s) / \\partial r = \\sum_a \\pi_r(a|s)\\Psi_{(s, a)}`, so

.. math:: \\nabla_r \\frac{1}{T}\\sum n \\ln\\pi_r = \\frac{1}{\\alpha T}\\sum_{s, a}
          \\big(n(s, a) - n(s)\\,\\pi_r(a|s)\\big)\\,\\Psi_{(s, a)} ,

the difference between the discounted state-action visitation counts that start with
the demonstrated actions and those that start with the model's actions (Ziebart's
"empirical minus expected feature counts", here for pairs taken anywhere on a long
run rather than for episodes from the start state), and :math:`\\nabla_\\theta =
\\Phi^\\top\\nabla_r - \\lambda\\theta`. The optimiser is L-BFGS
(``scipy.optimize.minimize``) on this exact gradient; each evaluation plans
:math:`\\pi_r` by soft policy iteration warm-started from the previous plan. The
log-likelihood need not be concave in :math:`r`, so the result is a local maximum
reached from :math:`\\theta = 0` (the uniform policy).

Every reward is scored by the protocol of Tables 1 and 2
(:func:`lfl_lib.tabular_lfl.observer_score`): plan the optimal soft policy with the
true :math:`\\alpha` on the true dynamics, evaluate :math:`J` under the true reward.
The comparison of every method on the runs of Table 2 is the experiment driver
:mod:`lfl_lib.experiments.baselines` (``lfl baselines --runs 10``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize

from ._validate import as_float_array, check_alpha, check_policy, check_positive_int, check_reward
from .mdp import TabularMDP, check_mdp, uniform_policy
from .trajectories import Trajectory, check_trajectories, pair_counts

__all__ = [
    "behaviour_cloning",
    "pooled_counts",
    "soft_optimal_from",
    "demo_log_likelihood",
    "IRLResult",
    "maxent_irl",
]

Features = Literal["state", "state_action"]


def _as_trajectory_list(
    trajectories: Trajectory | Sequence[Trajectory], n_states: int, n_actions: int
) -> list[Trajectory]:
    """One Trajectory or a list of them, checked against the sizes of the MDP."""
    if isinstance(trajectories, Trajectory):
        trajectories = [trajectories]
    return check_trajectories(trajectories, n_states, n_actions)


def pooled_counts(
    trajectories: Trajectory | Sequence[Trajectory], n_states: int, n_actions: int
) -> NDArray[np.float64]:
    """Visit counts :math:`n(s, a)` summed over one or several trajectories, shape (S, A)."""
    trajs = _as_trajectory_list(trajectories, n_states, n_actions)
    return sum((pair_counts(tr, n_states, n_actions) for tr in trajs), np.zeros((n_states, n_actions)))


def behaviour_cloning(
    trajectories: Trajectory | Sequence[Trajectory], n_states: int, n_actions: int, prior: float = 1.0
) -> NDArray[np.float64]:
    """Behaviour cloning: the smoothed maximum-likelihood tabular policy of observed pairs.

    :math:`\\hat\\pi(a|s) = (n(s, a) + \\beta/|A|) / (n(s) + \\beta)`: the maximum a
    posteriori policy under a symmetric Dirichlet prior of total mass :math:`\\beta` per
    state (maximum likelihood for :math:`\\beta \\to 0`, uniform where :math:`n(s) = 0`).

    Parameters
    ----------
    trajectories : Trajectory or list of Trajectory
        The demonstrations; the pairs of several trajectories are pooled.
    n_states, n_actions : int
    prior : float, default 1.0
        :math:`\\beta > 0`, pseudo-counts per state (one visit's worth, spread evenly).

    Returns
    -------
    ndarray, shape (n_states, n_actions)
        A policy with all entries > 0.

    Raises
    ------
    ValueError
        If ``trajectories`` is empty or holds something other than a Trajectory, a
        state or action is out of range, or ``prior`` is not a finite number > 0.
    """
    n_states = check_positive_int(n_states, "n_states")
    n_actions = check_positive_int(n_actions, "n_actions")
    if (
        isinstance(prior, bool)
        or not isinstance(prior, (int, float, np.floating, np.integer))
        or not (np.isfinite(prior) and prior > 0)
    ):
        raise ValueError(f"prior must be a finite number > 0; got {prior!r}")
    n = pooled_counts(trajectories, n_states, n_actions)
    return (n + prior / n_actions) / (n.sum(axis=1, keepdims=True) + prior)


def _spi_fixed_point(
    P: NDArray[np.float64],
    r: NDArray[np.float64],
    gamma: float,
    alpha: float,
    pi: NDArray[np.float64],
    tol: float,
    max_iter: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Soft policy iteration on raw arrays (no input checks): the inner loop of :func:`maxent_irl`."""
    S = P.shape[0]
    eye = np.eye(S)
    V = None
    for _ in range(max_iter):
        logpi = np.log(np.where(pi > 0, pi, 1.0))  # 0 ln 0 = 0
        c = (pi * (r - alpha * logpi)).sum(axis=1)
        V_new = np.linalg.solve(eye - gamma * np.einsum("sa,sat->st", pi, P), c)
        Q = r + gamma * (P @ V_new)
        z = Q / alpha
        z = z - z.max(axis=1, keepdims=True)
        pi = np.exp(z)
        pi /= pi.sum(axis=1, keepdims=True)
        done = V is not None and np.max(np.abs(V_new - V)) < tol
        V = V_new
        if done:
            return pi, Q, V
    raise RuntimeError(f"soft policy iteration did not reach tol={tol} in {max_iter} iterations")


def soft_optimal_from(
    mdp: TabularMDP, alpha: float, pi0: ArrayLike | None = None, tol: float = 1e-11, max_iter: int = 1000
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """The optimal soft policy by soft policy iteration (Eq. 3 repeated) from ``pi0``.

    Alternates exact soft evaluation of :math:`\\pi` and the soft improvement
    :math:`\\pi \\leftarrow \\exp(Q^\\pi/\\alpha)/Z` until the soft values change by less than
    ``tol`` in sup-norm. Like policy iteration it needs few steps from a nearby policy,
    which makes it the inner solver of :func:`maxent_irl` (warm-started from the previous
    plan); the result agrees with :func:`lfl_lib.mdp.soft_optimal`.

    Parameters
    ----------
    mdp : TabularMDP
    alpha : float
        Entropy weight, > 0.
    pi0 : array_like, shape (S, A), optional
        Starting policy with all entries > 0; uniform by default.
    tol : float, default 1e-11
    max_iter : int, default 1000

    Returns
    -------
    pi : ndarray, shape (S, A)
    Q : ndarray, shape (S, A)
    V : ndarray, shape (S,)
    """
    check_mdp(mdp)
    alpha = check_alpha(alpha)
    max_iter = check_positive_int(max_iter, "max_iter")
    if pi0 is None:
        pi = uniform_policy(mdp.n_states, mdp.n_actions)
    else:
        pi = check_policy(pi0, mdp.n_states, mdp.n_actions, "pi0")
        if np.any(pi <= 0):
            raise ValueError("pi0 must have all entries > 0 (a soft policy)")
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a finite number > 0; got {tol!r}")
    return _spi_fixed_point(mdp.P, mdp.r, mdp.gamma, alpha, pi, float(tol), max_iter)


def _features(features: Features, n_states: int, n_actions: int) -> NDArray[np.float64]:
    """:math:`\\Phi`, shape (S*A, d): state indicators or the identity."""
    if features == "state":
        return np.repeat(np.eye(n_states), n_actions, axis=0)
    if features == "state_action":
        return np.eye(n_states * n_actions)
    raise ValueError(f"features must be 'state' or 'state_action'; got {features!r}")


def _check_counts(counts: ArrayLike, mdp: TabularMDP) -> NDArray[np.float64]:
    n = as_float_array(counts, "counts", ndim=2)
    if n.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(
            f"counts must have shape (n_states, n_actions) = ({mdp.n_states}, {mdp.n_actions}); got {n.shape}"
        )
    if np.any(n < 0) or n.sum() <= 0:
        raise ValueError("counts must be non-negative with a positive total")
    return n


def demo_log_likelihood(
    mdp: TabularMDP, r: ArrayLike, counts: ArrayLike, alpha: float, pi0: ArrayLike | None = None
) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    """Mean log-likelihood of demonstrated pairs under the soft-optimal policy of ``r``, and its gradient.

    :math:`\\frac{1}{T}\\sum_{s,a} n(s,a)\\ln\\pi_r(a|s)` with :math:`T = \\sum n`, and
    :math:`\\nabla_r = \\frac{1}{\\alpha T}\\Psi^\\top(n - n_s\\pi_r)`, :math:`\\Psi = (I - \\gamma P\\Pi_r)^{-1}`
    (module docstring). ``mdp`` supplies the dynamics and the discount; its reward is ignored.

    Parameters
    ----------
    mdp : TabularMDP
    r : array_like, shape (S, A)
        The candidate reward.
    counts : array_like, shape (S, A)
        Demonstrated pair counts :math:`n(s, a) \\ge 0` (need not be integers).
    alpha : float
        Entropy weight of the demonstrator model, > 0.
    pi0 : array_like, optional
        Warm start of the planner (:func:`soft_optimal_from`).

    Returns
    -------
    ll : float
    grad : ndarray, shape (S, A)
    pi : ndarray, shape (S, A)
        :math:`\\pi_r`.
    """
    check_mdp(mdp)
    alpha = check_alpha(alpha)
    n = _check_counts(counts, mdp)
    r = check_reward(r, mdp.n_states, mdp.n_actions, "r")
    if pi0 is None:
        pi = uniform_policy(mdp.n_states, mdp.n_actions)
    else:
        pi = check_policy(pi0, n.shape[0], n.shape[1], "pi0")
    return _likelihood(mdp.P, mdp.gamma, r, n, alpha, pi)


def _likelihood(
    P: NDArray[np.float64],
    gamma: float,
    r: NDArray[np.float64],
    n: NDArray[np.float64],
    alpha: float,
    pi0: NDArray[np.float64],
) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    """:func:`demo_log_likelihood` without input checks.

    The gradient :math:`\\Psi^\\top v / (\\alpha T)`, :math:`v = n - n_s\\pi`, is computed in
    state space with the push-through identity
    :math:`(I - \\gamma P\\Pi)^{-1} = I + \\gamma P (I - \\gamma P_\\pi)^{-1}\\Pi`:
    :math:`\\Psi^\\top v = v + \\gamma\\,\\Pi^\\top x` with
    :math:`(I - \\gamma P_\\pi)^\\top x = P^\\top v`, one S x S solve instead of an SA x SA one.
    """
    pi, _, _ = _spi_fixed_point(P, r, gamma, alpha, pi0, 1e-11, 1000)
    S = P.shape[0]
    T = n.sum()
    ll = float((n * np.log(pi)).sum() / T)
    v = n - n.sum(axis=1, keepdims=True) * pi
    P_pi = np.einsum("sa,sat->st", pi, P)
    x = np.linalg.solve((np.eye(S) - gamma * P_pi).T, np.einsum("sa,sat->t", v, P))
    grad = (v + gamma * pi * x[:, None]) / (alpha * T)
    return ll, grad, pi


@dataclass(frozen=True)
class IRLResult:
    """What :func:`maxent_irl` found."""

    r: NDArray[np.float64]
    """Recovered reward :math:`r_\\theta = \\Phi\\theta`, shape (S, A)."""
    pi: NDArray[np.float64]
    """Its soft-optimal policy :math:`\\pi_r` (the model's fit of the demonstrations)."""
    log_likelihood: float
    """Mean log-likelihood of the demonstrations under ``pi`` (without the ridge)."""
    grad_norm: float
    """Sup-norm of the gradient of the regularized objective at the solution."""
    n_evals: int
    """Number of likelihood evaluations (each one plans :math:`\\pi_r`)."""
    success: bool
    """Whether L-BFGS reported convergence."""


def maxent_irl(
    mdp: TabularMDP,
    trajectories: Trajectory | Sequence[Trajectory] | None,
    alpha: float,
    features: Features = "state",
    ridge: float = 1e-3,
    gtol: float = 1e-6,
    max_iter: int = 500,
    counts: ArrayLike | None = None,
) -> IRLResult:
    """Maximum-entropy IRL: the tabular reward whose soft-optimal policy best explains demonstrations.

    Maximises :math:`\\frac{1}{T}\\sum n\\ln\\pi_{r_\\theta} - \\frac{\\lambda}{2}\\|\\theta\\|^2` by
    L-BFGS on the exact gradient (module docstring), from :math:`\\theta = 0`.

    Parameters
    ----------
    mdp : TabularMDP
        The known dynamics and discount (the reward is ignored).
    trajectories : Trajectory or list of Trajectory, or None
        The demonstrations; the pairs of several trajectories are pooled.
        None when ``counts`` is given.
    alpha : float
        The demonstrator's entropy weight assumed by the model, > 0.
    features : {"state", "state_action"}, default "state"
        Reward class: :math:`r(s)` or :math:`r(s, a)`.
    ridge : float, default 1e-3
        :math:`\\lambda \\ge 0`. The likelihood alone can grow without bound (an action never
        demonstrated in a state is pushed towards probability 0 by an ever lower reward)
        and, with state-action features, is invariant to potential shaping; the ridge
        makes the maximiser finite and picks the representative of smallest norm.
    gtol : float, default 1e-6
        L-BFGS stops when the projected gradient's sup-norm is below it.
    max_iter : int, default 500
        L-BFGS iterations at most.
    counts : array_like, shape (S, A), optional
        Pair counts :math:`n(s, a)` to use instead of ``trajectories`` (for example the
        expected counts of a known policy: "infinitely long" demonstrations).

    Returns
    -------
    IRLResult

    Raises
    ------
    ValueError
        On a bad ``mdp``, ``trajectories``, ``alpha``, ``features``, ``ridge``, ``gtol``,
        ``max_iter`` or ``counts``, or unless exactly one of ``trajectories`` and ``counts`` is given.
    """
    check_mdp(mdp)
    alpha = check_alpha(alpha)
    S, A = mdp.n_states, mdp.n_actions
    Phi = _features(features, S, A)
    if not (isinstance(ridge, (int, float, np.floating, np.integer)) and np.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be a finite number >= 0; got {ridge!r}")
    if not (isinstance(gtol, (int, float, np.floating)) and np.isfinite(gtol) and gtol > 0):
        raise ValueError(f"gtol must be a finite number > 0; got {gtol!r}")
    max_iter = check_positive_int(max_iter, "max_iter")
    if (trajectories is None) == (counts is None):
        raise ValueError("give exactly one of trajectories and counts")
    n = (
        _check_counts(counts, mdp)
        if counts is not None
        else pooled_counts(cast(Sequence[Trajectory], trajectories), S, A)
    )
    warm: dict[str, NDArray[np.float64]] = {"pi": uniform_policy(S, A)}
    n_evals = 0

    def objective(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        nonlocal n_evals
        n_evals += 1
        r = (Phi @ theta).reshape(S, A)
        ll, g, pi = _likelihood(mdp.P, mdp.gamma, r, n, alpha, warm["pi"])
        warm["pi"] = pi
        f = -ll + 0.5 * ridge * float(theta @ theta)
        return f, -(Phi.T @ g.ravel()) + ridge * theta

    res = minimize(
        objective,
        np.zeros(Phi.shape[1]),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": gtol, "maxiter": max_iter, "ftol": 0.0},
    )
    r = (Phi @ res.x).reshape(S, A)
    ll, g, pi = _likelihood(mdp.P, mdp.gamma, r, n, alpha, warm["pi"])
    grad_norm = float(np.max(np.abs(Phi.T @ g.ravel() - ridge * res.x)))
    return IRLResult(r, pi, ll, grad_norm, n_evals, bool(res.success))
