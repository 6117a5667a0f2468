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

import math
import sys
import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Literal, Mapping, Sequence, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import logsumexp

from ._validate import as_float_array, check_alpha, check_gamma, check_positive_int, check_reward
from .inversion import check_kl_weight, kl_divergence, value_iteration_fit
from .mdp import TabularMDP, discounted_entropy, expected_return, score, soft_optimal, softmax_policy
from .trajectories import Trajectory, check_trajectories, pair_counts, transition_counts

__all__ = [
    "TabularLfLConfig",
    "as_tabular_config",
    "estimate_policies",
    "targets",
    "consistency_loss",
    "consistency_fit",
    "LfLResult",
    "fit_lfl",
    "recover_reward",
    "ProgressFn",
    "LEARNER_MODELS",
    "kl_targets",
    "kl_weight_from_consistency",
    "KL_RATIO_GRID",
    "AUTO_CANDIDATES",
    "AUTO_SE_MARGIN",
    "predict_next_policies",
    "ModelSelection",
    "select_learner_model",
    "ObserverScore",
    "observer_score",
    "observer_policy",
    "play_policy",
]

PolicyEstimator = Literal["dirichlet", "entropy_ml", "entropy_ml_adam"]
PolicyPriorMean = Literal["uniform", "previous"]
Weights = Literal["states", "pairs", "all", "both"]
Unseen = Literal["min", "zero", "mean"]
Solver = Literal["exact", "adam"]
LearnerModel = Literal["spi", "kl", "svi", "auto"]
#: The learner models :func:`recover_reward` knows, and the least number of trajectories each needs.
LEARNER_MODELS: dict[str, int] = {"spi": 2, "kl": 2, "svi": 3, "auto": 3}


