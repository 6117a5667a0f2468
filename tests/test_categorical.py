"""Discrete actions with Box observations: the data type, categorical Algorithm 1, and its tabular case.

With one-hot observations of a tabular MDP, the categorical policies' closed-form KL and
the sampled targets of Eq. (5) are the tabular targets of Theorem 2
(:func:`lfl_lib.tabular_lfl.targets`); the whole recovery finds the exact inversion's
reward up to a shaping.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from conftest import observe_argv
from lfl_lib.categorical import CategoricalActor, categorical_kl, policy_table
from lfl_lib.data import Rollout, check_rollouts, load_rollout
from lfl_lib.deep_lfl import DeepLfLConfig, Standardizer, consistency_targets, divergence_targets, recover_reward
from lfl_lib.improvement import soft_improvement
from lfl_lib.inversion import invert_soft_improvement, kl_divergence
from lfl_lib.mdp import random_mdp, softmax_policy
from lfl_lib.tabular_lfl import targets as tabular_targets

# ------------------------------------------------------------------ the data type


def _obs(T: int, d: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(T, d))


def test_rollout_with_a_discrete_space_keeps_integer_actions():
    o = _obs(5)
    for space in (gym.spaces.Discrete(3), 3):
        r = Rollout(o, [0, 2, 1, 1, 0], o, np.zeros(5, bool), action_space=space)
        assert r.n_actions == 3 and r.act_dim == 1 and r.actions.dtype == np.int64 and r.actions.shape == (5,)
    r = Rollout(o, np.array([[0.0], [2.0], [1.0], [1.0], [0.0]]), o, np.zeros(5, bool), action_space=3)
    assert r.actions.tolist() == [0, 2, 1, 1, 0]  # a column of integral floats (a .npz written by hand)
    assert Rollout(o, o[:, :2], o, np.zeros(5, bool)).n_actions is None


@pytest.mark.parametrize(
    "actions,match",
    [
        ([0, 1, 3, 0, 1], r"must lie in \[0, 2\]"),
        ([0, -1, 2, 0, 1], r"must lie in \[0, 2\]"),
        ([0, 0.5, 1, 0, 1], "must be integers"),
        ([[0, 1]] * 5, r"shape \(T,\)"),
        ([0, 1, 2], "T = 5"),
    ],
)
def test_discrete_space_refuses_bad_actions(actions, match):
    o = _obs(5)
    with pytest.raises(ValueError, match=match):
        Rollout(o, actions, o, np.zeros(5, bool), action_space=gym.spaces.Discrete(3))


def test_integer_actions_without_a_space_warn_and_spaces_are_checked():
    o = _obs(4)
    with pytest.warns(UserWarning, match="action_space=gymnasium.spaces.Discrete"):
        Rollout(o, np.array([0, 1, 1, 0]), o, np.zeros(4, bool))
    with pytest.raises(ValueError, match="start at 0"):
        Rollout(o, [0, 1, 1, 0], o, np.zeros(4, bool), action_space=gym.spaces.Discrete(2, start=1))
    with pytest.raises(ValueError, match="at least 2 actions"):
        Rollout(o, [0, 0, 0, 0], o, np.zeros(4, bool), action_space=1)
    with pytest.raises(ValueError, match="columns"):
        Rollout(o, o[:, :2], o, np.zeros(4, bool), action_space=gym.spaces.Box(-1, 1, (3,)))
    a = Rollout(o, [0, 1, 1, 0], o, np.zeros(4, bool), action_space=2)
    b = Rollout(o, o[:, :1], o, np.zeros(4, bool))
    with pytest.raises(ValueError, match=r"continuous actions; rollouts\[0\] has Discrete\(2\)"):
        check_rollouts([a, b])


def test_discrete_rollout_file_round_trip(tmp_path):
    o = _obs(4)
    r = Rollout(o, [0, 1, 1, 0], o, np.zeros(4, bool), action_space=2)
    back = load_rollout(r.save(tmp_path / "d.npz"))
    assert back.n_actions == 2 and back.actions.tolist() == [0, 1, 1, 0]


# ------------------------------------------------------------------ the tabular case


def _linear_actor(pi: np.ndarray) -> CategoricalActor:
    """A categorical actor whose logits on one-hot state s are ln pi[s] (no hidden layer)."""
    S, A = pi.shape
    actor = CategoricalActor(S, A, hidden=())
    with torch.no_grad():
        actor.logits[0].weight.copy_(torch.as_tensor(np.log(pi).T, dtype=torch.float32))
        actor.logits[0].bias.zero_()
    return actor


@pytest.fixture
def improvement():
    rng = np.random.default_rng(0)
    mdp = random_mdp(4, 3, rng, gamma=0.9)
    pi1 = softmax_policy(rng.normal(size=(4, 3)), 1.0)
    return mdp, pi1, soft_improvement(mdp, pi1, 1.0)


def test_categorical_kl_is_the_tabular_kl(improvement):
    _, pi1, pi2 = improvement
    eye = torch.eye(4)
    p, q = _linear_actor(pi1), _linear_actor(pi2)
    assert_allclose(policy_table(p, np.eye(4)), pi1, atol=1e-6)
    assert_allclose(categorical_kl(p, q, eye).detach().double().numpy(), kl_divergence(pi1, pi2), atol=1e-6)
    norm = Standardizer(np.zeros(4), np.ones(4))
    assert_allclose(
        divergence_targets([p, q], norm, [eye])[0].detach().double().numpy(), kl_divergence(pi1, pi2), atol=1e-6
    )


def test_sampled_targets_average_to_the_tabular_targets(improvement):
    """Eq. (5)'s targets at every (s, a, s'), weighted by P(s'|s, a): Theorem 2's tabular targets (float32: 1e-5)."""
    mdp, pi1, pi2 = improvement
    S, A = pi1.shape
    s, a, s2 = (x.reshape(-1) for x in np.meshgrid(np.arange(S), np.arange(A), np.arange(S), indexing="ij"))
    eye = np.eye(S)
    X = [torch.as_tensor(eye[s], dtype=torch.float32)] * 2
    AA = [torch.as_tensor(a)] * 2
    X2 = [torch.as_tensor(eye[s2], dtype=torch.float32)] * 2
    live = [torch.ones(len(s))] * 2
    kl = torch.as_tensor(kl_divergence(pi1, pi2), dtype=torch.float32)

    def rho(x: torch.Tensor) -> torch.Tensor:  # the exact divergence, one column for the one improvement
        return (x @ kl)[:, None]

    norm = Standardizer(np.zeros(S), np.ones(S))
    sampled = (
        consistency_targets(
            [_linear_actor(pi1), _linear_actor(pi2)], rho, norm, X, AA, X2, live, alpha=0.7, gamma=mdp.gamma
        )[0]
        .detach()
        .double()
        .numpy()
    )
    averaged = (sampled.reshape(S, A, S) * mdp.P).sum(-1)
    assert_allclose(averaged, tabular_targets([pi1, pi2], mdp.P, mdp.gamma, 0.7)[0], atol=1e-5)


def test_recovery_on_one_hot_observations_finds_the_exact_inversion_up_to_a_shaping(improvement):
    """Algorithm 1 with categorical policies on 3,000 sampled transitions per policy of a 4-state MDP.

    Tolerance: the residual of r_phi - r12 after the best shaping f(s) - gamma P f is at most
    0.2 at every (s, a) and 0.1 in RMS, against a spread (std) of r12 of 0.74; with one-hot
    states the estimates differ from the exact inversion only by sampling noise.
    """
    mdp, pi1, pi2 = improvement
    S, A = pi1.shape
    r12 = invert_soft_improvement(mdp, pi1, pi2, 1.0)
    rng = np.random.default_rng(1)
    eye = np.eye(S)

    def data(pi: np.ndarray, T: int = 3000) -> Rollout:
        s = rng.integers(S, size=T)
        a = (rng.random(T)[:, None] > np.cumsum(pi[s], 1)).sum(1)
        s2 = (rng.random(T)[:, None] > np.cumsum(mdp.P[s, a], 1)).sum(1)
        return Rollout(eye[s], a, eye[s2], np.zeros(T, bool), action_space=A)

    torch.set_num_threads(1)
    cfg = DeepLfLConfig(
        alpha_model=1.0,
        gamma=mdp.gamma,
        entropy_bonus=0.0,
        lr=1e-2,
        hidden=(32, 32),
        shared_units=32,
        policy_steps=200,
        kl_steps=200,
        reward_init_steps=200,
        consistency_steps=600,
    )
    reward, info = recover_reward([data(pi1), data(pi2)], cfg, seed=0)
    r_phi = np.stack([reward.reward_fn(eye, np.full(S, b)) for b in range(A)], 1)
    assert_allclose(np.exp(r_phi).sum(1), 1.0, atol=1e-5)  # r_phi = ln pi_phi: a categorical log-density
    M = np.zeros((S * A, S))  # the shaping's design: f(s) - gamma sum_s' P(s'|s,a) f(s')
    for x in range(S):
        M[x * A : (x + 1) * A, x] += 1.0
        M[x * A : (x + 1) * A] -= mdp.gamma * mdp.P[x]
    d = (r_phi - r12).reshape(-1)
    res = d - M @ np.linalg.lstsq(M, d, rcond=None)[0]
    assert np.abs(res).max() < 0.2 and np.sqrt((res**2).mean()) < 0.1, (np.abs(res).max(), r12.std())
    # the log-density limitation: at every state r_phi's argmax is pi_phi's mode
    assert (r_phi.argmax(1) == policy_table(reward.policy, reward.norm(torch.eye(S)).numpy()).argmax(1)).all()


def test_recover_refuses_exact_log_std_for_discrete_actions():
    o = _obs(6)
    D = [Rollout(o, [0, 1, 0, 1, 0, 1], o, np.zeros(6, bool), action_space=2)] * 2
    with pytest.raises(ValueError, match="log_std='exact' is for continuous actions"):
        recover_reward(D, DeepLfLConfig(log_std="exact"))


def test_a_transposed_array_gets_a_hint():
    o = _obs(20, 3)
    with pytest.raises(ValueError, match="is observations transposed"):
        Rollout(o.T, o[:, :1], o, np.zeros(20, bool))
    with pytest.raises(ValueError, match="is actions transposed"):
        Rollout(o, o[:, :2].T, o, np.zeros(20, bool))


# ------------------------------------------------------------------ PPO and the observer on discrete actions


def test_ppo_with_a_categorical_actor_learns_cartpole_a_little_and_resumes_exactly():
    from lfl_lib.observer_ppo import ObserverPPO
    from lfl_lib.ppo import PPO, PPOConfig, evaluate_policy

    torch.set_num_threads(1)
    cfg = PPOConfig(n_envs=2, n_steps=128, n_epochs=4, n_minibatches=4, anneal_updates=20, ent_coef=0.0)
    ppo = PPO("CartPole-v1", cfg, seed=0)
    assert ppo.n_actions == 2 and isinstance(ppo.actor, CategoricalActor)
    before = evaluate_policy("CartPole-v1", ppo.snapshot(), 3, 0).mean()
    for _ in range(2):
        ppo.train_update()
    saved = ppo.state_dict()
    straight = ppo.train_update()
    again = PPO("CartPole-v1", cfg, seed=0)
    again.load_state_dict(saved)
    resumed = again.train_update()
    for k in ("policy_loss", "value_loss", "clip_fraction"):
        assert resumed[k] == straight[k], k  # bitwise: the same draws from the same generator
    snap = ppo.snapshot()
    acts = snap.mean_action(np.zeros((3, 4)))
    assert acts.dtype == np.int64 and set(acts.tolist()) <= {0, 1}
    assert np.isfinite(before)
    ppo.close(), again.close()
    with pytest.raises(ValueError, match="discrete actions"):
        ObserverPPO("CartPole-v1", cfg, seed=0).set_soft(0.1)


def test_cli_recover_and_observe_on_cartpole(tmp_path):
    """The CLI end to end on discrete actions: rollouts of two CartPole policies -> reward.pt -> observer."""
    import json

    from lfl_lib.cli import main
    from lfl_lib.observer import load_reward

    rng = np.random.default_rng(0)
    env = gym.make("CartPole-v1")
    paths = []
    for k, p_right in enumerate((0.5, 0.7)):
        eps = []
        for i in range(3):
            o, _ = env.reset(seed=10 * k + i)
            states, acts, term = [o], [], False
            while not term and len(acts) < 60:
                a = int(rng.random() < (p_right if states[-1][2] > 0 else 1 - p_right))
                o, _, term, _, _ = env.step(a)
                states.append(o), acts.append(a)
            eps.append({"observations": np.array(states), "actions": np.array(acts), "terminated": term})
        paths.append(str(Rollout.from_episodes(eps, action_space=env.action_space).save(tmp_path / f"D{k}.npz")))
    rec = tmp_path / "rec"
    assert (
        main(
            [
                "recover",
                "--rollouts",
                *paths,
                "--env",
                "CartPole-v1",
                "--out",
                str(rec),
                "--steps",
                "20",
                "--no-progress",
            ]
        )
        == 0
    )
    rep = json.loads((rec / "recover_report.json").read_text())
    assert rep["n_actions"] == 2 and rep["fitted_policy_std"] == [None, None]
    assert load_reward(rec).n_actions == 2
    obs = tmp_path / "obs"
    assert main(observe_argv(rec, "CartPole-v1", start=paths[-1], bc_steps=20, out=obs)) == 0
    scores = json.loads((obs / "observe_report.json").read_text())["scores"]
    assert len(scores) == 2 and all(1 <= x <= 500 for x in scores)
    assert (
        main(
            [
                "recover",
                "--rollouts",
                *paths,
                "--env",
                "Pendulum-v1",
                "--out",
                str(tmp_path / "x"),
                "--steps",
                "2",
                "--no-progress",
            ]
        )
        == 2
    )
