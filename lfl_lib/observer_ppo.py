"""The observer's PPO: chapter 6's options on top of the learner's :class:`lfl_lib.ppo.PPO`.

The observer of Section 6.2 trains PPO on the recovered reward. Chapter 6 tries options that
the learner's PPO does not have, each off by default (the paper's observer):

- a KL anchor to the observer's start policy, :math:`-w(\\ln\\pi - \\ln\\pi_0)` in each step's
  reward (:meth:`ObserverPPO.set_anchor`);
- the soft return of the recovered reward, :math:`-\\alpha\\ln\\pi` in each step's reward
  (:meth:`ObserverPPO.set_soft`);
- rounds of critic-only training before the first update (:meth:`ObserverPPO.train_critic`).

(Holding the observation statistics fixed, :meth:`lfl_lib.ppo.PPO.freeze_obs_stats`, is an
operation of any PPO agent.) Without them an :class:`ObserverPPO` computes exactly what a
:class:`~lfl_lib.ppo.PPO` computes. :func:`lfl_lib.observer.train_observer` uses it.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from .nets import GaussianActor, PolicySnapshot
from .ppo import PPO, _apply, _layers, gae_advantages, minibatch_indices, return_targets, value_loss

__all__ = ["ObserverPPO"]


class ObserverPPO(PPO):
    """:class:`lfl_lib.ppo.PPO` with the observer's options of chapter 6 (same arguments).

    The options are saved and restored by :meth:`~lfl_lib.ppo.PPO.state_dict` / :meth:`~lfl_lib.ppo.PPO.load_state_dict`, each
    only when on, so that a checkpoint without them is the plain PPO's.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.anchor: PolicySnapshot | None = None
        self.anchor_weight = 0.0
        self.anchor_kl: list[float] = []  # per update: the rollout's mean of ln pi(a|s) - ln pi_0(a|s)
        self.soft_alpha = 0.0
        self.soft_entropy: list[float] = []  # per update: the rollout's mean of -ln pi(a|s)

    def set_anchor(self, policy: PolicySnapshot | None, weight: float = 0.0) -> None:
        r"""Anchor the policy to ``policy`` (:math:`\pi_0`) with a KL penalty of weight ``weight``.

        Every step's reward becomes :math:`r(s,a) - w\,(\ln\pi(a|s) - \ln\pi_0(a|s))`, with
        :math:`a \sim \pi` the sampled action and :math:`\pi` the policy collecting the rollout,
        added before the reward normalization. Its expectation over :math:`a` is
        :math:`r^\pi(s) - w\,\mathrm{KL}(\pi(\cdot|s)\,\|\,\pi_0(\cdot|s))`, so PPO then
        maximises the return of the KL-regularized MDP with reference :math:`\pi_0`, whose
        optimum is :math:`\pi^*(a|s) \propto \pi_0(a|s)\exp(Q^*(s,a)/w)` (the step of the
        KL-regularized learner model of the book's chapter "What kind of learner?", taken to
        its fixed point). ``policy=None`` removes the anchor.

        Parameters
        ----------
        policy : PolicySnapshot or None
            The reference policy, with its own observation normalization (kept fixed).
        weight : float
            :math:`w > 0`, in the reward's units.
        """
        if policy is None:
            self.anchor, self.anchor_weight = None, 0.0
            return
        if not isinstance(policy, PolicySnapshot):
            raise TypeError(f"policy must be a PolicySnapshot or None; got {type(policy).__name__}")
        if self.n_actions is not None:
            raise ValueError("set_anchor is for Gaussian policies; this PPO has discrete actions")
        if len(policy.obs_mean) != self.obs_dim or len(policy.actor_state["log_std"]) != self.act_dim:
            raise ValueError(
                f"policy must act on {self.obs_dim} observations and {self.act_dim} actions; got "
                f"{len(policy.obs_mean)} and {len(policy.actor_state['log_std'])}"
            )
        w = float(weight)
        if not (np.isfinite(w) and w > 0):
            raise ValueError(f"weight must be a finite number > 0; got {weight!r}")
        self.anchor, self.anchor_weight = policy, w

    def set_soft(self, alpha: float) -> None:
        r"""Make PPO maximise the entropy-regularized return, with entropy weight ``alpha``.

        Every step's reward becomes :math:`r(s,a) - \alpha \ln\pi(a|s)`, with :math:`a \sim \pi`
        the sampled action and :math:`\pi` the policy collecting the rollout, added before the
        reward normalization (with the anchor's term, if any). Its expectation over :math:`a` is
        :math:`r^\pi(s) + \alpha\,\mathcal{H}(\pi(\cdot|s))`, so PPO then maximises the soft
        return :math:`\mathbb{E}\sum_t \gamma^t (r + \alpha\mathcal{H})`, whose optimum is
        :math:`\pi^*(a|s) \propto \exp(Q^*_{\text{soft}}(s,a)/\alpha)`: the fixed point of the soft
        (and of the KL-regularized) learner models of Algorithm 1. Unlike ``ent_coef`` (a bonus
        on the loss, in the normalized advantages' units), the weight is in the reward's units
        and the entropy of later states counts through the return. ``alpha=0`` turns it off.

        Parameters
        ----------
        alpha : float
            :math:`\alpha \ge 0`, in the reward's units.
        """
        a = (
            float(alpha)
            if isinstance(alpha, (int, float, np.floating, np.integer)) and not isinstance(alpha, bool)
            else float("nan")
        )
        if not (np.isfinite(a) and a >= 0):
            raise ValueError(f"alpha must be a finite number >= 0; got {alpha!r}")
        if a > 0 and self.n_actions is not None:
            raise ValueError("set_soft is for Gaussian policies; this PPO has discrete actions")
        self.soft_alpha = a

    def train_critic(self) -> dict[str, float]:
        """Collect one rollout with the actor frozen and train the critic alone on it.

        The critic's targets are those of :meth:`~lfl_lib.ppo.PPO.train_update` (GAE(:math:`\\lambda`) returns on
        the rollout, with the same bootstraps), and its optimisation the same epochs and
        minibatches of the value loss, at the learning rate of the next update. The actor, the
        update counter and the decay schedules do not move; the observation and reward
        statistics are updated by the rollout as in any update. Chapter 6 uses it to warm the
        observer's critic up on the recovered reward before its first PPO update.

        Returns
        -------
        dict
            ``value_loss`` of the last minibatch and ``explained_variance`` of the rollout's
            targets by the critic before training.
        """
        cfg = self.config
        T, N = cfg.n_steps, cfg.n_envs
        self._anneal()
        obs_b, _, _, rew_b, done_b, val_b, _ = self._collect_rollout()
        adv = gae_advantages(rew_b, val_b, done_b, cfg.gamma, cfg.gae_lambda)
        ret = return_targets(adv, val_b)
        var = float(np.var(ret))
        explained = float(1.0 - np.var(ret - val_b[:T]) / var) if var > 0 else float("nan")
        b_obs = torch.from_numpy(obs_b.reshape(T * N, -1))
        b_ret = torch.from_numpy(ret.reshape(-1).astype(np.float32))
        params = list(self.critic.parameters())
        v_l = 0.0
        for idx in minibatch_indices(T * N, cfg.n_minibatches, cfg.n_epochs, self.gen):
            v_loss = value_loss(self.critic(b_obs[idx]), b_ret[idx])
            self.opt.zero_grad(set_to_none=True)  # the actor's gradients stay None: Adam skips it
            (cfg.vf_coef * v_loss).backward()
            nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            self.opt.step()
            v_l = float(v_loss.detach())
        return {"value_loss": v_l, "explained_variance": explained}

    # -- the hooks of lfl_lib.ppo.PPO
    def _reward_terms(self, std: torch.Tensor, log_std: torch.Tensor) -> "_RewardTerms":
        return _RewardTerms(self, std, log_std)

    def _options_state(self) -> dict[str, Any]:
        # only when anchored, so that checkpoints written before the anchor existed still load
        return {
            **(
                {}
                if self.anchor is None
                else {
                    "anchor": self.anchor.to_dict(),
                    "anchor_weight": self.anchor_weight,
                    "anchor_kl": list(self.anchor_kl),
                }
            ),
            **(
                {} if self.soft_alpha == 0 else {"soft_alpha": self.soft_alpha, "soft_entropy": list(self.soft_entropy)}
            ),
        }

    def _load_options(self, state: dict[str, Any]) -> None:
        if "anchor" in state:
            self.set_anchor(PolicySnapshot.from_dict(state["anchor"]), state["anchor_weight"])
            self.anchor_kl = [float(x) for x in state["anchor_kl"]]
        else:
            self.set_anchor(None)
            self.anchor_kl = []
        self.set_soft(float(state.get("soft_alpha", 0.0)))
        self.soft_entropy = [float(x) for x in state.get("soft_entropy", [])]