@dataclass(frozen=True)
class TabularLfLConfig:
    """The estimator's choices of tabular Algorithm 1: the single source of their defaults.

    The counterpart of :class:`lfl_lib.deep_lfl.DeepLfLConfig`. The defaults are the choices
    the book's chapter 5 selected on held-out seeds. :func:`fit_lfl`, :func:`recover_reward`
    and :func:`select_learner_model` take a config (``config=``), and any of its fields as a
    keyword option, which replaces the config's value; the options are checked where they
    are used, each error naming its option.

    Parameters
    ----------
    policy_estimator : {"entropy_ml", "entropy_ml_adam", "dirichlet"}
        How each :math:`\\hat\\pi_k` is estimated (:func:`estimate_policies`).
    policy_prior, policy_prior_mean : float, {"previous", "uniform"}
        Pseudo-count per state and prior mean of ``"dirichlet"`` (1.0, ``"previous"``).
    entropy_bonus : float
        :math:`\\lambda` of the ``"entropy_ml"`` estimators (0.4; the paper's is 0.01), named as
        in ``DeepLfLConfig``. Its older name ``entropy_weight`` is still accepted, with a
        :class:`DeprecationWarning`.
    policy_steps, policy_lr : int, float
        Adam steps and rate of ``"entropy_ml_adam"`` (10, 0.5).
    transition_prior : float
        :math:`\\beta` of :math:`\\hat P` (1e-3; :func:`~lfl_lib.trajectories.estimate_transitions`).
    weights, weight_floor : {"all", "states", "pairs", "both"}, float
        The loss weights :math:`w_k(s, a)` ("all", 0.0; see :func:`recover_reward`).
    unseen : {"min", "zero", "mean"}
        The reward :math:`r_0` of a pair outside the loss ("min").
    solver, n_steps, lr : {"exact", "adam"}, int, float
        How Eq. (5) is solved ("exact"; the paper's Adam with 200 steps of rate 1.0).
    """

    policy_estimator: PolicyEstimator = "entropy_ml"
    policy_prior: float = 1.0
    policy_prior_mean: PolicyPriorMean = "previous"
    entropy_bonus: float = 0.4
    policy_steps: int = 10
    policy_lr: float = 0.5
    transition_prior: float = 1e-3
    weights: Weights = "all"
    weight_floor: float = 0.0
    unseen: Unseen = "min"
    solver: Solver = "exact"
    n_steps: int = 200
    lr: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """The options as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TabularLfLConfig":
        """The config of a dict of its fields; a stored ``entropy_weight`` (the older name) is read as ``entropy_bonus``."""
        return as_tabular_config(d, warn=False)


#: The defaults of :class:`TabularLfLConfig`, for the signatures that show them.
_DEFAULTS = TabularLfLConfig()

#: Older option names -> their names in :class:`TabularLfLConfig`.
_RENAMED = {"entropy_weight": "entropy_bonus"}


def _renamed(options: Mapping[str, Any], warn: bool, stacklevel: int) -> dict[str, Any]:
    """``options`` with the older names replaced by the current ones (a DeprecationWarning if ``warn``)."""
    out = dict(options)
    for old, new in _RENAMED.items():
        if old in out:
            if new in out:
                raise ValueError(f"give {new} only ({old} is its older name); got both")
            if warn:
                warnings.warn(
                    f"the option {old} is now named {new} (as in DeepLfLConfig); {old} will be removed",
                    DeprecationWarning,
                    stacklevel=stacklevel,
                )
            out[new] = out.pop(old)
    return out


def as_tabular_config(
    config: "TabularLfLConfig | Mapping[str, Any] | None" = None,
    options: Mapping[str, Any] | None = None,
    *,
    warn: bool = True,
    stacklevel: int = 2,
) -> TabularLfLConfig:
    """A :class:`TabularLfLConfig` from a config, a dict of its fields or None (the defaults), with ``options`` on top.

    Raises
    ------
    ValueError
        An unknown option, or a ``config`` of another type.
    """
    if config is None:
        base: dict[str, Any] = {}
    elif isinstance(config, TabularLfLConfig):
        base = config.to_dict()
    elif isinstance(config, Mapping):
        base = _renamed(config, warn, stacklevel + 1)
    else:
        raise ValueError(
            f"config must be a TabularLfLConfig, a dict of its fields or None; got {type(config).__name__}"
        )
    merged = {**base, **_renamed(options or {}, warn, stacklevel + 1)}
    unknown = set(merged) - {f.name for f in fields(TabularLfLConfig)}
    if unknown:
        raise ValueError(f"unknown estimator options: {sorted(unknown)}")
    return TabularLfLConfig(**merged)


def _adam_ascent_logits(
    counts: NDArray[np.float64], entropy_bonus: float, n_steps: int, lr: float
) -> NDArray[np.float64]:
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
        g += entropy_bonus * (-n_s * pi * (logpi + H))
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta = theta + lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    z = theta - theta.max(axis=1, keepdims=True)
    pi = np.exp(z)
    return pi / pi.sum(axis=1, keepdims=True)


def _entropy_ml_exact(
    counts: NDArray[np.float64], entropy_bonus: float, tol: float = 1e-10, max_iter: int = 2000
) -> NDArray[np.float64]:
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
    lam = entropy_bonus
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
    estimator: PolicyEstimator = _DEFAULTS.policy_estimator,
    prior: float = _DEFAULTS.policy_prior,
    prior_mean: PolicyPriorMean = _DEFAULTS.policy_prior_mean,
    entropy_bonus: float = _DEFAULTS.entropy_bonus,
    n_steps: int = _DEFAULTS.policy_steps,
    lr: float = _DEFAULTS.policy_lr,
    *,
    entropy_weight: float | None = None,
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
    entropy_bonus : float, default 0.4
        :math:`\\lambda > 0` (``"entropy_ml"`` and ``"entropy_ml_adam"``; the paper uses 0.01).
        ``entropy_weight`` (keyword only) is its older name, accepted with a DeprecationWarning.
    n_steps, lr :
        Number of Adam steps and learning rate (``"entropy_ml_adam"`` only). The defaults,
        10 and 0.5, are those of the authors' released grid-world code (the paper's text
        says learning rate 1e-3).

    Returns
    -------
    list of ndarray, each of shape (S, A), all entries > 0
    """
    if entropy_weight is not None:
        entropy_bonus = _renamed({"entropy_weight": entropy_weight}, True, 3)["entropy_bonus"]
    counts_k = _observed(trajectories, n_states, n_actions, minimum=1).pair_counts
    if estimator not in ("dirichlet", "entropy_ml", "entropy_ml_adam"):
        raise ValueError(f"estimator must be 'dirichlet', 'entropy_ml' or 'entropy_ml_adam'; got {estimator!r}")
    if prior_mean not in ("uniform", "previous"):
        raise ValueError(f"prior_mean must be 'uniform' or 'previous'; got {prior_mean!r}")
    if not (np.isfinite(prior) and prior > 0):
        raise ValueError(f"prior must be a finite number > 0; got {prior!r}")
    uniform = np.full((n_states, n_actions), 1.0 / n_actions)
    policies: list[NDArray[np.float64]] = []
    if not (np.isfinite(entropy_bonus) and entropy_bonus > 0):
        raise ValueError(f"entropy_bonus must be a finite number > 0; got {entropy_bonus!r}")
    if estimator == "entropy_ml":
        # One Newton solve for all trajectories at once (the problem separates by state).
        counts = np.concatenate(counts_k)
        return list(_entropy_ml_exact(counts, float(entropy_bonus)).reshape(len(counts_k), n_states, n_actions))
    for counts in counts_k:
        if estimator == "entropy_ml_adam":
            n_steps = check_positive_int(n_steps, "n_steps")
            policies.append(_adam_ascent_logits(counts, float(entropy_bonus), n_steps, float(lr)))
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
    for c1, c2 in zip(counts[:-1], counts[1:]):
        if weights == "both":
            n = np.minimum(c1.sum(axis=1), c2.sum(axis=1))
            w = np.repeat(n[:, None], c2.shape[1], axis=1) + floor
            if not w.any():
                w = np.ones_like(c2)
        elif weights == "pairs":
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
    learner_model: str = "spi"
    """The learner model the reward was fitted under (``"auto"`` is resolved to the model it chose)."""
    kl_weight: float = 0.0
    """:math:`\\lambda` of the ``"kl"`` model (given or estimated); 0 for the other models."""
    selection: "ModelSelection | None" = None
    """The held-out comparison behind ``learner_model="auto"``; None otherwise."""

    @property
    def reward(self) -> NDArray[np.float64]:
        """The recovered reward ``r`` (the name of the continuous :class:`lfl_lib.recovery.Recovery`'s)."""
        return self.r


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
            raise ValueError(
                f"trajectories: state {visited_terminal[0]} ends an episode by termination but an "
                "action is also taken there; a terminal state is absorbing (no action after it)"
            )
        return _Observed(counts, trans.reshape(S, A, S), terminal)
    trajs = check_trajectories(data, n_states, n_actions, minimum=minimum)  # type: ignore[arg-type]
    return _Observed(
        [pair_counts(tr, n_states, n_actions) for tr in trajs],
        transition_counts(trajs, n_states, n_actions),
        np.zeros(n_states, dtype=bool),
    )


def fit_lfl(
    trajectories: Sequence[Trajectory],
    n_states: int,
    n_actions: int,
    gamma: float,
    alpha_model: float,
    *,
    config: TabularLfLConfig | Mapping[str, Any] | None = None,
    P: np.ndarray | None = None,
    terminal: np.ndarray | None = None,
    learner_model: LearnerModel = "spi",
    kl_weight: float | None = None,
    se_margin: float | None = None,
    progress: bool | ProgressFn = False,
    **options: Any,
) -> LfLResult:
    """Algorithm 1 (tabular) with all its intermediate results; see :func:`recover_reward`.

    ``config`` (a :class:`TabularLfLConfig`, a dict of its fields, or None: the defaults) and
    the keyword ``options`` (its fields, which replace the config's) are the estimator's choices.
    ``se_margin`` (``"auto"`` only; None: :data:`AUTO_SE_MARGIN`) is the margin of
    :func:`select_learner_model`. ``progress`` shows the fits of a learner-model selection
    (``"auto"``, and ``"kl"`` without ``kl_weight``), one per candidate and fold, then the final
    fit: a bar on stderr when True (shown only when stderr is a terminal), or
    ``progress(label, done, total)`` calls (:data:`ProgressFn`). For ``learner_model="svi"`` the field ``shapings`` holds the potentials
    :math:`V_0, \\dots, V_{N-1}` (shape (N, S)) of :func:`~lfl_lib.inversion.value_iteration_fit`.
    """
    kl_weight = _check_learner_model(learner_model, kl_weight, se_margin, progress)
    cfg = as_tabular_config(config, options, stacklevel=3)
    if learner_model == "auto":
        _observed(trajectories, n_states, n_actions, minimum=LEARNER_MODELS["auto"])
        return _fit_auto(
            trajectories, n_states, n_actions, gamma, alpha_model, kl_weight, se_margin, progress, cfg, P, terminal
        )
    gamma = check_gamma(gamma)
    alpha_model = check_alpha(alpha_model, "alpha_model")
    obs = _observed(trajectories, n_states, n_actions, minimum=LEARNER_MODELS[learner_model])
    policies, P_hat, wk = _prepare(trajectories, n_states, n_actions, cfg, P=P, terminal=terminal)
    lam = 0.0
    if learner_model == "kl":
        if kl_weight is None:
            if len(obs.pair_counts) < 3:
                raise ValueError(
                    "trajectories must hold the data of at least 3 observed policies to estimate "
                    "kl_weight (one improvement is explained by every weight); give kl_weight or more data"
                )
            show, close = _reporter(progress, "KL weight")
            try:
                lam = select_learner_model(
                    trajectories,
                    n_states,
                    n_actions,
                    gamma,
                    alpha_model,
                    candidates=("kl",),
                    se_margin=0.0,
                    progress=show,
                    config=cfg,
                    P=P,
                    terminal=terminal,
                ).kl_weight
            finally:
                close()
        else:
            lam = kl_weight
    return _fit_prepared(
        policies, P_hat, wk, gamma, alpha_model, learner_model, lam, cfg.unseen, cfg.solver, cfg.n_steps, cfg.lr
    )


