"""Algorithm 1 (continuous) with its full result, checkpoints and a progress bar.

:func:`recover_with_checkpoints` runs :func:`lfl_lib.deep_lfl.recover_reward` and returns
a :class:`Recovery` (the reward and the diagnostics of its fit: the counterpart of the
tabular :class:`lfl_lib.tabular_lfl.LfLResult`). With a checkpoint file, written
(atomically, loadable with ``torch.load(weights_only=True)``) after each of the four
stages, a run started again skips the finished stages. ``lfl recover`` (:mod:`lfl_lib.cli`) and the MuJoCo study
(:mod:`lfl_lib.experiments.study`) both recover their rewards through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import _safe_io
from .data import Rollout
from .deep_lfl import DeepLfLConfig, RewardModel, as_config, recover_reward

__all__ = ["Recovery", "STAGES", "recover_with_checkpoints"]

#: The four stages of Algorithm 1: name -> (its step count in DeepLfLConfig, its key in the state).
STAGES: dict[str, tuple[str, str]] = {
    "policies": ("policy_steps", "policies"),
    "divergences": ("kl_steps", "rho"),
    "reward init": ("reward_init_steps", "reward_init"),
    "consistency": ("consistency_steps", "reward"),
}


@dataclass
class Recovery:
    """What :func:`recover_with_checkpoints` returns: the reward and the diagnostics of its fit."""

    reward: RewardModel
    """The recovered reward :math:`r_\\phi`."""
    losses: dict[str, Any]
    """The second value of :func:`lfl_lib.deep_lfl.recover_reward` (the stages' final losses)."""
    state: dict[str, Any]
    """The last checkpointed state: every stage's result (the fitted policies, :math:`\\rho`, the reward)."""
    config: DeepLfLConfig | None = None
    """The settings of the recovery."""

    @property
    def learner_model(self) -> str:
        """The learner model the reward was fitted under, ``"spi"`` or ``"kl"`` (as :attr:`LfLResult.learner_model
        <lfl_lib.tabular_lfl.LfLResult.learner_model>`)."""
        return (self.config or DeepLfLConfig()).model

    @property
    def kl_weight(self) -> float:
        """:math:`\\lambda` of the ``"kl"`` model (given or fitted); 0 for ``"spi"``."""
        if "kl_weight" in self.losses:
            return float(self.losses["kl_weight"])
        return float((self.config or DeepLfLConfig()).kl_weight or 0.0)


def _load_state(path: Path, key: dict[str, Any] | None) -> dict[str, Any]:
    if not path.exists():
        return {}
    if key is None:
        return _safe_io.load_checkpoint(path, ["lfl"])["lfl"]
    saved = _safe_io.load_checkpoint(path, ["key"])
    if saved["key"] != key:
        raise ValueError(
            f"{path} is the checkpoint of another recovery (other data or settings); remove it or write elsewhere"
        )
    # older checkpoints of lfl recover held the state under "state"
    return saved["lfl"] if "lfl" in saved else saved["state"]


def recover_with_checkpoints(
    rollouts: Sequence[Rollout],
    config: DeepLfLConfig | dict[str, Any] | None,
    checkpoint: str | Path | None = None,
    *,
    seed: int = 0,
    key: dict[str, Any] | None = None,
    progress: bool = False,
    desc: str = "recover",
    after_checkpoint: Callable[[], None] | None = None,
) -> Recovery:
    """:func:`lfl_lib.deep_lfl.recover_reward`, checkpointed after each stage to ``checkpoint``.

    Parameters
    ----------
    rollouts, config, seed
        As for :func:`lfl_lib.deep_lfl.recover_reward`.
    checkpoint : path, optional
        The checkpoint file; when it exists, its finished stages are skipped. It is left in
        place at the end (the caller removes it if it wants). None: no checkpoint.
    key : dict, optional
        What identifies the computation (data and settings), stored in the checkpoint: a
        checkpoint with another key is refused with a ValueError.
    progress : bool
        A tqdm bar over the gradient steps of the four stages, labelled ``desc``.
    after_checkpoint : callable, optional
        Called after each checkpoint is written (e.g. to record the time spent).
    """
    cfg = as_config(config)
    path = Path(checkpoint) if checkpoint is not None else None
    state = _load_state(path, key) if path is not None else {}
    from tqdm import tqdm

    sizes = {stage: int(getattr(cfg, steps)) for stage, (steps, _) in STAGES.items()}
    offsets = dict(zip(sizes, np.cumsum([0, *sizes.values()])[:-1]))
    done = sum(n for stage, n in sizes.items() if STAGES[stage][1] in state)
    bar = tqdm(total=sum(sizes.values()), initial=done, desc=desc, disable=not progress, leave=True, dynamic_ncols=True)
    last: dict[str, Any] = dict(state)
    # passes over the data: one per full-batch step, minibatch / T per minibatch step (logs beyond one batch)
    t_max = max(len(r) for r in rollouts)
    per_step = cfg.minibatch / t_max if t_max > cfg.minibatch else 1.0

    def tick(stage: str, n: int) -> None:
        bar.n = int(offsets[stage] + n)
        if n % 50 == 0 or n == sizes[stage]:
            bar.set_postfix(stage=stage, passes=f"{n * per_step:.3g}", refresh=False)  # one refresh per tick
            bar.refresh()

    def save(st: dict[str, Any]) -> None:
        last.clear()
        last.update(st)
        if path is not None:
            _safe_io.save({"lfl": st} if key is None else {"key": key, "lfl": st}, path)
        if after_checkpoint is not None:
            after_checkpoint()

    reward, losses = recover_reward(rollouts, cfg, seed=seed, progress=tick, state=state, checkpoint=save)
    bar.close()
    return Recovery(reward, losses, last, cfg)
