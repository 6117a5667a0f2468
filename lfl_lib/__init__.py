"""lfl_lib: the library behind the executable textbook of *Learning from a Learner*.

Jacq, Geist, Paiva and Pietquin, "Learning from a Learner", ICML 2019.
One small module per idea; each chapter of the book explains and calls one of them.

The main entry points for your own learner's logs are importable from here (loaded on
first use, so that ``import lfl_lib`` stays fast and does not import torch):

- data in: :class:`~lfl_lib.data.Rollout`, :func:`~lfl_lib.data.load_rollout`,
  :func:`~lfl_lib.data.save_rollout` (continuous), :class:`~lfl_lib.data.Episode`
  and :meth:`TabularMDP.from_gymnasium <lfl_lib.mdp.TabularMDP.from_gymnasium>` (tabular);
- reward out: ``recover_reward`` (continuous, :func:`lfl_lib.deep_lfl.recover_reward`;
  :func:`~lfl_lib.recovery.recover_with_checkpoints` for its full result, resumable),
  ``recover_tabular_reward`` (:func:`lfl_lib.tabular_lfl.recover_reward`), :func:`~lfl_lib.observer.save_reward`,
  :func:`~lfl_lib.observer.load_reward`, :class:`~lfl_lib.observer.RecoveredReward`;
- observer: :func:`~lfl_lib.observer.behaviour_clone`,
  :func:`~lfl_lib.observer.train_observer`, :func:`~lfl_lib.tabular_lfl.observer_policy`,
  :func:`~lfl_lib.tabular_lfl.play_policy`;
- the command line ``lfl recover|observe`` (also ``python -m lfl_lib``; :mod:`lfl_lib.cli`).
"""

from __future__ import annotations

import importlib
from typing import Any

from lfl_lib.code_paths import pin as _pin

_pin()  # MKL_CBWR=AVX2 unless set: the same float rounding on Intel and AMD (lfl_lib.code_paths)

__version__ = "0.1.0"

#: Public name -> (module, attribute), imported on first access.
_LAZY: dict[str, tuple[str, str]] = {
    "Rollout": ("lfl_lib.data", "Rollout"),
    "Episode": ("lfl_lib.data", "Episode"),
    "load_rollout": ("lfl_lib.data", "load_rollout"),
    "load_rollouts": ("lfl_lib.data", "load_rollouts"),
    "save_rollout": ("lfl_lib.data", "save_rollout"),
    "rollout_from_minari": ("lfl_lib.data", "rollout_from_minari"),
    "TabularMDP": ("lfl_lib.mdp", "TabularMDP"),
    "recover_reward": ("lfl_lib.deep_lfl", "recover_reward"),
    "DeepLfLConfig": ("lfl_lib.deep_lfl", "DeepLfLConfig"),
    "recover_with_checkpoints": ("lfl_lib.recovery", "recover_with_checkpoints"),
    "Recovery": ("lfl_lib.recovery", "Recovery"),
    "recover_tabular_reward": ("lfl_lib.tabular_lfl", "recover_reward"),
    "TabularLfLConfig": ("lfl_lib.tabular_lfl", "TabularLfLConfig"),
    "observer_policy": ("lfl_lib.tabular_lfl", "observer_policy"),
    "play_policy": ("lfl_lib.tabular_lfl", "play_policy"),
    "save_reward": ("lfl_lib.observer", "save_reward"),
    "load_reward": ("lfl_lib.observer", "load_reward"),
    "RecoveredReward": ("lfl_lib.observer", "RecoveredReward"),
    "behaviour_clone": ("lfl_lib.observer", "behaviour_clone"),
    "train_observer": ("lfl_lib.observer", "train_observer"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lfl_lib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