def _fit_auto(
    trajectories: Sequence[Trajectory],
    n_states: int,
    n_actions: int,
    gamma: float,
    alpha_model: float,
    kl_weight: float | None,
    se_margin: float | None,
    progress: bool | ProgressFn,
    cfg: TabularLfLConfig,
    P: np.ndarray | None,
    terminal: np.ndarray | None,
) -> LfLResult:
    """``learner_model="auto"``: the model of :func:`select_learner_model`, then fitted on all the data."""
    show, close = _reporter(progress, "learner model 'auto'")
    try:
        sel = select_learner_model(
            trajectories,
            n_states,
            n_actions,
            gamma,
            alpha_model,
            kl_weight=kl_weight,
            se_margin=AUTO_SE_MARGIN if se_margin is None else se_margin,
            progress=_then_one_more(show),
            config=cfg,
            P=P,
            terminal=terminal,
        )
        n = 2 * len(sel.log_likelihood)  # the selection's fits (one per candidate and fold)
        final = sel.model if sel.model != "kl" else f"kl:{sel.kl_weight:g}"
        show(f"final fit: {final}", n, n + 1)
        res = fit_lfl(
            trajectories,
            n_states,
            n_actions,
            gamma,
            alpha_model,
            learner_model=cast(Any, sel.model),
            kl_weight=sel.kl_weight if sel.model == "kl" else None,
            config=cfg,
            P=P,
            terminal=terminal,
        )
        show(f"chose {final}", n + 1, n + 1)
    finally:
        close()
    return LfLResult(
        res.r, res.policies, res.targets, res.weights, res.shapings, res.P_hat, res.learner_model, res.kl_weight, sel
    )


def _check_learner_model(
    learner_model: str, kl_weight: float | None, se_margin: float | None, progress: object = False
) -> float | None:
    """Check the learner model and the options that go with it; the checked ``kl_weight``."""
    if learner_model not in LEARNER_MODELS:
        raise ValueError(f"learner_model must be one of {list(LEARNER_MODELS)}; got {learner_model!r}")
    if not (isinstance(progress, bool) or callable(progress)):
        raise ValueError(f"progress must be a bool or a callable progress(label, done, total); got {progress!r}")
    if kl_weight is not None:
        if learner_model not in ("kl", "auto"):
            raise ValueError(
                f"kl_weight applies to learner_model 'kl' or 'auto' only; got kl_weight={kl_weight!r} "
                f"with learner_model={learner_model!r}"
            )
        kl_weight = check_kl_weight(kl_weight)
    if se_margin is not None and learner_model != "auto":
        raise ValueError(
            f"se_margin applies to learner_model 'auto' only; got se_margin={se_margin!r} "
            f"with learner_model={learner_model!r}"
        )
    return kl_weight


def _prepare(
    trajectories: Sequence[object],
    n_states: int,
    n_actions: int,
    cfg: TabularLfLConfig,
    *,
    P: np.ndarray | None,
    terminal: np.ndarray | None,
) -> tuple[list[NDArray[np.float64]], NDArray[np.float64], NDArray[np.float64]]:
    """Checked options, then the estimated policies, dynamics and loss weights of Algorithm 1.

    ``trajectories`` is one Trajectory per policy or one list of Episode per policy; a known
    ``P`` replaces the estimated dynamics; terminal states are absorbing with value 0.
    """
    obs = _observed(trajectories, n_states, n_actions, minimum=2)
    n_states, n_actions = int(n_states), int(n_actions)
    term = _terminal_states(obs, n_states, terminal)
    if P is not None:
        P_known = _known_dynamics(P, obs, n_states, n_actions)
        # with a known model, a state that ends episodes is absorbing only if P says so
        # (a reset cell of P, as in TabularMDP.from_gymnasium(env, terminal="reset"), is not)
        term &= np.all(np.isclose(P_known[np.arange(n_states), :, np.arange(n_states)], 1.0), axis=1)
    transition_prior, weight_floor = cfg.transition_prior, cfg.weight_floor
    if not (np.isfinite(transition_prior) and transition_prior > 0):
        raise ValueError(f"transition_prior must be a finite number > 0; got {transition_prior!r}")
    if cfg.weights not in ("states", "pairs", "all", "both"):
        raise ValueError(f"weights must be 'states', 'pairs', 'all' or 'both'; got {cfg.weights!r}")
    if cfg.unseen not in ("min", "zero", "mean"):
        raise ValueError(f"unseen must be 'min', 'zero' or 'mean'; got {cfg.unseen!r}")
    if cfg.solver not in ("exact", "adam"):
        raise ValueError(f"solver must be 'exact' or 'adam'; got {cfg.solver!r}")
    policies = estimate_policies(
        cast(Sequence[Trajectory], trajectories),
        n_states,
        n_actions,
        cfg.policy_estimator,
        cfg.policy_prior,
        cfg.policy_prior_mean,
        cfg.entropy_bonus,
        cfg.policy_steps,
        cfg.policy_lr,
    )
    if P is not None:
        P_hat = P_known
    else:
        c = obs.transitions
        P_hat = (c + transition_prior / n_states) / (c.sum(axis=2, keepdims=True) + transition_prior)
    if term.any():
        # a terminal state is absorbing with value 0: nothing (KL, shaping) follows it
        P_hat = P_hat * ~term[None, None, :]
    if not (np.isfinite(weight_floor) and weight_floor >= 0):
        raise ValueError(f"weight_floor must be a finite number >= 0; got {weight_floor!r}")
    wk = _loss_weights(obs.pair_counts, cfg.weights, float(weight_floor))
    if term.any():  # no pair at a terminal state enters the loss
        wk[:, term, :] = 0.0
        wk /= wk.sum(axis=(1, 2), keepdims=True)
    return policies, P_hat, wk


