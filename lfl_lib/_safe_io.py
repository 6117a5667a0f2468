"""Checkpoint files that load under ``torch.load(path)`` with its default ``weights_only=True``.

``torch.save`` pickles anything; ``torch.load`` refuses, by default, every object that is
not a tensor or a plain Python container/number/string. NumPy arrays and scalars are
the only other things the library saves, so :func:`to_safe` replaces each array by a
tagged dict ``{"__ndarray__": tensor}`` (the tensor holds the same values and dtype) and
each NumPy scalar by a Python number; :func:`from_safe` undoes it. Nothing in a file
written by :func:`save` needs unpickling of arbitrary objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ._io import atomic_write

_TAG = "__ndarray__"


def to_safe(obj: Any) -> Any:
    """``obj`` with every NumPy array and scalar replaced by a weights_only-loadable form."""
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise ValueError("cannot store an object array in a weights_only checkpoint")
        return {_TAG: torch.from_numpy(np.array(obj, copy=True))}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: to_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_safe(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_safe(v) for v in obj)
    return obj


def from_safe(obj: Any) -> Any:
    """Inverse of :func:`to_safe`."""
    if isinstance(obj, dict):
        if len(obj) == 1 and _TAG in obj:
            return obj[_TAG].numpy().copy()
        return {k: from_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_safe(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(from_safe(v) for v in obj)
    return obj


def save(obj: Any, path: str | Path) -> None:
    """``torch.save(to_safe(obj))`` atomically: a temporary file in the same folder, then renamed."""
    atomic_write(path, lambda f: torch.save(to_safe(obj), f))


def load(path: str | Path) -> Any:
    """``from_safe(torch.load(path, weights_only=True))``."""
    return from_safe(torch.load(path, weights_only=True))


def load_checkpoint(path: Path, keys: Sequence[str]) -> dict[str, Any]:
    """A checkpoint written by :func:`save` holding ``keys``; any failure becomes a clear ValueError."""
    try:
        obj = load(path)  # torch.load(weights_only=True): no arbitrary unpickling
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise ValueError(
            f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}; a checkpoint written by an "
            "older lfl_lib needed full unpickling); delete it to redo that stage"
        ) from exc
    if not isinstance(obj, dict) or any(k not in obj for k in keys):
        raise ValueError(f"checkpoint {path} is corrupt: expected the keys {list(keys)}; delete it to redo that stage")
    return obj
