"""Learners: algorithms whose successive policies the observer sees.

Each learner returns the list of its policies :math:`[\\pi_1, \\dots, \\pi_{K+1}]`, the
sequence that Learning from a Learner inverts. The four learners of Table 2 are soft
policy iteration (the observer's model), soft value iteration, Q-learning with a
softmax policy, and random improvements; the paper leaves several of their settings
open, and each function's docstring states the choice made here.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import logsumexp

from ._validate import check_alpha, check_policy, check_positive_int, check_state_function
from .improvement import soft_improvement
from .trajectories import _cumulative_lists
from .mdp import TabularMDP, soft_evaluate, soft_optimal, softmax_policy, uniform_policy

__all__ = [
    "soft_policy_iteration",
    "soft_value_iteration",
    "q_learning",
    "random_improvements",
    "kl_soft_improvement",
    "kl_soft_policy_iteration",
]


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
    return _iterate(mdp, lambda pi: soft_improvement(mdp, pi, alpha), K, pi0)


def _iterate(
    mdp: TabularMDP,
    improve: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    K: int,
    pi0: ArrayLike | None,
) -> list[NDArray[np.float64]]:
    """``[pi_1, improve(pi_1), ...]``, K + 1 policies, from ``pi_1 = pi0`` (checked, copied) or the uniform policy."""
    if pi0 is None:
        pi = uniform_policy(mdp.n_states, mdp.n_actions)
    else:
        pi = check_policy(pi0, mdp.n_states, mdp.n_actions, "pi0").copy()
    policies = [pi]
    for _ in range(K):
        pi = improve(pi)
        policies.append(pi)
    return policies


def soft_value_iteration(
    mdp: TabularMDP, alpha: float, n_improvements: int, v0: ArrayLike | None = None
) -> list[NDArray[np.float64]]:
    """Soft value iteration (Haarnoja et al., 2017), one policy per Bellman backup.

    :math:`V_{k+1}(s) = \\alpha\\ln\\sum_a\\exp(Q_k(s,a)/\\alpha)` with
    :math:`Q_k = r + \\gamma P V_k`, and the learner's policy after k backups is
    :math:`\\pi_{k+1} \\propto \\exp(Q_k/\\alpha)`.

    Initialisation (the paper does not give it): :math:`\\pi_1` is uniform and
    :math:`V_0 = V^{\\pi_1}_{soft}`, its soft value, so that SVI starts where SPI starts
    and its first step is the first soft policy improvement. From this pessimistic
    start the iterates increase, :math:`V_0 \\le V_1 \\le \\dots \\le V^*`, and each policy is
    at least as good as the iterate that made it, :math:`V^{\\pi_{k+1}} \\ge V_k`; the scores
    :math:`J(\\pi_k)` themselves need not increase at every step. (With :math:`V_0 = 0`
    the first two policies would both be uniform on the grid world, whose reward
    depends on the state only.)

    Parameters
    ----------
    mdp : TabularMDP
    alpha : float
        Entropy weight, > 0.
    n_improvements : int
        K, the number of backups, >= 0.
    v0 : array_like, shape (S,), optional
        Another initial value function :math:`V_0` (the first policy stays uniform).

    Returns
    -------
    list of ndarray, each of shape (S, A)
        K + 1 policies :math:`[\\pi_1, \\dots, \\pi_{K+1}]`.
    """
    alpha = check_alpha(alpha)
    K = check_positive_int(n_improvements, "n_improvements", minimum=0)
    pi = uniform_policy(mdp.n_states, mdp.n_actions)
    if v0 is None:
        _, V = soft_evaluate(mdp, pi, alpha)
    else:
        V = check_state_function(v0, mdp.n_states, "v0")
    policies = [pi]
    for _ in range(K):
        Q = mdp.r + mdp.gamma * (mdp.P @ V)
        policies.append(softmax_policy(Q, alpha))
        V = alpha * logsumexp(Q / alpha, axis=1)
    return policies


def q_learning(
    mdp: TabularMDP,
    alpha: float,
    n_improvements: int,
    rng: np.random.Generator,
    n_steps: int = 1000,
    step_size: float = 0.1,
) -> list[NDArray[np.float64]]:
    """Watkins' Q-learning whose behaviour policy is the softmax :math:`\\exp(Q/\\alpha)`.

    Choices the paper leaves open, made here:

    - :math:`Q = 0` at the start, so :math:`\\pi_1` is uniform;
    - each policy :math:`\\pi_k = \\mathrm{softmax}(Q_k/\\alpha)` is frozen for one rollout of
      ``n_steps`` steps (1000, as many as the observer sees per improvement) from the
      start state; the grid world has no terminal state, so a rollout is one episode;
    - during the rollout the table is updated at every step with the standard target
      :math:`r(s,a) + \\gamma\\max_{a'} Q(s', a')` and a constant ``step_size``
      (0.1, a common textbook value, not tuned); the updated table gives
      :math:`\\pi_{k+1}`; exploration comes from the softmax policy only.

    Parameters
    ----------
    mdp : TabularMDP
    alpha : float
        Temperature of the softmax policy, > 0.
    n_improvements : int
        K, the number of policy updates (rollouts).
    rng : numpy.random.Generator
    n_steps : int, default 1000
    step_size : float, default 0.1
        In (0, 1].

    Returns
    -------
    list of ndarray, each of shape (S, A)
        K + 1 policies :math:`[\\pi_1, \\dots, \\pi_{K+1}]`.
    """
    alpha = check_alpha(alpha)
    K = check_positive_int(n_improvements, "n_improvements", minimum=0)
    T = check_positive_int(n_steps, "n_steps")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator; got {type(rng).__name__}")
    if not (np.isfinite(step_size) and 0.0 < step_size <= 1.0):
        raise ValueError(f"step_size must be in (0, 1]; got {step_size!r}")
    S, A = mdp.n_states, mdp.n_actions
    cum_P = _cumulative_lists(mdp.P)
    r = mdp.r.tolist()
    gamma = mdp.gamma
    # Python lists and bisect: a step costs about a microsecond (NumPy calls cost several).
    Q = [[0.0] * A for _ in range(S)]
    policies = [uniform_policy(S, A)]
    for _ in range(K):
        cum_pi = _cumulative_lists(policies[-1])
        s = mdp.start
        for u_a, u_s in rng.random((T, 2)).tolist():
            a = bisect_right(cum_pi[s], u_a)
            s2 = bisect_right(cum_P[s][a], u_s)
            Q[s][a] += step_size * (r[s][a] + gamma * max(Q[s2]) - Q[s][a])
            s = s2
        policies.append(softmax_policy(np.array(Q), alpha))
    return policies


def random_improvements(
    mdp: TabularMDP,
    alpha: float,
    rng: np.random.Generator,
    n_policies: int = 15,
    n_observed: int = 10,
) -> list[NDArray[np.float64]]:
    """Random "improvements": mixtures of the uniform and the optimal soft policy (Table 2).

    Draws ``n_policies`` points :math:`t_i \\sim U(0, 1)`, sorts them, and returns the first
    ``n_observed`` policies :math:`\\pi_i = (1 - t_i)\\,U + t_i\\,\\pi^*`, where :math:`\\pi^*`
    is the optimal soft policy for ``alpha``. The interpolation is a mixture in policy
    space (the paper says "randomly interpolating"); the learner never saw more than
    the first ``n_observed`` (10 of 15 in the paper).

    Returns
    -------
    list of ndarray, each of shape (S, A)
        ``n_observed`` policies, ordered by increasing :math:`t`.
    """
    alpha = check_alpha(alpha)
    n = check_positive_int(n_policies, "n_policies")
    n_obs = check_positive_int(n_observed, "n_observed")
    if n_obs > n:
        raise ValueError(f"n_observed must be <= n_policies = {n}; got {n_obs}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator; got {type(rng).__name__}")
    pi_star, _, _ = soft_optimal(mdp, alpha)
    uniform = uniform_policy(mdp.n_states, mdp.n_actions)
    t = np.sort(rng.random(n))[:n_obs]
    return [(1.0 - ti) * uniform + ti * pi_star for ti in t]


def kl_soft_improvement(mdp: TabularMDP, pi: ArrayLike, alpha: float, kl_weight: float) -> NDArray[np.float64]:
    """One KL-regularized soft policy improvement (the step of mirror-descent and trust-region learners).

    :math:`\\pi_2 = \\arg\\max_{\\pi'} E_{a\\sim\\pi'}[Q^{\\pi}(s,a)] + \\alpha\\mathcal{H}(\\pi'(\\cdot|s))
    - \\lambda\\,\\mathrm{KL}(\\pi'(\\cdot|s)\\|\\pi(\\cdot|s))` in every state, that is
    :math:`\\pi_2(a|s) \\propto \\pi(a|s)^{\\lambda/(\\alpha+\\lambda)}\\exp(Q^{\\pi}(s,a)/(\\alpha+\\lambda))`,
    with :math:`Q^\\pi` the soft action values at entropy weight :math:`\\alpha`. ``kl_weight=0`` is
    SPI (Eq. 3); a larger :math:`\\lambda` takes a smaller step.

    Parameters
    ----------
    mdp : TabularMDP
    pi : array_like, shape (S, A)
    alpha : float
        Entropy weight, > 0.
    kl_weight : float
        :math:`\\lambda \\ge 0`.

    Returns
    -------
    ndarray, shape (S, A)
    """
    from .inversion import check_kl_weight

    lam = check_kl_weight(kl_weight)
    alpha = check_alpha(alpha)
    pi = check_policy(pi, mdp.n_states, mdp.n_actions)
    Q, _ = soft_evaluate(mdp, pi, alpha)
    if lam == 0.0:
        return softmax_policy(Q, alpha)
    with np.errstate(divide="ignore"):
        logits = lam * np.log(pi) + Q
    return softmax_policy(logits, alpha + lam) if np.all(pi > 0) else _masked_softmax(logits, alpha + lam)


def _masked_softmax(logits: NDArray[np.float64], temperature: float) -> NDArray[np.float64]:
    """Softmax of logits that may hold -inf (actions outside the previous policy's support)."""
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def kl_soft_policy_iteration(
    mdp: TabularMDP, alpha: float, kl_weight: float, n_improvements: int, pi0: ArrayLike | None = None
) -> list[NDArray[np.float64]]:
    """Repeated KL-regularized soft improvements (:func:`kl_soft_improvement`) from ``pi0``.

    Parameters
    ----------
    mdp : TabularMDP
    alpha : float
        The learner's entropy weight, > 0.
    kl_weight : float
        :math:`\\lambda \\ge 0`; 0 gives :func:`soft_policy_iteration`.
    n_improvements : int
        K, >= 0.
    pi0 : array_like, shape (S, A), optional
        First policy; uniform by default.

    Returns
    -------
    list of ndarray, each of shape (S, A)
        K + 1 policies.
    """
    from .inversion import check_kl_weight

    alpha = check_alpha(alpha)
    lam = check_kl_weight(kl_weight)
    K = check_positive_int(n_improvements, "n_improvements", minimum=0)
    return _iterate(mdp, lambda pi: kl_soft_improvement(mdp, pi, alpha, lam), K, pi0)
