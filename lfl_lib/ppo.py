"""Proximal Policy Optimization for continuous actions: the learner of Section 6.2.

The paper observes a PPO learner :cite:`schulman2017proximal` on MuJoCo tasks. This module
is a compact PPO with the paper's hyperparameters as defaults (:class:`PPOConfig`):
32 environments x 2048 steps per update, 10 epochs of 32 minibatches, the clipped
surrogate objective

.. math:: L^{CLIP}(\\theta) = E_t\\big[\\min\\big(\\rho_t(\\theta) \\hat A_t,\\;
          \\mathrm{clip}(\\rho_t(\\theta), 1-\\epsilon, 1+\\epsilon)\\, \\hat A_t\\big)\\big],
          \\qquad \\rho_t = \\pi_\\theta(a_t|s_t) / \\pi_{old}(a_t|s_t),

with generalized advantage estimation (GAE), a separate 64-64 tanh actor and critic,
a Gaussian policy with a state-independent log standard deviation, and the learning
rate and clip range decayed linearly.

Environment handling is gymnasium's own: :class:`gymnasium.vector.SyncVectorEnv` in
``SAME_STEP`` autoreset mode, and the vector wrappers
:class:`~gymnasium.wrappers.vector.NormalizeObservation` and
:class:`~gymnasium.wrappers.vector.NormalizeReward`. The only wrapper written here,
:class:`RolloutTap`, sits directly on the vector env: it clips actions to the action
box, keeps the raw (unnormalized) observations that an outside observer would see,
sums the true episode returns, and, when given a reward function ``r(s, a)``, puts it
in place of the environment's reward before normalization.

Terminal transitions: a termination ends the return (no bootstrap); a truncation (time
limit) is bootstrapped with the critic's value of the true final observation.
``PPOConfig(bootstrap_terminations=True)`` bootstraps terminations the same way.
"""

from __future__ import annotations

import collections
import copy
import functools
import pickle
import time
import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, cast

import gymnasium as gym
import mujoco
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import TimeLimit
from gymnasium.wrappers.vector import NormalizeObservation, NormalizeReward
from numpy.typing import NDArray
from torch import nn
from torch.nn import functional as F

from ._validate import check_positive_int
from .data import Rollout  # the observer's data type; re-exported here for older code
from .nets import Critic, GaussianActor, PolicySnapshot

if TYPE_CHECKING:
    from .categorical import CategoricalActor

__all__ = [
    "PPOConfig",
    "GaussianActor",
    "Critic",
    "Rollout",
    "PolicySnapshot",
    "RolloutTap",
    "PPO",
    "check_env_id",
    "gae_advantages",
    "normalize_advantages",
    "clipped_surrogate_loss",
    "value_loss",
    "annealed_fraction",
    "return_targets",
    "minibatch_indices",
    "make_vector_env",
    "evaluate_policy",
    "evaluate_episodes",
    "PAPER_CODE_QUEUE",
    "info_reward_terms",
]


def _mujoco_warning(msg: str) -> None:
    """MuJoCo's warning handler, minus one known deprecation.

    gymnasium's half_cheetah.xml uses the deprecated compiler attribute ``settotalmass``;
    MuJoCo's default handler prints that on every model load and appends it to a
    MUJOCO_LOG.TXT file in the working directory. Any other warning goes to Python's
    ``warnings``.
    """
    if "settotalmass" in msg:
        return
    warnings.warn(f"MuJoCo: {msg}", RuntimeWarning, stacklevel=2)


@functools.cache
def _quiet_mujoco() -> None:
    """Install :func:`_mujoco_warning` as MuJoCo's warning handler (process-wide), once.

    Called where this module makes MuJoCo environments, not on import: importing
    :mod:`lfl_lib.ppo` changes nothing outside it.
    """
    mujoco.set_mju_user_warning(_mujoco_warning)


#: Signature of a reward given in place of the environment's: r(s, a) on raw batches.
RewardFn = Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]