class _RewardTerms:
    r"""The reward terms that :meth:`ObserverPPO.set_anchor` and :meth:`ObserverPPO.set_soft` add at each step of a Gaussian rollout.

    :meth:`add` sets the tap's ``reward_offset`` for the next step to
    :math:`-w(\ln\pi(a|s) - \ln\pi_0(a|s)) - \alpha\ln\pi(a|s)` (each term when active) and
    sums the rollout's means; :meth:`record` appends them to the agent's per-update lists.
    """

    def __init__(self, ppo: "ObserverPPO", std: torch.Tensor, log_std: torch.Tensor) -> None:
        self.ppo, self.tap, self.std, self.log_std = ppo, ppo.tap, std, log_std
        self.anchor = anchor = ppo.anchor
        if anchor is not None:
            self.anchor_net, self.anchor_log_std = (
                _layers(cast(GaussianActor, anchor.actor()).mean),
                cast(GaussianActor, anchor.actor()).log_std.detach(),
            )
            self.anchor_std, self.w_anchor = self.anchor_log_std.exp(), ppo.anchor_weight
        self.kl_sum = 0.0
        self.soft, self.ent_sum = ppo.soft_alpha, 0.0
        self.half_log_2pi = 0.5 * float(np.log(2 * np.pi))

    def add(self, a: torch.Tensor, mu: torch.Tensor) -> None:
        tap, std, log_std, anchor = self.tap, self.std, self.log_std, self.anchor
        if anchor is not None:  # ln pi(a|s) - ln pi_0(a|s), pi_0 on its own normalization
            mu0 = _apply(self.anchor_net, anchor.normalize(cast("NDArray[np.float64]", tap.raw_obs)))
            diff = (
                (
                    (-0.5 * ((a - mu) / std) ** 2 - log_std)
                    - (-0.5 * ((a - mu0) / self.anchor_std) ** 2 - self.anchor_log_std)
                )
                .sum(-1)
                .double()
                .numpy()
            )
            tap.reward_offset = -self.w_anchor * diff
            self.kl_sum += float(diff.mean())
        if self.soft > 0:  # -alpha ln pi(a|s): the soft return's entropy term, sampled
            logp = (-0.5 * ((a - mu) / std) ** 2 - log_std - self.half_log_2pi).sum(-1).double().numpy()
            off = -self.soft * logp
            tap.reward_offset = off if tap.reward_offset is None else tap.reward_offset + off
            self.ent_sum += float(-logp.mean())

    def record(self, T: int) -> None:
        ppo = self.ppo
        if self.anchor is not None:
            ppo.anchor_kl.append(self.kl_sum / T)
        if self.soft > 0:
            ppo.soft_entropy.append(self.ent_sum / T)