def _terminal_states(obs: _Observed, n_states: int, terminal: np.ndarray | None) -> NDArray[np.bool_]:
    """The states that ended observed episodes by termination, and those given as ``terminal``."""
    term = obs.terminal.copy()
    if terminal is not None:
        tmask = np.asarray(terminal)
        if tmask.shape != (n_states,) or tmask.dtype.kind not in "bui" or not np.isin(tmask, (0, 1)).all():
            raise ValueError(f"terminal must be a boolean mask of shape ({n_states},); got {tmask.dtype} {tmask.shape}")
        term |= tmask.astype(bool)
    return term


def _known_dynamics(P: np.ndarray, obs: _Observed, n_states: int, n_actions: int) -> NDArray[np.float64]:
    """The checked known model ``P[s, a, s']``, which must give every observed transition a positive probability."""
    P_known = as_float_array(P, "P", ndim=3)
    if P_known.shape != (n_states, n_actions, n_states):
        raise ValueError(
            f"P must have shape (n_states, n_actions, n_states) = ({n_states}, {n_actions}, "
            f"{n_states}); got {P_known.shape}"
        )
    if np.any(P_known < 0) or np.any(np.abs(P_known.sum(axis=2) - 1.0) > 1e-8):
        raise ValueError("P must hold probabilities: non-negative, each P[s, a, :] summing to 1")
    seen = obs.transitions > 0
    if np.any(seen & (P_known == 0)):
        s_, a_, t_ = np.argwhere(seen & (P_known == 0))[0]
        raise ValueError(f"P gives probability 0 to the observed transition ({s_}, {a_}) -> {t_}")
    return P_known


def _fit_prepared(
    policies: list[NDArray[np.float64]],
    P_hat: NDArray[np.float64],
    wk: NDArray[np.float64],
    gamma: float,
    alpha_model: float,
    learner_model: str,
    lam: float,
    unseen: Unseen,
    solver: Solver,
    n_steps: int,
    lr: float,
    kl_parts: tuple[NDArray[np.float64], NDArray[np.float64] | None] | None = None,
) -> LfLResult:
    """Targets of ``learner_model`` and their fit (Eq. 5, or one potential per policy for SVI).

    ``kl_parts``: the already computed :math:`(a_k, b_k)` of :func:`kl_targets`, reused across
    the KL weights of :func:`select_learner_model` (the targets are then ``a + lam * b``, as
    :func:`kl_targets` computes them).
    """
    if learner_model == "spi":
        tk = targets(policies, P_hat, gamma, alpha_model) if kl_parts is None else kl_parts[0]
    elif learner_model == "kl":
        if kl_parts is None:
            tk = kl_targets(policies, P_hat, gamma, alpha_model, lam)
        else:
            tk = kl_parts[0] if lam == 0.0 else kl_parts[0] + lam * cast(NDArray[np.float64], kl_parts[1])
    else:  # "svi": alpha_m ln pi_{k+1}, one potential per policy
        tk = alpha_model * np.log(np.array(policies[1:]))
    seen = wk > 0
    if unseen == "min":
        r0 = float(tk[seen].min())
    elif unseen == "mean":
        r0 = float(np.average(tk[seen], weights=wk[seen]))
    else:
        r0 = 0.0
    if learner_model == "svi":
        r, f = value_iteration_fit(tk, wk, P_hat, gamma, r0=r0, ridge_r=1e-6, ridge_v=1e-8)
        return LfLResult(r, policies, tk, wk, f, P_hat, "svi", 0.0)
    r, f = consistency_fit(tk, wk, P_hat, gamma, r0=r0, solver=solver, n_steps=n_steps, lr=lr)
    if learner_model == "spi":
        return LfLResult(r, policies, tk, wk, f, P_hat)
    return LfLResult(r, policies, tk, wk, f, P_hat, "kl", float(lam))


# ----------------------------------------------------------------------------- learner models other than SPI


def kl_targets(
    policies: Sequence[NDArray[np.float64]],
    P_hat: NDArray[np.float64],
    gamma: float,
    alpha_model: float,
    kl_weight: float,
) -> NDArray[np.float64]:
    """Targets of the KL-regularized learner model, one per improvement, shape (N - 1, S, A).

    :math:`\\hat r_k = (\\alpha_m+\\lambda)\\ln\\hat\\pi_{k+1} - \\lambda\\ln\\hat\\pi_k
    + \\gamma(\\alpha_m+\\lambda)\\hat P\\,\\mathrm{KL}(\\hat\\pi_k\\|\\hat\\pi_{k+1})`
    (:func:`lfl_lib.inversion.invert_kl_improvement` on estimates). With ``kl_weight=0``
    these are exactly :func:`targets`. They are affine in :math:`\\lambda`:
    :math:`\\hat r_k = a_k + \\lambda b_k` with :math:`a_k` the Theorem 2 targets and
    :math:`b_k = \\ln(\\hat\\pi_{k+1}/\\hat\\pi_k) + \\gamma\\hat P\\,\\mathrm{KL}(\\hat\\pi_k\\|\\hat\\pi_{k+1})`.
    """
    lam = check_kl_weight(kl_weight)
    a = targets(policies, P_hat, gamma, alpha_model)
    if lam == 0.0:
        return a
    return a + lam * _kl_direction(policies, P_hat, gamma)


