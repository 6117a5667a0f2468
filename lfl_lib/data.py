"""The observer's data: what a user brings from the logs of their own learner.

Algorithm 1 needs, for each observed policy :math:`\\pi_1, \\dots, \\pi_K` of the learner
and in the order of the learning, the transitions that policy generated:

- **continuous** states (Box observations), with continuous actions or with **discrete**
  actions (``action_space=Discrete(n)``: integer actions, categorical policies in
  Algorithm 1): one :class:`Rollout` per observed policy, the
  arrays ``observations`` (T, obs_dim), ``actions`` (T, act_dim) or (T,), ``next_observations``
  (T, obs_dim), ``terminations`` (T,) and ``truncations`` (T,); built from arrays
  (lists accepted), from a list of episodes (:meth:`Rollout.from_episodes`), from a
  ``.npz`` file (:func:`load_rollout`, :func:`save_rollout`) or from a Minari dataset
  (:func:`rollout_from_minari`, with the optional extra ``lfl_lib[minari]``);
- **tabular** states and actions: one *list of* :class:`Episode` per observed policy,
  ``[[episodes of pi_1], [episodes of pi_2], ...]`` (:func:`check_episode_groups`).

Episode ends. A **termination** means that the state reached is terminal: it is
treated as **absorbing with value 0** (no reward, no entropy, no shaping after it), so
the terms of Algorithm 1 at the next state are dropped. A **truncation** (a time limit,
or a log that stops) only means that the data stops there: the transition is used as
any other, and the episode is not treated as ended by the task. Every transition of a
truncated episode is therefore usable.

This module needs numpy only (no torch, no gymnasium).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._io import write_npz

__all__ = [
    "Rollout",
    "Episode",
    "ROLLOUT_FIELDS",
    "save_rollout",
    "load_rollout",
    "load_rollouts",
    "check_rollouts",
    "rollout_from_minari",
    "check_episode_groups",
    "episodes_from_arrays",
    "save_episodes",
    "load_episodes",
]

#: The arrays of a rollout, in the order of :class:`Rollout`'s fields (and of a ``.npz`` file).
ROLLOUT_FIELDS = ("observations", "actions", "next_observations", "terminations", "truncations")


def _real_2d(x: ArrayLike, name: str, where: str) -> NDArray[np.float64]:
    """A finite float64 array of shape (T, d); a 1-d array of length T is read as (T, 1)."""
    try:
        arr = np.asarray(x)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"{where}{name} must be an array of real numbers with rows of equal length; {exc}") from exc
    if arr.dtype.kind not in "biuf":
        if arr.dtype == object:
            try:
                arr = np.asarray(x, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{where}{name} must be an array of real numbers (ragged rows?); got {exc}") from exc
        else:
            raise ValueError(f"{where}{name} must be an array of real numbers; got dtype {arr.dtype}")
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{where}{name} must have shape (T, dim) (or (T,) for dim 1); got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError(f"{where}{name} must have at least one column; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{where}{name} must be finite; found {arr[tuple(bad)]} at row {bad[0]}")
    return arr


def _flags(x: ArrayLike, name: str, T: int, where: str) -> NDArray[np.bool_]:
    """A boolean array of shape (T,) from booleans or numbers that are all 0 or 1."""
    arr = np.asarray(x)
    if arr.ndim != 1 or arr.shape[0] != T:
        raise ValueError(f"{where}{name} must have shape ({T},), one flag per transition; got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{where}{name} must hold booleans or 0/1; got dtype {arr.dtype}")
    if arr.dtype.kind != "b" and not np.isin(arr, (0, 1)).all():
        bad = arr[~np.isin(arr, (0, 1))][0].item()
        raise ValueError(f"{where}{name} must hold only 0/1 (or booleans); found {bad!r}")
    return arr.astype(bool)


def _n_actions(space: Any) -> int | None:
    """n for a discrete action space (an int n, or a space with ``n``, e.g. gymnasium's Discrete); None for Box/None."""
    if space is None:
        return None
    if isinstance(space, (int, np.integer)) and not isinstance(space, bool):
        n, start = int(space), 0
    elif hasattr(space, "n") and not hasattr(space, "low"):
        if hasattr(space, "nvec") or np.ndim(space.n) != 0:
            raise ValueError(f"Rollout.action_space: only one discrete action per step is supported; got {space}")
        n, start = int(space.n), int(getattr(space, "start", 0))
        if start != 0:
            raise ValueError(f"Rollout.action_space: a Discrete space must start at 0; got start={start}")
    elif hasattr(space, "low") and hasattr(space, "high") and hasattr(space, "shape"):
        return None
    else:
        raise ValueError(
            "Rollout.action_space must be None, a gymnasium Box or Discrete space, or an int n "
            f"(n discrete actions); got {space!r}"
        )
    if n < 2:
        raise ValueError(f"Rollout.action_space: a discrete space needs at least 2 actions; got {n}")
    return n


def _discrete_actions(x: ArrayLike, n: int, T: int | None, where: str) -> NDArray[np.int64]:
    """Integer actions in [0, n) of shape (T,) (a (T, 1) column is accepted)."""
    arr = np.asarray(x)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"{where}actions must have shape (T,) for a Discrete({n}) action space, one integer per "
            f"step; got shape {arr.shape}"
        )
    if T is not None and arr.shape[0] != T:
        raise ValueError(f"{where}actions must have T = {T} entries like observations; got {arr.shape[0]}")
    if arr.dtype.kind not in "iuf" or (arr.dtype.kind == "f" and not np.all(np.isfinite(arr))):
        raise ValueError(f"{where}actions must be integers for a Discrete({n}) action space; got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and np.any(arr != np.round(arr)):
        bad = arr[arr != np.round(arr)][0]
        raise ValueError(f"{where}actions must be integers for a Discrete({n}) action space; found {bad!r}")
    out = arr.astype(np.int64)
    if out.size and (out.min() < 0 or out.max() >= n):
        bad = out[(out < 0) | (out >= n)][0]
        raise ValueError(f"{where}actions must lie in [0, {n - 1}] for a Discrete({n}) action space; found {bad}")
    return out


@dataclass(frozen=True, eq=False)
class Rollout:
    """The transitions of **one** observed policy of the learner (continuous states and actions).

    Algorithm 1 takes a list of rollouts, one per observed policy, in the order of the
    learning (:func:`lfl_lib.deep_lfl.recover_reward`). The transitions may come from
    several episodes, one after the other, or from any number of parallel environments.

    Parameters
    ----------
    observations : array_like, shape (T, obs_dim)
        States :math:`s_t` as the environment gives them (raw, unnormalized).
    actions : array_like, shape (T, act_dim)
        Actions :math:`a_t` taken by the policy (a 1-d array of length T is read as
        (T, 1), for a 1-d action space).
    next_observations : array_like, shape (T, obs_dim)
        States :math:`s_{t+1}` reached; at an episode's end the true final state (not the
        state after a reset).
    terminations : array_like of bool, shape (T,)
        (or 0/1) True where :math:`s_{t+1}` is terminal: it is then treated as absorbing with
        value 0 (the terms of Algorithm 1 at :math:`s_{t+1}` are dropped).
    truncations : array_like of bool, shape (T,), optional
        True where the episode was cut after this step (time limit, end of log) without
        reaching a terminal state. Such transitions are used like any other. Default:
        all False.
    action_space : gymnasium space or int, optional
        The learner's action space. None or a ``Box``: continuous actions (the default).
        A ``Discrete(n)`` space (or the int ``n``): discrete actions, stored as int64 of
        shape (T,), each checked to be an integer in [0, n). Integer actions given
        without an action space are read as a continuous 1-d action, with a warning.

    Lists are accepted wherever arrays are; the arrays are stored as float64 and bool
    (discrete actions as int64).

    Raises
    ------
    ValueError
        An empty rollout, a non-numeric or non-finite (NaN, inf) value, a wrong number of
        dimensions or of rows, ``observations`` and ``next_observations`` of different
        shapes, or a flag other than 0/1. The message names the array.
    """

    observations: NDArray[np.float64]
    actions: NDArray[np.float64]
    next_observations: NDArray[np.float64]
    terminations: NDArray[np.bool_]
    truncations: NDArray[np.bool_] | None = None
    action_space: Any = None

    def __post_init__(self) -> None:
        w = "Rollout."
        obs = _real_2d(self.observations, "observations", w)
        T = obs.shape[0]
        if T == 0:
            raise ValueError("Rollout.observations is empty: a rollout needs at least one transition")
        n = _n_actions(self.action_space)
        act: NDArray[np.float64] | NDArray[np.int64]
        if n is None:
            act = _real_2d(self.actions, "actions", w)
            if np.asarray(self.actions).dtype.kind in "iu":  # readable now: _real_2d accepted it
                import warnings

                warnings.warn(
                    "Rollout.actions are integers but no action_space was given: they are read as a "
                    "continuous action; pass action_space=gymnasium.spaces.Discrete(n) (or n) for "
                    "discrete actions",
                    UserWarning,
                    stacklevel=3,
                )
            shape = getattr(self.action_space, "shape", None)
            if shape is not None and int(np.prod(shape)) != act.shape[1]:
                raise ValueError(
                    f"Rollout.actions have {act.shape[1]} columns; action_space {self.action_space} "
                    f"has {int(np.prod(shape))}"
                )
        else:
            act = _discrete_actions(self.actions, n, T, w)
        object.__setattr__(self, "action_space", n if n is not None else self.action_space)
        nxt = _real_2d(self.next_observations, "next_observations", w)
        if act.shape[0] != T or nxt.shape[0] != T:
            hint = ""
            raw = {k: np.shape(getattr(self, k)) for k in ("observations", "actions", "next_observations")}
            if act.shape[0] == obs.shape[1] or nxt.shape[0] == obs.shape[1]:
                hint = f" (is observations transposed? its shape is {raw['observations']}; expected (T, obs_dim))"
            elif len(raw["actions"]) == 2 and raw["actions"][1] == T:
                hint = f" (is actions transposed? its shape is {raw['actions']}; expected (T, act_dim))"
            elif len(raw["next_observations"]) == 2 and raw["next_observations"][1] == T:
                hint = f" (is next_observations transposed? its shape is {raw['next_observations']})"
            raise ValueError(
                f"Rollout.actions and next_observations must have T = {T} rows like observations; "
                f"got {act.shape[0]} and {nxt.shape[0]}{hint}"
            )
        if nxt.shape != obs.shape:
            raise ValueError(
                f"Rollout.next_observations must have the shape of observations {obs.shape}; got {nxt.shape}"
            )
        term = _flags(self.terminations, "terminations", T, w)
        trunc = np.zeros(T, bool) if self.truncations is None else _flags(self.truncations, "truncations", T, w)
        for name, arr in zip(ROLLOUT_FIELDS, (obs, act, nxt, term, trunc)):
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        """T, the number of transitions."""
        return int(self.actions.shape[0])

    @property
    def obs_dim(self) -> int:
        return int(self.observations.shape[1])

    @property
    def act_dim(self) -> int:
        """Columns of ``actions``: the action's dimension (1 for discrete actions)."""
        return 1 if self.actions.ndim == 1 else int(self.actions.shape[1])

    @property
    def n_actions(self) -> int | None:
        """n for discrete actions (``action_space=Discrete(n)``); None for continuous actions."""
        return self.action_space if isinstance(self.action_space, int) else None

    def to_arrays(self) -> dict[str, NDArray[Any]]:
        """The five arrays by name (the content of a ``.npz`` file), and ``n_actions`` for discrete actions."""
        out = {k: getattr(self, k) for k in ROLLOUT_FIELDS}
        if self.n_actions is not None:
            out["n_actions"] = np.asarray(self.n_actions, dtype=np.int64)
        return out

    def save(self, path: str | Path) -> Path:
        """Write the rollout to ``path`` (``.npz``); see :func:`~lfl_lib.data.save_rollout`."""
        return save_rollout(self, path)

    @classmethod
    def load(cls, path: str | Path) -> "Rollout":
        """Read a rollout from a ``.npz`` file; see :func:`~lfl_lib.data.load_rollout`."""
        return load_rollout(path)

    @classmethod
    def from_episodes(cls, episodes: Iterable[Any], action_space: Any = None) -> "Rollout":
        """One rollout from the episodes that one policy played, concatenated in order.

        Parameters
        ----------
        episodes : iterable
            Each episode is a mapping or an object with ``observations`` of shape
            (T + 1, obs_dim) (the first state to the last, the state reached by the last
            action included) and ``actions`` of shape (T, act_dim), and either per-step
            flags ``terminations`` and ``truncations`` of shape (T,) (as Minari's
            ``EpisodeData``) or one flag per episode, ``terminated`` (default False) and
            ``truncated``. An episode that is not terminated is used as truncated.
        action_space : gymnasium space or int, optional
            As for :class:`Rollout` (``Discrete(n)`` or ``n`` for discrete actions).

        Raises
        ------
        ValueError
            No episode, an episode without actions, or an inconsistent episode (the
            message gives its index).
        """
        if isinstance(episodes, (Mapping, Rollout)) or hasattr(episodes, "observations"):
            raise ValueError("episodes must be a list of episodes; got a single episode (wrap it in a list)")
        parts: dict[str, list[Any]] = {k: [] for k in ROLLOUT_FIELDS}
        n = 0
        for i, ep in enumerate(episodes):
            get: Callable[..., Any] = (
                ep.get if isinstance(ep, Mapping) else (lambda k, d=None, ep=ep: getattr(ep, k, d))
            )
            w = f"episodes[{i}]."
            if get("observations") is None or get("actions") is None:
                raise ValueError(f"episodes[{i}] must have 'observations' and 'actions'")
            obs = _real_2d(get("observations"), "observations", w)
            n_act = _n_actions(action_space)
            act = (
                _real_2d(get("actions"), "actions", w)
                if n_act is None
                else _discrete_actions(get("actions"), n_act, None, w)
            )
            T = act.shape[0]
            if T == 0:
                raise ValueError(f"episodes[{i}].actions is empty: an episode needs at least one action")
            if obs.shape[0] != T + 1:
                raise ValueError(
                    f"episodes[{i}].observations must have T + 1 = {T + 1} rows for {T} actions "
                    f"(the state after the last action included); got {obs.shape[0]}"
                )
            if get("terminations") is not None:
                term = _flags(get("terminations"), "terminations", T, w)
                trunc = (
                    _flags(get("truncations"), "truncations", T, w)
                    if get("truncations") is not None
                    else np.zeros(T, bool)
                )
                if term[:-1].any():
                    raise ValueError(f"episodes[{i}].terminations: only the last step may be terminal")
            else:
                term = np.zeros(T, bool)
                trunc = np.zeros(T, bool)
                term[-1] = bool(_flags([get("terminated", False)], "terminated", 1, w)[0])
                trunc[-1] = (
                    (not term[-1])
                    if get("truncated") is None
                    else bool(_flags([get("truncated")], "truncated", 1, w)[0])
                )
            parts["observations"].append(obs[:-1])
            parts["actions"].append(act)
            parts["next_observations"].append(obs[1:])
            parts["terminations"].append(term)
            parts["truncations"].append(trunc)
            n += 1
        if n == 0:
            raise ValueError("episodes is empty: a rollout needs at least one episode")
        dims = {(o.shape[1], a.shape[1] if a.ndim == 2 else 1) for o, a in zip(parts["observations"], parts["actions"])}
        if len(dims) > 1:
            raise ValueError(f"episodes must all have the same observation and action sizes; got {sorted(dims)}")
        return cls(**{k: np.concatenate(v) for k, v in parts.items()}, action_space=action_space)


def save_rollout(rollout: Rollout, path: str | Path) -> Path:
    """Write ``rollout`` to ``path`` as a ``.npz`` file with the five arrays of :data:`ROLLOUT_FIELDS`.

    Discrete actions add the scalar array ``n_actions`` (the size of the Discrete space).

    Written atomically (a temporary file renamed): an interrupted write leaves no file.
    Readable with plain ``numpy.load`` (no pickle).
    """
    if not isinstance(rollout, Rollout):
        raise ValueError(f"rollout must be a lfl_lib.data.Rollout; got {type(rollout).__name__}")
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"path must end in .npz; got {str(path)!r}")
    if not path.parent.is_dir():
        raise ValueError(f"path: folder {str(path.parent)!r} does not exist")
    write_npz(rollout.to_arrays(), path)
    return path


