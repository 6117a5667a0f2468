"""A reward learned from the learner's time order (T-REX).

Trajectory-ranked reward extrapolation, after Brown, Goo, Nagarajan and Niekum, "Extrapolating
Beyond Suboptimal Demonstrations via Inverse Reinforcement Learning from Observations"
(ICML 2019). A learner's later checkpoints are taken to be better than its earlier ones, so
every pair of sub-trajectories (snippets) from two different observed checkpoints is a
preference: the later one is preferred. A reward network :math:`\\hat r_\\theta(s)` is fitted
so that the summed reward of a snippet predicts these preferences under the Bradley-Terry
model,

.. math:: P(\\tau_j \\succ \\tau_i) = \\frac{\\exp \\sum_{s \\in \\tau_j} \\hat r_\\theta(s)}
          {\\exp \\sum_{s \\in \\tau_i} \\hat r_\\theta(s) + \\exp \\sum_{s \\in \\tau_j} \\hat r_\\theta(s)},

by minimising the cross-entropy :math:`-\\ln P(\\tau_j \\succ \\tau_i)` over pairs in which
:math:`\\tau_j` comes from the later checkpoint. An ensemble of such networks, each on its own
draw of pairs and its own initialisation, is averaged. The reward reads states only (or a
state and the next state), so it needs no model of the learner and works the same for
discrete actions; an optional action prior :math:`\\beta \\ln \\pi_K(a|s)` (a behaviour clone of
the last observed policy) can be added.

Unlike Algorithm 1, nothing here uses the learner's policies: only which rollout came later.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence, cast

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ._validate import check_positive_int, check_real

__all__ = ["TrexConfig", "TrexReward", "split_episodes", "sample_snippet_pairs", "bradley_terry_loss", "fit_trex"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class TrexConfig:
    """Settings of :func:`fit_trex`.

    Parameters
    ----------
    n_pairs : int
        Snippet pairs drawn per ensemble member (3000).
    snippet : int
        Snippet length in steps (50); a pair whose episodes are shorter uses the shorter length
        for both snippets, so the two sums cover the same number of steps.
    ensemble : int
        Number of reward networks, averaged (3).
    hidden : tuple of int
        Hidden layers of each network, tanh (64, 64).
    steps : int
        Adam steps per member, each on a minibatch of ``batch`` pairs (1000).
    batch : int
        Pairs per minibatch (32).
    lr : float
        Adam learning rate (1e-3).
    weight_decay : float
        L2 penalty of Adam (0).
    next_state : bool
        If True each network reads the pair (s, s') instead of s.
    """

    n_pairs: int = 3000
    snippet: int = 50
    ensemble: int = 3
    hidden: tuple[int, ...] = (64, 64)
    steps: int = 1000
    batch: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    next_state: bool = False

    def __post_init__(self) -> None:
        for name in ("n_pairs", "snippet", "ensemble", "steps", "batch"):
            check_positive_int(getattr(self, name), name)
        check_real(self.lr, "lr", minimum=0.0, strict_min=True)
        check_real(self.weight_decay, "weight_decay", minimum=0.0)
        if not isinstance(self.next_state, bool):
            raise ValueError(f"next_state must be a bool; got {self.next_state!r}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


def _mlp(n_in: int, hidden: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(n_in, h), nn.Tanh()]
        n_in = h
    layers.append(nn.Linear(n_in, 1))
    return nn.Sequential(*layers)


class TrexReward(nn.Module):
    """The ensemble :math:`\\hat r(s) = \\frac1M \\sum_m \\hat r_m(s)` (+ :math:`\\beta \\ln \\pi_K(a|s)`).

    Parameters
    ----------
    obs_dim : int
    mean, std : numpy.ndarray
        Of shape (obs_dim,).
        Standardization of the states (of the observed window), applied before each network.
    config : TrexConfig
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, obs_dim: int, mean: Array, std: Array, config: TrexConfig) -> None:
        super().__init__()
        self.obs_dim = int(obs_dim)
        self.next_state = config.next_state
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean), dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(np.maximum(np.asarray(std), 1e-6), dtype=torch.float32))
        n_in = 2 * obs_dim if config.next_state else obs_dim
        self.members = nn.ModuleList([_mlp(n_in, config.hidden) for _ in range(config.ensemble)])
        self.prior: Callable[[Array, Array], Array] | None = None
        self.beta = 0.0

    def features(self, s: torch.Tensor, s2: torch.Tensor | None = None) -> torch.Tensor:
        x = (s - self.mean) / self.std
        if self.next_state:
            if s2 is None:
                raise ValueError("this reward reads (s, s'): next_obs is required")
            x = torch.cat([x, (s2 - self.mean) / self.std], -1)
        return x

    def member_rewards(self, s: torch.Tensor, s2: torch.Tensor | None = None) -> torch.Tensor:
        """Each member's reward, shape (..., M)."""
        x = self.features(s, s2)
        return torch.cat([m(x) for m in self.members], -1)

    def forward(self, s: torch.Tensor, s2: torch.Tensor | None = None) -> torch.Tensor:
        return self.member_rewards(s, s2).mean(-1)

    def set_prior(self, log_prob: Callable[[Array, Array], Array] | None, beta: float) -> None:
        """Add :math:`\\beta \\ln \\pi_K(a|s)` (``log_prob(obs, actions)`` on numpy batches) to :meth:`reward_fn`."""
        beta = check_real(beta, "beta", minimum=0.0)
        if beta > 0 and log_prob is None:
            raise ValueError("beta > 0 needs a log_prob callable")
        self.prior, self.beta = log_prob, float(beta)

    @torch.no_grad()
    def reward_fn(self, obs: Array, actions: Array | None = None, next_obs: Array | None = None) -> Array:
        """The reward on numpy batches, shape (n,); ``actions`` is read only by the prior."""
        s = torch.as_tensor(np.asarray(obs), dtype=torch.float32)
        s2 = None if next_obs is None else torch.as_tensor(np.asarray(next_obs), dtype=torch.float32)
        out = self.forward(s, s2).numpy().astype(np.float64)
        if self.beta > 0 and self.prior is not None:
            if actions is None:
                raise ValueError("this reward has an action prior: actions are required")
            out = out + self.beta * np.asarray(self.prior(np.asarray(obs), np.asarray(actions)), np.float64)
        return out