@dataclass(frozen=True)
class PPOConfig:
    """Hyperparameters of :class:`PPO`; the defaults are the paper's (Section 6.3).

    Parameters
    ----------
    n_envs, n_steps : int
        Parallel environments and steps per environment in one update (32 x 2048).
    n_epochs, n_minibatches : int
        Passes over the rollout and minibatches per pass (10 and 32).
    clip_coef, lr : float
        Initial clip range (0.2) and Adam learning rate (3e-4); both decay linearly to 0
        over ``anneal_updates`` updates.
    adam_eps : float
        Adam's epsilon (1e-5).
    gamma, gae_lambda : float
        Discount (0.99) and GAE parameter (0.95).
    ent_coef, vf_coef, max_grad_norm : float
        Entropy coefficient (0), value-loss coefficient (0.5), gradient clipping (0.5).
    hidden : tuple of int
        Hidden layers of the actor and of the critic (64, 64), tanh activations.
    anneal_updates : int
        Horizon of the linear decay: at update ``u`` (1-based) the factor is
        ``1 - (u - 1) / anneal_updates``.
    bootstrap_terminations : bool
        False (default): a termination ends the return, the absorbing state has value 0.
        True: a termination is bootstrapped like a time-limit end, with the critic's value
        of the true final state, so that adding a constant to the reward changes every
        value by the same amount and no action's advantage (chapter 6's
        ``terminal="bootstrap"`` candidate for an observer whose reward level is not
        identified).
    norm_obs, norm_reward : bool
        Use gymnasium's running observation and reward normalization.
    """

    n_envs: int = 32
    n_steps: int = 2048
    n_epochs: int = 10
    n_minibatches: int = 32
    clip_coef: float = 0.2
    lr: float = 3e-4
    adam_eps: float = 1e-5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    hidden: tuple[int, ...] = (64, 64)
    anneal_updates: int = 100
    norm_obs: bool = True
    norm_reward: bool = True
    bootstrap_terminations: bool = False

    def __post_init__(self) -> None:
        for name in ("n_envs", "n_steps", "n_epochs", "n_minibatches", "anneal_updates"):
            check_positive_int(getattr(self, name), name)
        if (self.n_envs * self.n_steps) % self.n_minibatches:
            raise ValueError(
                f"n_minibatches must divide n_envs * n_steps = {self.n_envs * self.n_steps}; got {self.n_minibatches}"
            )
        for name in ("clip_coef", "lr", "adam_eps", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0; got {getattr(self, name)!r}")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]; got {getattr(self, name)!r}")
        if self.ent_coef < 0 or self.vf_coef < 0:
            raise ValueError("ent_coef and vf_coef must be >= 0")
        for name in ("clip_coef", "lr", "adam_eps", "max_grad_norm", "gamma", "gae_lambda", "ent_coef", "vf_coef"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number; got {getattr(self, name)!r}")
        if not isinstance(self.bootstrap_terminations, (bool, np.bool_)):
            raise ValueError(f"bootstrap_terminations must be True or False; got {self.bootstrap_terminations!r}")
        object.__setattr__(self, "bootstrap_terminations", bool(self.bootstrap_terminations))
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-ready dict.

        ``bootstrap_terminations`` is left out while False, so that configurations stored
        before the option existed still match.
        """
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        if not self.bootstrap_terminations:
            del d["bootstrap_terminations"]
        return d


# ------------------------------------------------------------------ environments


def check_env_id(env_id: str, allow_discrete: bool = False) -> str:
    """Check that ``env_id`` is a registered gymnasium id with Box observations and Box actions
    (or, with ``allow_discrete``, Discrete actions)."""
    if not isinstance(env_id, str) or env_id not in gym.registry:
        mujoco_ids = sorted(k for k, v in gym.registry.items() if "mujoco" in str(v.entry_point) and k.endswith("-v5"))
        raise ValueError(
            f"env must be a registered gymnasium environment id; got {env_id!r}. MuJoCo v5 ids: {', '.join(mujoco_ids)}"
        )
    _quiet_mujoco()
    env = gym.make(env_id)
    try:
        kinds = (gym.spaces.Box, gym.spaces.Discrete) if allow_discrete else (gym.spaces.Box,)
        if not isinstance(env.action_space, kinds) or not isinstance(env.observation_space, gym.spaces.Box):
            what = "Box or Discrete" if allow_discrete else "continuous (Box)"
            raise ValueError(
                f"env {env_id!r} must have Box observations and {what} actions; got "
                f"{env.observation_space} and {env.action_space}"
            )
    finally:
        env.close()
    return env_id


class RolloutTap(gym.vector.VectorWrapper):
    """Innermost wrapper: clip actions, keep raw observations, sum true returns, swap the reward.

    Parameters
    ----------
    env : SyncVectorEnv
        In ``SAME_STEP`` autoreset mode.
    reward_fn : callable, optional
        ``reward_fn(obs, actions) -> rewards`` on raw observations and the sampled
        (unclipped) actions, shape (n_envs,). When given it replaces the environment's
        reward; the true reward is still summed in ``episode_returns``.
    """

    def __init__(self, env: gym.vector.VectorEnv, reward_fn: RewardFn | None = None) -> None:
        super().__init__(env)
        self.reward_fn = reward_fn
        self.discrete = isinstance(env.single_action_space, gym.spaces.Discrete)
        if not self.discrete:
            self.low = cast(gym.spaces.Box, env.single_action_space).low.astype(np.float64)
            self.high = cast(gym.spaces.Box, env.single_action_space).high.astype(np.float64)
        self.raw_obs: NDArray[np.float64] | None = None
        self.raw_next_obs: NDArray[np.float64] | None = None
        self.running_return = np.zeros(env.num_envs)
        self.episode_returns: list[float] = []
        #: the released code's score queue (see :meth:`capture_reward_terms`); None: off
        self.reward_terms: collections.deque[float] | None = None
        self._ctrl_weight = 0.0
        #: added to the next step's reward (then cleared) before the normalizing wrappers see
        #: it: the observer's anchor and soft-return terms (:class:`lfl_lib.observer_ppo.ObserverPPO`); None for nothing
        self.reward_offset: NDArray[np.float64] | None = None

    def reset(self, **kwargs: Any):  # type: ignore[override]
        obs, info = self.env.reset(**kwargs)
        self.raw_obs = np.asarray(obs, dtype=np.float64).copy()
        self.running_return[:] = 0.0
        return obs, info

    def step(self, actions: NDArray[Any]):  # type: ignore[override]
        if self.discrete:  # integer actions, nothing to clip
            actions = clipped = np.asarray(actions).astype(np.int64)
        else:
            actions = np.asarray(actions, dtype=np.float64)
            clipped = np.clip(actions, self.low, self.high)
        obs, reward, term, trunc, info = self.env.step(clipped)
        obs64 = np.asarray(obs, dtype=np.float64)
        nxt = obs64.copy()
        done = term | trunc
        if self.reward_terms is not None:
            terms = info_reward_terms(info, done, self.num_envs)
            # the control cost on the sampled, unclipped action, as the released code's envs computed it
            terms += self._ctrl_weight * ((clipped**2).sum(-1) - (actions**2).sum(-1))
            self.reward_terms.extend(terms.tolist())
        if np.any(done):
            final = info.pop("final_obs")
            info.pop("_final_obs", None)
            for i in np.flatnonzero(done):
                nxt[i] = final[i]
        self.running_return += reward
        for i in np.flatnonzero(done):
            self.episode_returns.append(float(self.running_return[i]))
            self.running_return[i] = 0.0
        if self.reward_fn is not None:
            # cast: the actions are int64 for discrete actions
            reward = np.asarray(
                self.reward_fn(cast("NDArray[np.float64]", self.raw_obs), cast(Any, actions)), dtype=np.float64
            ).reshape(self.num_envs)
        if self.reward_offset is not None:
            reward = np.asarray(reward, dtype=np.float64) + self.reward_offset
            self.reward_offset = None
        self.raw_next_obs = nxt
        self.raw_obs = obs64.copy()
        return obs, reward, term, trunc, info

    def capture_reward_terms(self, maxlen: int) -> None:
        """Start the released code's score queue (the ``paper-code`` protocol of :mod:`lfl_lib.experiments.study`).

        After every step, the sum of the step's info entries whose key contains ``"reward"``
        is appended for each environment in turn (environment 0 first) to a queue of the last
        ``maxlen`` values; for an environment whose episode ended at that step the entries of
        the step (``final_info``), not of the reset. The control-cost entry is recomputed on
        the sampled, unclipped action (the released code's environments received it
        unclipped; gymnasium's MuJoCo tasks weight the squared action by ``_ctrl_cost_weight``
        or, on Reacher, ``_reward_control_weight``). Observing changes no random draw and no
        number of the run.
        """
        u = self.env.envs[0].unwrapped if hasattr(self.env, "envs") else None
        self._ctrl_weight = float(getattr(u, "_ctrl_cost_weight", getattr(u, "_reward_control_weight", 0.0)))
        self.reward_terms = collections.deque(maxlen=maxlen)


#: The length of the released code's score queue; with 32 environments it holds environments
#: 22-31 at the last step of an update.
PAPER_CODE_QUEUE = 10


def info_reward_terms(info: dict[str, Any], done: NDArray[np.bool_], n_envs: int) -> NDArray[np.float64]:
    """Per environment, the sum of a vector step's info entries whose key contains ``"reward"``.

    ``info`` is a :class:`~gymnasium.vector.SyncVectorEnv` info dict in ``SAME_STEP`` mode:
    where ``done`` is True the step's own entries are in ``info["final_info"]`` (the
    top-level ones then belong to the reset). Keys starting with ``"_"`` (presence masks)
    are skipped. Returns zeros for an environment whose info reports no reward entry
    (gym v2's Hopper did not; gymnasium v5's four MuJoCo tasks report the terms that sum
    to the reward).
    """

    def total(d: dict[str, Any]) -> NDArray[np.float64]:
        out = np.zeros(n_envs)
        for k, v in d.items():
            if "reward" in k and not k.startswith("_"):
                mask = d.get(f"_{k}", np.ones(n_envs, bool))
                out += np.where(mask, np.asarray(v, dtype=np.float64), 0.0)
        return out

    terms = total(info)
    if np.any(done) and "final_info" in info:
        terms = np.where(done, total(info["final_info"]), terms)
    return terms


def make_vector_env(
    env_id: str,
    n_envs: int,
    reward_fn: RewardFn | None = None,
    *,
    norm_obs: bool = True,
    norm_reward: bool = True,
    gamma: float = 0.99,
) -> gym.vector.VectorEnv:
    """The learner's vector env: SyncVectorEnv -> RolloutTap -> NormalizeObservation -> NormalizeReward."""
    _quiet_mujoco()
    envs: gym.vector.VectorEnv = SyncVectorEnv(
        [functools.partial(gym.make, env_id) for _ in range(n_envs)],
        autoreset_mode=AutoresetMode.SAME_STEP,
        copy=False,  # no copy of the batched observations: RolloutTap copies what it keeps, the wrappers return new arrays
    )
    envs = RolloutTap(envs, reward_fn)
    if norm_obs:
        # NormalizeObservation refuses SAME_STEP because it would leave info["final_obs"]
        # unnormalized. RolloutTap removes that entry (it keeps the raw final state
        # itself), so nothing unnormalized leaks out; build the wrapper under the flag it
        # accepts, then restore the true mode for NormalizeReward, which handles SAME_STEP.
        envs.metadata["autoreset_mode"] = AutoresetMode.NEXT_STEP
        try:
            envs = NormalizeObservation(envs)
        finally:
            envs.metadata["autoreset_mode"] = AutoresetMode.SAME_STEP
    if norm_reward:
        envs = NormalizeReward(envs, gamma=gamma)
    return envs


