"""Algorithm 1 for tabular MDPs: a reward from the trajectories of a learner (Section 5).

The observer sees one trajectory :math:`D_k` per policy :math:`\\pi_k` of the learner,
:math:`k = 1, \\dots, N`, and recovers one reward :math:`r(s, a)` in three steps:

1. **Policies** (Section 5.2). Each :math:`\\hat\\pi_k` is a regularized maximum-likelihood
   estimate from :math:`D_k` (:func:`estimate_policies`).
2. **Targets** (Theorem 2). For each improvement :math:`k \\to k+1`,

   .. math:: \\hat r_k(s, a) = \\alpha_m \\ln \\hat\\pi_{k+1}(a|s)
             + \\alpha_m \\gamma \\sum_{s'} \\hat P(s'|s, a)\\,
             \\mathrm{KL}\\big(\\hat\\pi_k(\\cdot|s')\\,\\|\\,\\hat\\pi_{k+1}(\\cdot|s')\\big),

   with :math:`\\hat P` the smoothed empirical dynamics
   (:func:`lfl_lib.trajectories.estimate_transitions`) and :math:`\\alpha_m` the
   entropy weight the observer assumes (:func:`targets`). In the tabular case the KL
   terms are computed exactly from the estimates (Section 6.3), not regressed.
3. **Consistency** (Eq. 5). One reward :math:`r` and one shaping :math:`f_k` per
   improvement minimise

   .. math:: L(r, \\{f_k\\}) = \\sum_k \\sum_{s,a} w_k(s, a)\\,
             \\big(\\hat r_k(s, a) - r(s, a) - f_k(s) + \\gamma \\textstyle\\sum_{s'}
             \\hat P(s'|s,a) f_k(s')\\big)^2
             + \\mu \\sum_{s,a} (r(s,a) - r_0)^2 + \\epsilon \\sum_k \\|f_k\\|^2 ,

   a convex quadratic, solved exactly (``solver="exact"``) or by full-batch Adam as in
   the paper (``solver="adam"``) (:func:`consistency_fit`).

The choices the paper leaves open are arguments, documented where they are used:
how the policies are smoothed (``policy_estimator``, ``policy_prior``), which pairs
enter the loss and with what weight (``weights``), what reward a pair outside the loss
receives (the small ridge :math:`\\mu` towards :math:`r_0`, ``unseen``), and how the
common shaping that Eq. (5) leaves unidentified is pinned (the tiny ridge
:math:`\\epsilon` on the shapings, together with :math:`\\mu`). The defaults are the
choices the book's chapter 5 selected on held-out seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import as_float_array, check_alpha, check_gamma, check_positive_int, check_reward
from .inversion import kl_divergence
from .mdp import TabularMDP, discounted_entropy, expected_return, score, soft_optimal
from .trajectories import Trajectory, check_trajectories, estimate_transitions, pair_counts, transition_counts

__all__ = [
    "estimate_policies",
    "targets",
    "consistency_loss",
    "consistency_fit",
    "LfLResult",
    "fit_lfl",
    "recover_reward",
    "ObserverScore",
    "observer_score",
    "observer_policy",
    "play_policy",
]

PolicyEstimator = Literal["dirichlet", "entropy_ml", "entropy_ml_adam"]
PolicyPriorMean = Literal["uniform", "previous"]
Weights = Literal["states", "pairs", "all"]
Unseen = Literal["min", "zero", "mean"]
Solver = Literal["exact", "adam"]


def _adam_ascent_logits(counts: NDArray[np.float64], entropy_weight: float, n_steps: int, lr: float) -> NDArray[np.float64]:
    """Full-batch Adam ascent of :math:`\\sum_{(s,a)\\in D}[\\ln\\pi(a|s) + \\lambda H(\\pi(\\cdot|s))]` in tabular logits."""
    S, A = counts.shape
    n_s = counts.sum(axis=1, keepdims=True)
    theta = np.zeros((S, A))
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, n_steps + 1):
        z = theta - theta.max(axis=1, keepdims=True)
        pi = np.exp(z)
        pi /= pi.sum(axis=1, keepdims=True)
        logpi = np.log(pi)
        # d/dtheta of sum_a n_a ln pi_a  =  n_a - n_s pi_a
        g = counts - n_s * pi
        # d/dtheta of n_s H(pi) = -n_s pi_a (ln pi_a + H)
        H = -(pi * logpi).sum(axis=1, keepdims=True)
        g += entropy_weight * (-n_s * pi * (logpi + H))
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta = theta + lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    z = theta - theta.max(axis=1, keepdims=True)
    pi = np.exp(z)
    return pi / pi.sum(axis=1, keepdims=True)


def _entropy_ml_exact(counts: NDArray[np.float64], entropy_weight: float, tol: float = 1e-10,
                      max_iter: int = 2000) -> NDArray[np.float64]:
    """The exact maximiser of :math:`\\sum_{(s,a)\\in D}[\\ln\\pi(a|s) + \\lambda H(\\pi(\\cdot|s))]`.

    State by state this is :math:`n(s)\\,F_s(\\pi)` with
    :math:`F_s(\\pi) = \\sum_a \\hat p(a|s)\\ln\\pi(a) + \\lambda H(\\pi)` and :math:`\\hat p` the
    empirical frequencies: a strictly concave problem on the simplex whose solution
    depends on the frequencies only, not on how often the state was visited. Solved by
    Newton's method on the simplex (the Hessian is diagonal), all states at once, with
    steps shortened to keep every probability positive. An unvisited state gets the
    uniform policy (the maximiser of :math:`H`).
    """
    S, A = counts.shape
    n_s = counts.sum(axis=1)
    pi = np.full((S, A), 1.0 / A)
    visited = n_s > 0
    if not visited.any():
        return pi
    p = counts[visited] / n_s[visited, None]
    lam = entropy_weight
    q = (p + 1.0 / A) / 2.0
    for _ in range(max_iter):
        g = p / q - lam * (np.log(q) + 1.0)
        D = p / q**2 + lam / q  # minus the diagonal Hessian, > 0
        nu = (g / D).sum(axis=1, keepdims=True) / (1.0 / D).sum(axis=1, keepdims=True)
        d = (g - nu) / D  # Newton direction, sums to 0 in each row
        with np.errstate(divide="ignore"):
            limit = np.where(d < 0, q / -d, np.inf).min(axis=1, keepdims=True)
        q = q + np.minimum(1.0, 0.5 * limit) * d
        q /= q.sum(axis=1, keepdims=True)
        # Relative test: a tiny probability must have converged in ratio, not only in size.
        if np.max(np.abs(d) / q) < tol:
            break
    pi[visited] = q
    return pi


def estimate_policies(
    trajectories: Sequence[Trajectory],
    n_states: int,
    n_actions: int,
    estimator: PolicyEstimator = "entropy_ml",
    prior: float = 1.0,
    prior_mean: PolicyPriorMean = "previous",
    entropy_weight: float = 0.4,
    n_steps: int = 10,
    lr: float = 0.5,
) -> list[NDArray[np.float64]]:
    """Regularized maximum-likelihood estimates :math:`\\hat\\pi_k`, one per observed policy (Section 5.2).

    ``trajectories`` is a list of :class:`~lfl_lib.trajectories.Trajectory` (one per
    policy) or of lists of :class:`~lfl_lib.data.Episode` (the episodes of each policy).

    The default, ``"entropy_ml"`` with :math:`\\lambda = 0.4`, is the paper's objective solved
    exactly with a much larger entropy weight than the paper's 0.01; it was chosen on
    held-out seeds (book chapter 5).

    Parameters
    ----------
    trajectories : list of Trajectory
    n_states, n_actions : int
    estimator : {"entropy_ml", "entropy_ml_adam", "dirichlet"}
        ``"entropy_ml"`` (default): the exact maximiser of the paper's objective
        :math:`\\sum_{(s,a)\\in D_k}[\\ln\\pi(a|s) + \\lambda H(\\pi(\\cdot|s))]`. State by
        state it depends on the empirical frequencies only: :math:`\\lambda` bounds how far
        from uniform the estimate goes, whatever the number of visits.
        ``"dirichlet"``: the maximum a posteriori estimate under a Dirichlet prior,
        :math:`\\hat\\pi_k(a|s) = (n_k(s,a) + \\beta m_k(a|s)) / (n_k(s) + \\beta)`, i.e.
        maximum likelihood regularized by :math:`\\beta\\sum_a m_k(a|s)\\ln\\pi(a|s)`
        (a cross-entropy towards the prior mean :math:`m_k`); closed form.
        ``"entropy_ml_adam"``: the same objective ascended by
        ``n_steps`` full-batch Adam steps of rate ``lr`` from uniform logits. Its exact
        maximiser is nearly deterministic for small :math:`\\lambda` (an action never
        seen gets a probability of order :math:`e^{-1/\\lambda}`); the few steps are what
        keeps the estimate soft.
    prior : float, default 1.0
        :math:`\\beta > 0`, the Dirichlet prior's pseudo-count per state (``"dirichlet"`` only).
    prior_mean : {"previous", "uniform"}, default "previous"
        :math:`m_k`: ``"uniform"`` for every k, or ``"previous"``: uniform for k = 1 and the
        estimate :math:`\\hat\\pi_{k-1}` afterwards, so that where :math:`D_k` holds no
        evidence the observer assumes that the policy did not change (``"dirichlet"`` only).
    entropy_weight : float, default 0.4
        :math:`\\lambda > 0` (``"entropy_ml"`` and ``"entropy_ml_adam"``; the paper uses 0.01).
    n_steps, lr :
        Number of Adam steps and learning rate (``"entropy_ml_adam"`` only). The defaults,
        10 and 0.5, are those of the authors' released grid-world code (the paper's text
        says learning rate 1e-3).

    Returns
    -------
    list of ndarray, each of shape (S, A), all entries > 0
    """
    counts_k = _observed(trajectories, n_states, n_actions, minimum=1).pair_counts
    if estimator not in ("dirichlet", "entropy_ml", "entropy_ml_adam"):
        raise ValueError(f"estimator must be 'dirichlet', 'entropy_ml' or 'entropy_ml_adam'; got {estimator!r}")
    if prior_mean not in ("uniform", "previous"):
        raise ValueError(f"prior_mean must be 'uniform' or 'previous'; got {prior_mean!r}")
    if not (np.isfinite(prior) and prior > 0):
        raise ValueError(f"prior must be a finite number > 0; got {prior!r}")
    uniform = np.full((n_states, n_actions), 1.0 / n_actions)
    policies: list[NDArray[np.float64]] = []
    if not (np.isfinite(entropy_weight) and entropy_weight > 0):
        raise ValueError(f"entropy_weight must be a finite number > 0; got {entropy_weight!r}")
    if estimator == "entropy_ml":
        # One Newton solve for all trajectories at once (the problem separates by state).
        counts = np.concatenate(counts_k)
        return list(_entropy_ml_exact(counts, float(entropy_weight)).reshape(len(counts_k), n_states, n_actions))
    for counts in counts_k:
        if estimator == "entropy_ml_adam":
            n_steps = check_positive_int(n_steps, "n_steps")
            policies.append(_adam_ascent_logits(counts, float(entropy_weight), n_steps, float(lr)))
            continue
        mean = policies[-1] if (prior_mean == "previous" and policies) else uniform
        pi = (counts + prior * mean) / (counts.sum(axis=1, keepdims=True) + prior)
        policies.append(pi)
    return policies


def targets(
    policies: Sequence[NDArray[np.float64]], P_hat: NDArray[np.float64], gamma: float, alpha_model: float
) -> NDArray[np.float64]:
    """The Theorem 2 targets :math:`\\hat r_k`, one per improvement, shape (N - 1, S, A).

    :math:`\\hat r_k(s,a) = \\alpha_m\\ln\\hat\\pi_{k+1}(a|s) + \\alpha_m\\gamma\\sum_{s'}\\hat P(s'|s,a)\\,
    \\mathrm{KL}(\\hat\\pi_k(\\cdot|s')\\|\\hat\\pi_{k+1}(\\cdot|s'))`.
    """
    gamma = check_gamma(gamma)
    alpha_model = check_alpha(alpha_model, "alpha_model")
    out = []
    for pi1, pi2 in zip(policies[:-1], policies[1:]):
        kl = kl_divergence(pi1, pi2)
        out.append(alpha_model * np.log(pi2) + alpha_model * gamma * (P_hat @ kl))
    return np.array(out)


def _loss_weights(counts: Sequence[NDArray[np.float64]], weights: Weights, floor: float) -> NDArray[np.float64]:
    """Weights :math:`w_k(s, a)` of the consistency loss, shape (N - 1, S, A), each summing to 1."""
    out = []
    for c2 in counts[1:]:
        if weights == "pairs":
            w = c2 + floor
        elif weights == "states":
            w = np.repeat(c2.sum(axis=1, keepdims=True), c2.shape[1], axis=1) + floor
        else:
            w = np.ones_like(c2)
        out.append(w / w.sum())
    return np.array(out)


def consistency_loss(
    targets_k: NDArray[np.float64],
    weights_k: NDArray[np.float64],
    P_hat: NDArray[np.float64],
    gamma: float,
    r: NDArray[np.float64],
    f: NDArray[np.float64],
) -> float:
    """The data term of Eq. (5): :math:`\\sum_k\\sum_{s,a} w_k (\\hat r_k - r - f_k + \\gamma\\hat P f_k)^2`."""
    shaping = f[:, :, None] - gamma * np.einsum("sat,kt->ksa", P_hat, f)
    return float((weights_k * (targets_k - r[None] - shaping) ** 2).sum())


def consistency_fit(
    targets_k: NDArray[np.float64],
    weights_k: NDArray[np.float64],
    P_hat: NDArray[np.float64],
    gamma: float,
    r0: float = 0.0,
    ridge_r: float = 1e-6,
    ridge_f: float = 1e-8,
    solver: Solver = "exact",
    n_steps: int = 200,
    lr: float = 1.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Minimise the consistency loss of Eq. (5) over :math:`r` and the shapings :math:`f_k`.

    Parameters
    ----------
    targets_k, weights_k : ndarray, shape (K, S, A)
        :math:`\\hat r_k` and :math:`w_k \\ge 0`.
    P_hat : ndarray, shape (S, A, S)
        Dynamics of the shapings :math:`f_k(s) - \\gamma\\sum_{s'}\\hat P(s'|s,a)f_k(s')`.
    gamma : float
    r0, ridge_r : float
        The ridge :math:`\\mu\\sum(r - r_0)^2` (default :math:`\\mu = 10^{-6}`, against weights
        that sum to 1 per improvement): it gives a pair outside the loss the reward
        :math:`r_0` and barely moves the others.
    ridge_f : float
        :math:`\\epsilon\\sum_k\\|f_k\\|^2` (default :math:`10^{-8}`): pins, together with
        ``ridge_r``, the common shaping that Eq. (5) leaves free (adding
        :math:`g(s) - \\gamma\\hat P g` to :math:`r` and subtracting :math:`g` from every
        :math:`f_k` leaves the data term unchanged), and keeps small the shaping of a state
        that no weighted pair constrains. Both matter only when some pairs are outside the
        loss; book chapter 5 shows that a :math:`\\mu` 100 times smaller, or an
        :math:`\\epsilon` as large as :math:`\\mu`, lets the rewards of the pairs in the loss drift
        below :math:`r_0`, and the observer then heads for the unobserved pairs.
    solver : {"exact", "adam"}
        ``"exact"``: the normal equations, with each :math:`f_k` eliminated in closed form
        (a Schur complement of size S*A). ``"adam"``: ``n_steps`` full-batch Adam steps of
        rate ``lr`` from zero, summing the losses of all improvements as in the paper.

    Returns
    -------
    r : ndarray, shape (S, A)
    f : ndarray, shape (K, S)
    """
    K, S, A = targets_k.shape
    SA = S * A
    # B = E - gamma P_hat: (E f)(s, a) = f(s).
    B = np.repeat(np.eye(S), A, axis=0) - gamma * P_hat.reshape(SA, S)
    T = targets_k.reshape(K, SA)
    W = weights_k.reshape(K, SA)
    if solver == "exact":
        # All K shapings eliminated at once: G_k = M_k^{-1} B^T W_k, M_k = B^T W_k B + eps I.
        WB = W[:, :, None] * B[None]  # (K, SA, S)
        M = np.einsum("xs,kxt->kst", B, WB) + ridge_f * np.eye(S)
        G = np.linalg.solve(M, WB.transpose(0, 2, 1))  # (K, S, SA)
        # H_k = W_k - W_k B G_k; the normal equation in r is (sum_k H_k + mu I) r = sum_k H_k t_k + mu r0.
        WB_flat = WB.transpose(1, 0, 2).reshape(SA, K * S)
        WBG = WB_flat @ G.reshape(K * S, SA)
        WBG_t = WB_flat @ np.einsum("ksy,ky->ks", G, T).ravel()
        lhs = np.diag(W.sum(axis=0) + ridge_r) - WBG
        rhs = (W * T).sum(axis=0) - WBG_t + ridge_r * r0
        r = np.linalg.solve(lhs, rhs)
        f = np.einsum("ksy,ky->ks", G, T - r[None, :])
        return r.reshape(S, A), f
    if solver != "adam":
        raise ValueError(f"solver must be 'exact' or 'adam'; got {solver!r}")
    n_steps = check_positive_int(n_steps, "n_steps")
    r = np.zeros(SA)
    f = np.zeros((K, S))
    params = [r, f]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, n_steps + 1):
        resid = T - r[None, :] - f @ B.T  # (K, SA)
        wr = W * resid
        grads = [-2 * wr.sum(axis=0) + 2 * ridge_r * (r - r0), -2 * wr @ B + 2 * ridge_f * f]
        for i, (p, g) in enumerate(zip(params, grads)):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            p -= lr * (m[i] / (1 - b1**t)) / (np.sqrt(v[i] / (1 - b2**t)) + eps)
    return r.reshape(S, A), f


