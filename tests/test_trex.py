"""Tests of lfl_lib.trex: the reward learned from the learner's time order (T-REX)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from lfl_lib.experiments.reward_bench import spearman
from lfl_lib.trex import TrexConfig, bradley_terry_loss, fit_trex, sample_snippet_pairs, split_episodes

GOAL = np.array([1.0, -0.5, 0.3])


def _episode(skill: float, rng: np.random.Generator, T: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A walk that moves towards GOAL with strength ``skill`` (0: a pure random walk)."""
    s = rng.normal(0.0, 1.0, 3)
    S = np.zeros((T, 3))
    S2 = np.zeros((T, 3))
    for t in range(T):
        s2 = s + 0.15 * skill * (GOAL - s) + 0.1 * rng.normal(size=3)
        S[t], S2[t] = s, s2
        s = s2
    return S, S2


def _true_return(ep: tuple[np.ndarray, np.ndarray]) -> float:
    return float(-np.linalg.norm(ep[0] - GOAL, axis=1).sum())


SKILLS = np.linspace(0.0, 0.6, 6)


def _checkpoints(rng: np.random.Generator, skills=SKILLS, n: int = 8):
    return [[_episode(k, rng) for _ in range(n)] for k in skills]


SMALL = TrexConfig(n_pairs=400, snippet=15, ensemble=2, hidden=(32,), steps=300, batch=16, lr=3e-3)


def test_learned_return_ranks_held_out_trajectories_beyond_the_observed_skills():
    # observed checkpoints of skill 0..0.6; held-out episodes of skill 0..1.2 (beyond the best observed)
    rng = np.random.default_rng(0)
    reward, info = fit_trex(_checkpoints(rng), SMALL, seed=0)
    held = [_episode(k, rng) for k in np.linspace(0.0, 1.2, 30)]
    learned = [float(reward.reward_fn(s).sum()) for s, _ in held]
    true = [_true_return(e) for e in held]
    rho = spearman(np.array(learned), np.array(true))
    assert rho > 0.8, rho  # 0.94 when written
    assert info["train_accuracy"] > 0.7, info


def test_the_loss_decreases():
    rng = np.random.default_rng(1)
    _, info = fit_trex(_checkpoints(rng), SMALL, seed=1)
    assert info["loss_last"] < info["loss_first"] - 0.1, info


def test_determinism_under_a_seed():
    rng = np.random.default_rng(2)
    eps = _checkpoints(rng, n=4)
    x = np.random.default_rng(3).normal(size=(20, 3))
    a = fit_trex(eps, SMALL, seed=5)[0].reward_fn(x)
    b = fit_trex(eps, SMALL, seed=5)[0].reward_fn(x)
    c = fit_trex(eps, SMALL, seed=6)[0].reward_fn(x)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_next_state_reward_and_action_prior():
    rng = np.random.default_rng(4)
    eps = _checkpoints(rng, n=4)
    cfg = TrexConfig(n_pairs=50, snippet=10, ensemble=1, hidden=(8,), steps=5, next_state=True)
    reward, _ = fit_trex(eps, cfg, seed=0)
    s, s2 = eps[0][0]
    with pytest.raises(ValueError, match="next_obs"):
        reward.reward_fn(s)
    base = reward.reward_fn(s, None, s2)
    reward.set_prior(lambda o, a: -np.sum(a**2, 1), 0.5)
    act = np.ones((len(s), 2))
    assert_allclose(reward.reward_fn(s, act, s2), base - 0.5 * 2.0, rtol=1e-12)
    with pytest.raises(ValueError, match="actions"):
        reward.reward_fn(s, None, s2)


def test_split_episodes_cuts_at_dones():
    obs = np.arange(14, dtype=float).reshape(7, 2)
    eps = split_episodes(obs, obs + 1, np.array([0, 1, 0, 0, 1, 0, 0], bool))
    assert [len(s) for s, _ in eps] == [2, 3, 2]
    assert_allclose(eps[1][0], obs[2:5])
    assert_allclose(eps[2][1], obs[5:7] + 1)
    with pytest.raises(ValueError):
        split_episodes(obs, obs, np.zeros(3, bool))


def test_snippet_pairs_prefer_the_later_checkpoint_and_stay_in_range():
    rng = np.random.default_rng(0)
    eps = [[_episode(0.1 * k, rng, T=int(rng.integers(5, 30))) for _ in range(3)] for k in range(4)]
    for i, ei, ti, j, ej, tj, length in sample_snippet_pairs(eps, 500, 12, np.random.default_rng(1)):
        assert i < j
        ni, nj = len(eps[i][ei][0]), len(eps[j][ej][0])
        assert length == min(12, ni, nj)
        assert 0 <= ti <= ni - length and 0 <= tj <= nj - length
    with pytest.raises(ValueError, match="two checkpoints"):
        sample_snippet_pairs(eps[:1], 5, 5, rng)


def test_bradley_terry_loss_values():
    w, b = torch.tensor([0.0, 1.0]), torch.tensor([0.0, 3.0])
    want = -np.mean([np.log(0.5), np.log(1 / (1 + np.exp(-2.0)))])
    assert float(bradley_terry_loss(w, b)) == pytest.approx(want, rel=1e-6)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="snippet"):
        TrexConfig(snippet=0)
    with pytest.raises(ValueError, match="lr"):
        TrexConfig(lr=0.0)
    with pytest.raises(ValueError, match="config"):
        fit_trex(_checkpoints(np.random.default_rng(0), n=2), config={"snippet": 3}, seed=0)  # type: ignore[arg-type]
