"""Input checks shared by the public functions of :mod:`lfl_lib`.

Every check raises :class:`ValueError` with a message that names the argument and
says what was expected, so that a reader's mistake is reported where it is made.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Absolute tolerance used when checking that probabilities sum to one.
PROB_ATOL = 1e-8


def as_float_array(x: ArrayLike, name: str, ndim: int | None = None) -> NDArray[np.float64]:
    """Convert ``x`` to a float64 array, checking its number of dimensions and finiteness."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of real numbers; got {type(x).__name__}") from exc
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite numbers (no NaN or inf)")
    return arr


def check_gamma(gamma: float, name: str = "gamma") -> float:
    """Return ``gamma`` as a float after checking that it lies in [0, 1)."""
    try:
        g = float(gamma)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number in [0, 1); got {gamma!r}") from exc
    if not np.isfinite(g) or not 0.0 <= g < 1.0:
        raise ValueError(f"{name} must be in [0, 1); got {gamma!r}")
    return g


def check_alpha(alpha: float, name: str = "alpha") -> float:
    """Return ``alpha`` as a float after checking that it is finite and > 0."""
    try:
        a = float(alpha)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a positive number; got {alpha!r}") from exc
    if not np.isfinite(a) or a <= 0.0:
        raise ValueError(f"{name} must be a finite number > 0; got {alpha!r}")
    return a


def check_policy(pi: ArrayLike, n_states: int, n_actions: int, name: str = "pi") -> NDArray[np.float64]:
    """Check that ``pi`` is a stochastic matrix of shape (n_states, n_actions)."""
    arr = as_float_array(pi, name, ndim=2)
    if arr.shape != (n_states, n_actions):
        raise ValueError(f"{name} must have shape (n_states, n_actions) = ({n_states}, {n_actions}); got {arr.shape}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must have non-negative entries; found min {arr.min():.3g}")
    sums = arr.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > PROB_ATOL)
    if bad.size:
        raise ValueError(f"each row of {name} must sum to 1; row {bad[0]} sums to {sums[bad[0]]:.6g}")
    return arr


def check_state_function(f: ArrayLike, n_states: int, name: str) -> NDArray[np.float64]:
    """Check that ``f`` is a finite vector of length n_states."""
    arr = as_float_array(f, name, ndim=1)
    if arr.shape != (n_states,):
        raise ValueError(f"{name} must have shape (n_states,) = ({n_states},); got {arr.shape}")
    return arr


def check_reward(r: ArrayLike, n_states: int, n_actions: int, name: str = "r") -> NDArray[np.float64]:
    """Check that ``r`` is a finite array of shape (n_states, n_actions)."""
    arr = as_float_array(r, name, ndim=2)
    if arr.shape != (n_states, n_actions):
        raise ValueError(f"{name} must have shape (n_states, n_actions) = ({n_states}, {n_actions}); got {arr.shape}")
    return arr


def check_positive_int(n: int, name: str, minimum: int = 1) -> int:
    """Check that ``n`` is an integer >= ``minimum``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}; got {n!r}")
    if n < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {n}")
    return int(n)


def check_real(
    x: object, name: str, minimum: float | None = None, maximum: float | None = None, strict_min: bool = False
) -> float:
    """Return ``x`` as a finite float, checking ``minimum <= x`` (``<`` if ``strict_min``) and ``x <= maximum``."""
    if isinstance(x, bool):
        raise ValueError(f"{name} must be a finite number; got {x!r}")
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a finite number; got {x!r}") from exc
    if not np.isfinite(v):
        raise ValueError(f"{name} must be a finite number; got {x!r}")
    if minimum is not None and (v <= minimum if strict_min else v < minimum):
        raise ValueError(f"{name} must be {'>' if strict_min else '>='} {minimum}; got {x!r}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be <= {maximum}; got {x!r}")
    return v