@dataclass(frozen=True)
class LfLResult:
    """Everything Algorithm 1 computed on the way to the reward (see :func:`fit_lfl`)."""

    r: NDArray[np.float64]
    """Recovered reward, shape (S, A)."""
    policies: list[NDArray[np.float64]]
    """Estimated policies :math:`\\hat\\pi_1, \\dots, \\hat\\pi_N`."""
    targets: NDArray[np.float64]
    """Theorem 2 targets :math:`\\hat r_k`, shape (N - 1, S, A)."""
    weights: NDArray[np.float64]
    """Loss weights :math:`w_k`, shape (N - 1, S, A); each sums to 1."""
    shapings: NDArray[np.float64]
    """Shapings :math:`f_k`, shape (N - 1, S)."""
    P_hat: NDArray[np.float64]
    """Estimated dynamics, shape (S, A, S)."""


@dataclass(frozen=True)
class _Observed:
    """The counts Algorithm 1 needs from the observed data, whatever its form."""

    pair_counts: list[NDArray[np.float64]]
    """:math:`n_k(s, a)` per observed policy."""
    transitions: NDArray[np.float64]
    """:math:`n(s, a, s')` pooled over policies."""
    terminal: NDArray[np.bool_]
    """States that ended an episode by termination."""


def _observed(data: object, n_states: int, n_actions: int, minimum: int = 2) -> _Observed:
    """Counts from one Trajectory per policy, or from one list of Episode per policy."""
    from .data import Episode, check_episode_groups

    n_states = check_positive_int(n_states, "n_states")
    n_actions = check_positive_int(n_actions, "n_actions")
    items = list(data) if hasattr(data, "__iter__") and not isinstance(data, (Trajectory, Episode)) else None
    first = items[0] if items else None
    if isinstance(first, Episode) or (isinstance(first, (list, tuple)) and first and isinstance(first[0], Episode)):
        groups = check_episode_groups(items, n_states, n_actions, minimum=minimum)
        S, A = n_states, n_actions
        counts, trans = [], np.zeros(S * A * S)
        terminal = np.zeros(S, dtype=bool)
        for eps in groups:
            c = np.zeros(S * A)
            for ep in eps:
                sa = ep.states[:-1] * A + ep.actions
                c += np.bincount(sa, minlength=S * A)
                trans += np.bincount(sa * S + ep.states[1:], minlength=S * A * S)
                if ep.terminated:
                    terminal[ep.states[-1]] = True
            counts.append(c.reshape(S, A))
        visited_terminal = [k for k in np.flatnonzero(terminal) if any(c[k].sum() > 0 for c in counts)]
        if visited_terminal:
            raise ValueError(f"trajectories: state {visited_terminal[0]} ends an episode by termination but an "
                             "action is also taken there; a terminal state is absorbing (no action after it)")
        return _Observed(counts, trans.reshape(S, A, S), terminal)
    trajs = check_trajectories(data, n_states, n_actions, minimum=minimum)  # type: ignore[arg-type]
    return _Observed([pair_counts(tr, n_states, n_actions) for tr in trajs],
                     transition_counts(trajs, n_states, n_actions), np.zeros(n_states, dtype=bool))


