"""Tests of lfl_lib.experiments.aggregate.iqm_interval."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from lfl_lib.experiments.aggregate import iqm_interval


def test_the_point_is_the_25_percent_trimmed_mean_and_the_interval_holds_it():
    x = [1.02, 2.27, 2.33, 3.53, 2.38, 0.4, 1.7, 2.9]
    iqm, lo, hi = iqm_interval(x, reps=500)
    assert_allclose(iqm, stats.trim_mean(x, 0.25), rtol=1e-12)
    assert min(x) <= lo <= iqm <= hi <= max(x)


def test_five_seeds_iqm_is_the_mean_of_the_middle_three():
    # chapter 6's bimodal Hopper row: one score is trimmed from each end
    x = np.array([0.92, 0.02, 0.94, 0.91, 0.01])
    iqm, _, _ = iqm_interval(x, reps=10)
    assert_allclose(iqm, np.sort(x)[1:4].mean(), rtol=1e-12)


def test_it_is_a_function_of_its_arguments_and_leaves_the_global_generator_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = iqm_interval([0.1, 0.5, 0.9, 1.3], reps=200, seed=4)
    assert np.array_equal(np.random.get_state()[1], before)
    np.random.rand(7)
    assert iqm_interval([0.1, 0.5, 0.9, 1.3], reps=200, seed=4) == a


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"values": [1.0]}, "values must be"),
        ({"values": [1.0, float("nan")]}, "values must be"),
        ({"values": [[1.0, 2.0]]}, "values must be"),
        ({"values": [1.0, 2.0], "reps": 0}, "reps must be"),
        ({"values": [1.0, 2.0], "reps": 1.5}, "reps must be"),
    ],
)
def test_bad_input_is_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        iqm_interval(**kwargs)
