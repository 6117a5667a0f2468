"""The user's data in (lfl_lib.data), tabular episodes and from_gymnasium, and bad input at every entry point."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from lfl_lib.data import (
    Episode,
    Rollout,
    check_episode_groups,
    check_rollouts,
    episodes_from_arrays,
    load_episodes,
    load_rollout,
    load_rollouts,
    save_episodes,
    save_rollout,
)
from lfl_lib.improvement import soft_improvement
from lfl_lib.mdp import TabularMDP, soft_evaluate, soft_optimal, score, uniform_policy
from lfl_lib.tabular_lfl import fit_lfl, observer_policy, play_policy, recover_reward


def _arrays(T: int = 6, obs_dim: int = 3, act_dim: int = 2, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    term = np.zeros(T, bool)
    term[-1] = True
    return dict(
        observations=rng.normal(size=(T, obs_dim)),
        actions=rng.normal(size=(T, act_dim)),
        next_observations=rng.normal(size=(T, obs_dim)),
        terminations=term,
        truncations=np.zeros(T, bool),
    )


# ------------------------------------------------------------------ Rollout


def test_rollout_accepts_lists_and_1d_actions():
    a = _arrays(act_dim=1)
    r = Rollout(a["observations"].tolist(), a["actions"][:, 0].tolist(), a["next_observations"], [0, 0, 0, 0, 0, 1])
    assert r.actions.shape == (6, 1) and r.actions.dtype == np.float64
    assert r.terminations.dtype == bool and r.terminations[-1]
    assert not r.truncations.any() and len(r) == 6 and (r.obs_dim, r.act_dim) == (3, 1)


def test_ppo_rollout_is_the_same_type():
    from lfl_lib import ppo

    assert ppo.Rollout is Rollout


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(observations=np.full((6, 3), np.nan)), r"observations must be finite"),
        (dict(actions=np.full((6, 2), np.inf)), r"actions must be finite"),
        (dict(terminations=[0, 0, 2, 0, 0, 1]), r"terminations must hold only 0/1"),
        (dict(truncations=[0.5] * 6), r"truncations must hold only 0/1"),
        (dict(terminations=[0, 1]), r"terminations must have shape \(6,\)"),
        (dict(actions=np.zeros((5, 2))), r"must have T = 6 rows"),
        (dict(next_observations=np.zeros((6, 4))), r"next_observations must have the shape"),
        (dict(observations=np.zeros((6, 3, 1))), r"observations must have shape \(T, dim\)"),
        (dict(actions=[["a", "b"]] * 6), r"actions must be an array of real numbers"),
        (dict(actions=[[1.0, 2.0], [1.0]] + [[0.0, 0.0]] * 4), r"actions must be an array of real numbers"),
    ],
)
def test_rollout_rejects_bad_input(change, match):
    a = {**_arrays(), **change}
    with pytest.raises(ValueError, match=match):
        Rollout(**a)


def test_rollout_rejects_empty():
    with pytest.raises(ValueError, match="empty"):
        Rollout(np.zeros((0, 3)), np.zeros((0, 1)), np.zeros((0, 3)), np.zeros(0))


def test_rollout_from_episodes_matches_arrays():
    rng = np.random.default_rng(1)
    ep1 = {"observations": rng.normal(size=(4, 2)), "actions": rng.normal(size=(3, 1)), "terminated": True}
    ep2 = {"observations": rng.normal(size=(3, 2)), "actions": rng.normal(size=2)}  # cut: truncated

    class MinariLike:  # per-step flags, as minari.EpisodeData
        observations = rng.normal(size=(3, 2))
        actions = rng.normal(size=(2, 1))
        terminations = np.array([False, False])
        truncations = np.array([False, True])

    r = Rollout.from_episodes([ep1, ep2, MinariLike()])
    assert len(r) == 7
    assert_array_equal(r.observations[:3], ep1["observations"][:3])
    assert_array_equal(r.next_observations[:3], ep1["observations"][1:])
    assert_array_equal(r.terminations, [0, 0, 1, 0, 0, 0, 0])
    assert_array_equal(r.truncations, [0, 0, 0, 0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"episodes\[0\].observations must have T \+ 1 = 3 rows"):
        Rollout.from_episodes([{"observations": np.zeros((2, 2)), "actions": np.zeros((2, 1))}])
    with pytest.raises(ValueError, match="single episode"):
        Rollout.from_episodes(ep1)
    with pytest.raises(ValueError, match="episodes is empty"):
        Rollout.from_episodes([])


def test_npz_round_trip_and_errors(tmp_path):
    r = Rollout(**_arrays())
    path = save_rollout(r, tmp_path / "D1.npz")
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == sorted(
            ["observations", "actions", "next_observations", "terminations", "truncations"]
        )
        assert z["observations"].shape == (6, 3) and z["terminations"].shape == (6,)
    back = load_rollout(path)
    for k, v in r.to_arrays().items():
        assert_array_equal(getattr(back, k), v)
    assert [len(x) for x in load_rollouts([path, path])] == [6, 6]
    np.savez(tmp_path / "bad.npz", observations=np.zeros((2, 1)))
    with pytest.raises(ValueError, match="lacks the arrays"):
        load_rollout(tmp_path / "bad.npz")
    np.savez(tmp_path / "nan.npz", **{**_arrays(), "actions": np.full((6, 2), np.nan)})
    with pytest.raises(ValueError, match=r"nan.npz.*actions must be finite"):
        load_rollout(tmp_path / "nan.npz")
    with pytest.raises(ValueError, match="does not exist"):
        load_rollout(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="single path"):
        load_rollouts(str(path))
    with pytest.raises(ValueError, match=r"must end in \.npz"):
        save_rollout(r, tmp_path / "x.txt")
    assert not list(tmp_path.glob("*.tmp"))


def test_check_rollouts():
    r = Rollout(**_arrays())
    with pytest.raises(ValueError, match="got a single Rollout"):
        check_rollouts(r)
    with pytest.raises(ValueError, match="at least 2"):
        check_rollouts([r])
    with pytest.raises(ValueError, match=r"rollouts\[1\] must be a lfl_lib.data.Rollout"):
        check_rollouts([r, _arrays()])
    with pytest.raises(ValueError, match=r"rollouts\[1\] has obs_dim, act_dim = 3, 1"):
        check_rollouts([r, Rollout(**_arrays(act_dim=1))])


def test_minari_dataset_round_trip(tmp_path, monkeypatch):
    minari = pytest.importorskip("minari")
    from lfl_lib.data import rollout_from_minari

    from minari.data_collector import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    rng = np.random.default_rng(0)
    bufs = [
        EpisodeBuffer(
            id=i,
            observations=rng.normal(size=(6, 3)).astype(np.float32),
            actions=rng.normal(size=(5, 1)).astype(np.float32),
            rewards=np.zeros(5),
            terminations=np.zeros(5, bool),
            truncations=np.arange(5) == 4,
        )
        for i in range(2)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = minari.create_dataset_from_buffers(
            "test/pendulum-v0", bufs, env=gym.make("Pendulum-v1"), algorithm_name="random"
        )
    r = rollout_from_minari(ds)
    assert len(r) == 10 and (r.obs_dim, r.act_dim) == (3, 1)
    assert_array_equal(r.truncations, [0, 0, 0, 0, 1] * 2)
    assert rollout_from_minari("test/pendulum-v0").observations.shape == (10, 3)
    with pytest.raises(ValueError, match="no local Minari dataset"):
        rollout_from_minari("test/nothing-v0")


# ------------------------------------------------------------------ tabular


def test_from_gymnasium_frozenlake_absorbing_and_reset():
    env = gym.make("FrozenLake-v1")
    mdp = TabularMDP.from_gymnasium(env, gamma=0.9)
    holes_goal = [5, 7, 11, 12, 15]
    assert_array_equal(np.flatnonzero(mdp.terminal), holes_goal)
    assert mdp.start == 0 and mdp.start_probs[0] == 1.0
    for t in holes_goal:
        assert_allclose(mdp.P[t, :, t], 1.0)
    # reaching the goal from 14 pays 1 with probability 1/3 for the slippery moves that reach it
    assert_allclose(mdp.r[14].max(), 1 / 3, atol=1e-12)
    # absorbing with value 0: no reward and no entropy after termination
    pi = uniform_policy(16, 4)
    _, V = soft_evaluate(mdp, pi, 0.5)
    assert_allclose(V[holes_goal], 0.0, atol=1e-12)
    _, _, Vs = soft_optimal(mdp, 0.5)
    assert_allclose(Vs[holes_goal], 0.0, atol=1e-12)
    reset = TabularMDP.from_gymnasium(env, gamma=0.9, terminal="reset")
    assert reset.terminal is None
    assert_allclose(reset.P[5], np.tile(reset.start_probs, (4, 1)))
    with pytest.raises(ValueError, match="terminal must be 'absorbing' or 'reset'"):
        TabularMDP.from_gymnasium(env, terminal="stop")
    with pytest.raises(ValueError, match="transition table"):
        TabularMDP.from_gymnasium(gym.make("Pendulum-v1"))


def test_from_gymnasium_taxi_start_distribution_and_cliff():
    taxi = TabularMDP.from_gymnasium(gym.make("Taxi-v4"), gamma=0.9)
    assert (taxi.n_states, taxi.n_actions) == (500, 6)
    assert (taxi.start_probs > 0).sum() == 300 and taxi.terminal.sum() == 4
    pi = uniform_policy(500, 6)
    _, V = soft_evaluate(taxi, pi, 0.1)
    assert_allclose(score(taxi, pi, 0.1), taxi.start_probs @ V, rtol=1e-12)
    cliff = TabularMDP.from_gymnasium(gym.make("CliffWalking-v1"), gamma=0.99)
    assert cliff.terminal.sum() == 1 and cliff.start == 36


def test_tabularmdp_new_fields_validated():
    P = np.zeros((2, 1, 2))
    P[:, 0, 1] = 1.0
    with pytest.raises(ValueError, match="start_distribution"):
        TabularMDP(P, np.zeros((2, 1)), 0.9, start_distribution=[0.5, 0.6])
    with pytest.raises(ValueError, match="positive probability"):
        TabularMDP(P, np.zeros((2, 1)), 0.9, start=0, start_distribution=[0.0, 1.0])
    with pytest.raises(ValueError, match="absorbing"):
        TabularMDP(P, np.zeros((2, 1)), 0.9, terminal=[True, False])
    m = TabularMDP(P, np.ones((2, 1)), 0.9, terminal=[False, True])
    assert_allclose(m.r[1], 0.0)  # rewards of terminal states are ignored
    assert m.with_reward(np.ones((2, 1))).terminal is not None


def _episodes(env, pis, n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for pi in pis:
        eps = []
        for _ in range(n):
            s, _ = env.reset(seed=int(rng.integers(2**31)))
            st, ac, done = [s], [], False
            while not done:
                a = int(rng.choice(pi.shape[1], p=pi[s]))
                s, _, te, tr, _ = env.step(a)
                st.append(s)
                ac.append(a)
                done = te or tr
            eps.append(Episode(st, ac, terminated=te, truncated=tr and not te))
        out.append(eps)
    return out


def test_recover_reward_from_episodes_of_an_spi_learner():
    """An SPI learner on FrozenLake (terminal states absorbing): the observer does as well as the learner."""
    env = gym.make("FrozenLake-v1")
    mdp = TabularMDP.from_gymnasium(env, gamma=0.99)
    alpha = 0.01
    pis = [uniform_policy(16, 4)]
    for _ in range(3):
        pis.append(soft_improvement(mdp, pis[-1], alpha))
    data = _episodes(env, pis, 300, seed=0)
    res = fit_lfl(data, 16, 4, mdp.gamma, alpha, P=mdp.P)
    assert_allclose(res.weights[:, mdp.terminal, :], 0.0)  # no pair at a terminal state in the loss
    assert_allclose(res.P_hat[:, :, mdp.terminal], 0.0)  # nothing follows a terminal state
    pi_obs = observer_policy(mdp, res.r, alpha)
    obs = play_policy(env, pi_obs, 300, seed=1, greedy=True).mean()
    learner = play_policy(env, pis[-1], 300, seed=1, greedy=True).mean()
    assert obs >= learner - 0.1, (obs, learner)
    # the estimated dynamics give a reward too (terminal states inferred from the episodes)
    r_est = recover_reward(data, 16, 4, mdp.gamma, alpha)
    assert r_est.shape == (16, 4) and np.all(np.isfinite(r_est))


def test_episode_groups_and_files(tmp_path):
    e1 = Episode([0, 1, 5], [2, 1], terminated=True)
    e2 = Episode([0, 4], [1], truncated=True)
    with pytest.raises(ValueError, match="flat list of Episode"):
        recover_reward([e1, e2], 16, 4, 0.9, 1.0)
    with pytest.raises(ValueError, match=r"trajectories\[1\] is empty"):
        check_episode_groups([[e1], []], 16, 4)
    with pytest.raises(ValueError, match=r"trajectories\[0\]\[0\]: states must lie in \[0, 3\]"):
        check_episode_groups([[e1], [e2]], 4, 4)
    with pytest.raises(ValueError, match="at least 2 observed policies"):
        recover_reward([[e1, e2]], 16, 4, 0.9, 1.0)
    with pytest.raises(ValueError, match="both be True"):
        Episode([0, 1], [0], terminated=True, truncated=True)
    with pytest.raises(ValueError, match="one longer"):
        Episode([0, 1], [0, 1])
    with pytest.raises(ValueError, match="action is also taken there"):
        recover_reward([[e1], [Episode([5, 0], [0])]], 16, 4, 0.9, 1.0)
    P = np.full((16, 4, 16), 1 / 16)
    P[0, 2] = np.eye(16)[3]
    with pytest.raises(ValueError, match=r"P gives probability 0 to the observed transition \(0, 2\) -> 1"):
        recover_reward([[e1], [e2]], 16, 4, 0.9, 1.0, P=P)
    with pytest.raises(ValueError, match=r"P must have shape"):
        recover_reward([[e1], [e2]], 16, 4, 0.9, 1.0, P=np.ones((2, 2, 2)))
    path = save_episodes([e1, e2], tmp_path / "p1.npz")
    back = load_episodes(path)
    assert [(list(e.states), list(e.actions), e.terminated, e.truncated) for e in back] == [
        ([0, 1, 5], [2, 1], True, False),
        ([0, 4], [1], False, True),
    ]
    # consecutive transitions that do not chain start a new episode
    eps = episodes_from_arrays([0, 1, 7], [1, 1, 0], [1, 2, 8], [0, 0, 0])
    assert [list(e.states) for e in eps] == [[0, 1, 2], [7, 8]]