def fit_lfl(
    trajectories: Sequence[Trajectory],
    n_states: int,
    n_actions: int,
    gamma: float,
    alpha_model: float,
    *,
    policy_estimator: PolicyEstimator = "entropy_ml",
    policy_prior: float = 1.0,
    policy_prior_mean: PolicyPriorMean = "previous",
    entropy_weight: float = 0.4,
    policy_steps: int = 10,
    policy_lr: float = 0.5,
    transition_prior: float = 1e-3,
    weights: Weights = "all",
    weight_floor: float = 0.0,
    unseen: Unseen = "min",
    solver: Solver = "exact",
    n_steps: int = 200,
    lr: float = 1.0,
    P: np.ndarray | None = None,
    terminal: np.ndarray | None = None,
) -> LfLResult:
    """Algorithm 1 (tabular) with all its intermediate results; see :func:`recover_reward`."""
    gamma = check_gamma(gamma)
    alpha_model = check_alpha(alpha_model, "alpha_model")
    obs = _observed(trajectories, n_states, n_actions, minimum=2)
    n_states, n_actions = int(n_states), int(n_actions)
    term = obs.terminal.copy()
    if terminal is not None:
        tmask = np.asarray(terminal)
        if tmask.shape != (n_states,) or tmask.dtype.kind not in "bui" or not np.isin(tmask, (0, 1)).all():
            raise ValueError(f"terminal must be a boolean mask of shape ({n_states},); got {tmask.dtype} {tmask.shape}")
        term |= tmask.astype(bool)
    if P is not None:
        P_known = as_float_array(P, "P", ndim=3)
        if P_known.shape != (n_states, n_actions, n_states):
            raise ValueError(f"P must have shape (n_states, n_actions, n_states) = ({n_states}, {n_actions}, "
                             f"{n_states}); got {P_known.shape}")
        if np.any(P_known < 0) or np.any(np.abs(P_known.sum(axis=2) - 1.0) > 1e-8):
            raise ValueError("P must hold probabilities: non-negative, each P[s, a, :] summing to 1")
        # with a known model, a state that ends episodes is absorbing only if P says so
        # (a reset cell of P, as in TabularMDP.from_gymnasium(env, terminal="reset"), is not)
        absorbing = np.all(np.isclose(P_known[np.arange(n_states), :, np.arange(n_states)], 1.0), axis=1)
        term &= absorbing
        seen = obs.transitions > 0
        if np.any(seen & (P_known == 0)):
            s_, a_, t_ = np.argwhere(seen & (P_known == 0))[0]
            raise ValueError(f"P gives probability 0 to the observed transition ({s_}, {a_}) -> {t_}")
    if not (np.isfinite(transition_prior) and transition_prior > 0):
        raise ValueError(f"transition_prior must be a finite number > 0; got {transition_prior!r}")
    if weights not in ("states", "pairs", "all"):
        raise ValueError(f"weights must be 'states', 'pairs' or 'all'; got {weights!r}")
    if unseen not in ("min", "zero", "mean"):
        raise ValueError(f"unseen must be 'min', 'zero' or 'mean'; got {unseen!r}")
    if solver not in ("exact", "adam"):
        raise ValueError(f"solver must be 'exact' or 'adam'; got {solver!r}")
    policies = estimate_policies(
        trajectories, n_states, n_actions, policy_estimator, policy_prior, policy_prior_mean,
        entropy_weight, policy_steps, policy_lr,
    )
    if P is not None:
        P_hat = P_known
    else:
        c = obs.transitions
        P_hat = (c + transition_prior / n_states) / (c.sum(axis=2, keepdims=True) + transition_prior)
    if term.any():
        # a terminal state is absorbing with value 0: nothing (KL, shaping) follows it
        P_hat = P_hat * ~term[None, None, :]
    tk = targets(policies, P_hat, gamma, alpha_model)
    counts = obs.pair_counts
    if not (np.isfinite(weight_floor) and weight_floor >= 0):
        raise ValueError(f"weight_floor must be a finite number >= 0; got {weight_floor!r}")
    wk = _loss_weights(counts, weights, float(weight_floor))
    if term.any():  # no pair at a terminal state enters the loss
        wk[:, term, :] = 0.0
        wk /= wk.sum(axis=(1, 2), keepdims=True)
    seen = wk > 0
    if unseen == "min":
        r0 = float(tk[seen].min())
    elif unseen == "mean":
        r0 = float(np.average(tk[seen], weights=wk[seen]))
    else:
        r0 = 0.0
    r, f = consistency_fit(tk, wk, P_hat, gamma, r0=r0, solver=solver, n_steps=n_steps, lr=lr)
    return LfLResult(r, policies, tk, wk, f, P_hat)


