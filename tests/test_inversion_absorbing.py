"""lfl_lib.inversion.absorbing_state_fit: a DAC-style absorbing state in Eq. (5) (chapter 6).

The claim checked on random transitions: the absorbing state's reward does not enter Eq. (5)
unless a target is stated for the absorbing state itself, and then it moves one-for-one with
that target (a convention: the learner takes no action there), with the fit of the learner's
transitions unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from lfl_lib.inversion import absorbing_state_fit

S, A, GAMMA = 5, 3, 0.9


def _rollouts(seed: int, n_rollouts: int, n: int = 40, p_end: float = 0.15):
    """Random transitions; every rollout ends at least one episode (a termination)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_rollouts):
        s, a = rng.integers(S, size=n), rng.integers(A, size=n)
        sp = np.where(rng.random(n) < p_end, S, rng.integers(S, size=n))
        sp[0] = S
        out.append((s, a, sp, rng.normal(size=n)))
    return out


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_rollouts=st.integers(1, 4))
def test_absorbing_reward_is_absent_without_its_own_target(seed, n_rollouts):
    fit = absorbing_state_fit(_rollouts(seed, n_rollouts), S, A, GAMMA)
    assert not fit.identified
    assert_allclose(fit.absorbing_reward, 0.0, rtol=0, atol=1e-12)  # a zero column: the minimum-norm value is 0


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1), n_rollouts=st.integers(1, 4), target=st.floats(-20, 20), shift=st.floats(-10, 10)
)
def test_absorbing_reward_moves_one_for_one_with_its_target(seed, n_rollouts, target, shift):
    rollouts = _rollouts(seed, n_rollouts)
    a, b = (absorbing_state_fit(rollouts, S, A, GAMMA, absorbing_target=t) for t in (target, target + shift))
    assert a.identified and b.identified
    rel = lambda fit: fit.absorbing_reward - np.nanmean(fit.reward)
    # tolerances: least-squares solves of a system of about 100 unknowns, condition below 1e4
    assert_allclose(rel(b) - rel(a), shift, rtol=0, atol=1e-7)
    assert_allclose(b.loss, a.loss, rtol=1e-9, atol=1e-9)
    centred = lambda fit: fit.reward - np.nanmean(fit.reward)
    assert_allclose(centred(b), centred(a), rtol=0, atol=1e-7)


def test_an_exact_reward_is_recovered_with_the_right_convention():
    """Targets made by a known reward and shapings: the fit is exact, r_abs included."""
    rng = np.random.default_rng(3)
    r, r_abs = rng.normal(size=(S, A)), -2.0
    f = rng.normal(size=(3, S + 1))
    f[:, S] = 0.7  # one value of the absorbing state's shaping, so that one r_abs explains every self-transition
    rollouts = [
        (s, a, sp, r[s, a] + f[k, s] - GAMMA * f[k, sp]) for k, (s, a, sp, _) in enumerate(_rollouts(5, 3, n=200))
    ]
    fit = absorbing_state_fit(rollouts, S, A, GAMMA, absorbing_target=r_abs + (1 - GAMMA) * 0.7)
    assert fit.identified
    assert_allclose(fit.loss, 0.0, rtol=0, atol=1e-18)
    assert_allclose(fit.absorbing_reward - fit.reward.mean(), r_abs - r.mean(), rtol=0, atol=1e-9)
    assert_allclose(fit.reward - fit.reward.mean(), r - r.mean(), rtol=0, atol=1e-9)


def test_unvisited_pairs_are_nan():
    s, a, sp, t = np.array([0, 1]), np.array([0, 2]), np.array([1, S]), np.array([0.5, -1.0])
    fit = absorbing_state_fit([(s, a, sp, t)], S, A, GAMMA, absorbing_target=0.0)
    assert np.isfinite(fit.reward[0, 0]) and np.isfinite(fit.reward[1, 2])
    assert np.isnan(fit.reward).sum() == S * A - 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(rollouts=[]), "at least one"),
        (dict(rollouts=[(np.array([0]), np.array([0]), np.array([1]))]), "got 3 items"),
        (dict(rollouts=[(np.array([0, 1]), np.array([0]), np.array([1]), np.array([0.0]))]), "one length"),
        (dict(rollouts=[(np.array([S]), np.array([0]), np.array([1]), np.array([0.0]))]), "states must be integers"),
        (dict(rollouts=[(np.array([0]), np.array([A]), np.array([1]), np.array([0.0]))]), "actions must be integers"),
        (dict(rollouts=[(np.array([0]), np.array([0]), np.array([S + 1]), np.array([0.0]))]), "next_states must be"),
        (dict(rollouts=[(np.array([0.5]), np.array([0]), np.array([1]), np.array([0.0]))]), "states must be integers"),
        (dict(rollouts=[(np.array([0]), np.array([0]), np.array([1]), np.array([np.nan]))]), "finite"),
        (dict(gamma=1.0), "gamma"),
        (dict(absorbing_target=float("inf")), "absorbing_target"),
        (dict(n_states=0), "n_states"),
    ],
)
def test_bad_input(kwargs, message):
    args = dict(rollouts=_rollouts(0, 1), n_states=S, n_actions=A, gamma=GAMMA, absorbing_target=None)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        absorbing_state_fit(**args)
