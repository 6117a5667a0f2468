"""The networks of the continuous code: tanh MLPs, the Gaussian actor, the critic, a frozen policy.

:class:`GaussianActor` is the learner's actor in :mod:`lfl_lib.ppo`, the policies
:math:`\\hat\\pi_{\\theta_k}` of Algorithm 1 and the reward parametrisation
:math:`r_\\phi = \\ln \\pi_\\phi` in :mod:`lfl_lib.deep_lfl`. This module needs torch and numpy
only (no simulator), so recovering a reward or using the LQ test bed (:mod:`lfl_lib.lq`)
does not import MuJoCo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

if TYPE_CHECKING:
    from .categorical import CategoricalActor

__all__ = ["GaussianActor", "Critic", "PolicySnapshot", "mlp"]


def mlp(n_in: int, hidden: tuple[int, ...], n_out: int, out_gain: float) -> nn.Sequential:
    """Tanh MLP with orthogonal initialisation (gain sqrt(2) inside, ``out_gain`` at the end)."""
    layers: list[nn.Module] = []
    sizes = (n_in, *hidden)
    for a, b in zip(sizes[:-1], sizes[1:]):
        lin = nn.Linear(a, b)
        nn.init.orthogonal_(lin.weight, gain=np.sqrt(2.0))
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.Tanh()]
    out = nn.Linear(sizes[-1], n_out)
    nn.init.orthogonal_(out.weight, gain=out_gain)
    nn.init.zeros_(out.bias)
    layers.append(out)
    return nn.Sequential(*layers)


class GaussianActor(nn.Module):
    """Gaussian policy :math:`\\pi(a|s) = N(\\mu(s), \\mathrm{diag}(\\sigma^2))`, log-std independent of s.

    The same class serves as the learner's actor, the policies :math:`\\hat\\pi_{\\theta_k}`
    of Algorithm 1 and the reward parametrisation :math:`r_\\phi = \\ln \\pi_\\phi`.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (64, 64)) -> None:
        super().__init__()
        self.mean = mlp(obs_dim, hidden, act_dim, out_gain=0.01)
        self.log_std = nn.Parameter(torch.zeros(act_dim))

    def dist(self, obs: torch.Tensor) -> torch.distributions.Normal:
        """The action distribution at ``obs`` (shape (n, obs_dim))."""
        mu = self.mean(obs)
        return torch.distributions.Normal(mu, self.log_std.exp().expand_as(mu))

    def log_prob(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """:math:`\\ln \\pi(a|s)`, summed over action dimensions; shape (n,)."""
        return self.dist(obs).log_prob(act).sum(-1)

    def entropy(self) -> torch.Tensor:
        """Entropy of the Gaussian (the same at every state since the log-std is global)."""
        return (self.log_std + 0.5 * np.log(2 * np.pi * np.e)).sum()


class Critic(nn.Module):
    """State-value network V(s), a separate 64-64 tanh MLP."""

    def __init__(self, obs_dim: int, hidden: tuple[int, ...] = (64, 64)) -> None:
        super().__init__()
        self.v = mlp(obs_dim, hidden, 1, out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.v(obs).squeeze(-1)


@dataclass
class PolicySnapshot:
    """A frozen Gaussian policy acting on raw observations.

    The actor sees ``(s - obs_mean) / sqrt(obs_var + 1e-8)``, the normalization that was
    in force when the snapshot was taken.
    """

    actor_state: dict[str, torch.Tensor]
    obs_mean: NDArray[np.float64]
    obs_var: NDArray[np.float64]
    hidden: tuple[int, ...] = (64, 64)
    eps: float = 1e-8
    _actor: GaussianActor | CategoricalActor | None = field(default=None, repr=False, compare=False)

    def actor(self) -> GaussianActor | CategoricalActor:
        if self._actor is None:
            obs_dim = len(self.obs_mean)
            a: GaussianActor | CategoricalActor
            if "log_std" in self.actor_state:
                a = GaussianActor(obs_dim, len(self.actor_state["log_std"]), self.hidden)
            else:  # a categorical policy (discrete actions): its last layer has one logit per action
                from .categorical import CategoricalActor

                last = max(k for k in self.actor_state if k.endswith(".weight"))
                a = CategoricalActor(obs_dim, int(self.actor_state[last].shape[0]), self.hidden)
            a.load_state_dict(self.actor_state)
            self._actor = a
        return self._actor

    def normalize(self, obs: NDArray[np.float64]) -> torch.Tensor:
        x = (obs - self.obs_mean) / np.sqrt(self.obs_var + self.eps)
        return torch.as_tensor(x, dtype=torch.float32)

    @torch.no_grad()
    def mean_action(self, obs: NDArray[np.float64]) -> NDArray[np.float64]:
        """The deterministic action for a batch of raw observations: mu(s), or a categorical policy's mode (int64)."""
        actor = self.actor()
        if not isinstance(actor, GaussianActor):
            return actor.mode(self.normalize(obs)).numpy()
        return actor.mean(self.normalize(obs)).numpy().astype(np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "actor_state": {k: v.clone() for k, v in self.actor_state.items()},
            "obs_mean": self.obs_mean.copy(),
            "obs_var": self.obs_var.copy(),
            "hidden": tuple(self.hidden),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PolicySnapshot":
        return cls(d["actor_state"], np.asarray(d["obs_mean"]), np.asarray(d["obs_var"]), tuple(d["hidden"]))