def recover_reward(
    trajectories: Sequence[Trajectory],
    n_states: int,
    n_actions: int,
    gamma: float,
    alpha_model: float,
    *,
    P: np.ndarray | None = None,
    terminal: np.ndarray | None = None,
    **options,
) -> NDArray[np.float64]:
    """Algorithm 1: the reward that makes a learner's observed trajectories consistent.

    Parameters
    ----------
    trajectories : list of Trajectory or of list of Episode
        The data of each observed policy, in the order of the learning, at least two
        policies: either one :class:`~lfl_lib.trajectories.Trajectory` per policy (one
        continuing run, as in the paper's grid world), or, for episodic tasks, one
        *list* of :class:`~lfl_lib.data.Episode` per policy:
        ``[[episodes of pi_1], [episodes of pi_2], ...]``. A flat list of episodes is
        refused (it would not say which policy played which). The final state of a
        *terminated* episode is **absorbing with value 0**: no KL term and no shaping
        follow it, and its own reward is not identified (it gets :math:`r_0`, see
        ``unseen``; a :class:`~lfl_lib.mdp.TabularMDP` with ``terminal`` ignores it).
        *Truncated* episodes are used in full.
    n_states, n_actions : int
        Sizes of the MDP; every state and action of the trajectories must be in range.
    gamma : float
        Discount factor in [0, 1).
    alpha_model : float
        :math:`\\alpha_m > 0`, the entropy weight of the soft policy iteration the observer
        assumes. In the tabular case the recovered reward is exactly proportional to it,
        so it sets the *scale* of the reward, hence the temperature of an agent that
        plans on it with a fixed :math:`\\alpha`.
    P : array_like, shape (S, A, S), optional
        (keyword-only) The known transition model ``P[s, a, s']`` (for example
        ``TabularMDP.from_gymnasium(env).P``), used instead of the estimate from the
        observed transitions; it must give every observed transition a positive probability.
        With ``P`` given, a state is treated as terminal (absorbing, value 0) only where
        ``P`` makes it absorbing; a state that ends episodes but that ``P`` sends
        elsewhere (a reset cell, ``from_gymnasium(env, terminal="reset")``) follows ``P``.
    terminal : array_like of bool, shape (S,), optional
        (keyword-only) Terminal states known in advance (e.g. ``mdp.terminal``), added to those that
        end observed episodes by termination.
    **options
        The estimator's choices, passed to :func:`fit_lfl` (defaults in brackets):

        - ``policy_estimator`` [``"entropy_ml"``]: or ``"entropy_ml_adam"``, ``"dirichlet"``
          (:func:`estimate_policies`);
        - ``entropy_weight`` [0.4]: :math:`\\lambda` of the ``"entropy_ml"`` estimators;
        - ``policy_steps`` [10], ``policy_lr`` [0.5]: Adam steps and rate of ``"entropy_ml_adam"``;
        - ``policy_prior`` [1.0], ``policy_prior_mean`` [``"previous"``]: pseudo-count per state
          and prior mean (or ``"uniform"``) of ``"dirichlet"``;
        - ``transition_prior`` [1e-3]: :math:`\\beta` of :math:`\\hat P`
          (:func:`~lfl_lib.trajectories.estimate_transitions`);
        - ``weights`` [``"all"``]: :math:`w_k(s,a)`, 1 for every pair (``"all"``), the visits
          :math:`n_{k+1}(s)` for every action (``"states"``), or the counts
          :math:`n_{k+1}(s,a)` (``"pairs"``);
        - ``weight_floor`` [0.0]: added to the counts of ``"states"`` and ``"pairs"``;
        - ``unseen`` [``"min"``]: the reward :math:`r_0` of a pair outside the loss, the
          smallest target, 0 (``"zero"``) or the weighted mean target (``"mean"``);
        - ``solver`` [``"exact"``]: or ``"adam"``, the paper's gradient version, with
          ``n_steps`` [200] steps of rate ``lr`` [1.0].

    Returns
    -------
    ndarray, shape (n_states, n_actions)
        The recovered reward :math:`r(s, a)`.

    Raises
    ------
    ValueError
        Fewer than two observed policies, a flat list of episodes, an element that is not a
        :class:`~lfl_lib.trajectories.Trajectory`, a state
        or action out of range, ``gamma`` outside [0, 1), ``alpha_model`` <= 0, or an
        unknown option value.
    """
    return fit_lfl(trajectories, n_states, n_actions, gamma, alpha_model, P=P, terminal=terminal, **options).r


