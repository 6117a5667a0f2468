"""Scores over seeds as the field reports them: the interquartile mean and its bootstrap interval.

Chapters 6 and 9 report every column of final normalized scores (one per seed) with its
interquartile mean (IQM: the mean of the middle half of the scores, the 25 % trimmed mean) and a
95 % stratified-bootstrap confidence interval, computed by ``rliable`` (Agarwal et al. 2021, the
convention for few-seed RL results). With one task the stratified bootstrap resamples the seeds.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["iqm_interval"]


def iqm_interval(values: Sequence[float], reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """IQM of per-seed scores with its 95 % stratified-bootstrap interval (``rliable``).

    Parameters
    ----------
    values : sequence of float
        One finite score per seed (at least 2).
    reps : int
        Bootstrap resamples (>= 1).
    seed : int
        rliable draws its resamples from numpy's global generator; it is seeded with ``seed`` for
        the call and restored afterwards, so the interval is a function of the arguments alone.

    Returns
    -------
    (iqm, low, high) : tuple of float
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or len(x) < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"values must be a 1-D sequence of at least 2 finite scores; got {values!r}")
    if not isinstance(reps, (int, np.integer)) or isinstance(reps, bool) or reps < 1:
        raise ValueError(f"reps must be an int >= 1; got {reps!r}")
    try:
        from rliable import library as rly
        from rliable import metrics
    except ImportError as exc:  # pragma: no cover - rliable is in the book extra
        raise ImportError("iqm_interval needs rliable: pip install -e '.[book]'") from exc
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        point, ci = rly.get_interval_estimates(
            {"x": x[:, None]}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=int(reps)
        )
    finally:
        np.random.set_state(state)
    return float(point["x"][0]), float(ci["x"][0, 0]), float(ci["x"][1, 0])