def _kl_direction(
    policies: Sequence[NDArray[np.float64]], P_hat: NDArray[np.float64], gamma: float
) -> NDArray[np.float64]:
    """:math:`b_k = \\ln(\\hat\\pi_{k+1}/\\hat\\pi_k) + \\gamma\\hat P\\,\\mathrm{KL}(\\hat\\pi_k\\|\\hat\\pi_{k+1})`, shape (N - 1, S, A)."""
    out = []
    for pi1, pi2 in zip(policies[:-1], policies[1:]):
        out.append(np.log(pi2) - np.log(pi1) + gamma * (P_hat @ kl_divergence(pi1, pi2)))
    return np.array(out)


def kl_weight_from_consistency(
    policies: Sequence[NDArray[np.float64]],
    P_hat: NDArray[np.float64],
    gamma: float,
    alpha_model: float,
    weights_k: NDArray[np.float64],
) -> float:
    """The :math:`\\lambda` that makes the KL targets most consistent (Eq. 5), in closed form, unclipped.

    The targets are affine in :math:`\\lambda` (:func:`kl_targets`) and the minimum of the
    Eq. (5) loss over :math:`r` and the shapings is a quadratic form of the targets, so the
    minimised loss is the quadratic :math:`\\|\\rho_a + \\lambda\\rho_b\\|_w^2` in :math:`\\lambda`,
    where :math:`\\rho_a, \\rho_b` are the residuals of the fits to :math:`a` and to :math:`b`
    alone; its minimiser is :math:`-\\langle\\rho_a,\\rho_b\\rangle_w/\\|\\rho_b\\|_w^2`. With exact
    policies from a KL learner it returns :math:`\\lambda\\,\\alpha_m/\\alpha` exactly (only the
    ratio :math:`\\lambda/\\alpha` is identifiable). From estimated policies it is dominated
    by their noise, which appears in both :math:`a` and :math:`b` and pulls the estimate towards
    :math:`-\\alpha_m/2` (book chapter "What kind of learner?"); :func:`recover_reward` therefore
    estimates :math:`\\lambda` by a held-out likelihood instead (:func:`select_learner_model`).
    Needs two or more improvements (NaN with one: every :math:`\\lambda` fits exactly).
    """
    if len(policies) < 3:
        return float("nan")
    a = targets(policies, P_hat, gamma, alpha_model)
    b = _kl_direction(policies, P_hat, gamma)

    def resid(t: NDArray[np.float64]) -> NDArray[np.float64]:
        r, f = consistency_fit(t, weights_k, P_hat, gamma, r0=0.0, ridge_r=0.0, ridge_f=1e-12)
        shaping = f[:, :, None] - gamma * np.einsum("sat,kt->ksa", P_hat, f)
        return t - r[None] - shaping

    ra, rb = resid(a), resid(b)
    den = float((weights_k * rb * rb).sum())
    return -float((weights_k * ra * rb).sum()) / den if den > 0 else float("nan")