@dataclass(frozen=True)
class ObserverScore:
    """Score of an observer that plans on a recovered reward (Section 6)."""

    J: float
    """Soft score :math:`J(\\pi) = ` ``ret + entropy`` under the true reward."""
    ret: float
    """Plain discounted return under the true reward."""
    entropy: float
    """Discounted entropy part :math:`\\alpha E[\\sum_t\\gamma^t H]`."""


def observer_score(mdp: TabularMDP, r_hat: ArrayLike, alpha: float) -> ObserverScore:
    """Plan the optimal soft policy for ``r_hat`` with ``alpha`` on the true dynamics, score it on the true reward.

    This is the protocol of Tables 1 and 2: the observer's agent uses the recovered
    reward in place of the true one and the true entropy weight :math:`\\alpha`; its
    policy is judged by :math:`J` under the true reward of ``mdp``.
    """
    r_hat = check_reward(r_hat, mdp.n_states, mdp.n_actions, "r_hat")
    pi, _, _ = soft_optimal(mdp.with_reward(r_hat), alpha, tol=1e-9)
    return ObserverScore(score(mdp, pi, alpha), expected_return(mdp, pi), discounted_entropy(mdp, pi, alpha))


def observer_policy(mdp: TabularMDP, r_hat: ArrayLike, alpha: float) -> NDArray[np.float64]:
    """The observer's policy: the optimal soft policy for ``r_hat`` on ``mdp``'s dynamics, shape (S, A).

    ``mdp`` carries the dynamics (its own reward is not used), terminal states and start
    distribution, e.g. ``TabularMDP.from_gymnasium(env)``.
    """
    from .mdp import check_mdp

    check_mdp(mdp)
    r_hat = check_reward(r_hat, mdp.n_states, mdp.n_actions, "r_hat")
    pi, _, _ = soft_optimal(mdp.with_reward(r_hat), alpha, tol=1e-9)
    return pi