def split_episodes(observations: Array, next_observations: Array, dones: Array) -> list[tuple[Array, Array]]:
    """Cut a stream of transitions into episodes at ``dones`` (terminations or truncations).

    Returns a list of ``(states, next_states)``, each of shape (T_i, obs_dim); the last piece
    may be an unfinished episode.
    """
    obs = np.asarray(observations, np.float64)
    nxt = np.asarray(next_observations, np.float64)
    done = np.asarray(dones, bool)
    if obs.ndim != 2 or nxt.shape != obs.shape or done.shape != (len(obs),):
        raise ValueError("observations and next_observations must be (T, obs_dim) and dones (T,)")
    ends = np.flatnonzero(done) + 1
    out: list[tuple[Array, Array]] = []
    start = 0
    for e in list(ends) + ([len(obs)] if (len(ends) == 0 or ends[-1] != len(obs)) else []):
        if e > start:
            out.append((obs[start:e], nxt[start:e]))
        start = int(e)
    return out


def sample_snippet_pairs(
    episodes: Sequence[Sequence[tuple[Array, Array]]],
    n_pairs: int,
    snippet: int,
    rng: np.random.Generator,
) -> list[tuple[int, int, int, int, int, int, int]]:
    """Draw ``n_pairs`` preference pairs from episodes grouped by checkpoint (in time order).

    Each pair takes two different checkpoints i < j, an episode of each, a common length
    ``l = min(snippet, len_i, len_j)`` and a start in each episode; as in T-REX, the later
    checkpoint's snippet starts no earlier (relative to its episode's length) than the earlier
    one's, so a snippet of the better policy is not taken from an earlier phase of the task.

    Returns
    -------
    list of tuples ``(i, ei, ti, j, ej, tj, l)``: checkpoint, episode and start of the earlier
    (less preferred) snippet, the same of the later one, and the length.
    """
    if len(episodes) < 2:
        raise ValueError(f"episodes must hold at least two checkpoints; got {len(episodes)}")
    if any(len(e) == 0 for e in episodes):
        raise ValueError("every checkpoint must hold at least one episode")
    out = []
    C = len(episodes)
    for _ in range(int(n_pairs)):
        i, j = sorted(rng.choice(C, size=2, replace=False).tolist())
        ei, ej = int(rng.integers(len(episodes[i]))), int(rng.integers(len(episodes[j])))
        ni, nj = len(episodes[i][ei][0]), len(episodes[j][ej][0])
        length = min(snippet, ni, nj)
        ti = int(rng.integers(ni - length + 1))
        # the later snippet starts at least as far into its episode (in relative terms)
        lo = min(int(np.floor(ti / max(ni - length, 1) * (nj - length))), nj - length)
        tj = int(rng.integers(lo, nj - length + 1))
        out.append((i, ei, ti, j, ej, tj, length))
    return out


def bradley_terry_loss(worse: torch.Tensor, better: torch.Tensor) -> torch.Tensor:
    """Mean of :math:`-\\ln P(\\text{better} \\succ \\text{worse})` for summed snippet rewards, shape (n,) each."""
    logits = torch.stack([worse, better], -1)
    return -(torch.log_softmax(logits, -1)[..., 1]).mean()


