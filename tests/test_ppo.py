"""Tests of lfl_lib.ppo: configuration checks, GAE, the observer's rollout, exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

torch.set_num_threads(1)  # small networks: one thread is faster on a shared machine

from lfl_lib.ppo import (PPO, PPOConfig, annealed_fraction, check_env_id, evaluate_policy, gae_advantages,
                         minibatch_indices, return_targets)

TINY = PPOConfig(n_envs=2, n_steps=64, n_epochs=2, n_minibatches=4, anneal_updates=5)


def test_config_rejects_minibatches_that_do_not_divide_the_rollout():
    with pytest.raises(ValueError, match="n_minibatches must divide"):
        PPOConfig(n_envs=2, n_steps=10, n_minibatches=3)


def test_config_rejects_bad_gamma():
    with pytest.raises(ValueError, match="gamma must be in"):
        PPOConfig(gamma=1.5)


def test_unknown_env_id_is_rejected_with_the_known_ids():
    with pytest.raises(ValueError, match="registered gymnasium environment id.*HalfCheetah-v5"):
        check_env_id("HalfCheetah-v99")


def test_discrete_env_is_rejected():
    with pytest.raises(ValueError, match="continuous"):
        check_env_id("CartPole-v1")


def test_gae_with_lambda_one_is_the_discounted_return_minus_the_value():
    # lambda = 1: A_t = sum_l gamma^l r_{t+l} + gamma^{T-t} V(s_T) - V(s_t) within an episode
    rng = np.random.default_rng(0)
    T, gamma = 7, 0.9
    r, v = rng.normal(size=(T, 1)), rng.normal(size=(T + 1, 1))
    d = np.zeros((T, 1))
    adv = gae_advantages(r, v, d, gamma, 1.0)
    for t in range(T):
        ret = sum(gamma ** (k - t) * r[k, 0] for k in range(t, T)) + gamma ** (T - t) * v[T, 0]
        assert_allclose(adv[t, 0], ret - v[t, 0], rtol=1e-12, atol=1e-12)


def test_gae_stops_at_an_episode_end():
    r = np.array([[1.0], [2.0], [4.0]])
    v = np.array([[0.5], [0.25], [1.0], [8.0]])
    d = np.array([[0.0], [1.0], [0.0]])
    adv = gae_advantages(r, v, d, 0.5, 0.5)
    # step 1 ends its episode: A_1 = r_1 - V_1 ; A_2 = r_2 + 0.5 V_3 - V_2 ; A_0 = delta_0 + 0.25 A_1
    assert_allclose(adv[:, 0], [1 + 0.5 * 0.25 - 0.5 + 0.25 * (2 - 0.25), 2 - 0.25, 4 + 4 - 1], rtol=1e-12)


def test_gae_checks_the_value_rows():
    with pytest.raises(ValueError, match="values must have T \\+ 1"):
        gae_advantages(np.zeros((3, 1)), np.zeros((3, 1)), np.zeros((3, 1)), 0.9, 0.9)


# ------------------------------------------------------------------ the update outside its losses


@pytest.mark.parametrize("update, frac", [(0, 1.0), (1, 0.75), (2, 0.5), (4, 0.0), (5, 0.0), (40, 0.0)])
def test_annealed_fraction_decays_linearly_to_zero(update, frac):
    assert annealed_fraction(update, 4) == frac


def test_return_targets_are_the_advantages_plus_the_values_of_the_visited_states():
    rng = np.random.default_rng(1)
    adv, v = rng.normal(size=(5, 3)), rng.normal(size=(6, 3))
    ret = return_targets(adv, v)
    assert ret.shape == (5, 3)
    assert_array_equal(ret, adv + v[:5])
    v2 = v.copy()
    v2[5] = 1e6  # the value after the rollout enters through the advantages only
    assert_array_equal(return_targets(adv, v2), ret)
    with pytest.raises(ValueError, match=r"values must have T \+ 1 = 6 rows; got 5"):
        return_targets(adv, v[:5])
    with pytest.raises(ValueError, match=r"values must have T \+ 1 = 6 rows; got 7"):
        return_targets(adv, np.zeros((7, 3)))


def test_minibatch_indices_cut_one_fresh_permutation_per_epoch():
    gen, ref = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    batches = list(minibatch_indices(12, 3, 2, gen))
    assert [len(b) for b in batches] == [4] * 6
    perms = [torch.randperm(12, generator=ref) for _ in range(2)]
    assert_array_equal(torch.cat(batches[:3]).numpy(), perms[0].numpy())
    assert_array_equal(torch.cat(batches[3:]).numpy(), perms[1].numpy())
    assert not torch.equal(perms[0], perms[1])
    assert torch.equal(gen.get_state(), ref.get_state())  # exactly one permutation drawn per epoch


def test_minibatch_indices_draw_each_permutation_at_the_start_of_its_epoch():
    gen = torch.Generator().manual_seed(0)
    it = minibatch_indices(6, 2, 2, gen)
    first = next(it)
    state = gen.get_state()
    next(it)
    assert torch.equal(gen.get_state(), state)  # the epoch's second minibatch draws nothing
    third = next(it)
    assert not torch.equal(gen.get_state(), state)
    assert len(first) == len(third) == 3


def test_minibatch_indices_with_a_size_that_does_not_divide_and_of_one_sample():
    batches = list(minibatch_indices(10, 3, 1, torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    ones = list(minibatch_indices(4, 4, 1, torch.Generator().manual_seed(0)))
    assert [len(b) for b in ones] == [1, 1, 1, 1] and sorted(torch.cat(ones).tolist()) == [0, 1, 2, 3]
    assert list(minibatch_indices(4, 2, 0, torch.Generator())) == []
    with pytest.raises(ValueError, match="n_minibatches must be at most n = 4; got 5"):
        list(minibatch_indices(4, 5, 1, torch.Generator()))


def test_hook_gets_one_environment_raw_rollout_with_true_final_states():
    seen = []
    ppo = PPO("Hopper-v5", TINY, seed=1, hook=lambda u, ro, pol: seen.append((u, ro, pol)))
    first_obs = ppo.tap.raw_obs[0].copy()
    ppo.train_update()
    (u, ro, pol), = seen
    assert u == 1
    assert ro.observations.shape == (64, 11) and ro.actions.shape == (64, 3)
    assert_array_equal(ro.observations[0], first_obs)  # raw, not normalized
    ends = ro.terminations | ro.truncations
    assert ends.any(), "a random Hopper falls within 64 steps"
    cont = ~ends[:-1]
    # inside an episode s_{t+1} is the next row; at an end it is the final state, not the reset state
    assert_array_equal(ro.next_observations[:-1][cont], ro.observations[1:][cont])
    t = int(np.flatnonzero(ends[:-1])[0])
    assert not np.array_equal(ro.next_observations[t], ro.observations[t + 1])
    # the snapshot acts like the actor on normalized observations
    x = ppo._normalize(ro.observations[:5])
    with torch.no_grad():
        want = ppo.actor.mean(torch.as_tensor(x)).numpy()
    # the PPO update changed the actor after the hook, so compare with the snapshot's own actor
    assert pol.mean_action(ro.observations[:5]).shape == want.shape


def test_reward_fn_replaces_the_training_reward_but_not_the_true_returns():
    calls = []

    def reward_fn(obs, act):
        calls.append(obs.copy())
        return np.ones(len(obs))

    a = PPO("Hopper-v5", TINY, seed=2)
    b = PPO("Hopper-v5", TINY, seed=2, reward_fn=reward_fn)
    seen_a, seen_b = [], []
    a.hook = lambda u, ro, pol: seen_a.append(ro)
    b.hook = lambda u, ro, pol: seen_b.append(ro)
    a.train_update()
    b.train_update()
    # the first rollout is collected before any learning: identical behaviour, identical true returns
    assert_array_equal(seen_a[0].observations, seen_b[0].observations)
    assert a.tap.episode_returns == b.tap.episode_returns
    assert len(calls) == TINY.n_steps
    assert_array_equal(calls[0][0], seen_b[0].observations[0])  # r(s, a) sees raw states


def test_resume_from_state_dict_is_exact():
    a = PPO("Ant-v5", TINY, seed=3)
    a.train_update()
    state = a.state_dict()
    a.train_update()
    a.train_update()
    b = PPO("Ant-v5", TINY, seed=3)
    b.load_state_dict(state)
    b.train_update()
    b.train_update()
    for k, v in a.actor.state_dict().items():
        assert torch.equal(v, b.actor.state_dict()[k]), k
    assert a.tap.episode_returns == b.tap.episode_returns


def test_state_dict_of_another_config_is_refused():
    a = PPO("Reacher-v5", TINY, seed=0)
    other = PPOConfig(n_envs=2, n_steps=64, n_epochs=2, n_minibatches=4, anneal_updates=6)
    b = PPO("Reacher-v5", other, seed=0)
    with pytest.raises(ValueError, match="another environment or PPO configuration"):
        b.load_state_dict(a.state_dict())


def test_evaluation_is_deterministic_and_counts_whole_episodes():
    ppo = PPO("Reacher-v5", TINY, seed=0)
    snap = ppo.snapshot()
    r1 = evaluate_policy("Reacher-v5", snap, n_episodes=10, seed=5)
    r2 = evaluate_policy("Reacher-v5", snap, n_episodes=10, seed=5)
    assert r1.shape == (10,)
    assert_array_equal(r1, r2)
    # Reacher's reward is -distance - control cost per step, over 50-step episodes
    assert np.all(r1 < 0) and np.all(r1 > -50 * 1.5)


# ------------------------------------------------------------------ the released code's score (issue 14)


def test_info_reward_terms_sum_to_the_reward_with_the_unclipped_control_cost():
    from lfl_lib.ppo import RolloutTap, _find, make_vector_env

    envs = make_vector_env("Hopper-v5", 3, norm_obs=False, norm_reward=False)
    tap = _find(envs, RolloutTap)
    tap.capture_reward_terms(10)
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    ended = 0
    try:
        for _ in range(120):
            a = 1.5 * rng.normal(size=(3, 3))  # partly outside the action box [-1, 1]
            _, r, term, trunc, _ = envs.step(a)
            ended += int(np.sum(term | trunc))
            # gymnasium v5 Hopper: reward_forward + reward_ctrl + reward_survive = reward, with the
            # control cost (weight 1e-3) of the clipped action; the queue has the unclipped one's
            want = r + 1e-3 * ((np.clip(a, -1, 1) ** 2).sum(-1) - (a ** 2).sum(-1))
            assert_allclose(list(tap.reward_terms)[-3:], want, rtol=0, atol=1e-12)
    finally:
        envs.close()
    assert ended > 0  # the step's own terms (final_info) were used at episode ends
    assert len(tap.reward_terms) == 10


def test_capturing_the_score_changes_no_number_of_the_learner():
    a, b = PPO("Reacher-v5", TINY, seed=3), PPO("Reacher-v5", TINY, seed=3)
    b.tap.capture_reward_terms(10)
    try:
        a.train_update()
        b.train_update()
        for (k, x), y in zip(a.actor.state_dict().items(), b.actor.state_dict().values()):
            assert torch.equal(x, y), k
        assert a.tap.reward_terms is None and len(b.tap.reward_terms) == 10
    finally:
        a.close()
        b.close()
