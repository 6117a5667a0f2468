"""Chapter 6's ``terminal="bootstrap"`` candidate: terminations as ordinary states.

In Eq. (5) (``DeepLfLConfig(terminal="bootstrap")``) and in the observer's PPO
(``PPOConfig(bootstrap_terminations=True)``), so that a constant added to the reward is a
potential shaping again and the observer does not depend on the recovered reward's level.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

torch.set_num_threads(1)

from test_deep_lfl import _rollout  # noqa: E402
from test_deep_lfl_kl import REF  # noqa: E402
from lfl_lib.data import Rollout  # noqa: E402
from lfl_lib.deep_lfl import DeepLfLConfig, consistency_residual, recover_reward  # noqa: E402
from lfl_lib.ppo import PPO, PPOConfig  # noqa: E402

TINY = PPOConfig(n_envs=2, n_steps=64, n_epochs=2, n_minibatches=4, anneal_updates=5)
finite = st.floats(-50.0, 50.0, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(finite, finite, finite, finite, st.booleans()), min_size=1, max_size=20),
    finite,
    st.floats(0.5, 0.99),
)
def test_a_constant_is_a_shaping_only_where_no_transition_is_absorbing(rows, c, gamma):
    """r -> r + c with f -> f + c / (1 - gamma) leaves every residual of Eq. (5) unchanged
    on a live transition and moves a terminated one by c * gamma / (1 - gamma)."""
    t, r, fs, fn, alive = (torch.tensor([row[i] for row in rows], dtype=torch.float64) for i in range(5))
    d = c / (1.0 - gamma)
    before = consistency_residual(t, r, fs, fn, alive, gamma)
    after = consistency_residual(t, r + c, fs + d, fn + d, alive, gamma)
    # tolerance: float64 sums of terms up to |c| / (1 - gamma) <= 5000
    assert_allclose((after - before).numpy(), np.where(alive.numpy() == 1, 0.0, c * gamma / (1.0 - gamma)), atol=1e-8)


def _terminating_data():
    rng = np.random.default_rng(11)
    return [_rollout(rng, g, sd, n=128, terminal_every=9) for g, sd in [(-1.0, 1.0), (0.5, 0.7), (2.0, 0.3)]]


def test_bootstrap_treats_a_termination_as_a_time_limit_end():
    rolls = _terminating_data()
    as_trunc = [
        Rollout(r.observations, r.actions, r.next_observations, np.zeros_like(r.terminations), r.terminations.copy())
        for r in rolls
    ]
    x = np.random.default_rng(12).normal(size=(8, 3)), np.random.default_rng(13).normal(size=(8, 2))
    boot, info_b = recover_reward(rolls, dataclasses.replace(REF, terminal="bootstrap"), seed=4)
    trunc, info_t = recover_reward(as_trunc, REF, seed=4)
    absorb, info_a = recover_reward(rolls, REF, seed=4)
    assert info_b == info_t  # the same computation, exactly
    assert_array_equal(boot.reward_fn(*x), trunc.reward_fn(*x))
    # and not the absorbing one: the terminated transitions are explained differently
    assert info_b["policy_nll"] == info_a["policy_nll"]
    assert info_b["consistency"] != info_a["consistency"]
    assert not np.allclose(boot.reward_fn(*x), absorb.reward_fn(*x))


def test_terminal_option_is_checked_and_stored_only_when_used():
    with pytest.raises(ValueError, match="terminal must be 'absorbing' or 'bootstrap'; got 'reset'"):
        DeepLfLConfig(terminal="reset")
    assert "terminal" not in DeepLfLConfig().to_dict()
    d = DeepLfLConfig(terminal="bootstrap").to_dict()
    assert d["terminal"] == "bootstrap" and DeepLfLConfig(**d) == DeepLfLConfig(terminal="bootstrap")


def test_ppo_option_is_checked_and_stored_only_when_used():
    with pytest.raises(ValueError, match="bootstrap_terminations must be True or False; got 'yes'"):
        PPOConfig(bootstrap_terminations="yes")
    assert "bootstrap_terminations" not in PPOConfig().to_dict()
    d = PPOConfig(bootstrap_terminations=True).to_dict()
    assert d["bootstrap_terminations"] is True and PPOConfig(**d).bootstrap_terminations


def test_ppo_bootstraps_terminations_only_when_asked():
    """Same seed, same actions and ends: the training rewards differ exactly at the terminations."""
    a = PPO("Hopper-v5", TINY, seed=3)
    b = PPO("Hopper-v5", dataclasses.replace(TINY, bootstrap_terminations=True), seed=3)
    _, act_a, _, rew_a, done_a, val_a, ro_a = a._collect_rollout()
    _, act_b, _, rew_b, done_b, val_b, ro_b = b._collect_rollout()
    assert_array_equal(act_a, act_b)
    assert_array_equal(done_a, done_b)
    assert_array_equal(val_a, val_b)
    # every environment's terminations: where the done flag is set and the next step does not truncate
    ended = done_a.astype(bool)
    differs = rew_a != rew_b
    assert ro_a.terminations.any(), "a random Hopper falls within 64 steps"
    assert_array_equal(differs[:, 0], ro_a.terminations)  # environment 0: exactly at its terminations
    assert not (differs & ~ended).any()  # nowhere else in any environment