def _find(envs: gym.vector.VectorEnv, cls: type) -> Any:
    e: Any = envs
    while True:
        if isinstance(e, cls):
            return e
        if not hasattr(e, "env"):
            return None
        e = e.env


def _layers(net: nn.Sequential) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
    """A tanh MLP as a list of (weight, bias) for each Linear and ``None`` for each Tanh."""
    out: list[tuple[torch.Tensor, torch.Tensor] | None] = []
    for m in net:
        if isinstance(m, nn.Linear):
            out.append((m.weight.detach(), m.bias.detach()))
        elif isinstance(m, nn.Tanh):
            out.append(None)
        else:
            raise TypeError(f"_layers handles Linear and Tanh modules only; got {type(m).__name__}")
    return out


def _apply(layers: list[tuple[torch.Tensor, torch.Tensor] | None], x: torch.Tensor) -> torch.Tensor:
    """What ``nn.Sequential`` computes, the same kernels without the per-module call overhead."""
    for layer in layers:
        x = torch.tanh(x) if layer is None else F.linear(x, layer[0], layer[1])
    return x


def _time_limit(env: gym.Env) -> TimeLimit | None:
    e: Any = env
    while hasattr(e, "env"):
        if isinstance(e, TimeLimit):
            return e
        e = e.env
    return None


#: Attributes of an environment that :func:`_env_state` never saves: its random generator (saved
#: apart), its spec and spaces (rebuilt by ``gym.make``) and its renderer.
_NOT_SAVED = frozenset(
    {
        "_np_random",
        "_np_random_seed",
        "np_random",
        "spec",
        "metadata",
        "render_mode",
        "observation_space",
        "action_space",
        "screen",
        "clock",
        "viewer",
        "renderer",
        "mujoco_renderer",
    }
)


def _is_mujoco(u: Any) -> bool:
    return isinstance(getattr(u, "data", None), mujoco.MjData) and isinstance(getattr(u, "model", None), mujoco.MjModel)


def _sub_state(u: Any) -> tuple[str, bytes] | str:
    """One environment's saved state, ``(kind, bytes)``, or the reason why it cannot be saved.

    MuJoCo environments: the whole ``MjData`` (derived quantities such as body positions are
    one integration step behind ``qpos`` after ``mj_step``, and rewards read them). Other
    environments (classic control, toy text and any Python environment whose state lies in
    plain attributes): the pickled attributes of the unwrapped environment, less
    :data:`_NOT_SAVED`. An environment whose state cannot be pickled (Box2D's world, a
    simulator handle) returns the reason.
    """
    if _is_mujoco(u):
        return ("mujoco", pickle.dumps(u.data))
    attrs = {k: v for k, v in vars(u).items() if k not in _NOT_SAVED}
    try:
        return ("attributes", pickle.dumps(attrs))
    except Exception as exc:  # noqa: BLE001 - any failure means the state cannot be saved
        return f"{type(u).__name__}'s state cannot be saved ({type(exc).__name__}: {exc})"


