"""Categorical policies: Algorithm 1 and PPO for discrete actions with Box observations.

A learner with :math:`n` discrete actions (CartPole, LunarLander, Atari) has policies
:math:`\\pi(a|s) = \\mathrm{softmax}(z_\\theta(s))_a` with logits :math:`z_\\theta(s)` from an
MLP. Algorithm 1 carries over unchanged with them:

- stage 1 fits one :class:`CategoricalActor` per observed policy by maximum likelihood with
  the entropy bonus of Section 5.2 (the entropy is now state-dependent, averaged over the
  data's states);
- stage 2 regresses the closed-form divergence
  :math:`KL(\\pi_k(\\cdot|s)\\|\\pi_{k+1}(\\cdot|s)) = \\sum_a \\pi_k(a|s)
  (\\ln\\pi_k(a|s) - \\ln\\pi_{k+1}(a|s))` (:func:`categorical_kl`);
- stages 3-4 take the reward :math:`r_\\phi(s, a) = \\ln\\pi_\\phi(a|s)` with a categorical
  :math:`\\pi_\\phi` and the same Eq. (5).

With one-hot observations of a tabular MDP these are the tabular targets of Theorem 2
(:func:`lfl_lib.tabular_lfl.targets`); ``tests/test_categorical.py`` checks it.

**The log-density limitation.** A reward of the form :math:`r_\\phi(s, a) = \\ln\\pi_\\phi(a|s)` has, at every state, its largest
value at the mode of :math:`\\pi_\\phi(\\cdot|s)`: an agent that maximises the immediate reward
plays :math:`\\arg\\max_a \\pi_\\phi(a|s)`, the cloned policy's most likely action, whatever
the learner was improving towards. Only the long-term terms (the states an action leads to)
can make an observer of :math:`r_\\phi` depart from :math:`\\pi_\\phi`'s mode. This is the
discrete counterpart of the Gaussian case of chapter 6, where :math:`r_\\phi`'s maximiser at
each state is its mean :math:`\\mu_\\phi(s)`.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.nn import functional as F

from .nets import mlp

__all__ = ["CategoricalActor", "categorical_kl", "is_categorical", "policy_table"]


class CategoricalActor(nn.Module):
    """Categorical policy :math:`\\pi(a|s) = \\mathrm{softmax}(z(s))_a` over ``n_actions`` actions.

    The logits :math:`z(s)` come from a tanh MLP (orthogonal initialisation, a small last
    layer, so that a new policy is near uniform), as the Gaussian actor's mean. The same
    class serves as PPO's actor, the policies :math:`\\hat\\pi_{\\theta_k}` of Algorithm 1 and
    the reward :math:`r_\\phi = \\ln\\pi_\\phi`.

    Parameters
    ----------
    obs_dim : int
    n_actions : int
        At least 2.
    hidden : tuple of int
        Hidden layers ((64, 64); () for a linear map of the observation).
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden: tuple[int, ...] = (64, 64)) -> None:
        super().__init__()
        if int(n_actions) < 2:
            raise ValueError(f"n_actions must be >= 2; got {n_actions}")
        self.n_actions = int(n_actions)
        self.logits = mlp(obs_dim, tuple(hidden), self.n_actions, out_gain=0.01)

    def log_probs(self, obs: torch.Tensor) -> torch.Tensor:
        """:math:`\\ln\\pi(\\cdot|s)` for a batch of (standardized) observations; shape (n, n_actions)."""
        return F.log_softmax(self.logits(obs), dim=-1)

    def dist(self, obs: torch.Tensor) -> torch.distributions.Categorical:
        """The action distribution at ``obs`` (shape (n, obs_dim))."""
        return torch.distributions.Categorical(logits=self.logits(obs))

    def log_prob(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """:math:`\\ln\\pi(a|s)` for integer actions of shape (n,) (or (n, 1)); shape (n,)."""
        a = act.reshape(-1).long()
        return self.log_probs(obs).gather(-1, a[:, None])[:, 0]

    def entropy(self, obs: torch.Tensor) -> torch.Tensor:
        """:math:`\\mathcal H(\\pi(\\cdot|s))` at each state; shape (n,)."""
        lp = self.log_probs(obs)
        return -(lp.exp() * lp).sum(-1)

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        """The most likely action at each state; shape (n,), int64."""
        return self.logits(obs).argmax(-1)


def is_categorical(policy: nn.Module) -> bool:
    """True for a :class:`CategoricalActor`."""
    return isinstance(policy, CategoricalActor)


def categorical_kl(p: CategoricalActor, q: CategoricalActor, s: torch.Tensor) -> torch.Tensor:
    """Closed-form :math:`KL(p(\\cdot|s)\\|q(\\cdot|s)) = \\sum_a p(a|s)(\\ln p(a|s) - \\ln q(a|s))`; shape (n,)."""
    lp, lq = p.log_probs(s), q.log_probs(s)
    return (lp.exp() * (lp - lq)).sum(-1)


def policy_table(actor: CategoricalActor, obs: NDArray[np.float64]) -> NDArray[np.float64]:
    """:math:`\\pi(a|s)` at the given (standardized) observations, float64, shape (n, n_actions)."""
    with torch.no_grad():
        return actor.log_probs(torch.as_tensor(obs, dtype=torch.float32)).exp().double().numpy()