def predict_next_policies(
    result: LfLResult, gamma: float, alpha_model: float, kind: str = "forward"
) -> list[NDArray[np.float64]]:
    """The policies :math:`\\pi_2, \\dots, \\pi_N` that a fitted learner model predicts; no reward of the MDP is used.

    ``kind="forward"`` (the criterion of :func:`select_learner_model`): the model's own
    step, one step ahead, from the fitted reward :math:`\\hat r` on the estimated dynamics
    :math:`\\hat P` at :math:`\\alpha_m`:

    - ``"spi"``: :math:`\\mathrm{SPI}_{\\hat r}(\\hat\\pi_k)`;
    - ``"kl"``: :math:`\\propto \\hat\\pi_k^{\\lambda/(\\alpha_m+\\lambda)}\\exp(Q^{\\hat\\pi_k}_{\\hat r}/(\\alpha_m+\\lambda))`;
    - ``"svi"``: soft value iteration run forward with :math:`\\hat r` from the fitted first
      potential :math:`V_0` alone.

    ``kind="equation"``: each model's fitted equation read as a log-policy (the Eq. 5
    residual turned into a likelihood): for ``"spi"``/``"kl"``
    :math:`\\propto\\exp\\big((\\hat r + f_k - \\gamma\\hat P f_k + \\lambda\\ln\\hat\\pi_k
    - \\gamma(\\alpha_m+\\lambda)\\hat P\\,\\mathrm{KL}(\\hat\\pi_k\\|\\hat\\pi_{k+1}))/(\\alpha_m+\\lambda)\\big)`,
    for ``"svi"`` :math:`\\propto\\exp((\\hat r + \\gamma\\hat P V_{k-1})/\\alpha_m)`.
    """
    if kind not in ("forward", "equation"):
        raise ValueError(f"kind must be 'forward' or 'equation'; got {kind!r}")
    out = []
    P_hat = result.P_hat
    if result.learner_model == "svi":
        V = result.shapings
        if kind == "equation":
            return [softmax_policy(result.r + gamma * (P_hat @ V[k - 1]), alpha_model) for k in range(1, V.shape[0])]
        v = V[0]
        for _ in range(1, V.shape[0]):
            Q = result.r + gamma * (P_hat @ v)
            out.append(softmax_policy(Q, alpha_model))
            v = alpha_model * logsumexp(Q / alpha_model, axis=1)
        return out
    lam = result.kl_weight
    beta = alpha_model + lam
    if kind == "forward":
        # soft_evaluate and softmax_policy on (P_hat, r_hat), written out without their input checks
        eye = np.eye(P_hat.shape[0])
        for pi in result.policies[:-1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                ent = -np.where(pi > 0, pi * np.log(np.where(pi > 0, pi, 1.0)), 0.0).sum(axis=1)
            c = (pi * result.r).sum(axis=1) + alpha_model * ent
            V = np.linalg.solve(eye - gamma * np.einsum("sa,sat->st", pi, P_hat), c)
            Q = result.r + gamma * (P_hat @ V)
            z = (Q + lam * np.log(pi) if lam > 0 else Q) / beta
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            out.append(e / e.sum(axis=1, keepdims=True))
        return out
    for k, (pi1, pi2) in enumerate(zip(result.policies[:-1], result.policies[1:])):
        f = result.shapings[k]
        logits = result.r + f[:, None] - gamma * (P_hat @ f) - gamma * beta * (P_hat @ kl_divergence(pi1, pi2))
        if lam > 0:
            logits = logits + lam * np.log(pi1)
        out.append(softmax_policy(logits, beta))
    return out


def _split_halves(data: Sequence[object]) -> tuple[list[object], list[object]]:
    """Each policy's data cut in two: a Trajectory into its first and second half (two
    contiguous trajectories), a list of Episode into its first and second half of episodes."""
    first: list[object] = []
    second: list[object] = []
    for tr in data:
        if isinstance(tr, Trajectory):
            h = len(tr) // 2
            first.append(Trajectory(tr.states[: h + 1], tr.actions[:h]))
            second.append(Trajectory(tr.states[h:], tr.actions[h:]))
        else:
            eps = list(tr)  # type: ignore[call-overload]
            h = len(eps) // 2
            first.append(eps[:h])
            second.append(eps[h:])
    return first, second


#: A progress callback of the learner-model selection: ``progress(label, done, total)`` is called
#: before each of the ``total`` fits (``label`` names the fold and the candidate, ``done`` fits
#: are finished) and once at the end with ``done == total``.
ProgressFn = Callable[[str, int, int], None]


def _reporter(progress: bool | ProgressFn | None, desc: str) -> tuple[ProgressFn, Callable[[], None]]:
    """``(show, close)`` for ``progress``: nothing, the callable itself, or a tqdm bar (off when stderr is no terminal)."""
    if progress is None or progress is False:
        return (lambda label, done, total: None), (lambda: None)
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(desc=desc, unit="fit", disable=None, leave=False, file=sys.stderr, dynamic_ncols=True)

        def show(label: str, done: int, total: int) -> None:
            bar.total, bar.n = total, done
            bar.set_postfix_str(label, refresh=False)
            bar.refresh()

        return show, bar.close
    if callable(progress):
        return progress, (lambda: None)
    raise ValueError(f"progress must be a bool or a callable progress(label, done, total); got {progress!r}")


def _then_one_more(show: ProgressFn) -> ProgressFn:
    """``show`` with one more fit in the total (the final fit after a selection); the selection's last call is dropped."""

    def inner(label: str, done: int, total: int) -> None:
        if done < total:
            show(label, done, total + 1)

    return inner


#: The candidates of ``learner_model="auto"``. ``"svi"`` is left out: on the held-out seeds
#: 1000-1009 its fit on SPI data gave observers near the uniform policy's score (-19.5) and the
#: likelihood still preferred it there (book chapter "What kind of learner?").
AUTO_CANDIDATES: tuple[str, ...] = ("spi", "kl")

#: The margin of ``learner_model="auto"``, in standard errors: the SPI model is kept unless the
#: best candidate's held-out log-likelihood per pair exceeds SPI's by more than this many
#: standard errors of the per-pair difference (0: the best candidate always; ``inf``: SPI always).
#: Chosen on the held-out seeds 1000-1009 by the criterion written down in
#: ``book/data/tabular/README.md`` (book chapter "What kind of learner?").
AUTO_SE_MARGIN: float = math.inf

#: The grid of :math:`\\lambda/\\alpha_m` over which ``"kl"`` (and ``"auto"``) estimate the KL weight.
KL_RATIO_GRID: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


@dataclass(frozen=True)
class ModelSelection:
    """Result of :func:`select_learner_model`."""

    model: str
    """The chosen learner model, ``"spi"``, ``"kl"`` or ``"svi"``."""
    kl_weight: float
    """:math:`\\lambda` of the chosen model (0 unless ``"kl"``)."""
    log_likelihood: dict[str, float]
    """Held-out log-likelihood per observed pair of every candidate (higher is better); the
    ``"kl"`` candidates are keyed ``"kl:<lambda>"``."""
    standard_error: dict[str, float] = field(default_factory=dict)
    """Standard error of each candidate's mean per-pair log-likelihood difference from ``"spi"``
    (sample standard deviation, ddof 1, over the held-out pairs, divided by the square root of
    their number); empty when ``"spi"`` is not a candidate."""


def _difference_se(
    counts: Sequence[NDArray[np.float64]], logp: Sequence[NDArray[np.float64]], logp_ref: Sequence[NDArray[np.float64]]
) -> float:
    """Standard error of the mean of ``logp - logp_ref`` over pairs weighted by ``counts`` (ddof 1)."""
    n = float(sum(c.sum() for c in counts))
    if n < 2:
        return math.inf
    s1 = float(sum((c * (a - b)).sum() for c, a, b in zip(counts, logp, logp_ref)))
    s2 = float(sum((c * (a - b) ** 2).sum() for c, a, b in zip(counts, logp, logp_ref)))
    var = max(s2 - s1 * s1 / n, 0.0) / (n - 1)
    return math.sqrt(var / n)


def select_learner_model(
    trajectories: Sequence[Trajectory],
    n_states: int,
    n_actions: int,
    gamma: float,
    alpha_model: float,
    *,
    candidates: Sequence[str] = AUTO_CANDIDATES,
    kl_weight: float | None = None,
    se_margin: float = AUTO_SE_MARGIN,
    progress: bool | ProgressFn = False,
    config: TabularLfLConfig | Mapping[str, Any] | None = None,
    P: np.ndarray | None = None,
    terminal: np.ndarray | None = None,
    **options: Any,
) -> ModelSelection:
    """Which learner model explains the observed learning best, by a held-out likelihood.

    The criterion (two-fold cross-fitting; no reward is used): every trajectory is cut
    into its first and second half. For each fold and each candidate, Algorithm 1 is
    fitted on one half of every trajectory, the fitted model predicts each next policy
    :math:`\\pi_2, \\dots, \\pi_N` one step ahead from its reward (:func:`predict_next_policies`,
    ``kind="forward"``), and the prediction is scored by the
    log-likelihood of the *other* half's pairs of that policy. The folds are summed and
    the best candidate wins (ties to the earlier one), unless ``"spi"`` is a candidate and
    the best one beats it by no more than ``se_margin`` standard errors of the per-pair
    difference: then ``"spi"``, the paper's model, is kept ("no selection" is a candidate). The ``"kl"`` candidate is one per
    :math:`\\lambda = \\rho\\,\\alpha_m`, :math:`\\rho` in :data:`KL_RATIO_GRID` (or the given
    ``kl_weight``); :math:`\\lambda = 0` is SPI itself, reported as ``"spi"``.

    Failure modes (book chapter "What kind of learner?"): a learner that matches no
    candidate (random mixtures) still gets the best of the wrong models; ``"kl"`` nests
    ``"spi"`` and is maximised over a grid, so it wins close calls by chance; a learner
    that barely changes between observations leaves the models nearly indistinguishable;
    the likelihood judges how well the next *policy* is predicted, not how well an agent
    planning on the reward scores, and the two can disagree (a wrong model can predict
    well enough and still give a worse reward).

    Parameters
    ----------
    trajectories, n_states, n_actions, gamma, alpha_model
        As for :func:`recover_reward`; at least two trajectories (three for ``"svi"``), each
        of two or more pairs.
    candidates : sequence of str
        A subset of ``("spi", "kl", "svi")``; by default :data:`AUTO_CANDIDATES`.
    kl_weight : float, optional
        A fixed :math:`\\lambda` for the ``"kl"`` candidate instead of the grid.
    se_margin : float, default :data:`AUTO_SE_MARGIN`
        The margin, in standard errors (>= 0, ``inf`` allowed), by which a candidate must beat
        ``"spi"`` to replace it; 0 takes the best candidate, ``inf`` always keeps ``"spi"``.
    progress : bool or callable, default False
        The fits (one per candidate and fold, ``2 x`` the candidates): True shows a bar on stderr,
        only when it is a terminal; a callable is called as
        ``progress(label, done, total)`` (:data:`ProgressFn`) before each fit and once at the end.
    config, P, terminal, **options
        As for :func:`fit_lfl`.
    """
    show, close = _reporter(progress, "learner model selection")
    try:
        return _select(
            trajectories,
            n_states,
            n_actions,
            gamma,
            alpha_model,
            candidates,
            kl_weight,
            se_margin,
            show,
            as_tabular_config(config, options, stacklevel=3),
            P,
            terminal,
        )
    finally:
        close()


def _select(
    trajectories: Sequence[Trajectory],
    n_states: int,
    n_actions: int,
    gamma: float,
    alpha_model: float,
    candidates: Sequence[str],
    kl_weight: float | None,
    se_margin: float,
    show: ProgressFn,
    cfg: TabularLfLConfig,
    P: np.ndarray | None,
    terminal: np.ndarray | None,
) -> ModelSelection:
    """The body of :func:`select_learner_model`; ``show(label, done, total)`` before each fit."""
    cands = list(candidates)
    if not cands or any(c not in ("spi", "kl", "svi") for c in cands):
        raise ValueError(f"candidates must be a non-empty subset of ('spi', 'kl', 'svi'); got {candidates!r}")
    minimum = max(LEARNER_MODELS[c] for c in cands)
    _observed(trajectories, n_states, n_actions, minimum=minimum)
    trajs = list(trajectories)
    if any(len(tr) < 2 for tr in trajs):  # type: ignore[arg-type]
        raise ValueError(
            "trajectories must each hold at least 2 pairs (or, per policy, 2 episodes) for the held-out criterion"
        )
    alpha_model = check_alpha(alpha_model, "alpha_model")
    try:
        se_margin = float(se_margin)
    except (TypeError, ValueError):
        raise ValueError(f"se_margin must be a number >= 0 (inf allowed); got {se_margin!r}") from None
    if not se_margin >= 0.0:
        raise ValueError(f"se_margin must be a number >= 0 (inf allowed); got {se_margin!r}")
    runs = _selection_runs(cands, kl_weight, alpha_model)
    ll, se = _held_out_log_likelihoods(trajs, n_states, n_actions, gamma, alpha_model, runs, cfg, P, terminal, show)
    keys = list(ll)
    best = max(keys, key=lambda k: (ll[k], -keys.index(k)))
    if se and best != "spi" and not (math.isfinite(se_margin) and ll[best] - ll["spi"] > se_margin * se[best]):
        best = "spi"  # not better than the paper's model by the margin
    model = best.split(":")[0]
    lam = next(weight for k, _, weight in runs if k == best)
    show(f"selected {best}", 2 * len(runs), 2 * len(runs))
    return ModelSelection(model, float(lam), ll, se)


def _selection_runs(cands: Sequence[str], kl_weight: float | None, alpha_model: float) -> list[tuple[str, str, float]]:
    """The fits that :func:`select_learner_model` compares: (key, model, lambda), ``"spi"`` first."""
    runs: list[tuple[str, str, float]] = []
    if "spi" in cands:
        runs.append(("spi", "spi", 0.0))
    if "kl" in cands:
        lams = [check_kl_weight(kl_weight)] if kl_weight is not None else [rho * alpha_model for rho in KL_RATIO_GRID]
        runs += [
            ("spi", "spi", 0.0) if lam == 0.0 else (f"kl:{lam:g}", "kl", lam)
            for lam in lams
            if not (lam == 0.0 and "spi" in cands)
        ]
    if "svi" in cands:
        runs.append(("svi", "svi", 0.0))
    return runs


def _held_out_log_likelihoods(
    trajs: Sequence[object],
    n_states: int,
    n_actions: int,
    gamma: float,
    alpha_model: float,
    runs: Sequence[tuple[str, str, float]],
    cfg: TabularLfLConfig,
    P: np.ndarray | None,
    terminal: np.ndarray | None,
    show: ProgressFn,
) -> tuple[dict[str, float], dict[str, float]]:
    """Two-fold held-out log-likelihood per pair of each run, and its standard error against ``"spi"``."""
    halves = _split_halves(trajs)
    ll = {key: 0.0 for key, _, _ in runs}
    logp: dict[str, list[NDArray[np.float64]]] = {key: [] for key, _, _ in runs}
    all_counts: list[NDArray[np.float64]] = []
    n_pairs = 0
    total, done = 2 * len(runs), 0
    for fold, (fit_half, test_half) in enumerate((halves, halves[::-1])):
        test_counts = _observed(test_half, n_states, n_actions, minimum=1).pair_counts[1:]
        n_pairs += int(sum(c.sum() for c in test_counts))
        all_counts += test_counts
        pols, P_hat, wk = _prepare(fit_half, n_states, n_actions, cfg, P=P, terminal=terminal)
        parts = None
        if any(model != "svi" for _, model, _ in runs):
            parts = (
                targets(pols, P_hat, gamma, alpha_model),
                _kl_direction(pols, P_hat, gamma) if any(m == "kl" for _, m, _ in runs) else None,
            )
        for key, model, lam in runs:
            show(f"fold {fold + 1}/2, candidate {key}", done, total)
            res = _fit_prepared(
                pols,
                P_hat,
                wk,
                gamma,
                alpha_model,
                model,
                lam,
                cfg.unseen,
                cfg.solver,
                cfg.n_steps,
                cfg.lr,
                kl_parts=parts,
            )
            lp = [np.log(p) for p in predict_next_policies(res, gamma, alpha_model, "forward")]
            logp[key] += lp
            ll[key] += float(sum((cnt * lq).sum() for cnt, lq in zip(test_counts, lp)))
            done += 1
    ll = {key: v / n_pairs for key, v in ll.items()}
    se = {key: _difference_se(all_counts, logp[key], logp["spi"]) for key in ll} if "spi" in ll else {}
    return ll, se


def recover_reward(
    trajectories: Sequence[Trajectory],
    n_states: int,
    n_actions: int,
    gamma: float,
    alpha_model: float,
    *,
    P: np.ndarray | None = None,
    terminal: np.ndarray | None = None,
    learner_model: LearnerModel = "spi",
    kl_weight: float | None = None,
    config: TabularLfLConfig | Mapping[str, Any] | None = None,
    **options: Any,
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
    config : TabularLfLConfig or dict, optional
        (keyword-only) The estimator's choices (None: the defaults); ``options`` replace its fields.
    **options
        The estimator's choices, the fields of :class:`TabularLfLConfig` (defaults in brackets):

        - ``policy_estimator`` [``"entropy_ml"``]: or ``"entropy_ml_adam"``, ``"dirichlet"``
          (:func:`estimate_policies`);
        - ``entropy_bonus`` [0.4]: :math:`\\lambda` of the ``"entropy_ml"`` estimators (the older
          name ``entropy_weight`` is accepted, with a DeprecationWarning);
        - ``policy_steps`` [10], ``policy_lr`` [0.5]: Adam steps and rate of ``"entropy_ml_adam"``;
        - ``policy_prior`` [1.0], ``policy_prior_mean`` [``"previous"``]: pseudo-count per state
          and prior mean (or ``"uniform"``) of ``"dirichlet"``;
        - ``transition_prior`` [1e-3]: :math:`\\beta` of :math:`\\hat P`
          (:func:`~lfl_lib.trajectories.estimate_transitions`);
        - ``weights`` [``"all"``]: :math:`w_k(s,a)`, 1 for every pair (``"all"``), the visits
          :math:`n_{k+1}(s)` for every action (``"states"``), or the counts
          :math:`n_{k+1}(s,a)` (``"pairs"``), or :math:`\\min(n_k(s), n_{k+1}(s))` for every
          action (``"both"``: states where both policy estimates have evidence);
        - ``weight_floor`` [0.0]: added to the counts of ``"states"`` and ``"pairs"``;
        - ``unseen`` [``"min"``]: the reward :math:`r_0` of a pair outside the loss, the
          smallest target, 0 (``"zero"``) or the weighted mean target (``"mean"``);
        - ``solver`` [``"exact"``]: or ``"adam"``, the paper's gradient version, with
          ``n_steps`` [200] steps of rate ``lr`` [1.0].
    learner_model : {"spi", "kl", "svi", "auto"}, default "spi"
        What the observer assumes the learner does between two observed policies (keyword
        only, like ``kl_weight``):

        - ``"spi"``: soft policy iteration, the paper's model (Theorem 2 targets and Eq. 5);
        - ``"kl"``: KL-regularized soft improvements of weight :math:`\\lambda`
          (:func:`kl_targets`, same Eq. 5 fit);
        - ``"svi"``: soft value iteration: targets :math:`\\alpha_m\\ln\\hat\\pi_{k+1}` and
          Eq. (5) with one potential per policy
          (:func:`~lfl_lib.inversion.value_iteration_fit`); needs three or more trajectories
          (the first policy is taken as the learner's start, not as a backup);
        - ``"auto"``: the candidate of :data:`AUTO_CANDIDATES` (``"spi"`` or ``"kl"`` with
          :math:`\\lambda` on a grid) that predicts held-out pairs of the next policies best,
          kept only if it beats ``"spi"`` by :data:`AUTO_SE_MARGIN` standard errors
          (:func:`select_learner_model`, which documents the criterion and its failure
          modes), then fitted on all the data; three or more trajectories.
    kl_weight : float, optional
        :math:`\\lambda \\ge 0` of ``"kl"`` (also used by the ``"kl"`` candidate of ``"auto"``).
        None (default): chosen from the trajectories by the held-out criterion of
        :func:`select_learner_model` over :data:`KL_RATIO_GRID`; needs three or more trajectories.
        (With ``"auto"``, the option ``se_margin`` sets the margin of :func:`select_learner_model`;
        by default :data:`AUTO_SE_MARGIN`.)

    Returns
    -------
    ndarray, shape (n_states, n_actions)
        The recovered reward :math:`r(s, a)`.

    Raises
    ------
    ValueError
        Fewer than two observed policies, a flat list of episodes, an element that is not a
        :class:`~lfl_lib.trajectories.Trajectory`, a state
        or action out of range, ``gamma`` outside [0, 1), ``alpha_model`` <= 0, an
        unknown option value, an unknown ``learner_model``, a negative or NaN
        ``kl_weight`` (or one given with a model other than ``"kl"``/``"auto"``), or fewer
        trajectories than the model needs.
    """
    return fit_lfl(
        trajectories,
        n_states,
        n_actions,
        gamma,
        alpha_model,
        P=P,
        terminal=terminal,
        learner_model=learner_model,
        kl_weight=kl_weight,
        config=as_tabular_config(config, options, stacklevel=3),
    ).r


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


def play_policy(
    env: object, pi: ArrayLike, n_episodes: int = 100, seed: int = 0, greedy: bool = False
) -> NDArray[np.float64]:
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
            a = (
                int(np.argmax(pi[s]))
                if greedy
                else int(min(np.searchsorted(cum[s], rng.random(), side="right"), nA - 1))
            )
            s, r, term, trunc, _ = env.step(a)  # type: ignore[attr-defined]
            returns[i] += float(r)
            done = bool(term or trunc)
    return returns