def play_policy(env: object, pi: ArrayLike, n_episodes: int = 100, seed: int = 0,
                greedy: bool = False) -> NDArray[np.float64]:
    """Undiscounted true returns of ``n_episodes`` episodes of the tabular policy ``pi`` in a gymnasium env.

    The environment is reset with ``seed`` once, then without a seed (its own random
    stream goes on); actions are drawn from ``pi`` with ``numpy.random.default_rng(seed)``,
    or are ``argmax pi`` with ``greedy=True``. Episodes end at termination or truncation
    (wrap the environment in a ``TimeLimit``, as ``gymnasium.make`` does, so that every
    episode ends).
    """
    n_episodes = check_positive_int(n_episodes, "n_episodes")
    seed = check_positive_int(seed, "seed", minimum=0)
    nS = getattr(getattr(env, "observation_space", None), "n", None)
    nA = getattr(getattr(env, "action_space", None), "n", None)
    if nS is None or nA is None:
        raise ValueError("env must be a gymnasium environment with Discrete observation and action spaces")
    from ._validate import check_policy

    pi = check_policy(pi, int(nS), int(nA))
    rng = np.random.default_rng(seed)
    cum = np.cumsum(pi, axis=1)
    returns = np.zeros(n_episodes)
    for i in range(n_episodes):
        s, _ = env.reset(seed=seed) if i == 0 else env.reset()  # type: ignore[attr-defined]
        done = False
        while not done:
            a = int(np.argmax(pi[s])) if greedy else int(min(np.searchsorted(cum[s], rng.random(), side="right"), nA - 1))
            s, r, term, trunc, _ = env.step(a)  # type: ignore[attr-defined]
            returns[i] += float(r)
            done = bool(term or trunc)
    return returns
