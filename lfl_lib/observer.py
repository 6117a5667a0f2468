"""What the observer does with a recovered reward (continuous case, Section 6.2).

- :func:`save_reward` / :func:`load_reward`: the reward :math:`r_\\phi(s, a)` of
  :func:`lfl_lib.deep_lfl.recover_reward` as a file of its own (tensors, numbers and
  strings only: it loads under ``torch.load``'s default ``weights_only=True``, on any
  machine, without lfl_lib's pickled classes);
- :class:`RecoveredReward`: a gymnasium wrapper that replaces an environment's reward by
  the recovered one (the true reward is kept in ``info["true_reward"]``), so that any RL
  library can train on it;
- :func:`behaviour_clone`: the observer's start of Section 6.3, its actor fitted by
  maximum likelihood to the last observed rollout;
- :func:`train_observer`: the observer of the paper, a :class:`lfl_lib.ppo.PPO` agent
  started by behaviour cloning and trained on the recovered reward, scored on the true
  reward after every update, with checkpoints that resume.
"""

from __future__ import annotations

import functools
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, cast

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray

from . import _safe_io
from ._validate import check_positive_int
from .data import Rollout
from .deep_lfl import DeepLfLConfig, RewardModel, as_config, fit_gaussian_policies
from .observer_ppo import ObserverPPO
from .ppo import PAPER_CODE_QUEUE, PPO, PPOConfig, PolicySnapshot, RewardFn, check_env_id, evaluate_policy

if TYPE_CHECKING:
    from .categorical import CategoricalActor
    from .nets import GaussianActor

__all__ = [
    "REWARD_FORMAT",
    "save_reward",
    "load_reward",
    "reward_settings",
    "reward_form",
    "environment_record",
    "check_reward_env",
    "RecoveredReward",
    "behaviour_clone",
    "ObserverResult",
    "train_observer",
]

#: Tag stored in every reward file.
REWARD_FORMAT = "lfl_lib.reward/1"


def reward_form(reward: RewardModel) -> str:
    """The reward's form in words, as stored in a reward file's metadata (``reward_form``)."""
    n = getattr(reward, "n_actions", None)
    term = getattr(reward, "state_term", None)
    head = "ln pi_phi(a|s)" if term is None else f"ln pi_phi(a|s) + g_phi(s) (state term: {term})"
    return (f"{head}, Gaussian pi_phi (continuous actions)" if n is None
            else f"{head}, categorical pi_phi over {n} discrete actions")


def environment_record(env: str | gym.Env) -> dict[str, str]:
    """What a reward file records of its environment: ``id``, ``observation_space``, ``action_space`` (as text)."""
    made = isinstance(env, str)
    e = gym.make(cast(str, env)) if made else cast(gym.Env, env)
    try:
        spec = getattr(e, "spec", None)
        return {"id": cast(str, env) if made else (spec.id if spec is not None else type(e.unwrapped).__name__),
                "observation_space": str(e.observation_space), "action_space": str(e.action_space)}
    finally:
        if made:
            e.close()


def save_reward(reward: RewardModel, path: str | Path, metadata: dict[str, Any] | None = None,
                env: str | gym.Env | None = None) -> Path:
    """Write the recovered reward to ``path`` (a ``.pt`` file), atomically.

    The file holds a dict of plain values: ``format``, ``obs_dim``, ``act_dim``,
    ``n_actions`` (discrete actions only), ``hidden``, ``state_dict`` (tensors: the
    standardization and the network) and ``metadata`` (as JSON text: the given dict, the
    ``reward_form`` and, with ``env``, the environment's ``id`` and spaces under ``env``).
    ``torch.load(path)`` reads it with its default ``weights_only=True``;
    :func:`load_reward` rebuilds the :class:`~lfl_lib.deep_lfl.RewardModel`. Using the reward
    on another environment than the recorded one warns (:func:`check_reward_env`).
    """
    if not isinstance(reward, RewardModel):
        raise ValueError(f"reward must be a lfl_lib.deep_lfl.RewardModel; got {type(reward).__name__}")
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"path: folder {str(path.parent)!r} does not exist")
    n_actions = getattr(reward, "n_actions", None)
    net = (cast("GaussianActor", reward.policy).mean if n_actions is None
           else cast("CategoricalActor", reward.policy).logits)
    hidden = [m.out_features for m in net if isinstance(m, torch.nn.Linear)][:-1]
    meta = dict(metadata or {})
    meta["reward_form"] = reward_form(reward)
    if env is not None:
        meta["env"] = environment_record(env)
    obj = {
        "format": REWARD_FORMAT,
        "obs_dim": int(reward.norm.mean.numel()),
        "act_dim": 1 if n_actions is not None else int(cast("GaussianActor", reward.policy).log_std.numel()),
        **({} if n_actions is None else {"n_actions": int(n_actions)}),
        "hidden": hidden,
        "state_dict": {k: v.detach().clone() for k, v in reward.state_dict().items()},
        "metadata": json.dumps(meta, sort_keys=True),
    }
    if reward.state_term is not None:  # only then, so a log-density reward's file is as before
        obj["state_term"] = reward.state_term
    _safe_io.save(obj, path)
    return path