def load_rollout(path: str | Path) -> Rollout:
    """Read one observed policy's rollout from a ``.npz`` file (see :func:`save_rollout`).

    ``truncations`` may be missing (all False); a scalar ``n_actions`` marks discrete actions
    (``action_space=n``); other arrays are ignored. Loaded without pickle (``allow_pickle=False``).

    Raises
    ------
    ValueError
        A missing or unreadable file, a missing array, or data that :class:`Rollout`
        refuses (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"rollout file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - any failure means an unreadable file
        raise ValueError(
            f"rollout file {str(path)!r} is not a readable .npz file ({type(exc).__name__}: {exc})"
        ) from exc
    missing = [k for k in ROLLOUT_FIELDS[:4] if k not in arrays]
    if missing:
        raise ValueError(f"rollout file {str(path)!r} lacks the arrays {missing}; it holds {sorted(arrays)}")
    space = int(arrays["n_actions"]) if "n_actions" in arrays and np.ndim(arrays["n_actions"]) == 0 else None
    try:
        return Rollout(**{k: arrays[k] for k in ROLLOUT_FIELDS if k in arrays}, action_space=space)
    except ValueError as exc:
        raise ValueError(f"rollout file {str(path)!r}: {exc}") from exc


def load_rollouts(paths: Sequence[str | Path]) -> list[Rollout]:
    """Read one rollout per observed policy, in the order given (at least two files)."""
    if isinstance(paths, (str, Path)):
        raise ValueError("paths must be a list of .npz files, one per observed policy; got a single path")
    rollouts = [load_rollout(p) for p in paths]
    return check_rollouts(rollouts, "paths")


def check_rollouts(rollouts: Any, name: str = "rollouts", minimum: int = 2) -> list[Rollout]:
    """Check a list of :class:`Rollout` (one per observed policy, at least ``minimum``); return it as a list.

    Raises
    ------
    ValueError
        A single rollout instead of a list, too few rollouts, an element that is not a
        Rollout, or rollouts with different observation or action sizes.
    """
    if isinstance(rollouts, Rollout):
        raise ValueError(
            f"{name} must be a list of Rollout, one per observed policy in order; "
            "got a single Rollout (Algorithm 1 needs at least two policies)"
        )
    if isinstance(rollouts, (str, bytes, Mapping)) or not hasattr(rollouts, "__iter__"):
        raise ValueError(f"{name} must be a list of Rollout, one per observed policy; got {type(rollouts).__name__}")
    out = list(rollouts)
    if len(out) < minimum:
        raise ValueError(f"{name} must hold at least {minimum} rollouts (one per observed policy); got {len(out)}")
    for k, r in enumerate(out):
        if not isinstance(r, Rollout):
            raise ValueError(f"{name}[{k}] must be a lfl_lib.data.Rollout; got {type(r).__name__}")
        if (r.obs_dim, r.act_dim) != (out[0].obs_dim, out[0].act_dim):
            raise ValueError(
                f"{name}[{k}] has obs_dim, act_dim = {r.obs_dim}, {r.act_dim}; "
                f"{name}[0] has {out[0].obs_dim}, {out[0].act_dim}"
            )
        if r.n_actions != out[0].n_actions:

            def kind(n: int | None) -> str:
                return "continuous actions" if n is None else f"Discrete({n}) actions"

            raise ValueError(f"{name}[{k}] has {kind(r.n_actions)}; {name}[0] has {kind(out[0].n_actions)}")
    return out


def rollout_from_minari(dataset: Any, episode_indices: Sequence[int] | None = None) -> Rollout:
    """One observed policy's rollout from a Minari dataset (all its episodes, or those listed).

    Parameters
    ----------
    dataset : minari dataset or str
        A loaded dataset, or the id of a dataset in the local Minari folder (loaded with
        ``minari.load_dataset(id)``; nothing is downloaded).
    episode_indices : sequence of int, optional

    Notes
    -----
    Minari stores one dataset per data-collecting policy; for Algorithm 1 give one
    dataset per observed policy of the learner, in order. Needs the optional extra
    ``pip install lfl_lib[minari]`` (``minari[hdf5]``). Only flat Box observations, and
    Box or Discrete action spaces, are supported. Writing a Minari dataset (``minari.DataCollector``,
    ``create_dataset_from_buffers``) needs ``pip install "minari[create]"``, which brings in jax.
    """
    try:
        import minari
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("rollout_from_minari needs the optional extra: pip install 'lfl_lib[minari]'") from exc
    if isinstance(dataset, str):
        try:
            dataset = minari.load_dataset(dataset)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"dataset: no local Minari dataset {dataset!r} ({type(exc).__name__}: {exc})") from exc
    if not hasattr(dataset, "iterate_episodes"):
        raise ValueError(f"dataset must be a minari.MinariDataset or a dataset id; got {type(dataset).__name__}")
    eps = list(dataset.iterate_episodes(episode_indices))
    for i, ep in enumerate(eps):
        if isinstance(ep.observations, dict) or isinstance(ep.actions, dict):
            raise ValueError(
                f"dataset episode {i}: only flat Box observations and Box or Discrete actions are supported"
            )
    space = getattr(dataset, "action_space", None)
    return Rollout.from_episodes(eps, action_space=space if hasattr(space, "n") else None)


# ----------------------------------------------------------------------------- tabular


@dataclass(frozen=True, eq=False)
class Episode:
    """One episode :math:`s_0, a_0, s_1, \\dots, a_{T-1}, s_T` of a tabular learner.

    Group the episodes per observed policy: Algorithm 1
    (:func:`lfl_lib.tabular_lfl.recover_reward`) takes one list of episodes per policy,
    ``[[episodes of pi_1], [episodes of pi_2], ...]``.

    Parameters
    ----------
    states : array_like of int, shape (T + 1,)
        Visited states, the state reached by the last action included.
    actions : array_like of int, shape (T,)
        Actions taken, T >= 1.
    terminated : bool, default False
        True when ``states[-1]`` is terminal: it is treated as **absorbing with value
        0** (no action is taken there, nothing is learned about it).
    truncated : bool, default False
        True when the episode was cut (time limit, end of the log). A truncated
        episode's transitions are all used.
    """

    states: NDArray[np.int64]
    actions: NDArray[np.int64]
    terminated: bool = False
    truncated: bool = False

    def __post_init__(self) -> None:
        from .trajectories import _as_index_array

        states = _as_index_array(self.states, "Episode.states")
        actions = _as_index_array(self.actions, "Episode.actions")
        if actions.size == 0:
            raise ValueError("Episode.actions must hold at least one action")
        if states.size != actions.size + 1:
            raise ValueError(
                f"Episode.states must be one longer than actions (the state after the last action "
                f"included); got {states.size} states and {actions.size} actions"
            )
        if min(states.min(), actions.min()) < 0:
            raise ValueError("Episode.states and Episode.actions must be non-negative indices")
        for name in ("terminated", "truncated"):
            v = getattr(self, name)
            if not isinstance(v, (bool, np.bool_)) and v not in (0, 1):
                raise ValueError(f"Episode.{name} must be a bool; got {v!r}")
            object.__setattr__(self, name, bool(v))
        if self.terminated and self.truncated:
            raise ValueError(
                "Episode: terminated and truncated cannot both be True (gymnasium reports terminated when both happen)"
            )
        states.setflags(write=False)
        actions.setflags(write=False)
        object.__setattr__(self, "states", states)
        object.__setattr__(self, "actions", actions)

    def __len__(self) -> int:
        return int(self.actions.size)


def check_episode_groups(
    groups: Any, n_states: int, n_actions: int, minimum: int = 2, name: str = "trajectories"
) -> list[list[Episode]]:
    """Check ``[[Episode, ...] per observed policy]``; return it as lists.

    Raises
    ------
    ValueError
        A flat list of episodes (not grouped per policy), fewer than ``minimum``
        groups, an empty group, an element that is not an :class:`Episode`, or a state or
        action out of range. The message says where.
    """
    if isinstance(groups, Episode) or not hasattr(groups, "__iter__"):
        raise ValueError(
            f"{name} must be a list with one list of Episode per observed policy; got {type(groups).__name__}"
        )
    out = [g for g in groups]
    if out and all(isinstance(g, Episode) for g in out):
        raise ValueError(
            f"{name} is a flat list of Episode: group them per observed policy, in order, "
            "as [[episodes of policy 1], [episodes of policy 2], ...]"
        )
    if len(out) < minimum:
        raise ValueError(f"{name} must hold at least {minimum} observed policies; got {len(out)}")
    res = []
    for k, g in enumerate(out):
        if isinstance(g, Episode) or not hasattr(g, "__iter__"):
            raise ValueError(
                f"{name}[{k}] must be a list of Episode (the episodes of policy {k + 1}); got {type(g).__name__}"
            )
        eps = list(g)
        if not eps:
            raise ValueError(f"{name}[{k}] is empty: every observed policy needs at least one episode")
        for j, ep in enumerate(eps):
            if not isinstance(ep, Episode):
                raise ValueError(f"{name}[{k}][{j}] must be a lfl_lib.data.Episode; got {type(ep).__name__}")
            if ep.states.max() >= n_states:
                raise ValueError(f"{name}[{k}][{j}]: states must lie in [0, {n_states - 1}]; found {ep.states.max()}")
            if ep.actions.max() >= n_actions:
                raise ValueError(
                    f"{name}[{k}][{j}]: actions must lie in [0, {n_actions - 1}]; found {ep.actions.max()}"
                )
        res.append(eps)
    return res


def episodes_from_arrays(
    observations: ArrayLike,
    actions: ArrayLike,
    next_observations: ArrayLike,
    terminations: ArrayLike,
    truncations: ArrayLike | None = None,
) -> list[Episode]:
    """Split one policy's tabular transitions (integer states) into :class:`Episode` objects.

    The arrays are those of a rollout, with integer states and actions of shape (T,). An
    episode ends after a termination, a truncation, a state that does not continue into
    the next transition (``next_observations[t] != observations[t + 1]``) or the last
    transition (a truncation if not flagged).
    """
    from .trajectories import _as_index_array

    s = _as_index_array(observations, "observations")
    a = _as_index_array(actions, "actions")
    s2 = _as_index_array(next_observations, "next_observations")
    T = s.size
    if T == 0:
        raise ValueError("observations is empty: a policy's data needs at least one transition")
    if a.size != T or s2.size != T:
        raise ValueError(
            f"actions and next_observations must have T = {T} entries like observations; got {a.size} and {s2.size}"
        )
    term = _flags(terminations, "terminations", T, "")
    trunc = np.zeros(T, bool) if truncations is None else _flags(truncations, "truncations", T, "")
    ends = term | trunc
    ends[:-1] |= s2[:-1] != s[1:]
    ends[-1] = True
    out, start = [], 0
    for t in np.flatnonzero(ends):
        out.append(Episode(np.append(s[start : t + 1], s2[t]), a[start : t + 1], bool(term[t]), bool(not term[t])))
        start = int(t) + 1
    return out


def save_episodes(episodes: Sequence[Episode], path: str | Path) -> Path:
    """Write one policy's tabular episodes as a ``.npz`` with the five rollout arrays (integer states, shape (T,))."""
    if isinstance(episodes, Episode) or not episodes or not all(isinstance(e, Episode) for e in episodes):
        raise ValueError("episodes must be a non-empty list of lfl_lib.data.Episode")
    path = Path(path)
    if path.suffix != ".npz" or not path.parent.is_dir():
        raise ValueError(f"path must be a .npz file in an existing folder; got {str(path)!r}")
    arrays = {
        "observations": np.concatenate([e.states[:-1] for e in episodes]),
        "actions": np.concatenate([e.actions for e in episodes]),
        "next_observations": np.concatenate([e.states[1:] for e in episodes]),
        "terminations": np.concatenate(
            [np.arange(len(e)) == len(e) - 1 if e.terminated else np.zeros(len(e), bool) for e in episodes]
        ),
        "truncations": np.concatenate(
            [np.arange(len(e)) == len(e) - 1 if not e.terminated else np.zeros(len(e), bool) for e in episodes]
        ),
    }
    write_npz(arrays, path)
    return path


def load_episodes(path: str | Path) -> list[Episode]:
    """Read one policy's tabular episodes from a ``.npz`` written by :func:`save_episodes` (no pickle)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"episode file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"episode file {str(path)!r} is not a readable .npz file ({type(exc).__name__})") from exc
    missing = [k for k in ROLLOUT_FIELDS[:4] if k not in arrays]
    if missing:
        raise ValueError(f"episode file {str(path)!r} lacks the arrays {missing}")
    try:
        return episodes_from_arrays(**{k: arrays[k] for k in ROLLOUT_FIELDS if k in arrays})
    except ValueError as exc:
        raise ValueError(f"episode file {str(path)!r}: {exc}") from exc