def _env_state(envs: gym.vector.VectorEnv) -> dict[str, Any]:
    """Everything needed to continue the vector env where it is (for checkpoints).

    ``state["exact"]`` is True when every environment's state was saved (see
    :func:`_sub_state`): the resumed run then continues exactly. Otherwise the environments'
    states are left out, ``state["inexact_reason"]`` says why, and :func:`_set_env_state`
    resumes with fresh episodes at the start of the next update (the networks, the optimizer,
    the random generators and the normalization statistics are restored all the same).
    """
    sync: SyncVectorEnv = _find(envs, SyncVectorEnv)
    tap: RolloutTap = _find(envs, RolloutTap)
    subs = []
    reason = None
    for e in sync.envs:
        u = e.unwrapped
        tl = _time_limit(e)
        saved = _sub_state(u)
        if isinstance(saved, str):
            reason = saved
            break
        subs.append(
            {
                "kind": saved[0],
                "physics": saved[1],
                "elapsed": None if tl is None else tl._elapsed_steps,
                "rng": u.np_random.bit_generator.state,
            }
        )
    state: dict[str, Any] = {"exact": reason is None}
    if reason is None:
        state.update(
            {
                "subs": subs,
                "env_obs": [np.array(o, copy=True) for o in sync._env_obs],
                "autoreset": np.array(sync._autoreset_envs, copy=True),
                "tap_obs": cast("NDArray[np.float64]", tap.raw_obs).copy(),
                "tap_return": tap.running_return.copy(),
            }
        )
    else:
        state["inexact_reason"] = reason
    state["tap_episodes"] = list(tap.episode_returns)
    no = _find(envs, NormalizeObservation)
    if no is not None:
        state["obs_rms"] = (no.obs_rms.mean.copy(), no.obs_rms.var.copy(), no.obs_rms.count)
    nr = _find(envs, NormalizeReward)
    if nr is not None:
        state["ret_rms"] = (nr.return_rms.mean.copy(), nr.return_rms.var.copy(), nr.return_rms.count)
        if reason is None:
            state["acc_reward"] = nr.accumulated_reward.copy()
            state["prev_dones"] = nr._prev_dones.copy()
    return state


def _set_env_state(envs: gym.vector.VectorEnv, state: dict[str, Any], reset_seed: int | None = None) -> bool:
    """Restore :func:`_env_state`; returns True when the run continues exactly.

    A state saved without the environments (``state["exact"]`` False) resets them with
    ``reset_seed`` (fresh episodes) and restores the rest.
    """
    sync: SyncVectorEnv = _find(envs, SyncVectorEnv)
    tap: RolloutTap = _find(envs, RolloutTap)
    exact = bool(state.get("exact", True))  # checkpoints written before the flag existed were all MuJoCo
    if exact:
        if len(state["subs"]) != len(sync.envs):
            raise ValueError(f"checkpoint holds {len(state['subs'])} environments; this run has {len(sync.envs)}")
        for e, s in zip(sync.envs, state["subs"]):
            u: Any = e.unwrapped
            if s.get("kind", "mujoco") == "mujoco":
                if not _is_mujoco(u):
                    raise ValueError("checkpoint holds MuJoCo physics; this run's environment is not MuJoCo")
                mujoco.mj_copyData(u.data, u.model, pickle.loads(s["physics"]))
            else:
                vars(u).update(pickle.loads(s["physics"]))
            tl = _time_limit(e)
            if tl is not None:
                tl._elapsed_steps = s["elapsed"]
            u.np_random.bit_generator.state = s["rng"]
        sync._env_obs = [np.array(o, copy=True) for o in state["env_obs"]]  # type: ignore[misc]  # gymnasium infers list[None]; a list, one array per env
        sync._autoreset_envs = np.array(state["autoreset"], copy=True)
        tap.raw_obs = state["tap_obs"].copy()
        tap.running_return = state["tap_return"].copy()
    tap.episode_returns = list(state["tap_episodes"])
    no = _find(envs, NormalizeObservation)
    if no is not None:
        no.obs_rms.mean, no.obs_rms.var, no.obs_rms.count = (
            np.array(x, copy=True) if i < 2 else x for i, x in enumerate(state["obs_rms"])
        )
    nr = _find(envs, NormalizeReward)
    if nr is not None:
        nr.return_rms.mean, nr.return_rms.var, nr.return_rms.count = (
            np.array(x, copy=True) if i < 2 else x for i, x in enumerate(state["ret_rms"])
        )
        if exact:
            nr.accumulated_reward = state["acc_reward"].copy()
            nr._prev_dones = state["prev_dones"].copy()
    if not exact:
        envs.reset(seed=reset_seed)  # fresh episodes (the normalization statistics are not updated by a reset)
        if no is not None:
            no.obs_rms.mean, no.obs_rms.var, no.obs_rms.count = (
                np.array(x, copy=True) if i < 2 else x for i, x in enumerate(state["obs_rms"])
            )
    return exact


# ------------------------------------------------------------------ PPO


def gae_advantages(
    rewards: NDArray[np.float64],
    values: NDArray[np.float64],
    dones: NDArray[np.float64],
    gamma: float,
    lam: float,
) -> NDArray[np.float64]:
    r"""Generalized advantage estimates :math:`\hat A_t = \sum_{l\ge 0} (\gamma\lambda)^l \delta_{t+l}`.

    With :math:`\delta_t = r_t + \gamma (1 - d_t) V(s_{t+1}) - V(s_t)`, the sum stopping
    at the first episode end (:math:`d_t = 1`).

    Parameters
    ----------
    rewards, dones : ndarray, shape (T, N)
        Rewards and episode-end flags (1.0 where the episode ends after step t).
    values : ndarray, shape (T + 1, N)
        V(s_t) for t = 0..T; the last row is the value of the state after the rollout.
    """
    T = len(rewards)
    if values.shape[0] != T + 1:
        raise ValueError(f"values must have T + 1 = {T + 1} rows; got {values.shape[0]}")
    adv = np.zeros(rewards.shape)
    last = np.zeros(rewards.shape[1:])
    for t in reversed(range(T)):
        nonterm = 1.0 - dones[t]
        delta = rewards[t] + gamma * values[t + 1] * nonterm - values[t]
        last = delta + gamma * lam * nonterm * last
        adv[t] = last
    return adv


def normalize_advantages(adv: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    r"""Minibatch advantage normalization :math:`(\hat A - \mathrm{mean}) / (\mathrm{std} + \epsilon)`.

    Parameters
    ----------
    adv : Tensor, shape (n,)
        The minibatch's GAE advantages; ``std`` is the unbiased (n - 1) standard deviation.
    eps : float
        Keeps the division finite when every advantage is equal.
    """
    return (adv - adv.mean()) / (adv.std() + eps)


def clipped_surrogate_loss(ratio: torch.Tensor, adv: torch.Tensor, clip: float) -> torch.Tensor:
    r"""PPO's clipped surrogate as a loss: :math:`-E_t[\min(\rho_t \hat A_t, \mathrm{clip}(\rho_t, 1-\epsilon, 1+\epsilon) \hat A_t)]`.

    The objective :math:`L^{CLIP}` of :cite:`schulman2017proximal` (Eq. 7 there), negated
    and averaged over the batch. A sample whose ratio lies outside
    :math:`[1-\epsilon, 1+\epsilon]` in the direction its advantage favours
    (:math:`\rho_t > 1+\epsilon` with :math:`\hat A_t > 0`, or :math:`\rho_t < 1-\epsilon`
    with :math:`\hat A_t < 0`) contributes a constant: its gradient is zero.

    Parameters
    ----------
    ratio : Tensor, shape (n,)
        :math:`\rho_t = \pi_\theta(a_t|s_t) / \pi_{old}(a_t|s_t)`.
    adv : Tensor, shape (n,)
        Advantages (normalized or not).
    clip : float
        The clip range :math:`\epsilon`.
    """
    return torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip)).mean()


