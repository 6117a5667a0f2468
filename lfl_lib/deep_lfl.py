"""Algorithm 1 for continuous states and actions (Sections 5 and 6.3 of the paper).

From rollouts :math:`D_1, \\dots, D_K` of an improving learner, recover one reward
:math:`r_\\phi(s, a)` that explains every improvement :math:`k \\to k+1`:

1. fit a Gaussian policy :math:`\\hat\\pi_{\\theta_k}` to each :math:`D_k` by maximum
   likelihood with an entropy bonus :math:`\\lambda = 0.01` (Section 5.2);
2. regress the divergences :math:`\\rho_{\\omega_k}(s) \\approx
   KL(\\hat\\pi_k(\\cdot|s) \\,\\|\\, \\hat\\pi_{k+1}(\\cdot|s))` (Section 5.2);
3. initialise :math:`r_\\phi(s, a) = \\ln \\pi_\\phi(a|s)` by behaviour cloning of
   :math:`D_K` (Section 5.4);
4. minimise the consistency loss of Eq. (5) over :math:`\\phi` and the shapings
   :math:`\\psi_k`:

.. math:: L(\\phi, \\{\\psi_k\\}) = \\sum_k \\sum_{(s,a,s') \\in D_{k+1}}
          \\big(r_k(s, a, s') - r_\\phi(s, a) + f_{\\psi_k}(s) - \\gamma f_{\\psi_k}(s')\\big)^2,
          \\qquad r_k = \\alpha \\ln \\hat\\pi_{k+1}(a|s) + \\alpha\\gamma\\rho_k(s').

Discrete actions (``Rollout(..., action_space=Discrete(n))``): the policies and
:math:`\\pi_\\phi` are categorical (:class:`lfl_lib.categorical.CategoricalActor`), the entropy
bonus is averaged over the data's states, and the divergence is the closed-form categorical
KL (:func:`lfl_lib.categorical.categorical_kl`). At each state, :math:`r_\\phi = \\ln\\pi_\\phi`
is largest at :math:`\\pi_\\phi`'s mode (the log-density limitation, stated in
:mod:`lfl_lib.categorical`).

Terminal transitions: when :math:`s'` is terminal (a termination, not a time-limit
truncation) it is absorbing with value 0, so the terms at :math:`s'` (the divergence
:math:`\\gamma\\rho_k(s')` and the shaping :math:`\\gamma f_{\\psi_k}(s')`) are dropped.

The networks follow Section 6.3: policies and the reward are the PPO actor (64-64 tanh,
state-independent log-std); :math:`\\rho` and :math:`f` each have one tanh layer of 128
units shared across k, with one output per improvement. Every network sees states
standardized with the mean and standard deviation of all observed states.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence, cast

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ._validate import check_alpha, check_gamma, check_positive_int, check_real
from .categorical import CategoricalActor, categorical_kl
from .data import Rollout, check_rollouts
from .nets import GaussianActor

#: A policy of Algorithm 1: Gaussian (continuous actions) or categorical (discrete actions).
Policy = GaussianActor | CategoricalActor

__all__ = [
    "ESTIMATORS",
    "DeepLfLConfig",
    "Standardizer",
    "RewardModel",
    "QuadraticStateTerm",
    "MLPStateTerm",
    "SharedHeads",
    "recover_reward",
    "gaussian_kl",
    "policy_kl",
    "fit_gaussian_policies",
    "fit_chained_policy",
    "holdout_mask",
    "holdout_seed",
    "as_config",
    "live_mask",
    "divergence_targets",
    "consistency_targets",
    "kl_direction_targets",
    "consistency_residual",
]

#: Held-out negative log-likelihoods are compared every this many Adam steps.
CHECK_EVERY = 10


#: The estimators of Algorithm 1, by name (the ``--estimator`` of ``lfl recover`` and ``lfl study``): the settings of Algorithm 1's maximum-likelihood
#: fits (:class:`~lfl_lib.deep_lfl.DeepLfLConfig` fields) that each one uses. ``"paper"``
#: keeps the paper's (the defaults); ``"fix"`` is the variant of chapter 6, Section 6.4: the
#: log-std set exactly, 20 % of each rollout held out for early stopping; ``"released-code"``
#: is what the authors' released code computes (chained fits; see the module docstring).
ESTIMATORS: dict[str, dict[str, Any]] = {
    "paper": {"log_std": "adam", "holdout": 0.0, "policy_fit": "separate"},
    "fix": {"log_std": "exact", "holdout": 0.2, "policy_fit": "separate"},
    "released-code": {"log_std": "adam", "holdout": 0.0, "policy_fit": "chained"},
}


@dataclass(frozen=True)
class DeepLfLConfig:
    """Settings of Algorithm 1 in the continuous case; defaults from Section 6.3.

    Parameters
    ----------
    alpha_model : float
        Entropy weight with which the observer models the learner (0.7).
    gamma : float
        Discount of the learner's MDP (0.99, the PPO learner's).
    entropy_bonus : float
        Weight lambda of the entropy regularizer of the policy fits (0.01).
    policy_steps, kl_steps, reward_init_steps, consistency_steps : int
        Full-batch Adam steps of the four stages (1000, 100, 3000, 1000).
    lr : float
        Adam learning rate of every stage (1e-3).
    hidden : tuple of int
        Hidden layers of the policies and of the reward (64, 64).
    shared_units : int
        Width of the tanh layer shared by the rho_k (and by the f_k) across k (128).
    log_std : {"adam", "exact"}
        How every maximum-likelihood fit (stages 1 and 3, and the observer's behaviour
        cloning in :mod:`lfl_lib.experiments.study`) sets the state-independent log-std. ``"adam"``
        (the paper's setting): a free parameter started at 0 (sigma = 1) and trained by
        Adam with the means. ``"exact"``: before the first Adam step on the mean network
        and after every step, the log-std is set to its maximiser given the current means,
        :math:`\\sigma_i^2 = \\overline{(a_i - \\mu_i(s))^2} / (1 - \\lambda)`. Not in the
        paper; see chapter 6.
    holdout : float
        Fraction in [0, 0.5) of each rollout's transitions kept out of those fits; when
        > 0 each fit keeps the parameters with the lowest held-out negative
        log-likelihood, checked every ``CHECK_EVERY`` steps (early stopping). 0 (the
        paper) fits on everything for the full step count. The held-out transitions are
        still used by stages 2 and 4.
    policy_fit : {"separate", "chained"}
        ``"separate"`` (the paper's text): stage 1 fits one network per rollout.
        ``"chained"`` (what the authors' released code computes): one network and one
        Adam optimizer are fitted to the rollouts in turn, ``policy_steps`` steps each on
        minibatches of ``policy_batch`` pairs, and every stored fit is that network's
        final state, so all fitted policies equal the last one (the released code stores
        views of the live parameters). The divergence targets are then exactly 0 and the
        consistency target is :math:`\\alpha \\ln \\hat\\pi_K`: an imitation reward.
    policy_batch : int
        Minibatch size of the chained fit (100, the released code's); unused when separate.
    kl_weight : float or None
        :math:`\\lambda \\ge 0` of the KL-regularized learner model (book chapter "What kind of
        learner?"): the consistency targets become
        :math:`(\\alpha_m+\\lambda)\\ln\\pi_{k+1}(a|s) - \\lambda\\ln\\pi_k(a|s)
        + \\gamma(\\alpha_m+\\lambda)\\rho_k(s')`, for learners that take small steps (PPO's
        clipped updates, trust regions). 0 (default) is the paper's SPI model, computed
        exactly as before the option existed. None: :math:`\\lambda` is a non-negative
        scalar (a softplus) fitted jointly with the reward and shapings by the consistency
        loss; experimental: in the tabular case the same consistency estimate is dominated
        by the noise of the estimated policies.
    terminal : {"absorbing", "bootstrap"}
        How a terminated transition enters Eq. (5). ``"absorbing"`` (default, the paper's
        reading): :math:`s'` is absorbing with value 0 and its terms are dropped.
        ``"bootstrap"``: :math:`s'` is kept as an ordinary state (its divergence and
        shaping terms stay), as at a time-limit end. Then a constant added to every target
        is absorbed exactly by the shapings (:math:`f_k \\mathrel{+}= c/(1-\\gamma)`), so the
        reward's level, which Eq. (5) cannot pin down where it depends on the learner
        model's log-density level (the units of the actions), no longer matters; pair it
        with an observer whose PPO bootstraps terminations
        (:class:`lfl_lib.ppo.PPOConfig` ``bootstrap_terminations``).
    minibatch : int
        Logs of any size. While every rollout holds at most ``minibatch`` transitions (4096;
        the study's hold 2,048), every stage takes full-batch Adam steps, as in the paper.
        Beyond, each Adam step of the four stages uses a minibatch of ``minibatch``
        transitions drawn uniformly (with replacement) from each rollout (stage 2: from each
        improvement's states), with the same step counts, so that the time of a step stays
        bounded whatever the log's size. The minibatches are drawn by a ``torch.Generator``
        seeded ``seed + 1``. Memory: the log is not copied. The standardization is computed
        in passes of ``CHUNK`` rows; each minibatch is converted to float32 when it is drawn,
        and its targets (stages 2 and 4) are computed then. Beyond the rollouts passed in,
        what is held grows with the log only by the held-out masks (one byte per transition)
        and, with ``holdout`` > 0, the training rows' indices (8 bytes per transition) and
        float32 copies of the held-out transitions (and, with ``log_std="exact"``, whose
        log-std takes every training pair at every step, of the training transitions too).
    reward_form : {"log-density", "state-term"}
        ``"log-density"`` (default, the paper's): :math:`r_\\phi(s, a) = \\ln \\pi_\\phi(a|s)`, a
        Gaussian log-density with one global sigma, whose maximum over actions is the same in
        every state. ``"state-term"``: :math:`r_\\phi(s, a) = \\ln \\pi_\\phi(a|s) + g_\\phi(s)`,
        :math:`g_\\phi` started at 0 (so stage 3 is unchanged) and fitted with the rest by Eq. (5).
        Theorem 2 says what :math:`g` carries: up to a shaping, the reward of a soft improvement
        is :math:`\\alpha \\ln \\pi_{k+1}(a|s) + \\alpha KL(\\pi_k(\\cdot|s) \\| \\pi_{k+1}(\\cdot|s))`.
    state_term : {"mlp", "quadratic"}
        The network :math:`g_\\phi` of ``reward_form="state-term"``: a tanh MLP with the
        reward's ``hidden`` layers (default), or a quadratic form of the standardized state
        (for the linear-quadratic test bed, :mod:`lfl_lib.lq`).
    learner_model : {"spi", "kl"} or None
        The learner model, named as in the tabular :func:`lfl_lib.tabular_lfl.recover_reward`:
        ``"spi"`` (the paper's) takes ``kl_weight`` 0; ``"kl"`` takes a given ``kl_weight``
        :math:`\\lambda > 0`, or, with ``kl_weight`` 0 (the default) or None, fits :math:`\\lambda`
        (as the tabular ``kl_weight=None`` estimates it). None (default): read from ``kl_weight``
        (0: ``"spi"``, otherwise ``"kl"``); the property :attr:`model` says which is in use.
        It is not stored by :meth:`to_dict` (``kl_weight`` says it).
    """

    alpha_model: float = 0.7
    gamma: float = 0.99
    entropy_bonus: float = 0.01
    policy_steps: int = 1000
    kl_steps: int = 100
    reward_init_steps: int = 3000
    consistency_steps: int = 1000
    lr: float = 1e-3
    hidden: tuple[int, ...] = (64, 64)
    shared_units: int = 128
    log_std: str = "adam"
    holdout: float = 0.0
    policy_fit: str = "separate"
    policy_batch: int = 100
    kl_weight: float | None = 0.0
    terminal: str = "absorbing"
    minibatch: int = 4096
    reward_form: str = "log-density"
    state_term: str = "mlp"
    learner_model: str | None = None

    def __post_init__(self) -> None:
        check_alpha(self.alpha_model, "alpha_model")
        check_gamma(self.gamma)
        for name in ("policy_steps", "kl_steps", "reward_init_steps", "consistency_steps", "shared_units"):
            check_positive_int(getattr(self, name), name)
        check_real(self.entropy_bonus, "entropy_bonus", minimum=0.0)
        check_real(self.lr, "lr", minimum=0.0, strict_min=True)
        if self.log_std not in ("adam", "exact"):
            raise ValueError(f"log_std must be 'adam' or 'exact'; got {self.log_std!r}")
        if not 0.0 <= float(self.holdout) < 0.5:
            raise ValueError(f"holdout must be a fraction in [0, 0.5); got {self.holdout!r}")
        object.__setattr__(self, "holdout", float(self.holdout))
        if self.policy_fit not in ("separate", "chained"):
            raise ValueError(f"policy_fit must be 'separate' or 'chained'; got {self.policy_fit!r}")
        check_positive_int(self.policy_batch, "policy_batch")
        if self.policy_fit == "chained" and (self.holdout != 0.0 or self.log_std != "adam"):
            raise ValueError("policy_fit='chained' (the released code's fit) takes holdout=0 and log_std='adam' only")
        if self.terminal not in ("absorbing", "bootstrap"):
            raise ValueError(f"terminal must be 'absorbing' or 'bootstrap'; got {self.terminal!r}")
        check_positive_int(self.minibatch, "minibatch")
        if self.reward_form not in ("log-density", "state-term"):
            raise ValueError(f"reward_form must be 'log-density' or 'state-term'; got {self.reward_form!r}")
        if self.state_term not in ("mlp", "quadratic"):
            raise ValueError(f"state_term must be 'mlp' or 'quadratic'; got {self.state_term!r}")
        if self.kl_weight is not None:
            from .inversion import check_kl_weight

            object.__setattr__(self, "kl_weight", check_kl_weight(self.kl_weight))
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        self._set_learner_model()

    def _set_learner_model(self) -> None:
        if self.learner_model not in (None, "spi", "kl"):
            raise ValueError(
                f"learner_model must be 'spi' or 'kl' (the continuous recovery has no 'svi' or 'auto'); "
                f"got {self.learner_model!r}"
            )
        if self.learner_model == "spi" and self.kl_weight != 0.0:
            raise ValueError(
                f"kl_weight applies to learner_model 'kl' only; got kl_weight={self.kl_weight!r} with "
                "learner_model='spi'"
            )
        if self.learner_model == "kl" and self.kl_weight == 0.0:
            object.__setattr__(self, "kl_weight", None)  # "kl" without a weight: lambda is fitted

    @property
    def model(self) -> str:
        """The learner model in use, ``"spi"`` or ``"kl"`` (whether or not ``learner_model`` was given)."""
        return "spi" if self.kl_weight == 0.0 else "kl"

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict.

        The options that the paper does not have (``log_std``, ``holdout``,
        ``policy_fit``, ``kl_weight``, ``terminal``) are left out while they hold the
        paper's values, so a paper configuration is stored exactly as it was before they
        existed (and older results files still match).
        """
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        del d["learner_model"]  # kl_weight says it
        if self.log_std == "adam":
            del d["log_std"]
        if self.holdout == 0.0:
            del d["holdout"]
        if self.policy_fit == "separate":  # likewise for the released code's chained fit
            del d["policy_fit"], d["policy_batch"]
        if self.kl_weight == 0.0:
            del d["kl_weight"]
        if self.terminal == "absorbing":
            del d["terminal"]
        if self.minibatch == 4096:
            del d["minibatch"]
        if self.reward_form == "log-density":
            del d["reward_form"], d["state_term"]
        return d


class Standardizer(nn.Module):
    """Fixed affine map s -> (s - mean) / std, stored as buffers (saved with the model)."""

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(self, mean: NDArray[np.float64], std: NDArray[np.float64]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(np.maximum(std, 1e-6), dtype=torch.float32))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return (s - self.mean) / self.std


class QuadraticStateTerm(nn.Module):
    """:math:`g(z) = z^\\top U z + b^\\top z` of a (standardized) state z, started at 0."""

    def __init__(self, obs_dim: int) -> None:
        super().__init__()
        self.U = nn.Parameter(torch.zeros(obs_dim, obs_dim))
        self.b = nn.Parameter(torch.zeros(obs_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ni,ij,nj->n", z, self.U, z) + z @ self.b


class MLPStateTerm(nn.Module):
    """:math:`g(z)`: a tanh MLP of a (standardized) state with a zero output layer, so g = 0 at the start."""

    def __init__(self, obs_dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        n = obs_dim
        for h in hidden:
            layers += [nn.Linear(n, h), nn.Tanh()]
            n = h
        out = nn.Linear(n, 1)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        self.net = nn.Sequential(*layers, out)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(-1)


class RewardModel(nn.Module):
    """The recovered reward :math:`r_\\phi(s, a) = \\ln \\pi_\\phi(a|s)` (+ :math:`g_\\phi(s)`) on raw states.

    Called as a module on tensors (``reward(s, a)``); :meth:`reward_fn` does the same on
    numpy batches (``reward.reward_fn(obs, actions)``). With ``n_actions``, :math:`\\pi_\\phi`
    is categorical over that many discrete actions (``act_dim`` is then 1 and actions are
    integers); otherwise Gaussian.
    ``state_term`` (None, ``"mlp"`` or ``"quadratic"``) adds the state term of
    :class:`DeepLfLConfig` ``reward_form="state-term"``; with None (default) the model is the
    paper's log-density.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        mean: NDArray[np.float64],
        std: NDArray[np.float64],
        hidden: tuple[int, ...] = (64, 64),
        state_term: str | None = None,
        n_actions: int | None = None,
    ) -> None:
        super().__init__()
        self.norm = Standardizer(mean, std)
        self.n_actions = None if n_actions is None else int(n_actions)
        self.policy: Policy = (
            GaussianActor(obs_dim, act_dim, hidden)
            if n_actions is None
            else CategoricalActor(obs_dim, int(n_actions), hidden)
        )
        self.state_term = state_term
        if state_term == "mlp":
            self.g: nn.Module | None = MLPStateTerm(obs_dim, hidden)
        elif state_term == "quadratic":
            self.g = QuadraticStateTerm(obs_dim)
        elif state_term is None:
            self.g = None
        else:
            raise ValueError(f"state_term must be None, 'mlp' or 'quadratic'; got {state_term!r}")

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        z = self.norm(s)
        out = self.policy.log_prob(z, a)
        return out if self.g is None else out + self.g(z)

    def state_value(self, s: torch.Tensor) -> torch.Tensor:
        """:math:`g_\\phi(s)` on raw states (zeros for the log-density form); shape (n,)."""
        z = self.norm(s)
        return torch.zeros(len(s)) if self.g is None else self.g(z)

    @torch.no_grad()
    def reward_fn(self, obs: NDArray[np.float64], actions: NDArray[np.float64]) -> NDArray[np.float64]:
        """r_phi on numpy batches, shape (n,): the ``reward_fn`` given to :class:`lfl_lib.ppo.PPO`."""
        s = torch.as_tensor(obs, dtype=torch.float32)
        a = torch.as_tensor(np.asarray(actions), dtype=torch.float32 if self.n_actions is None else torch.long)
        return self.forward(s, a).numpy().astype(np.float64)


class SharedHeads(nn.Module):
    """g(s) in R^{K-1}: one tanh layer of ``units`` shared across k, one linear output per k."""

    def __init__(
        self, obs_dim: int, n_heads: int, mean: NDArray[np.float64], std: NDArray[np.float64], units: int = 128
    ) -> None:
        super().__init__()
        self.norm = Standardizer(mean, std)
        self.net = nn.Sequential(nn.Linear(obs_dim, units), nn.Tanh(), nn.Linear(units, n_heads))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(s))


def gaussian_kl(p: GaussianActor, q: GaussianActor, s: torch.Tensor) -> torch.Tensor:
    """Closed-form :math:`KL(p(\\cdot|s) \\| q(\\cdot|s))` of two diagonal Gaussian policies; shape (n,)."""
    return torch.distributions.kl_divergence(p.dist(s), q.dist(s)).sum(-1)


def policy_kl(
    p: GaussianActor | CategoricalActor, q: GaussianActor | CategoricalActor, s: torch.Tensor
) -> torch.Tensor:
    """Closed-form :math:`KL(p(\\cdot|s) \\| q(\\cdot|s))` of two Gaussian or two categorical policies; shape (n,)."""
    if isinstance(p, CategoricalActor) and isinstance(q, CategoricalActor):
        return categorical_kl(p, q, s)
    return gaussian_kl(cast(GaussianActor, p), cast(GaussianActor, q), s)


def _entropy(m: Policy, x: torch.Tensor) -> torch.Tensor:
    """The entropy bonus's term: the Gaussian's (state-independent), or the categorical's mean over ``x``."""
    return m.entropy(x).mean() if isinstance(m, CategoricalActor) else m.entropy()


def live_mask(rollout: Rollout) -> torch.Tensor:
    """1 where :math:`s'` is not terminal, 0 after a termination (truncations stay 1); shape (T,)."""
    return _t(1.0 - rollout.terminations.astype(np.float64))


def divergence_targets(
    policies: Sequence[Policy],
    norm: Callable[[torch.Tensor], torch.Tensor],
    states: Sequence[torch.Tensor],
) -> list[torch.Tensor]:
    r"""Targets of stage 2: :math:`KL(\hat\pi_k(\cdot|s) \| \hat\pi_{k+1}(\cdot|s))` at ``states[k]``, k = 0..K-2.

    ``norm`` maps raw states to the policies' standardized inputs.
    """
    return [policy_kl(policies[k], policies[k + 1], norm(x)) for k, x in enumerate(states)]


def consistency_targets(
    policies: Sequence[Policy],
    rho: Callable[[torch.Tensor], torch.Tensor],
    norm: Callable[[torch.Tensor], torch.Tensor],
    S: Sequence[torch.Tensor],
    A: Sequence[torch.Tensor],
    S2: Sequence[torch.Tensor],
    live: Sequence[torch.Tensor],
    alpha: float,
    gamma: float,
) -> list[torch.Tensor]:
    r"""The sampled targets of Eq. (5): :math:`r_k = \alpha \ln \hat\pi_{k+1}(a|s) + \alpha\gamma\rho_k(s')`.

    One tensor per improvement k = 0..K-2, over the transitions :math:`(s, a, s')` of
    :math:`D_{k+1}` (``S[k+1]``, ``A[k+1]``, ``S2[k+1]``). ``rho(s')`` has one column per
    k; the divergence term is multiplied by ``live[k+1]`` (:func:`live_mask`), so it is
    dropped where :math:`s'` is terminal. Theorem 2 with the estimated quantities.
    """
    return [
        _consistency_target(policies[k + 1], rho, k, norm, S[k + 1], A[k + 1], S2[k + 1], live[k + 1], alpha, gamma)
        for k in range(len(policies) - 1)
    ]


def _consistency_target(
    policy: Policy,
    rho: Callable[[torch.Tensor], torch.Tensor],
    k: int,
    norm: Callable[[torch.Tensor], torch.Tensor],
    s: torch.Tensor,
    a: torch.Tensor,
    s2: torch.Tensor,
    live: torch.Tensor,
    alpha: float,
    gamma: float,
) -> torch.Tensor:
    """Improvement k's target of :func:`consistency_targets` on the rows of ``s, a, s2, live`` (any rows of D_{k+1})."""
    return alpha * policy.log_prob(norm(s), a) + alpha * gamma * live * rho(s2)[:, k]


def kl_direction_targets(
    policies: Sequence[Policy],
    rho: Callable[[torch.Tensor], torch.Tensor],
    norm: Callable[[torch.Tensor], torch.Tensor],
    S: Sequence[torch.Tensor],
    A: Sequence[torch.Tensor],
    S2: Sequence[torch.Tensor],
    live: Sequence[torch.Tensor],
    gamma: float,
) -> list[torch.Tensor]:
    r"""The direction :math:`b_k` of the KL-regularized targets :math:`a_k + \lambda b_k`.

    :math:`b_k = \ln \hat\pi_{k+1}(a|s) - \ln \hat\pi_k(a|s) + \gamma\rho_k(s')` over the
    transitions of :math:`D_{k+1}`, the divergence term dropped where :math:`s'` is terminal;
    :math:`a_k` is :func:`consistency_targets`. The KL-regularized learner's identity
    (book chapter "What kind of learner?") with the estimated quantities.
    """
    return [
        _kl_direction_target(
            policies[k], policies[k + 1], rho, k, norm, S[k + 1], A[k + 1], S2[k + 1], live[k + 1], gamma
        )
        for k in range(len(policies) - 1)
    ]


def _kl_direction_target(
    policy: Policy,
    policy_next: Policy,
    rho: Callable[[torch.Tensor], torch.Tensor],
    k: int,
    norm: Callable[[torch.Tensor], torch.Tensor],
    s: torch.Tensor,
    a: torch.Tensor,
    s2: torch.Tensor,
    live: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """Improvement k's direction of :func:`kl_direction_targets` on the rows of ``s, a, s2, live`` (any rows of D_{k+1})."""
    return policy_next.log_prob(norm(s), a) - policy.log_prob(norm(s), a) + gamma * live * rho(s2)[:, k]


def consistency_residual(
    target: torch.Tensor,
    reward: torch.Tensor,
    f_s: torch.Tensor,
    f_next: torch.Tensor,
    live: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    r"""The residual of Eq. (5): :math:`r_k - r_\phi(s, a) + f_k(s) - \gamma f_k(s')`, the last term dropped where s' is terminal."""
    sh = f_s - gamma * live * f_next
    return target - reward + sh


#: Rows per pass when the standardization of a large log is computed (bounded memory).
CHUNK = 65536


def _moments(arrays: Sequence[NDArray[np.float64]]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and standard deviation over the rows of ``arrays`` one after the other, in passes of ``CHUNK`` rows.

    The same numbers as ``np.concatenate(arrays).mean(0)`` and ``.std(0)``, without a copy of
    the whole log: numpy sums a C-ordered array of several columns over its first axis row
    after row, and each pass continues that sum from the previous pass's partial sum, so the
    numbers agree bit for bit. With a single column numpy sums pairwise instead, and the two
    may differ in the last bit of the float64 (not, in practice, in the float32 standardizer).
    """

    def square(x: NDArray[np.float64]) -> NDArray[np.float64]:
        dev = x - mean
        return dev * dev

    def total(f: Callable[[NDArray[np.float64]], NDArray[np.float64]]) -> NDArray[np.float64]:
        acc = np.zeros(arrays[0].shape[1])
        for x in arrays:
            for j in range(0, len(x), CHUNK):
                acc = np.add.reduce(np.concatenate([acc[None], f(x[j : j + CHUNK])]), axis=0)
        return acc

    n = sum(len(x) for x in arrays)
    mean = total(lambda x: x) / n
    return mean, np.sqrt(total(square) / n)


class _Rows:
    """The rows of numpy arrays taken one after the other, converted to a tensor only when drawn.

    ``rows[idx]`` (a LongTensor of row numbers, or a boolean mask) is the tensor of those rows
    as ``torch.as_tensor(np.concatenate(parts)[idx], dtype)``, passed through ``transform``;
    ``len(rows)`` is the total number of rows. It stands for that whole tensor in the minibatch
    steps of a large log, so that no float32 copy (or concatenation) of the log is held.
    ``select``, if given, keeps only those rows (in that order): :meth:`subset`.
    """

    def __init__(
        self,
        parts: Sequence[NDArray[Any]],
        dtype: torch.dtype = torch.float32,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        select: NDArray[np.int64] | None = None,
    ) -> None:
        self.parts = list(parts)
        self.offsets = np.cumsum([0] + [len(x) for x in self.parts])
        self.dtype = dtype
        self.transform = transform
        self.select = select

    def __len__(self) -> int:
        return int(self.offsets[-1]) if self.select is None else len(self.select)

    def subset(self, mask: torch.Tensor) -> "_Rows":
        """The rows where the boolean ``mask`` is True, still not copied (``rows.subset(m)[i] == rows[m][i]``)."""
        keep = np.flatnonzero(mask.numpy())
        return _Rows(self.parts, self.dtype, self.transform, keep if self.select is None else self.select[keep])

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        i = idx.numpy()
        if i.dtype == np.bool_:
            i = np.flatnonzero(i)
        if self.select is not None:
            i = self.select[i]
        if len(self.parts) == 1:
            rows = self.parts[0][i]
        else:
            part = np.searchsorted(self.offsets, i, side="right") - 1
            rows = np.empty((len(i),) + self.parts[0].shape[1:], dtype=self.parts[0].dtype)
            for p, x in enumerate(self.parts):
                at = part == p
                rows[at] = x[i[at] - self.offsets[p]]
        out = (
            torch.as_tensor(np.asarray(rows, dtype=np.float32))
            if self.dtype == torch.float32
            else torch.as_tensor(rows, dtype=self.dtype)
        )
        return out if self.transform is None else self.transform(out)

    def all(self) -> torch.Tensor:
        """Every row (a full copy)."""
        return self[torch.arange(len(self))]


def _subset(x: "torch.Tensor | _Rows", mask: torch.Tensor) -> "Any":
    """The rows of ``x`` where ``mask`` is True: a tensor's (a copy), or a :class:`_Rows`'s (not copied)."""
    return x.subset(mask) if isinstance(x, _Rows) else x[mask]


def _whole(x: "torch.Tensor | _Rows") -> torch.Tensor:
    """``x`` as a tensor: every row of a :class:`_Rows` (a full copy), a tensor as it is."""
    return x.all() if isinstance(x, _Rows) else x


def _t(x: NDArray[Any]) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


def _copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state.items()}


Progress = Callable[[str, int], None]


def holdout_seed(seed: int, k: int) -> int:
    """Seed of the held-out split of the k-th rollout (0-based) of a recovery seeded ``seed``."""
    return int(seed) * 1_000 + int(k)


def holdout_mask(n: int, fraction: float, seed: int) -> NDArray[np.bool_]:
    """Boolean mask of the ``round(fraction * n)`` held-out transitions of a rollout of ``n``.

    Drawn with ``numpy.random.default_rng(seed)``; all False when ``fraction`` is 0.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1); got {fraction!r}")
    mask = np.zeros(n, dtype=bool)
    n_out = int(round(fraction * n))
    if n_out > 0:
        if n_out >= n:
            raise ValueError(f"holdout leaves no transition to fit: fraction {fraction} of {n}")
        mask[np.random.default_rng(seed).choice(n, size=n_out, replace=False)] = True
    return mask


def fit_gaussian_policies(
    models: Sequence[Policy],
    obs: Sequence[torch.Tensor],
    actions: Sequence[torch.Tensor],
    steps: int,
    lr: float,
    entropy_bonus: float = 0.0,
    held_out: Sequence[NDArray[np.bool_]] | None = None,
    log_std: str = "adam",
    progress: Callable[[int], None] | None = None,
    batch: int | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Maximum likelihood with an entropy bonus (Section 5.2), one Gaussian (or categorical) policy per dataset.

    Minimises :math:`\\sum_k -\\big(\\frac{1}{n_k}\\sum_{(s,a)} \\ln \\pi_k(a|s) + \\lambda
    \\mathcal H(\\pi_k)\\big)` by full-batch Adam, the models updated together (Adam's step is
    per parameter, so this is the same as fitting them one by one).

    Parameters
    ----------
    models : sequence of GaussianActor or CategoricalActor
        Fitted in place. A categorical policy's entropy is averaged over its data's states.
    obs, actions : sequence of Tensor
        The (already standardized) states and the actions of each model's data.
    steps, lr, entropy_bonus : int, float, float
        Adam steps, learning rate and the weight lambda of the entropy bonus.
    held_out : sequence of bool arrays, optional
        Per model, the transitions kept out of the fit. When any is given, each model
        ends with the parameters of its lowest held-out negative log-likelihood, checked
        every ``CHECK_EVERY`` steps and after the last one.
    log_std : {"adam", "exact"}
        ``"adam"``: the log-std is trained by Adam with the means. ``"exact"``: it is kept
        out of Adam and set, before the first step and after every step, to its maximiser
        given the current means, :math:`\\ln\\sigma_i = \\frac12 \\ln\\big(\\overline{(a_i -
        \\mu_i(s))^2} / (1 - \\lambda)\\big)`.
    progress : callable, optional
        ``progress(n_steps_done)``.
    batch, generator : optional
        With ``batch``, each Adam step uses ``batch`` pairs of each dataset drawn uniformly
        with replacement by ``generator`` (:class:`DeepLfLConfig` ``minibatch``); without it,
        full batches.

    Returns
    -------
    dict
        ``nll``: the final training loss divided by the number of models; with held-out
        data also ``stop_step``: the mean step at which the kept parameters were reached.
    """
    if not (len(models) == len(obs) == len(actions)):
        raise ValueError("models, obs and actions must have the same length")
    steps = check_positive_int(steps, "steps", minimum=0)
    lr = check_real(lr, "lr", minimum=0.0, strict_min=True)
    entropy_bonus = check_real(entropy_bonus, "entropy_bonus", minimum=0.0)
    if log_std not in ("adam", "exact"):
        raise ValueError(f"log_std must be 'adam' or 'exact'; got {log_std!r}")
    exact = log_std == "exact"
    if exact and any(isinstance(m, CategoricalActor) for m in models):
        raise ValueError("log_std='exact' is for Gaussian policies; a categorical policy has no log-std")
    if exact and not 0.0 <= entropy_bonus < 1.0:
        raise ValueError(
            f"entropy_bonus must be in [0, 1) for log_std='exact' (no maximiser otherwise); got {entropy_bonus!r}"
        )
    masks = list(held_out) if held_out is not None else [np.zeros(len(x), dtype=bool) for x in obs]
    stop = _EarlyStop(models, obs, actions, masks)
    X, Y = stop.train_obs, stop.train_actions
    if exact:  # the exact log-std takes every training pair at every step
        X, Y = [_whole(x) for x in X], [_whole(y) for y in Y]
    params = [q for m in models for q in (cast(GaussianActor, m).mean.parameters() if exact else m.parameters())]
    opt = torch.optim.Adam(params, lr=lr)
    if exact:
        _set_exact_log_std(
            cast("Sequence[GaussianActor]", models), X, Y, entropy_bonus
        )  # Gaussian only (checked above)
    stop.check(0)
    loss = torch.zeros(())
    for i in range(steps):
        if batch is None:
            nll = [-(m.log_prob(x, y).mean() + entropy_bonus * _entropy(m, x)) for m, x, y in zip(models, X, Y)]
        else:
            nll = []
            for m, x, y in zip(models, X, Y):
                idx = torch.randint(len(x), (batch,), generator=generator)
                nll.append(-(m.log_prob(x[idx], y[idx]).mean() + entropy_bonus * _entropy(m, x[idx])))
        loss = torch.stack(nll).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if exact:
            _set_exact_log_std(cast("Sequence[GaussianActor]", models), X, Y, entropy_bonus)
        if (i + 1) % CHECK_EVERY == 0 or i + 1 == steps:
            stop.check(i + 1)
        if progress is not None:
            progress(i + 1)
    return {"nll": float(loss.detach()) / len(models), **stop.restore()}


def _set_exact_log_std(
    models: Sequence[GaussianActor], X: Sequence[torch.Tensor], Y: Sequence[torch.Tensor], entropy_bonus: float
) -> None:
    """Set each log-std to its maximiser given the current means (``log_std="exact"``)."""
    # d/d ln(sigma) of -(mean ln pi + lambda H) vanishes at sigma^2 = mean residual^2 / (1 - lambda)
    with torch.no_grad():
        for m, x, y in zip(models, X, Y):
            res2 = ((y - m.mean(x)) ** 2).mean(0)
            m.log_std.copy_(0.5 * (res2 / (1.0 - entropy_bonus)).clamp_min(1e-12).log())


class _EarlyStop:
    """The held-out split of :func:`fit_gaussian_policies` and the best parameters seen on it.

    Without held-out transitions (every mask False) the training data are the whole data
    and :meth:`check` and :meth:`restore` do nothing.
    """

    def __init__(
        self,
        models: Sequence[Policy],
        obs: Sequence[torch.Tensor],
        actions: Sequence[torch.Tensor],
        masks: Sequence[NDArray[np.bool_]],
    ) -> None:
        self.models = models
        self.early = any(m.any() for m in masks)
        train = [torch.as_tensor(~m) for m in masks]
        # a large log's rows (_Rows) stay uncopied: only the held-out rows are converted
        self.train_obs = [_subset(x, t) if self.early else x for x, t in zip(obs, train)]
        self.train_actions = [_subset(a, t) if self.early else a for a, t in zip(actions, train)]
        self.val_obs = [x[~t] for x, t in zip(obs, train)]
        self.val_actions = [a[~t] for a, t in zip(actions, train)]
        n = len(models)
        self.best = [float("inf")] * n
        self.best_state: list[dict[str, torch.Tensor]] = [{} for _ in range(n)]
        self.best_step = [0] * n

    def check(self, step: int) -> None:
        """Keep each model's parameters if its held-out negative log-likelihood is the lowest yet."""
        if not self.early:
            return
        with torch.no_grad():
            for k, (m, x, y) in enumerate(zip(self.models, self.val_obs, self.val_actions)):
                v = float(-m.log_prob(x, y).mean()) if len(x) else float("inf")
                if v < self.best[k]:
                    self.best[k], self.best_step[k], self.best_state[k] = v, step, _copy(m.state_dict())

    def restore(self) -> dict[str, float]:
        """Load the kept parameters; ``{"stop_step": mean step reached}`` (empty without held-out data)."""
        if not self.early:
            return {}
        for m, sd in zip(self.models, self.best_state):
            if sd:
                m.load_state_dict(sd)
        return {"stop_step": float(np.mean(self.best_step))}


def fit_chained_policy(
    model: Policy,
    obs: Sequence[torch.Tensor],
    actions: Sequence[torch.Tensor],
    steps: int,
    lr: float,
    entropy_bonus: float,
    batch: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """The released code's policy fits: one network fitted to the datasets in turn.

    One Adam optimizer minimises :math:`-\\big(\\frac1b\\sum \\ln\\pi(a|s) + \\lambda\\mathcal
    H(\\pi)\\big)` on minibatches of ``batch`` pairs drawn uniformly (with replacement,
    ``torch.Generator`` seeded ``seed``) from dataset 1 for ``steps`` steps, then from
    dataset 2, and so on; the optimizer's moments carry over. What the released code stores
    for each dataset is a view of this network's parameters, so every "fitted policy" is
    the final state, i.e. a fit of the last dataset started from the fits before it.

    Parameters
    ----------
    model : GaussianActor
        Fitted in place.
    obs, actions : sequence of Tensor
        The (already standardized) states and the actions of each dataset, in order.
    steps, lr, entropy_bonus, batch, seed
        Adam steps per dataset, learning rate, entropy weight lambda, minibatch size, seed.
    progress : callable, optional
        ``progress(n)`` with n rising to ``steps`` over the whole chain.

    Returns
    -------
    dict
        ``nll``: the loss of the last minibatch.
    """
    if len(obs) != len(actions) or not obs:
        raise ValueError("obs and actions must be non-empty sequences of the same length")
    gen = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    K = len(obs)
    loss = torch.zeros(())
    for k, (x, y) in enumerate(zip(obs, actions)):
        for i in range(steps):
            idx = torch.randint(len(x), (batch,), generator=gen)
            loss = -(model.log_prob(x[idx], y[idx]).mean() + entropy_bonus * _entropy(model, x[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if progress is not None:
                progress((k * steps + i + 1) // K)
    return {"nll": float(loss.detach())}


def as_config(config: "DeepLfLConfig | dict[str, Any] | None", name: str = "config") -> "DeepLfLConfig":
    """A :class:`DeepLfLConfig` from itself, a dict of its fields, or None (the defaults)."""
    if config is None:
        return DeepLfLConfig()
    if isinstance(config, DeepLfLConfig):
        return config
    if isinstance(config, dict):
        fields = set(DeepLfLConfig.__dataclass_fields__)
        unknown = sorted(set(config) - fields)
        if unknown:
            raise ValueError(f"{name} has unknown keys {unknown}; DeepLfLConfig fields: {sorted(fields)}")
        try:
            return DeepLfLConfig(**config)
        except TypeError as exc:
            raise ValueError(f"{name}: {exc}") from exc
    raise ValueError(f"{name} must be a DeepLfLConfig or a dict of its fields; got {type(config).__name__}")


def recover_reward(
    rollouts: Sequence[Rollout],
    config: DeepLfLConfig | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    state: dict[str, Any] | None = None,
    checkpoint: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[RewardModel, dict[str, Any]]:
    """Algorithm 1 on the rollouts ``D_1..D_K`` (K >= 2) of an improving learner.

    Parameters
    ----------
    rollouts : list of lfl_lib.data.Rollout
        One :class:`lfl_lib.data.Rollout` per observed policy, in the order of the
        learner's updates (at least two). A terminal next state is absorbing with value 0.
        Rollouts with discrete actions (``action_space=Discrete(n)``) get categorical
        policies and a categorical :math:`\\pi_\\phi`.
    config : DeepLfLConfig or dict, optional
        The settings (a dict of :class:`DeepLfLConfig` fields is accepted).
    seed : int
        Seeds the initialisation of every network.
    progress : callable, optional
        ``progress(stage, n_steps_done)``, called as gradient steps complete.
    state, checkpoint : optional
        Resume support: ``checkpoint(state)`` is called after each of the four stages
        with everything computed so far; passing that ``state`` back skips the finished
        stages.

    Returns
    -------
    reward : RewardModel
        :math:`r_\\phi`: ``reward(s, a)`` on tensors of raw states and actions, and
        ``reward.reward_fn(obs, actions)`` on numpy batches.
    info : dict
        Final losses of each stage (``policy_nll``, ``kl_mse``, ``bc_nll``, ``consistency``).
    """
    cfg = as_config(config)
    rollouts = check_rollouts(rollouts, "rollouts")
    seed = check_positive_int(seed, "seed", minimum=0)
    d = _prepare_data(rollouts, cfg, seed)
    st: dict[str, Any] = dict(state or {})
    info: dict[str, Any] = dict(st.get("info", {}))
    tick = progress or (lambda stage, n: None)

    def save() -> None:
        st["info"] = dict(info)
        if checkpoint is not None:
            checkpoint(dict(st))

    policies, rho, shaping, reward = _networks(d, cfg, seed)
    # 1. policies pi_theta_k by maximum likelihood with an entropy bonus (Section 5.2)
    if "policies" in st:
        for p, sd in zip(policies, st["policies"]):
            p.load_state_dict(sd)
    else:
        info.update(_fit_policies(d, cfg, policies, seed, tick))
        st["policies"] = [_copy(p.state_dict()) for p in policies]
        save()
    for p in policies:
        p.requires_grad_(False)
    # 2. divergences rho_k(s) ~ KL(pi_k(.|s) || pi_{k+1}(.|s)) (Section 5.2)
    if "rho" in st:
        rho.load_state_dict(st["rho"])
    else:
        info["kl_mse"] = _fit_divergences(d, cfg, policies, rho, tick)
        st["rho"] = _copy(rho.state_dict())
        save()
    rho.requires_grad_(False)
    # 3. reward initialisation r_phi = ln pi_phi by behaviour cloning of D_K (Section 5.4)
    if "reward_init" in st:
        reward.load_state_dict(st["reward_init"])
    else:
        info.update(_init_reward(d, cfg, reward, tick))
        st["reward_init"] = _copy(reward.state_dict())
        save()
    # 4. consistency loss of Eq. (5) over phi and the shapings psi_k
    if "reward" in st:
        reward.load_state_dict(st["reward"])
        shaping.load_state_dict(st["shaping"])
    else:
        info.update(_fit_consistency(d, cfg, policies, rho, reward, shaping, tick))
        st["reward"] = _copy(reward.state_dict())
        st["shaping"] = _copy(shaping.state_dict())
        save()
    reward.requires_grad_(False)
    return reward, info


@dataclass
class _Data:
    """The rollouts as tensors, with what every stage of :func:`recover_reward` shares.

    A large log (``mb`` set) is not copied: ``S``, ``A``, ``S2`` and ``live`` are then empty,
    and the stages draw their minibatches from ``rollouts`` (:meth:`rows`).
    """

    rollouts: list[Rollout]
    S: list[torch.Tensor]  # states of each D_k (full batches only)
    A: list[torch.Tensor]  # actions (long for discrete actions)
    S2: list[torch.Tensor]  # next states
    live: list[torch.Tensor]  # 0 where s' is absorbing
    absorbing: bool  # config.terminal == "absorbing"
    held: list[NDArray[np.bool_]]  # held-out transitions of the maximum-likelihood fits
    mean: NDArray[np.float64]  # of all observed states
    std: NDArray[np.float64]
    norm: Standardizer
    obs_dim: int
    act_dim: int
    n_actions: int | None
    mb: int | None  # the minibatch size of every stage once a rollout exceeds one batch, else None
    gen: torch.Generator | None  # draws those minibatches

    @property
    def K(self) -> int:
        return len(self.rollouts)

    @property
    def big(self) -> bool:
        return self.mb is not None

    def rows(self, k: int, j: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The transitions ``j`` of D_k as tensors: states, actions, next states and the live mask."""
        r = self.rollouts[k]
        i = j.numpy()
        a = _t(r.actions[i]) if self.n_actions is None else torch.as_tensor(r.actions[i], dtype=torch.long)
        live = _t(1.0 - r.terminations[i].astype(np.float64)) if self.absorbing else torch.ones(len(i))
        return _t(r.observations[i]), a, _t(r.next_observations[i]), live

    def states(self, k: int, transform: Callable[[torch.Tensor], torch.Tensor]) -> tuple[Any, Any]:
        """The states of D_k through ``transform``, and its actions.

        Tensors, or for a large log :class:`_Rows` (which the minibatch fits index as tensors).
        """
        if not self.big:
            with torch.no_grad():
                return transform(self.S[k]), self.A[k]
        r = self.rollouts[k]
        return (
            _Rows([r.observations], transform=transform),
            _Rows([r.actions], torch.float32 if self.n_actions is None else torch.long),
        )


def _prepare_data(rollouts: Sequence[Rollout], cfg: DeepLfLConfig, seed: int) -> _Data:
    """The tensors, masks, standardization and minibatch draws of a recovery."""
    n_actions = rollouts[0].n_actions
    if n_actions is not None and cfg.log_std == "exact":
        raise ValueError(
            "config.log_std='exact' is for continuous actions; discrete actions have categorical "
            "policies (use log_std='adam', the default)"
        )
    # logs of any size: minibatches once a rollout exceeds one batch (the paper's full batches below)
    big = max(len(r) for r in rollouts) > cfg.minibatch
    absorbing = cfg.terminal == "absorbing"
    if big:  # no copy of the log: the same numbers in passes, the minibatches converted as they are drawn
        mean, std = _moments([x for r in rollouts for x in (r.observations, r.next_observations)])
        return _Data(
            rollouts=list(rollouts),
            S=[],
            A=[],
            S2=[],
            live=[],
            absorbing=absorbing,
            held=[holdout_mask(len(r.actions), cfg.holdout, holdout_seed(seed, k)) for k, r in enumerate(rollouts)],
            mean=mean,
            std=std,
            norm=Standardizer(mean, std),
            obs_dim=rollouts[0].observations.shape[1],
            act_dim=rollouts[0].act_dim,
            n_actions=n_actions,
            mb=cfg.minibatch,
            gen=torch.Generator().manual_seed(seed + 1),
        )
    all_s = np.concatenate([np.concatenate([r.observations, r.next_observations]) for r in rollouts])
    mean, std = all_s.mean(0), all_s.std(0)
    # "bootstrap": a terminated s' is an ordinary state (its terms stay), as at a truncation
    live = [live_mask(r) if absorbing else torch.ones(len(r.actions)) for r in rollouts]
    return _Data(
        rollouts=list(rollouts),
        S=[_t(r.observations) for r in rollouts],
        A=[_t(r.actions) if n_actions is None else torch.as_tensor(r.actions, dtype=torch.long) for r in rollouts],
        S2=[_t(r.next_observations) for r in rollouts],
        live=live,
        absorbing=absorbing,
        held=[holdout_mask(len(r.actions), cfg.holdout, holdout_seed(seed, k)) for k, r in enumerate(rollouts)],
        mean=mean,
        std=std,
        norm=Standardizer(mean, std),
        obs_dim=rollouts[0].observations.shape[1],
        act_dim=rollouts[0].act_dim,
        n_actions=n_actions,
        mb=None,
        gen=None,
    )


def _networks(d: _Data, cfg: DeepLfLConfig, seed: int) -> tuple[list[Policy], SharedHeads, SharedHeads, RewardModel]:
    """The K policies, the divergences rho, the shapings f and the reward, initialised from ``seed``."""
    torch.manual_seed(seed)
    policies: list[Policy] = [
        GaussianActor(d.obs_dim, d.act_dim, cfg.hidden)
        if d.n_actions is None
        else CategoricalActor(d.obs_dim, d.n_actions, cfg.hidden)
        for _ in range(d.K)
    ]
    rho = SharedHeads(d.obs_dim, d.K - 1, d.mean, d.std, cfg.shared_units)
    shaping = SharedHeads(d.obs_dim, d.K - 1, d.mean, d.std, cfg.shared_units)
    # the state term (if any) is built last, so every other network starts as without it
    reward = RewardModel(
        d.obs_dim,
        d.act_dim,
        d.mean,
        d.std,
        cfg.hidden,
        cfg.state_term if cfg.reward_form == "state-term" else None,
        d.n_actions,
    )
    return policies, rho, shaping, reward


def _fit_info(fit: dict[str, float], nll: str, stop: str) -> dict[str, float]:
    """A fit's final loss (and its early-stopping step, if any) under the names of ``info``."""
    return {nll: fit["nll"], **({stop: fit["stop_step"]} if "stop_step" in fit else {})}


def _fit_policies(d: _Data, cfg: DeepLfLConfig, policies: list[Policy], seed: int, tick: Progress) -> dict[str, float]:
    """Stage 1: the policies pi_theta_k, fitted in place (Section 5.2); their losses."""
    NS, A = [], []
    for k in range(d.K):
        s, a = d.states(k, d.norm)
        NS.append(s)
        A.append(a)
    if cfg.policy_fit == "chained":  # the released code: all K fits end equal to the last
        fit = fit_chained_policy(
            policies[-1],
            NS,
            A,
            cfg.policy_steps,
            cfg.lr,
            cfg.entropy_bonus,
            cfg.policy_batch,
            seed,
            lambda n: tick("policies", n),
        )
        for p in policies[:-1]:
            p.load_state_dict(policies[-1].state_dict())
    else:
        fit = fit_gaussian_policies(
            policies,
            NS,
            A,
            cfg.policy_steps,
            cfg.lr,
            cfg.entropy_bonus,
            d.held,
            cfg.log_std,
            lambda n: tick("policies", n),
            d.mb,
            d.gen,
        )
    return _fit_info(fit, "policy_nll", "policy_stop_step")


def _fit_divergences(d: _Data, cfg: DeepLfLConfig, policies: list[Policy], rho: SharedHeads, tick: Progress) -> float:
    """Stage 2: regress rho_k on the closed-form KL at the states of D_k and D_{k+1}; the final MSE per k."""
    S, S2, K, mb, gen = d.S, d.S2, d.K, d.mb, d.gen
    if not d.big:
        with torch.no_grad():
            Xk = [torch.cat([S[k], S2[k], S[k + 1], S2[k + 1]]) for k in range(K - 1)]
            Yk = divergence_targets(policies, d.norm, Xk)
    else:  # the same states, drawn from the rollouts, their targets computed per minibatch
        R = d.rollouts
        Rk = [
            _Rows([R[k].observations, R[k].next_observations, R[k + 1].observations, R[k + 1].next_observations])
            for k in range(K - 1)
        ]
    opt = torch.optim.Adam(rho.parameters(), lr=cfg.lr)
    loss = torch.zeros(())
    for i in range(cfg.kl_steps):
        if not d.big:
            loss = torch.stack([((rho(x)[:, k] - y) ** 2).mean() for k, (x, y) in enumerate(zip(Xk, Yk))]).sum()
        else:
            terms = []
            for k, rows in enumerate(Rk):
                x = rows[torch.randint(len(rows), (cast(int, mb),), generator=gen)]
                with torch.no_grad():
                    y = policy_kl(policies[k], policies[k + 1], d.norm(x))
                terms.append(((rho(x)[:, k] - y) ** 2).mean())
            loss = torch.stack(terms).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        tick("divergences", i + 1)
    return float(loss.detach()) / (K - 1)


def _init_reward(d: _Data, cfg: DeepLfLConfig, reward: RewardModel, tick: Progress) -> dict[str, float]:
    """Stage 3: r_phi = ln pi_phi by behaviour cloning of D_K (Section 5.4), in place; its losses."""
    last_s, last_a = d.states(d.K - 1, reward.norm)
    fit = fit_gaussian_policies(
        [reward.policy],
        [last_s],
        [last_a],
        cfg.reward_init_steps,
        cfg.lr,
        0.0,
        [d.held[-1]],
        cfg.log_std,
        lambda n: tick("reward init", n),
        d.mb,
        d.gen,
    )
    return _fit_info(fit, "bc_nll", "bc_stop_step")


def _fit_consistency(
    d: _Data,
    cfg: DeepLfLConfig,
    policies: list[Policy],
    rho: SharedHeads,
    reward: RewardModel,
    shaping: SharedHeads,
    tick: Progress,
) -> dict[str, float]:
    """Stage 4: minimise Eq. (5) over the reward and the shapings, in place; the final loss (and lambda).

    Full batches: the targets of every transition are computed once. A large log: each
    minibatch's targets are computed when it is drawn (the same numbers, row by row).
    """
    alpha, gamma, norm = cfg.alpha_model, cfg.gamma, d.norm
    kl_params: list[torch.Tensor] = []
    if not d.big:
        with torch.no_grad():
            targets = consistency_targets(policies, rho, norm, d.S, d.A, d.S2, d.live, alpha, gamma)
    if cfg.kl_weight != 0.0:
        # KL-regularized model: targets a_k + lambda b_k (book chapter "What kind of learner?")
        if not d.big:
            with torch.no_grad():
                kl_dir = kl_direction_targets(policies, rho, norm, d.S, d.A, d.S2, d.live, gamma)
        if cfg.kl_weight is None:
            kl_raw = torch.zeros((), requires_grad=True)  # lambda = softplus(kl_raw), ln 2 at the start
            kl_params = [kl_raw]
        else:
            kl_fixed = torch.tensor(float(cfg.kl_weight), dtype=torch.float32)

    def kl_now() -> torch.Tensor:
        return torch.nn.functional.softplus(kl_params[0]) if kl_params else kl_fixed

    def target(k: int) -> torch.Tensor:
        return targets[k] if cfg.kl_weight == 0.0 else targets[k] + kl_now() * kl_dir[k]

    def minibatch_target(k: int, s: torch.Tensor, a: torch.Tensor, s2: torch.Tensor, lv: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            t = _consistency_target(policies[k + 1], rho, k, norm, s, a, s2, lv, alpha, gamma)
            if cfg.kl_weight == 0.0:
                return t
            b = _kl_direction_target(policies[k], policies[k + 1], rho, k, norm, s, a, s2, lv, gamma)
        return t + kl_now() * b

    S, A, S2, live = d.S, d.A, d.S2, d.live
    opt = torch.optim.Adam(list(reward.parameters()) + list(shaping.parameters()) + kl_params, lr=cfg.lr)
    loss = torch.zeros(())
    for i in range(cfg.consistency_steps):
        terms = []
        for k in range(d.K - 1):
            if not d.big:
                res = consistency_residual(
                    target(k),
                    reward(S[k + 1], A[k + 1]),
                    shaping(S[k + 1])[:, k],
                    shaping(S2[k + 1])[:, k],
                    live[k + 1],
                    gamma,
                )
            else:  # a minibatch of D_{k+1}'s transitions
                j = torch.randint(len(d.rollouts[k + 1]), (cast(int, d.mb),), generator=d.gen)
                s, a, s2, lv = d.rows(k + 1, j)
                res = consistency_residual(
                    minibatch_target(k, s, a, s2, lv), reward(s, a), shaping(s)[:, k], shaping(s2)[:, k], lv, gamma
                )
            terms.append((res**2).mean())
        loss = torch.stack(terms).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        tick("consistency", i + 1)
    info = {"consistency": float(loss.detach())}
    if cfg.kl_weight != 0.0:
        info["kl_weight"] = float(kl_now().detach())
    return info
