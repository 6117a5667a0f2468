"""A learner's log in two lines for stable-baselines3 users: :func:`LearnerLog`.

Algorithm 1 needs, for each observed policy of the learner and in order, transitions that
policy generated (:class:`lfl_lib.data.Rollout`). With stable-baselines3 (SB3)::

    from lfl_lib.sb3 import LearnerLog
    PPO("MlpPolicy", "CartPole-v1").learn(50_000, callback=LearnerLog(every=5_000, episodes=5, out="log"))

writes ``log/D001.npz``, ``log/D002.npz``, ...: every ``every`` environment steps the
learner's current policy (its **stochastic** policy, as it acts while it learns) plays
``episodes`` episodes in a fresh copy of the training environment, and their transitions
are written in the library's ``.npz`` format (:func:`lfl_lib.data.save_rollout`; discrete
actions carry ``n_actions``). ``log/learner_log.json`` lists the files with the step,
the episodes' true returns and lengths; ``python -m lfl_lib recover --rollouts log/D*.npz``
then recovers the reward.

Needs the optional extra ``pip install 'lfl_lib[sb3]'``; stable-baselines3 is imported only
when a :func:`LearnerLog` is made.

Why fresh episodes: an off-policy learner's replay buffer (SAC, DQN) mixes many past
policies, and an on-policy learner's rollout buffer holds one policy's steps without the
episodes' starts; Algorithm 1 wants each policy's own transitions, in order.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._io import write_json
from ._validate import check_positive_int
from .data import Rollout, save_rollout

__all__ = ["LearnerLog", "rollout_of"]


def rollout_of(
    model: Any, env: Any, episodes: int, seed: int, deterministic: bool = False
) -> tuple[Rollout, list[float], list[int]]:
    """Play ``episodes`` episodes of an SB3 model's policy in ``env``; the rollout, true returns and lengths.

    Parameters
    ----------
    model : stable_baselines3 BaseAlgorithm
        Anything with ``predict(obs, deterministic=...)``.
    env : gymnasium.Env
        A single (non-vector) environment; episode i is reset with seed ``seed + i``.
    episodes : int
    seed : int
    deterministic : bool
        False (default): the policy's own sampling, as the learner acts.
    """
    import gymnasium as gym

    episodes = check_positive_int(episodes, "episodes")
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    parts: list[dict[str, Any]] = []
    returns, lengths = [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        states, actions = [np.asarray(obs, np.float64).reshape(-1)], []
        total, term, trunc = 0.0, False, False
        while not (term or trunc):
            act, _ = model.predict(obs, deterministic=deterministic)
            act = int(np.asarray(act).reshape(-1)[0]) if discrete else np.asarray(act, np.float64).reshape(-1)
            obs, r, term, trunc, _ = env.step(act)
            states.append(np.asarray(obs, np.float64).reshape(-1))
            actions.append(act)
            total += float(r)
        parts.append(
            {
                "observations": np.array(states),
                "actions": np.array(actions),
                "terminated": bool(term),
                "truncated": bool(trunc and not term),
            }
        )
        returns.append(total)
        lengths.append(len(actions))
    rollout = Rollout.from_episodes(parts, action_space=env.action_space if discrete else None)
    return rollout, returns, lengths


def _callback_base() -> type:
    try:
        from stable_baselines3.common.callbacks import BaseCallback
    except ImportError as exc:
        raise ImportError("LearnerLog needs stable-baselines3: pip install 'lfl_lib[sb3]'") from exc
    return BaseCallback


_IMPL: type | None = None


def LearnerLog(
    every: int,
    episodes: int = 5,
    out: str | Path = "learner_log",
    env: Any = None,  # noqa: N802
    seed: int = 0,
    deterministic: bool = False,
    verbose: int = 0,
) -> Any:
    """An SB3 callback that records the learner's policy every ``every`` steps as one ``.npz`` rollout.

    Parameters
    ----------
    every : int
        Environment steps between two recorded policies (SB3's ``num_timesteps``). The
        policy is recorded when SB3 starts collecting experience (after the previous update:
        on-policy learners such as PPO change their policy only there) once ``every`` steps
        have passed since the last record; the first at step 0 (before any update), the
        final policy at the end of training.
    episodes : int
        Episodes played by each recorded policy (default 5).
    out : path
        Output folder (created if missing; its parent must exist): ``D001.npz``, ``D002.npz``,
        ... and ``learner_log.json`` (environment id, steps, true returns). Each file is
        written atomically.
    env : gymnasium.Env or str, optional
        Where the episodes are played; default: ``gym.make`` of the training environment's id.
    seed : int
        Episode i of record k is reset with seed ``seed + 1000 * k + i``.
    deterministic : bool
        Record the policy's mode instead of its sampling (default False: as the learner acts).
    verbose : int

    Returns
    -------
    an SB3 callback
        Pass it as ``model.learn(..., callback=...)``. Its class subclasses SB3's
        ``BaseCallback`` and is made on first use, so that importing :mod:`lfl_lib.sb3` does
        not import SB3.
    """
    global _IMPL
    if _IMPL is None:
        _IMPL = type("LearnerLog", (_LearnerLogImpl, _callback_base()), {"__module__": __name__})
    return _IMPL(every, episodes, out, env, seed, deterministic, verbose)


if TYPE_CHECKING:  # SB3's BaseCallback is mixed in at runtime (see LearnerLog): its attributes
    _CallbackBase = Any  # (model, training_env, num_timesteps, verbose, __init__(verbose)) are typed Any
else:
    _CallbackBase = object


class _LearnerLogImpl(_CallbackBase):
    def __init__(
        self,
        every: int,
        episodes: int = 5,
        out: str | Path = "learner_log",
        env: Any = None,
        seed: int = 0,
        deterministic: bool = False,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)  # SB3's BaseCallback
        self.every = check_positive_int(every, "every")
        self.episodes = check_positive_int(episodes, "episodes")
        self.seed = check_positive_int(seed, "seed", minimum=0)
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"out {str(self.out)!r} exists and is not a folder")
        if not self.out.parent.is_dir():
            raise ValueError(f"out {str(self.out)!r}: its parent folder does not exist")
        self.eval_env = env
        self.deterministic = bool(deterministic)
        self.records: list[dict[str, Any]] = []
        self._next = 0

    def _make_env(self) -> Any:
        import gymnasium as gym

        if self.eval_env is None or isinstance(self.eval_env, str):
            env_id = self.eval_env
            if env_id is None:
                spec = self.training_env.get_attr("spec")[0]
                if spec is None:
                    raise ValueError("LearnerLog: the training environment has no gymnasium id; pass env=")
                env_id = spec.id
            self.eval_env = gym.make(env_id)
        return self.eval_env

    def _env_id(self) -> str | None:
        spec = getattr(self._make_env(), "spec", None)
        return None if spec is None else spec.id

    def _record(self) -> None:
        k = len(self.records)
        rollout, returns, lengths = rollout_of(
            self.model, self._make_env(), self.episodes, self.seed + 1000 * k, self.deterministic
        )
        self.out.mkdir(exist_ok=True)
        name = f"D{k + 1:03d}.npz"
        save_rollout(rollout, self.out / name)
        self.records.append(
            {
                "file": name,
                "step": int(self.num_timesteps),
                "returns": returns,
                "lengths": lengths,
                "mean_return": float(np.mean(returns)),
            }
        )
        info = {
            "env_id": self._env_id(),
            "policy": "deterministic" if self.deterministic else "stochastic (as the learner acts)",
            "episodes": self.episodes,
            "every": self.every,
            "records": self.records,
            "algorithm": type(self.model).__name__,
        }
        write_json(info, self.out / "learner_log.json", sort_keys=False)
        if self.verbose:
            print(f"LearnerLog: {name} at step {self.num_timesteps}, mean return {np.mean(returns):.2f}")

    def _on_training_start(self) -> None:
        self._next = int(self.num_timesteps)

    def _on_rollout_start(self) -> None:
        # called before each collection, i.e. after the previous update: PPO's policy only changes here
        if self.num_timesteps >= self._next:
            self._record()
            self._next = int(self.num_timesteps) + self.every

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        if not self.records or self.records[-1]["step"] != self.num_timesteps:
            self._record()  # the final policy