def _read_reward_file(path: str | Path) -> dict[str, Any]:
    """The checked contents of a reward file (or of a folder's ``reward.pt``); ValueError if it is not one."""
    path = Path(path)
    if path.is_dir():
        path = path / "reward.pt"
    if not path.is_file():
        raise ValueError(f"reward file {str(path)!r} does not exist")
    try:
        obj = torch.load(path, weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"reward file {str(path)!r} is unreadable ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict) or obj.get("format") != REWARD_FORMAT:
        raise ValueError(f"{str(path)!r} is not a reward file of lfl_lib (format {REWARD_FORMAT!r})")
    return obj


def reward_settings(path: str | Path) -> dict[str, Any]:
    """The recovery settings stored in a reward file (``metadata["settings"]``; {} if none).

    Raises
    ------
    ValueError
        A missing file, or a file that is not a reward file.
    """
    meta = json.loads(_read_reward_file(path)["metadata"])
    settings = meta.get("settings", {}) if isinstance(meta, dict) else {}
    return dict(settings) if isinstance(settings, dict) else {}


def load_reward(path: str | Path) -> RewardModel:
    """Read a reward written by :func:`save_reward` (or the ``reward.pt`` of a folder).

    Raises
    ------
    ValueError
        A missing file, or a file that is not a reward file.
    """
    obj = _read_reward_file(path)
    sd = obj["state_dict"]
    n_actions = obj.get("n_actions")
    reward = RewardModel(int(obj["obs_dim"]), int(obj["act_dim"]), np.zeros(obj["obs_dim"]), np.ones(obj["obs_dim"]),
                         tuple(int(h) for h in obj["hidden"]), obj.get("state_term"),
                         None if n_actions is None else int(n_actions))
    reward.load_state_dict(sd)
    reward.requires_grad_(False)
    meta = json.loads(obj["metadata"])
    reward.env_record = meta.get("env") if isinstance(meta, dict) else None  # type: ignore[assignment]
    return reward


def check_reward_env(reward: RewardModel, env: gym.Env, strict: bool = False) -> None:
    """Check that ``reward`` fits ``env``: its spaces always, its recorded environment id when it has one.

    Raises
    ------
    ValueError
        The observation size or the kind or size of the actions differ; or, with
        ``strict=True``, the reward file records another environment id.

    Warns
    -----
    UserWarning
        The reward file records another environment id (without ``strict``).
    """
    obs_dim = int(np.prod(env.observation_space.shape or (0,)))
    if not isinstance(env.observation_space, gym.spaces.Box):
        raise ValueError(f"env must have Box observations for a continuous-state reward; got {env.observation_space}")
    if obs_dim != int(reward.norm.mean.numel()):
        raise ValueError(f"reward was recovered for obs_dim {int(reward.norm.mean.numel())}; env has {env.observation_space}")
    n = getattr(reward, "n_actions", None)
    space = env.action_space
    if n is not None and not (isinstance(space, gym.spaces.Discrete) and int(space.n) == n):
        raise ValueError(f"reward was recovered for Discrete({n}) actions; env has {space}")
    if n is None:
        act_dim = int(cast("GaussianActor", reward.policy).log_std.numel())
        if not isinstance(space, gym.spaces.Box) or int(np.prod(space.shape)) != act_dim:
            raise ValueError(f"reward was recovered for continuous actions of dimension {act_dim}; env has {space}")
    rec = getattr(reward, "env_record", None)
    spec = getattr(env, "spec", None)
    if rec and spec is not None and rec.get("id") != spec.id:
        msg = (f"the reward was recovered on {rec.get('id')!r} and is used on {spec.id!r}: the spaces fit, "
               "but nothing says the reward means anything there")
        if strict:
            raise ValueError(msg + " (refused under strict)")
        warnings.warn(msg, UserWarning, stacklevel=3)


def reward_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata dict stored by :func:`save_reward`."""
    path = Path(path)
    if path.is_dir():
        path = path / "reward.pt"
    return json.loads(torch.load(path, weights_only=True)["metadata"])


class RecoveredReward(gym.Wrapper):
    """Replace an environment's reward by a recovered reward :math:`r_\\phi(s, a)`.

    At each step the reward is ``reward_fn(s, a)`` with ``s`` the observation before the
    step and ``a`` the action passed to ``step``; the environment's own reward is
    kept in ``info["true_reward"]``. Works with any RL library that trains on a
    gymnasium environment (single, non-vector; flat Box observations, Box or Discrete
    actions).

    Parameters
    ----------
    env : gymnasium.Env
    reward : lfl_lib.deep_lfl.RewardModel, path, or callable
        A :class:`~lfl_lib.deep_lfl.RewardModel`, a file or folder written by
        :func:`save_reward`, or any ``reward_fn(obs_batch, action_batch) -> rewards``.
    strict : bool
        A reward file that records another environment id than ``env``'s: a warning
        (default) or, with ``strict=True``, a ValueError (:func:`check_reward_env`).
    """

    def __init__(self, env: gym.Env, reward: RewardModel | str | Path | Callable[..., Any],
                 strict: bool = False) -> None:
        super().__init__(env)
        if isinstance(reward, (str, Path)):
            reward = load_reward(reward)
        if isinstance(reward, RewardModel):
            check_reward_env(reward, env, strict)
            fn: Callable[..., Any] = reward.reward_fn
        elif callable(reward):
            fn = reward
        else:
            raise ValueError(f"reward must be a RewardModel, a reward file or a callable; got {type(reward).__name__}")
        self.reward_fn = fn
        self._obs: NDArray[np.float64] | None = None

    def reset(self, **kwargs: Any):  # type: ignore[override]
        obs, info = self.env.reset(**kwargs)
        self._obs = np.asarray(obs, dtype=np.float64).reshape(1, -1)
        return obs, info

    def step(self, action: Any):  # type: ignore[override]
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        a: NDArray[Any]
        if isinstance(self.env.action_space, gym.spaces.Discrete):
            a = np.asarray(action, dtype=np.int64).reshape(1)
        else:
            a = np.asarray(action, dtype=np.float64).reshape(1, -1)
        r = float(np.asarray(self.reward_fn(self._obs, a)).reshape(-1)[0])
        obs, true_r, term, trunc, info = self.env.step(action)
        info = dict(info)
        info["true_reward"] = true_r
        self._obs = np.asarray(obs, dtype=np.float64).reshape(1, -1)
        return obs, r, term, trunc, info


def behaviour_clone(
    ppo: PPO, rollout: Rollout, steps: int = 3000, config: DeepLfLConfig | dict[str, Any] | None = None,
    held_out: NDArray[np.bool_] | None = None,
) -> float:
    """The observer's start (Section 6.3): fit ``ppo``'s actor to ``rollout`` by maximum likelihood.

    The agent's observation normalization is set to the mean and variance of the
    rollout's states, then :func:`lfl_lib.deep_lfl.fit_gaussian_policies` fits the actor
    with the learning rate, entropy bonus and log-std mode of ``config``
    (:class:`~lfl_lib.deep_lfl.DeepLfLConfig`, the paper's by default) for ``steps``
    full-batch Adam steps.

    Parameters
    ----------
    ppo : lfl_lib.ppo.PPO
        The observer (made with ``config.norm_obs=True``); its actor is fitted in place.
    rollout : lfl_lib.data.Rollout
        Usually the learner's last observed rollout.
    steps : int
    config : lfl_lib.deep_lfl.DeepLfLConfig or dict, optional
    held_out : bool array of shape (T,), optional
        Transitions kept out of the fit for early stopping.

    Returns
    -------
    float
        The final negative log-likelihood (with the entropy bonus).
    """
    if not isinstance(ppo, PPO):
        raise ValueError(f"ppo must be a lfl_lib.ppo.PPO; got {type(ppo).__name__}")
    if not isinstance(rollout, Rollout):
        raise ValueError(f"rollout must be a lfl_lib.data.Rollout; got {type(rollout).__name__}")
    if (rollout.obs_dim, rollout.act_dim) != (ppo.obs_dim, ppo.act_dim):
        raise ValueError(f"rollout has obs_dim, act_dim = {rollout.obs_dim}, {rollout.act_dim}; "
                         f"the agent's environment has {ppo.obs_dim}, {ppo.act_dim}")
    n_agent = getattr(ppo, "n_actions", None)
    if rollout.n_actions != n_agent:
        def kind(n: int | None) -> str:
            return "continuous actions" if n is None else f"Discrete({n}) actions"
        raise ValueError(f"rollout has {kind(rollout.n_actions)}; the agent's environment has {kind(n_agent)}")
    steps = check_positive_int(steps, "steps")
    cfg = as_config(config)
    if held_out is not None:
        held_out = np.asarray(held_out)
        if held_out.shape != (len(rollout),) or held_out.dtype != bool:
            raise ValueError(f"held_out must be a bool array of shape ({len(rollout)},)")
    s = rollout.observations
    ppo.set_obs_stats(s.mean(0), s.var(0), len(s))
    x = torch.as_tensor(ppo._normalize(s))
    a = torch.as_tensor(rollout.actions, dtype=torch.float32 if rollout.n_actions is None else torch.long)
    fit = fit_gaussian_policies([ppo.actor], [x], [a], steps, cfg.lr, cfg.entropy_bonus,
                                None if held_out is None else [held_out], cfg.log_std)
    return fit["nll"]


#: A score recorded beside the true returns: policy -> value (e.g. the returns with sampled actions).
Scorer = Callable[[PolicySnapshot], Any]


@dataclass
class ObserverResult:
    """What :func:`train_observer` returns."""

    returns: list[list[float]]
    """True returns of the evaluation episodes, after the start (entry 0) and after each update."""
    policy: PolicySnapshot
    """The observer's final policy."""
    record: dict[str, Any] = field(default_factory=dict)
    """Everything recorded: ``returns``, one entry per name of ``scores``, ``paper_code`` and ``warmup`` (when
    asked), and the anchor's and soft objective's diagnostics (``anchor_kl``, ``anchor_weight``,
    ``soft_alpha``, ``soft_entropy``) when they are on."""

    @property
    def scores(self) -> list[float]:
        """Mean true return per entry of :attr:`returns`."""
        return [float(np.mean(r)) for r in self.returns]


def _check_options(env_id: str, reward: RewardModel | str | Path | RewardFn, start: Rollout | PolicySnapshot | None,
                   opts: dict[str, Any]) -> tuple[str, RewardModel | RewardFn]:
    """Validate :func:`train_observer`'s arguments; every error names the argument."""
    env_id = check_env_id(env_id, allow_discrete=True)
    for name in ("freeze_obs_stats", "progress", "paper_code", "strict"):
        if not isinstance(opts[name], (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False; got {opts[name]!r}")
    if isinstance(reward, (str, Path)):
        reward = load_reward(reward)
    if not (isinstance(reward, RewardModel) or callable(reward)):
        raise ValueError("reward must be a RewardModel, a reward file or a callable reward_fn(obs, actions); "
                         f"got {type(reward).__name__}")
    for name, minimum in (("updates", 0), ("bc_steps", 1), ("seed", 0), ("eval_episodes", 1), ("critic_warmup", 0)):
        check_positive_int(opts[name], name, minimum=minimum)
    if start is not None and not isinstance(start, (Rollout, PolicySnapshot)):
        raise ValueError("start must be a lfl_lib.data.Rollout (the last observed rollout, cloned) or a "
                         f"lfl_lib.nets.PolicySnapshot (taken as it is); got {type(start).__name__}")
    if opts["anchor_weight"] is not None and not (np.isfinite(opts["anchor_weight"]) and opts["anchor_weight"] >= 0):
        raise ValueError(f"anchor_weight must be None or a finite number >= 0; got {opts['anchor_weight']!r}")
    if not (np.isfinite(opts["soft_alpha"]) and opts["soft_alpha"] >= 0):
        raise ValueError(f"soft_alpha must be a finite number >= 0; got {opts['soft_alpha']!r}")
    return env_id, reward


def _start(ppo: PPO, start: Rollout | PolicySnapshot | None, start_count: int, bc_steps: int,
           bc_config: DeepLfLConfig, bc_held_out: NDArray[np.bool_] | None) -> None:
    """The observer's start: a behaviour clone of a rollout, a given policy, or PPO's fresh actor."""
    if isinstance(start, Rollout):
        behaviour_clone(ppo, start, bc_steps, bc_config, bc_held_out)
    elif isinstance(start, PolicySnapshot):
        ppo.actor.load_state_dict(start.actor_state)
        ppo.set_obs_stats(np.asarray(start.obs_mean), np.asarray(start.obs_var), start_count)


def _diagnostics(ppo: ObserverPPO) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ppo.anchor is not None:
        out["anchor_kl"] = list(ppo.anchor_kl)
        out["anchor_weight"] = ppo.anchor_weight
    if ppo.soft_alpha > 0:
        out["soft_alpha"] = ppo.soft_alpha
        out["soft_entropy"] = list(ppo.soft_entropy)
    return out


def train_observer(
    env_id: str,
    reward: RewardModel | str | Path | RewardFn,
    *,
    start: Rollout | PolicySnapshot | None = None,
    start_count: int = 1,
    updates: int = 30,
    ppo_config: PPOConfig | None = None,
    bc_steps: int = 3000,
    bc_config: DeepLfLConfig | dict[str, Any] | None = None,
    bc_held_out: NDArray[np.bool_] | None = None,
    seed: int = 0,
    eval_episodes: int = 10,
    eval_seed: int = 1_000_000,
    checkpoint: str | Path | None = None,
    progress: bool = False,
    freeze_obs_stats: bool = True,
    anchor_weight: float | None = None,
    soft_alpha: float = 0.0,
    critic_warmup: int = 0,
    scores: dict[str, Scorer] | None = None,
    paper_code: bool = False,
    desc: str = "observer",
    after_checkpoint: Callable[[], None] | None = None,
    strict: bool = False,
) -> ObserverResult:
    """Train the observer of Section 6.2: PPO on the recovered reward, scored on the true one.

    The stages, in order: the start (``start``), the options that act on it (``anchor_weight``,
    ``freeze_obs_stats``, ``soft_alpha``), the start's score, ``critic_warmup`` critic updates,
    then ``updates`` PPO updates, each scored. Every option of chapter 6's study is here; the
    study (:mod:`lfl_lib.experiments.study`) calls this function.

    Parameters
    ----------
    env_id : str
        The learner's environment (a registered gymnasium id with Box observations, and Box
        actions or Discrete actions; for the latter the observer's PPO has a categorical
        actor, :class:`lfl_lib.categorical.CategoricalActor`).
    reward : lfl_lib.deep_lfl.RewardModel, path or callable
        The recovered reward, a file/folder written by :func:`save_reward`, or any
        ``reward_fn(obs_batch, action_batch) -> rewards`` on raw observations (e.g. a
        :class:`lfl_lib.trex.TrexReward`'s ``reward_fn``; no environment check then).
    start : lfl_lib.data.Rollout or lfl_lib.nets.PolicySnapshot, optional
        A rollout (the learner's last observed one): the observer starts by behaviour
        cloning of it (:func:`behaviour_clone`, ``bc_steps`` steps with ``bc_config``,
        ``bc_held_out`` transitions kept out for early stopping). A policy: the actor starts
        as it, with its observation statistics (counted as ``start_count`` states). None:
        a fresh PPO actor.
    updates : int
        PPO updates on the recovered reward (the paper: 30).
    ppo_config : lfl_lib.ppo.PPOConfig, optional
        The paper's hyperparameters by default (its decay set to ``updates``).
    seed : int
        Seeds torch's global generator and the PPO agent.
    eval_episodes, eval_seed : int
        Scoring: mean undiscounted true return of ``eval_episodes`` episodes with the
        deterministic mean action, episode i reset with seed ``eval_seed + i``.
    checkpoint : path, optional
        A file written (atomically) after the start and after every critic or PPO update; a
        run started again with the same file (and options) resumes from it.
    progress : bool
        Show a progress bar labelled ``desc``.
    freeze_obs_stats : bool
        Hold the observation normalization at the statistics the start was fitted under
        (:meth:`lfl_lib.ppo.PPO.freeze_obs_stats`; True, the default) or update them on the
        observer's own states (False, the paper's PPO). Chapter 6 measures that running
        statistics alone turn the cloned start into another policy, and that freezing them
        keeps it; the default was decided on held-out Hopper seeds
        (the choice and its numbers: ``book/data/mujoco_heldout/README.md``).
    anchor_weight : float, optional
        A KL anchor to the start, :math:`-w\\,\\mathrm{KL}(\\pi\\,\\|\\,\\pi_0)` in the reward
        (:meth:`lfl_lib.observer_ppo.ObserverPPO.set_anchor`); None: no anchor.
    soft_alpha : float
        The soft return of the recovered reward with this entropy weight
        (:meth:`lfl_lib.observer_ppo.ObserverPPO.set_soft`); 0: the plain return.
    critic_warmup : int
        Critic-only updates (the actor frozen) before the first PPO update.
    scores : dict, optional
        ``{name: scorer}``: ``scorer(policy)`` is recorded under ``name`` beside the true returns
        at every score, in this order.
    paper_code : bool
        Record the released code's score queue of every update's rollout (``paper_code``).
    after_checkpoint : callable, optional
        Called after each checkpoint is written (e.g. to record the time spent).
    strict : bool
        A reward file that records another environment id: a warning (default) or a
        ValueError (:func:`check_reward_env`).
    """
    opts = dict(updates=updates, bc_steps=bc_steps, seed=seed, eval_episodes=eval_episodes,
                critic_warmup=critic_warmup, freeze_obs_stats=freeze_obs_stats, progress=progress,
                paper_code=paper_code, anchor_weight=anchor_weight, soft_alpha=soft_alpha, strict=strict)
    env_id, reward = _check_options(env_id, reward, start, opts)
    if ppo_config is None:
        ppo_config = PPOConfig(anneal_updates=max(updates, 1))
    if not isinstance(ppo_config, PPOConfig):
        raise ValueError(f"ppo_config must be a lfl_lib.ppo.PPOConfig; got {type(ppo_config).__name__}")
    bc_cfg = as_config(bc_config, "bc_config")
    ppo = _observer_ppo(env_id, reward, ppo_config, seed, strict)
    try:
        if paper_code:
            ppo.tap.capture_reward_terms(PAPER_CODE_QUEUE)
        scores = dict(scores or {})
        keys = ["returns", *scores, *(["paper_code"] if paper_code else []), *(["warmup"] if critic_warmup else [])]
        ck = Path(checkpoint) if checkpoint is not None else None

        score = functools.partial(_score, ppo, env_id, eval_episodes, eval_seed, scores)
        save = functools.partial(_save, ppo, ck, after_checkpoint)
        rec = _resume(ppo, ck, keys)
        if rec is None:
            _start(ppo, start, start_count, bc_steps, bc_cfg, bc_held_out)
            _set_options(ppo, anchor_weight, freeze_obs_stats, soft_alpha)
            rec = {k: [] for k in keys}
            score(rec)
            save(rec)
        _train(ppo, rec, updates, critic_warmup, paper_code, score, save, progress, desc)
        return ObserverResult(rec["returns"], ppo.snapshot(), {**rec, **_diagnostics(ppo)})
    finally:
        ppo.close()


def _observer_ppo(env_id: str, reward: RewardModel | RewardFn, ppo_config: PPOConfig, seed: int,
                  strict: bool) -> ObserverPPO:
    """The observer's PPO on the recovered reward (a reward model checked against ``env_id`` first)."""
    if isinstance(reward, RewardModel):
        probe = gym.make(env_id)
        try:
            check_reward_env(reward, probe, strict)
        finally:
            probe.close()
    torch.manual_seed(seed)
    return ObserverPPO(env_id, ppo_config, seed=seed,
                       reward_fn=reward.reward_fn if isinstance(reward, RewardModel) else reward)


def _set_options(ppo: ObserverPPO, anchor_weight: float | None, freeze_obs_stats: bool, soft_alpha: float) -> None:
    """The options that act on the start: the KL anchor to it, frozen observation statistics, the soft return."""
    if anchor_weight is not None:
        ppo.set_anchor(ppo.snapshot(), anchor_weight)  # pi_0: the start, with the start's normalization
    if freeze_obs_stats:
        ppo.freeze_obs_stats()  # the start stays the same policy on raw states
    if soft_alpha > 0:
        ppo.set_soft(soft_alpha)


def _score(ppo: PPO, env_id: str, eval_episodes: int, eval_seed: int, scores: dict[str, Scorer],
           rec: dict[str, Any]) -> None:
    """Score the observer's current policy: its true returns, then each of ``scores``, appended to ``rec``."""
    pol = ppo.snapshot()
    rec["returns"].append([float(x) for x in evaluate_policy(env_id, pol, eval_episodes, eval_seed)])
    for name, scorer in scores.items():
        rec[name].append(scorer(pol))


def _save(ppo: PPO, ck: Path | None, after_checkpoint: Callable[[], None] | None, rec: dict[str, Any]) -> None:
    """Write the checkpoint (the agent and ``rec``), when there is one, then call ``after_checkpoint``."""
    if ck is not None:
        _safe_io.save({"ppo": ppo.state_dict(), **rec}, ck)
        if after_checkpoint is not None:
            after_checkpoint()


def _resume(ppo: PPO, ck: Path | None, keys: list[str]) -> dict[str, Any] | None:
    """The record of a checkpoint (``ppo`` restored from it), or None when there is none to resume."""
    if ck is None or not ck.exists():
        return None
    saved = _safe_io.load_checkpoint(ck, ["ppo", "returns"])
    missing = [k for k in keys if k not in saved]
    if missing:
        raise ValueError(f"checkpoint {ck} was written with other options (it lacks {missing}); "
                         "delete it to redo the observer")
    try:
        ppo.load_state_dict(saved["ppo"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(f"checkpoint {ck} is corrupt ({type(exc).__name__}); delete it to redo the observer") from exc
    return {k: v for k, v in saved.items() if k != "ppo"}


def _train(ppo: ObserverPPO, rec: dict[str, Any], updates: int, critic_warmup: int, paper_code: bool,
           score: Callable[[dict[str, Any]], None], save: Callable[[dict[str, Any]], None],
           progress: bool, desc: str) -> None:
    """The critic's warm-up (the actor frozen: the start's score stays the start's), then the PPO updates."""
    from tqdm import tqdm

    while ppo.update == 0 and len(rec.get("warmup", [])) < critic_warmup:
        rec["warmup"].append(ppo.train_critic())
        save(rec)
    bar = tqdm(total=updates, initial=ppo.update, desc=desc, disable=not progress, leave=True, dynamic_ncols=True)
    while ppo.update < updates:
        ppo.train_update()
        if paper_code:
            rec["paper_code"].append([float(x) for x in ppo.tap.reward_terms or ()])  # the rollout of this update
        score(rec)
        save(rec)
        bar.set_postfix(score=f"{np.mean(rec['returns'][-1]):.1f}")
        bar.update(1)
    bar.close()