def _snippet_tensors(
    episodes: Sequence[Sequence[tuple[Array, Array]]],
    pairs: Sequence[tuple[int, ...]],
    next_state: bool,
) -> tuple[list[torch.Tensor], ...]:
    """Pad the snippets of each pair: (states, next states, mask) for the worse and the better snippet."""
    L = max(p[6] for p in pairs)
    dim = episodes[0][0][0].shape[1]
    n = len(pairs)
    out = []
    for side in (0, 1):
        S = np.zeros((n, L, dim), np.float32)
        S2 = np.zeros((n, L, dim), np.float32)
        M = np.zeros((n, L), np.float32)
        for r, p in enumerate(pairs):
            c, e, t, length = (p[0], p[1], p[2], p[6]) if side == 0 else (p[3], p[4], p[5], p[6])
            s, s2 = episodes[c][e]
            S[r, :length] = s[t : t + length]
            S2[r, :length] = s2[t : t + length]
            M[r, :length] = 1.0
        out.append((torch.as_tensor(S), torch.as_tensor(S2) if next_state else None, torch.as_tensor(M)))
    return cast(tuple[list[torch.Tensor], ...], tuple(out))


def fit_trex(
    episodes: Sequence[Sequence[tuple[Array, Array]]],
    config: TrexConfig | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> tuple[TrexReward, dict[str, Any]]:
    """Fit the T-REX ensemble to episodes of the observed checkpoints, in time order.

    Parameters
    ----------
    episodes : sequence
        One entry per checkpoint, earliest first: a sequence of ``(states, next_states)`` pairs.
        The episodes of each observed checkpoint, e.g. :func:`split_episodes` of its rollout.
    config : TrexConfig, optional
    seed : int
        Seeds the pair draws (``numpy.random.default_rng``) and the networks' initialisation.
    progress : callable, optional
        ``progress(n_steps_done)`` over all members.

    Returns
    -------
    reward : TrexReward
    info : dict
        ``loss_first`` and ``loss_last`` (mean over members of the Bradley-Terry loss on all of
        the member's pairs before and after training), ``train_accuracy`` (share of all drawn pairs ranked right at
        the end) and ``member_corr`` (mean Pearson correlation between members' snippet returns).
    """
    cfg = config or TrexConfig()
    if not isinstance(cfg, TrexConfig):
        raise ValueError(f"config must be a TrexConfig; got {type(cfg).__name__}")
    seed = check_positive_int(seed, "seed", minimum=0)
    allS = np.concatenate([np.concatenate([s for s, _ in ep]) for ep in episodes])
    if allS.ndim != 2 or not np.all(np.isfinite(allS)):
        raise ValueError("episodes must hold finite (T, obs_dim) state arrays")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    reward = TrexReward(allS.shape[1], allS.mean(0), allS.std(0), cfg)
    first, last, acc, sums = [], [], [], []
    for m, net in enumerate(reward.members):
        pairs = sample_snippet_pairs(episodes, cfg.n_pairs, cfg.snippet, rng)
        (Sw, S2w, Mw), (Sb, S2b, Mb) = _snippet_tensors(episodes, pairs, cfg.next_state)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

        # called within this iteration only: the loop's current net and snippets are the ones meant
        def returns(idx: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
            rw = net(reward.features(Sw[idx], None if S2w is None else S2w[idx])).squeeze(-1)  # noqa: B023
            rb = net(reward.features(Sb[idx], None if S2b is None else S2b[idx])).squeeze(-1)  # noqa: B023
            return (rw * Mw[idx]).sum(-1), (rb * Mb[idx]).sum(-1)  # noqa: B023

        with torch.no_grad():
            first.append(float(bradley_terry_loss(*returns(slice(None)))))
        gen = torch.Generator().manual_seed(seed * 1000 + m)
        for step in range(cfg.steps):
            idx = torch.randint(len(pairs), (cfg.batch,), generator=gen)
            loss = bradley_terry_loss(*returns(idx))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if progress is not None:
                progress(m * cfg.steps + step + 1)
        with torch.no_grad():
            gw, gb = returns(slice(None))
            last.append(float(bradley_terry_loss(gw, gb)))
            acc.append(float((gb > gw).float().mean()))
        net.requires_grad_(False)
        sums.append(pairs)
    reward.requires_grad_(False)
    # agreement of the members on one common set of snippets (the first member's pairs)
    (Sw, S2w, Mw), _ = _snippet_tensors(episodes, sums[0], cfg.next_state)
    with torch.no_grad():
        per = (reward.member_rewards(Sw, S2w) * Mw[..., None]).sum(1).numpy()
    M = per.shape[1]
    corr = [float(np.corrcoef(per[:, a], per[:, b])[0, 1]) for a in range(M) for b in range(a + 1, M)]
    info = {
        "loss_first": float(np.mean(first)),
        "loss_last": float(np.mean(last)),
        "train_accuracy": float(np.mean(acc)),
        "member_corr": float(np.mean(corr)) if corr else 1.0,
    }
    return reward, info