def value_loss(values: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    r"""The critic's loss :math:`\frac12 E_t[(V(s_t) - \hat R_t)^2]`, with :math:`\hat R_t = \hat A_t + V_{old}(s_t)`.

    Parameters
    ----------
    values, returns : Tensor, shape (n,)
        The critic's current values and the GAE return targets.
    """
    return 0.5 * ((values - returns) ** 2).mean()


def annealed_fraction(update: int, anneal_updates: int) -> float:
    r"""The factor of the learning rate and the clip range at the update after ``update`` completed ones.

    Both decay linearly to 0 over ``anneal_updates`` updates: :math:`\max(1 - u / U, 0)`.
    """
    return max(1.0 - update / anneal_updates, 0.0)


def return_targets(advantages: NDArray[np.float64], values: NDArray[np.float64]) -> NDArray[np.float64]:
    r"""The critic's targets :math:`\hat R_t = \hat A_t + V_{old}(s_t)` (the GAE(:math:`\lambda`) returns).

    Parameters
    ----------
    advantages : ndarray, shape (T, N)
        :func:`gae_advantages`.
    values : ndarray, shape (T + 1, N)
        V(s_t) for t = 0..T, as given to :func:`gae_advantages`; the last row is not used.
    """
    T = len(advantages)
    if values.shape[0] != T + 1:
        raise ValueError(f"values must have T + 1 = {T + 1} rows; got {values.shape[0]}")
    return advantages + values[:T]


def minibatch_indices(n: int, n_minibatches: int, n_epochs: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """The minibatches of PPO's optimisation, as indices into a batch of ``n`` samples.

    Each epoch draws a fresh permutation of ``range(n)`` from ``generator`` (at the start of
    the epoch) and cuts it into consecutive slices of ``n // n_minibatches`` indices (a
    shorter last one when that does not divide ``n``), so each epoch visits every sample once.
    """
    size = n // n_minibatches
    if size < 1:
        raise ValueError(f"n_minibatches must be at most n = {n}; got {n_minibatches}")
    for _ in range(n_epochs):
        perm = torch.randperm(n, generator=generator)
        for start in range(0, n, size):
            yield perm[start : start + size]


@dataclass
class _Buffers:
    """The per-step buffers of one rollout of ``n_envs`` environments (see :meth:`PPO._collect_rollout`)."""

    obs: NDArray[np.float32]  # (T, N, obs_dim) normalized observations
    act: NDArray[np.float32]  # (T, N, act_dim), or (T, N, 1) integers for discrete actions
    rew: NDArray[np.float64]  # (T, N) rewards, time-limit ends bootstrapped
    val: NDArray[np.float64]  # (T + 1, N) critic values, the state after the rollout last
    raw0: NDArray[np.float64]  # (T, obs_dim) environment 0's raw observations
    rawn0: NDArray[np.float64]  # (T, obs_dim) and raw next observations
    term: NDArray[np.bool_]  # (T, N)
    trunc: NDArray[np.bool_]  # (T, N)

    @classmethod
    def empty(cls, T: int, N: int, obs_dim: int, act_width: int) -> "_Buffers":
        return cls(
            np.empty((T, N, obs_dim), np.float32),
            np.empty((T, N, act_width), np.float32),
            np.empty((T, N), np.float64),
            np.empty((T + 1, N), np.float64),
            np.empty((T, obs_dim)),
            np.empty((T, obs_dim)),
            np.empty((T, N), bool),
            np.empty((T, N), bool),
        )


#: Called after each rollout: hook(update, rollout of environment 0, policy that collected it).
Hook = Callable[[int, Rollout, PolicySnapshot], None]
#: What a rollout returns: normalized observations, actions, their log-probabilities, rewards,
#: done flags, values (per step and environment), and environment 0's :class:`Rollout`.
_RolloutBuffers = tuple[
    NDArray[np.float32],
    NDArray[np.float32],
    NDArray[np.float32],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    Rollout,
]


class PPO:
    """PPO on a gymnasium vector env of ``config.n_envs`` copies of ``env_id``.

    Parameters
    ----------
    env_id : str
        A registered gymnasium id with Box observations and actions (e.g. ``"HalfCheetah-v5"``).
    config : PPOConfig
    seed : int
        Seeds the environments (sub-env i gets ``seed + i``) and torch's sampling.
    reward_fn : callable, optional
        ``r(s, a)`` on raw observations and sampled actions, used in place of the
        environment's reward (the observer of Section 6.2). Scores are always the true reward.
    hook : callable, optional
        ``hook(update, rollout, policy)`` after each update's rollout, with the rollout of
        environment 0 (``n_steps`` transitions) and the policy that collected it.

    Notes
    -----
    :meth:`train_update` runs one update (rollout + optimisation). :meth:`state_dict` /
    :meth:`load_state_dict` capture the whole training state, the state of every
    environment included (MuJoCo physics, or the attributes of a Python environment such as
    Pendulum-v1), so that a run resumed from a checkpoint continues exactly. Where an
    environment's state cannot be saved (e.g. Box2D), the checkpoint says so
    (``state["envs"]["exact"]`` False) and a resumed run restarts its episodes at the next
    update, with a warning (its attribute ``resumed_exactly`` False).
    """

    def __init__(
        self,
        env_id: str,
        config: PPOConfig | None = None,
        seed: int = 0,
        reward_fn: RewardFn | None = None,
        hook: Hook | None = None,
    ) -> None:
        self.config = cfg = config or PPOConfig()
        self.env_id = check_env_id(env_id, allow_discrete=True)
        self.seed = int(seed)
        self.hook = hook
        self.envs = make_vector_env(
            env_id, cfg.n_envs, reward_fn, norm_obs=cfg.norm_obs, norm_reward=cfg.norm_reward, gamma=cfg.gamma
        )
        self.tap: RolloutTap = _find(self.envs, RolloutTap)
        self.obs_dim = int(np.prod(cast("tuple[int, ...]", self.envs.single_observation_space.shape)))
        space = self.envs.single_action_space
        #: the number of discrete actions (a categorical actor) or None (a Gaussian actor)
        self.n_actions: int | None = int(space.n) if isinstance(space, gym.spaces.Discrete) else None
        self.act_dim = 1 if self.n_actions is not None else int(np.prod(cast("tuple[int, ...]", space.shape)))
        self.gen = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            self.actor: GaussianActor | CategoricalActor
            if self.n_actions is None:
                self.actor = GaussianActor(self.obs_dim, self.act_dim, cfg.hidden)
            else:
                from .categorical import CategoricalActor

                self.actor = CategoricalActor(self.obs_dim, self.n_actions, cfg.hidden)
            self.critic = Critic(self.obs_dim, cfg.hidden)
        self.opt = torch.optim.Adam(
            list(self.actor.parameters()) + list(self.critic.parameters()), lr=cfg.lr, eps=cfg.adam_eps
        )
        obs, _ = self.envs.reset(seed=self.seed)
        self._obs = np.asarray(obs, dtype=np.float32)
        self.update = 0  # completed updates
        self.resumed_exactly = True  # False after loading a checkpoint without the environments' state

    # -- helpers
    def _obs_stats(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        no = _find(self.envs, NormalizeObservation)
        if no is None:
            return np.zeros(self.obs_dim), np.ones(self.obs_dim) - 1e-8
        return no.obs_rms.mean.copy(), no.obs_rms.var.copy()

    def _normalize(self, raw: NDArray[np.float64]) -> NDArray[np.float32]:
        mean, var = self._obs_stats()
        return ((raw - mean) / np.sqrt(var + 1e-8)).astype(np.float32)

    def snapshot(self) -> PolicySnapshot:
        """The current policy with the current observation normalization."""
        mean, var = self._obs_stats()
        state = {k: v.detach().clone() for k, v in self.actor.state_dict().items()}
        return PolicySnapshot(state, mean, var, self.config.hidden)

    def set_obs_stats(self, mean: NDArray[np.float64], var: NDArray[np.float64], count: float) -> None:
        """Overwrite the running observation statistics (used to start from a cloned policy)."""
        no = _find(self.envs, NormalizeObservation)
        if no is None:
            raise ValueError("set_obs_stats needs config.norm_obs=True")
        no.obs_rms.mean = np.asarray(mean, dtype=np.float64).copy()
        no.obs_rms.var = np.asarray(var, dtype=np.float64).copy()
        no.obs_rms.count = float(count)
        self._obs = self._normalize(cast("NDArray[np.float64]", self.tap.raw_obs))

    def freeze_obs_stats(self, frozen: bool = True) -> None:
        """Stop (or restart) the running observation normalization's updates.

        While frozen, the actor and the critic see every state through the statistics in force
        now, so that a policy fitted under them (the observer's behaviour clone, chapter 6) stays
        the same policy on raw states. Saved and restored by :meth:`state_dict`.
        """
        no = _find(self.envs, NormalizeObservation)
        if no is None:
            raise ValueError("freeze_obs_stats needs config.norm_obs=True")
        if not isinstance(frozen, (bool, np.bool_)):
            raise ValueError(f"frozen must be True or False; got {frozen!r}")
        no.update_running_mean = not bool(frozen)

    @property
    def obs_stats_frozen(self) -> bool:
        """True while :meth:`freeze_obs_stats` holds the observation statistics fixed."""
        no = _find(self.envs, NormalizeObservation)
        return no is not None and not no.update_running_mean

    # -- rollout collection
    def _collect_rollout(
        self,
    ) -> _RolloutBuffers:
        """Step the vector env ``n_steps`` times with the current policy.

        Returns the update's buffers (normalized observations, actions, their log-probabilities,
        rewards with time-limit ends bootstrapped, episode-end flags, values with the value of
        the state after the rollout as row ``n_steps``) and environment 0's :class:`Rollout`.

        The arithmetic is that of the textbook loop (sample, evaluate the log-probability and
        the critic, step): the networks are applied layer by layer (``F.linear``/``tanh``, the
        operations their modules run, on the same per-step batches), under
        :func:`torch.inference_mode`; the Gaussian log-probabilities, elementwise per sample,
        are computed once for the whole rollout after the loop. Each step draws its noise from
        ``self.gen`` exactly as before, so the random stream is unchanged.
        """
        if self.n_actions is not None:
            return self._collect_rollout_discrete()
        T, N = self.config.n_steps, self.config.n_envs
        b = _Buffers.empty(T, N, self.obs_dim, self.act_dim)
        mu_b = np.empty((T, N, self.act_dim), np.float32)
        actor_net, critic_net = _layers(cast(GaussianActor, self.actor).mean), _layers(self.critic.v)
        gen = self.gen
        log_std = cast(GaussianActor, self.actor).log_std.detach()
        std = log_std.exp()
        shape = (N, self.act_dim)
        terms = self._reward_terms(std, log_std)
        with torch.inference_mode():
            for t in range(T):
                o = self._observe(b, t, critic_net)
                mu = _apply(actor_net, o)
                a = mu + std * torch.randn(shape, generator=gen)
                if terms is not None:
                    terms.add(a, mu)
                a32 = a.numpy()
                b.act[t], mu_b[t] = a32, mu.numpy()
                self._step(b, t, a32.astype(np.float64), critic_net)
            b.val[T] = _apply(critic_net, torch.from_numpy(self._obs)).numpy()[:, 0]
            a_t, mu_t = torch.from_numpy(b.act), torch.from_numpy(mu_b)
            logp_b = (-0.5 * ((a_t - mu_t) / std) ** 2 - log_std - 0.5 * np.log(2 * np.pi)).sum(-1).numpy()
        if terms is not None:
            terms.record(T)
        return self._finish_rollout(b, logp_b, b.act[:, 0].astype(np.float64))

    def _collect_rollout_discrete(
        self,
    ) -> _RolloutBuffers:
        """:meth:`_collect_rollout` for a categorical actor: actions drawn by ``torch.multinomial`` from ``self.gen``.

        The actions are returned as float32 of shape (T, N, 1) (integers) and environment 0's
        :class:`Rollout` carries ``action_space=n_actions``.
        """
        T, N = self.config.n_steps, self.config.n_envs
        b = _Buffers.empty(T, N, self.obs_dim, 1)
        logp_b = np.empty((T, N), np.float32)
        actor_net, critic_net = _layers(cast("CategoricalActor", self.actor).logits), _layers(self.critic.v)
        with torch.inference_mode():
            for t in range(T):
                o = self._observe(b, t, critic_net)
                logp_all = F.log_softmax(_apply(actor_net, o), dim=-1)
                a = torch.multinomial(logp_all.exp(), 1, generator=self.gen)[:, 0]
                logp_b[t] = logp_all.gather(-1, a[:, None])[:, 0].numpy()
                a64 = a.numpy().astype(np.int64)
                b.act[t, :, 0] = a64
                self._step(b, t, a64, critic_net)
            b.val[T] = _apply(critic_net, torch.from_numpy(self._obs)).numpy()[:, 0]
        return self._finish_rollout(b, logp_b, b.act[:, 0, 0].astype(np.int64), action_space=self.n_actions)

    def _observe(self, b: _Buffers, t: int, critic_net: list[tuple[torch.Tensor, torch.Tensor] | None]) -> torch.Tensor:
        """Record step ``t``'s observations and values; the normalized observations as a tensor."""
        b.obs[t] = self._obs
        o = torch.from_numpy(b.obs[t])
        b.val[t] = _apply(critic_net, o).numpy()[:, 0]
        b.raw0[t] = cast("NDArray[np.float64]", self.tap.raw_obs)[0]
        return o

    def _step(
        self, b: _Buffers, t: int, actions: NDArray[Any], critic_net: list[tuple[torch.Tensor, torch.Tensor] | None]
    ) -> None:
        """Step the environments and record step ``t``'s rewards (with their bootstraps) and episode ends."""
        nobs, r, term, trunc, _ = self.envs.step(actions)
        b.rew[t] = r
        tr_only = (trunc | term) if self.config.bootstrap_terminations else (trunc & ~term)
        if tr_only.any():  # bootstrap time-limit ends (and terminations if asked) with V(true final state)
            fin = self._normalize(cast("NDArray[np.float64]", self.tap.raw_next_obs)[tr_only])
            b.rew[t, tr_only] += self.config.gamma * _apply(critic_net, torch.from_numpy(fin)).numpy()[:, 0]
        b.term[t], b.trunc[t] = term, trunc
        b.rawn0[t] = cast("NDArray[np.float64]", self.tap.raw_next_obs)[0]
        self._obs = np.asarray(nobs, np.float32)

    def _finish_rollout(
        self, b: _Buffers, logp_b: NDArray[np.float32], actions0: NDArray[Any], **rollout_kw: Any
    ) -> _RolloutBuffers:
        """The buffers as :meth:`_collect_rollout` returns them, with environment 0's :class:`Rollout`."""
        done_b = (b.term | b.trunc).astype(np.float64)
        rollout = Rollout(b.raw0, actions0, b.rawn0, b.term[:, 0].copy(), b.trunc[:, 0].copy(), **rollout_kw)
        return b.obs, b.act, logp_b, b.rew, done_b, b.val, rollout

    # -- one update
    def train_update(self) -> dict[str, float]:
        """Collect one rollout of ``n_envs x n_steps`` steps and run the PPO optimisation."""
        cfg = self.config
        T, N = cfg.n_steps, cfg.n_envs
        t_start = time.perf_counter()
        lr_now, clip_now = self._anneal()
        obs_b, act_b, logp_b, rew_b, done_b, val_b, rollout = self._collect_rollout()
        t_rollout = time.perf_counter() - t_start
        if self.hook is not None:
            self.hook(self.update + 1, rollout, self.snapshot())
        adv = gae_advantages(rew_b, val_b, done_b, cfg.gamma, cfg.gae_lambda)
        ret = return_targets(adv, val_b)
        batch = (
            torch.from_numpy(obs_b.reshape(T * N, -1)),
            torch.from_numpy(act_b.reshape(T * N, -1)),
            torch.from_numpy(logp_b.reshape(-1)),
            torch.from_numpy(adv.reshape(-1).astype(np.float32)),
            torch.from_numpy(ret.reshape(-1).astype(np.float32)),
        )
        params = list(self.actor.parameters()) + list(self.critic.parameters())
        clipfracs, pg_l, v_l = [], 0.0, 0.0
        for idx in minibatch_indices(T * N, cfg.n_minibatches, cfg.n_epochs, self.gen):
            ratio, pg_loss, v_loss = self._minibatch_step(batch, idx, clip_now, params)
            with torch.no_grad():
                clipfracs.append(float(((ratio - 1).abs() > clip_now).float().mean()))
            pg_l, v_l = float(pg_loss.detach()), float(v_loss.detach())
        self.update += 1
        recent = self.tap.episode_returns[-10:]
        return {
            "update": self.update,
            "lr": lr_now,
            "clip": clip_now,
            "policy_loss": pg_l,
            "value_loss": v_l,
            "clip_fraction": float(np.mean(clipfracs)),
            "train_return": float(np.mean(recent)) if recent else float("nan"),
            "rollout_s": t_rollout,
            "update_s": time.perf_counter() - t_start,
        }

    def _anneal(self) -> tuple[float, float]:
        """Set the optimizer's learning rate for the next update; (learning rate, clip range) of that update."""
        frac = annealed_fraction(self.update, self.config.anneal_updates)
        lr_now, clip_now = self.config.lr * frac, self.config.clip_coef * frac
        for g in self.opt.param_groups:
            g["lr"] = lr_now
        return lr_now, clip_now

    def _minibatch_step(
        self, batch: tuple[torch.Tensor, ...], idx: torch.Tensor, clip: float, params: list[nn.Parameter]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One Adam step of PPO's loss on the minibatch ``idx``; (ratios, policy loss, value loss)."""
        cfg, actor = self.config, self.actor
        b_obs, b_act, b_logp, b_adv, b_ret = batch
        if self.n_actions is None:
            dist = actor.dist(b_obs[idx])
            new_logp = dist.log_prob(b_act[idx]).sum(-1)
            entropy = cast(GaussianActor, actor).entropy()
        else:  # categorical: the state-dependent entropy, averaged over the minibatch
            new_logp = actor.log_prob(b_obs[idx], b_act[idx])
            entropy = cast("CategoricalActor", actor).entropy(b_obs[idx]).mean()
        ratio = (new_logp - b_logp[idx]).exp()
        adv_mb = normalize_advantages(b_adv[idx])
        pg_loss = clipped_surrogate_loss(ratio, adv_mb, clip)
        v_loss = value_loss(self.critic(b_obs[idx]), b_ret[idx])
        loss = pg_loss + cfg.vf_coef * v_loss - cfg.ent_coef * entropy
        self.opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        self.opt.step()
        return ratio, pg_loss, v_loss

    # -- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The whole training state (networks, optimizer, RNG, environments)."""
        return copy.deepcopy(
            {
                "env_id": self.env_id,
                "config": self.config.to_dict(),
                "seed": self.seed,
                "update": self.update,
                "actor": self.actor.state_dict(),
                "critic": self.critic.state_dict(),
                "opt": self.opt.state_dict(),
                "gen": self.gen.get_state(),
                "obs": self._obs.copy(),
                "envs": _env_state(self.envs),
                **({"obs_stats_frozen": True} if self.obs_stats_frozen else {}),
                **self._options_state(),
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned; raise ValueError if it does not fit."""
        if state.get("env_id") != self.env_id or state.get("config") != self.config.to_dict():
            raise ValueError("checkpoint was written for another environment or PPO configuration")
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.opt.load_state_dict(state["opt"])
        self.gen.set_state(state["gen"])
        self._obs = np.asarray(state["obs"], np.float32).copy()
        self.update = int(state["update"])
        # an environment whose state could not be saved restarts with fresh episodes (seeded by the update)
        self.resumed_exactly = _set_env_state(self.envs, state["envs"], reset_seed=self.seed + 100_003 * self.update)
        if not self.resumed_exactly:
            self._obs = self._normalize(cast("NDArray[np.float64]", self.tap.raw_obs))
            warnings.warn(
                f"{self.env_id}: the environments' state was not saved ({state['envs']['inexact_reason']}); "
                f"resumed after update {self.update} with fresh episodes, so the run does not continue "
                "exactly as it would have without the interruption",
                RuntimeWarning,
                stacklevel=2,
            )
        if self.config.norm_obs:
            self.freeze_obs_stats(bool(state.get("obs_stats_frozen", False)))
        self._load_options(state)

    # -- hooks of the observer's options (lfl_lib.observer_ppo.ObserverPPO)
    def _reward_terms(self, std: torch.Tensor, log_std: torch.Tensor) -> Any:
        """The reward terms added at each step of a Gaussian rollout (``add(a, mu)``, ``record(T)``); None: none."""
        return None

    def _options_state(self) -> dict[str, Any]:
        """The entries of :meth:`state_dict` that the observer's options add."""
        return {}

    def _load_options(self, state: dict[str, Any]) -> None:
        if "anchor" in state or "soft_alpha" in state:
            raise ValueError(
                "checkpoint holds the observer's options (anchor, soft return): load it with "
                "lfl_lib.observer_ppo.ObserverPPO"
            )

    def close(self) -> None:
        self.envs.close()


# ------------------------------------------------------------------ evaluation


def evaluate_episodes(
    env_id: str,
    policy: PolicySnapshot,
    n_episodes: int = 10,
    seed: int = 12345,
    stochastic: bool = False,
    reward_fn: RewardFn | None = None,
) -> dict[str, list[Any]]:
    """Play ``n_episodes`` episodes and report how each went.

    Episode i runs in its own environment, reset with seed ``seed + i``, so every policy
    is scored on the same start states. Actions are the deterministic mean action or, with
    ``stochastic=True``, a sample of the policy's Gaussian as PPO acts while it trains (noise
    from ``numpy.random.default_rng(seed)``); either is clipped to the action box.

    Returns
    -------
    dict
        ``returns`` (undiscounted true returns), ``lengths`` (steps) and ``terminated``
        (True when the episode ended by termination, False at the time limit), one entry
        per episode; with ``reward_fn`` (e.g. a recovered reward's
        :meth:`~lfl_lib.deep_lfl.RewardModel.reward_fn`) also ``reward_fn_returns``, the
        undiscounted sum of ``reward_fn(raw state, action before clipping)`` over each episode,
        the reward a PPO observer of that reward is paid along the same episodes.
    """
    n_episodes = check_positive_int(n_episodes, "n_episodes")
    _quiet_mujoco()
    envs = SyncVectorEnv(
        [functools.partial(gym.make, env_id) for _ in range(n_episodes)], autoreset_mode=AutoresetMode.SAME_STEP
    )
    discrete = isinstance(envs.single_action_space, gym.spaces.Discrete)
    if not discrete:
        low, high = (
            cast(gym.spaces.Box, envs.single_action_space).low,
            cast(gym.spaces.Box, envs.single_action_space).high,
        )
        sigma = cast(GaussianActor, policy.actor()).log_std.detach().exp().numpy().astype(np.float64)
    noise = np.random.default_rng(seed)
    returns, lengths = np.zeros(n_episodes), np.zeros(n_episodes, int)
    terminated = np.zeros(n_episodes, bool)
    other = np.zeros(n_episodes)
    try:
        obs, _ = envs.reset(seed=seed)
        active = np.ones(n_episodes, bool)
        while active.any():
            act = policy.mean_action(np.asarray(obs, np.float64))
            if stochastic and discrete:  # a draw of the categorical policy
                with torch.no_grad():
                    p = (
                        cast("CategoricalActor", policy.actor())
                        .log_probs(policy.normalize(np.asarray(obs, np.float64)))
                        .exp()
                        .double()
                        .numpy()
                    )
                act = (noise.random(len(p))[:, None] > np.cumsum(p / p.sum(1, keepdims=True), 1)).sum(1)
                act = np.minimum(act, p.shape[1] - 1)
            elif stochastic:
                act = act + sigma * noise.standard_normal(act.shape)
            if reward_fn is not None:
                other[active] += np.asarray(reward_fn(np.asarray(obs, np.float64), act), np.float64)[active]
            obs, r, term, trunc, _ = envs.step(act if discrete else np.clip(act, low, high))
            returns[active] += r[active]
            lengths[active] += 1
            terminated |= active & term
            active &= ~(term | trunc)
    finally:
        envs.close()
    out = {"returns": returns.tolist(), "lengths": lengths.tolist(), "terminated": terminated.tolist()}
    if reward_fn is not None:
        out["reward_fn_returns"] = other.tolist()
    return out


def evaluate_policy(
    env_id: str, policy: PolicySnapshot, n_episodes: int = 10, seed: int = 12345
) -> NDArray[np.float64]:
    """Undiscounted true returns of ``n_episodes`` episodes with the deterministic mean action.

    Episode i runs in its own environment, reset with seed ``seed + i``, so every policy
    is scored on the same start states. Actions are clipped to the action box
    (:func:`evaluate_episodes` also reports lengths and how the episodes ended).
    """
    return np.asarray(evaluate_episodes(env_id, policy, n_episodes, seed)["returns"], dtype=np.float64)
