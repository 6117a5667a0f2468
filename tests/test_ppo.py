"""Tests of lfl_lib.ppo: configuration checks, GAE, the update's arithmetic, the observer's rollout, exact resume,
and the observer's options of chapter 6 (set_anchor, set_soft, train_critic, freeze_obs_stats)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

torch.set_num_threads(1)  # small networks: one thread is faster on a shared machine

from lfl_lib.observer_ppo import ObserverPPO  # noqa: E402
from lfl_lib.ppo import (PPO, PolicySnapshot, PPOConfig, annealed_fraction, check_env_id, evaluate_policy,  # noqa: E402
                         gae_advantages, minibatch_indices, return_targets)

TINY = PPOConfig(n_envs=2, n_steps=64, n_epochs=2, n_minibatches=4, anneal_updates=5)
# no reward normalization, so that the reward buffer shows the anchor's and the soft term in the reward's units
TINY_RAW = PPOConfig(n_envs=2, n_steps=64, n_epochs=2, n_minibatches=2, anneal_updates=5, norm_reward=False)
TINY_2MB = PPOConfig(n_envs=2, n_steps=64, n_epochs=2, n_minibatches=2, anneal_updates=5)
TINY_WARMUP = PPOConfig(n_envs=2, n_steps=128, n_epochs=4, n_minibatches=4, anneal_updates=5)
HOPPER = "Hopper-v5"


def _zero_reward(obs: np.ndarray, act: np.ndarray) -> np.ndarray:
    return np.zeros(len(obs))


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


# ------------------------------------------------------------------ ObserverPPO.set_anchor: a KL anchor (chapter 6's observer_anchor)


def _other_policy(ppo: PPO, seed: int) -> PolicySnapshot:
    """A policy unlike ``ppo``'s: other weights, a smaller sigma, another normalization."""
    other = ObserverPPO(HOPPER, TINY_RAW, seed=seed)
    other.train_update()
    snap = other.snapshot()
    snap.actor_state["log_std"] = snap.actor_state["log_std"] - 0.3
    other.close()
    return snap


def test_the_anchor_term_is_minus_w_times_the_log_ratio_of_the_sampled_action():
    ppo = ObserverPPO(HOPPER, TINY_RAW, seed=0, reward_fn=_zero_reward)
    anchor, w = _other_policy(ppo, seed=5), 0.43
    ppo.set_anchor(anchor, w)
    obs_b, _, logp_b, rew_b, done_b, _, roll = ppo._collect_rollout()
    # recomputed independently for environment 0 with torch's Normal: pi on the observations as the
    # rollout normalized them (the running statistics move during it), pi_0 on the raw ones
    with torch.no_grad():
        a = torch.as_tensor(roll.actions, dtype=torch.float32)
        lp = ppo.actor.dist(torch.from_numpy(obs_b[:, 0])).log_prob(a).sum(-1).double().numpy()
        lp0 = anchor.actor().dist(anchor.normalize(roll.observations)).log_prob(a).sum(-1).double().numpy()
    assert_allclose(lp, logp_b[:, 0], atol=1e-4)  # the rollout's own log-probabilities
    # no time-limit end in 64 steps, terminations not bootstrapped: the reward is the anchor term alone
    assert_allclose(rew_b[:, 0], -w * (lp - lp0), rtol=1e-4, atol=1e-4)
    assert len(ppo.anchor_kl) == 1
    assert_allclose(ppo.anchor_kl[0], np.mean(-rew_b / w), rtol=1e-4)
    # sampled from pi, the log-ratio averages to KL(pi || pi_0) > 0
    assert ppo.anchor_kl[0] > 0


def test_an_anchor_at_the_current_policy_changes_nothing_at_first():
    # fixed observation statistics: with running ones, pi (moving normalization) leaves pi_0 (fixed) at once
    cfg = PPOConfig(**{**TINY_RAW.to_dict(), "norm_obs": False})
    plain = ObserverPPO(HOPPER, cfg, seed=3, reward_fn=_zero_reward)
    anchored = ObserverPPO(HOPPER, cfg, seed=3, reward_fn=_zero_reward)
    anchored.set_anchor(anchored.snapshot(), 1.0)
    a, b = plain._collect_rollout(), anchored._collect_rollout()
    assert_array_equal(a[1], b[1])  # the same actions: the anchor draws no random number
    assert_allclose(b[3], a[3], atol=1e-5)  # log-ratio 0 up to float32 rounding
    assert_allclose(anchored.anchor_kl, [0.0], atol=1e-6)


def test_the_anchor_survives_a_checkpoint_and_an_unanchored_one_clears_it():
    ppo = ObserverPPO(HOPPER, TINY_RAW, seed=1, reward_fn=_zero_reward)
    ppo.set_anchor(ppo.snapshot(), 0.5)
    ppo.train_update()
    state = ppo.state_dict()
    resumed = ObserverPPO(HOPPER, TINY_RAW, seed=1, reward_fn=_zero_reward)
    resumed.load_state_dict(state)
    assert resumed.anchor_weight == 0.5 and resumed.anchor_kl == ppo.anchor_kl
    for k, v in ppo.anchor.actor_state.items():
        assert torch.equal(v, resumed.anchor.actor_state[k])
    # both continue exactly alike
    ppo.train_update(), resumed.train_update()
    assert ppo.anchor_kl == resumed.anchor_kl
    for p, q in zip(ppo.actor.parameters(), resumed.actor.parameters()):
        assert torch.equal(p, q)
    # a checkpoint without an anchor (older ones) removes it
    resumed.load_state_dict(ObserverPPO(HOPPER, TINY_RAW, seed=1).state_dict())
    assert resumed.anchor is None and resumed.anchor_kl == []


def test_set_anchor_refuses_bad_input():
    ppo = ObserverPPO(HOPPER, TINY_RAW, seed=0)
    snap = ppo.snapshot()
    for w in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="weight must be a finite number > 0"):
            ppo.set_anchor(snap, w)
    with pytest.raises(TypeError, match="policy must be a PolicySnapshot or None"):
        ppo.set_anchor({"actor_state": {}}, 1.0)
    reacher = ObserverPPO("Reacher-v5", TINY_RAW, seed=0)
    with pytest.raises(ValueError, match="policy must act on 10 observations and 2 actions; got 11 and 3"):
        reacher.set_anchor(snap, 1.0)
    assert reacher.anchor is None and ppo.anchor is None  # nothing half-set


# ------------------------------------------------------------------ ObserverPPO.set_soft: the soft return (chapter 6's observer_soft)


def test_the_soft_term_is_minus_alpha_times_the_sampled_log_probability():
    ppo = ObserverPPO(HOPPER, TINY_RAW, seed=0, reward_fn=_zero_reward)
    alpha = 0.7
    ppo.set_soft(alpha)
    obs_b, _, logp_b, rew_b, _, _, roll = ppo._collect_rollout()
    with torch.no_grad():  # recomputed independently with torch's Normal, environment 0
        a = torch.as_tensor(roll.actions, dtype=torch.float32)
        lp = ppo.actor.dist(torch.from_numpy(obs_b[:, 0])).log_prob(a).sum(-1).double().numpy()
    # no time-limit end in 64 steps, terminations not bootstrapped: the reward is the soft term alone
    assert_allclose(rew_b[:, 0], -alpha * lp, rtol=1e-4, atol=1e-4)
    assert_allclose(rew_b, -alpha * logp_b, rtol=1e-4, atol=1e-4)
    # the rollout's mean of -ln pi estimates the Gaussian's entropy: sum of log sigma + d/2 ln(2 pi e)
    d = ppo.act_dim
    entropy = float(ppo.actor.log_std.detach().sum()) + 0.5 * d * np.log(2 * np.pi * np.e)
    assert len(ppo.soft_entropy) == 1
    assert_allclose(ppo.soft_entropy[0], np.mean(-logp_b), rtol=1e-6)
    assert_allclose(ppo.soft_entropy[0], entropy, atol=0.3)  # 128 samples of a chi-square / 2 (sd ~ 0.15)
    ppo.close()


def test_the_soft_term_adds_to_the_anchor_term_and_draws_no_random_number():
    plain = ObserverPPO(HOPPER, TINY_RAW, seed=3, reward_fn=_zero_reward)
    both = ObserverPPO(HOPPER, TINY_RAW, seed=3, reward_fn=_zero_reward)
    anchor = both.snapshot()  # pi_0 unlike pi: its noise narrower, so the anchor term is far from 0
    anchor.actor_state["log_std"] = anchor.actor_state["log_std"] - 0.5
    both.set_anchor(anchor, 0.5)
    both.set_soft(0.7)
    a, b = plain._collect_rollout(), both._collect_rollout()
    assert_array_equal(a[1], b[1])  # the same actions
    soft_only = ObserverPPO(HOPPER, TINY_RAW, seed=3, reward_fn=_zero_reward)
    soft_only.set_soft(0.7)
    c = soft_only._collect_rollout()
    assert_allclose(c[3], -0.7 * c[2], rtol=1e-4, atol=1e-4)
    # with the anchor too, the reward is the soft term plus the anchor's: their mean difference is
    # -0.5 times the anchor's mean log-ratio (the rollouts are the same: same seed, same actions)
    assert both.anchor_kl[0] > 0.1
    assert_allclose(np.mean(b[3] - c[3]), -0.5 * both.anchor_kl[0], rtol=1e-4, atol=1e-9)
    for p in (plain, both, soft_only):
        p.close()


def test_soft_alpha_survives_a_checkpoint_and_a_plain_one_clears_it():
    ppo = ObserverPPO(HOPPER, TINY_RAW, seed=1, reward_fn=_zero_reward)
    ppo.set_soft(0.7)
    ppo.train_update()
    state = ppo.state_dict()
    resumed = ObserverPPO(HOPPER, TINY_RAW, seed=99, reward_fn=_zero_reward)
    resumed.load_state_dict(state)
    assert resumed.soft_alpha == 0.7 and resumed.soft_entropy == ppo.soft_entropy
    ppo.train_update()
    resumed.train_update()
    assert_allclose(resumed.soft_entropy, ppo.soft_entropy, rtol=0, atol=0)
    plain = ObserverPPO(HOPPER, TINY_RAW, seed=1, reward_fn=_zero_reward)
    resumed.load_state_dict(plain.state_dict())
    assert resumed.soft_alpha == 0.0 and resumed.soft_entropy == []
    for p in (ppo, resumed, plain):
        p.close()


@pytest.mark.parametrize("alpha", [-0.1, float("nan"), float("inf"), "0.7", True, None])
def test_set_soft_refuses_bad_input(alpha):
    ppo = ObserverPPO(HOPPER, TINY_RAW, seed=0)
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        ppo.set_soft(alpha)
    assert ppo.soft_alpha == 0.0
    ppo.close()


@pytest.mark.parametrize("alpha, sigma, mu", [(0.7, 0.5, 0.3), (0.2, 1.3, -1.0), (2.0, 0.1, 0.0)])
def test_a_log_density_reward_has_its_soft_optimum_at_its_mean_with_sigma_sqrt_alpha(alpha, sigma, mu):
    """Chapter 6's proposition (one dimension, one state): E_pi[r] + alpha H(pi) <= alpha ln int e^{r/alpha},
    a constant, with equality for N(mu, alpha sigma^2); the plain return prefers ever smaller noise."""
    from scipy.integrate import quad

    def r(a):
        return -0.5 * np.log(2 * np.pi * sigma ** 2) - 0.5 * ((a - mu) / sigma) ** 2

    def objective(m, s, soft):  # closed form over a ~ N(m, s^2)
        plain = -0.5 * np.log(2 * np.pi * sigma ** 2) - ((m - mu) ** 2 + s ** 2) / (2 * sigma ** 2)
        return plain + (alpha * (np.log(s) + 0.5 * np.log(2 * np.pi * np.e)) if soft else 0.0)

    bound = alpha * np.log(quad(lambda a: np.exp(r(a) / alpha), mu - 60 * sigma, mu + 60 * sigma)[0])
    assert_allclose(bound, 0.5 * alpha * np.log(2 * np.pi * alpha * sigma ** 2) - 0.5 * np.log(2 * np.pi * sigma ** 2),
                    rtol=1e-9, atol=1e-9)
    s_star = sigma * np.sqrt(alpha)
    assert_allclose(objective(mu, s_star, True), bound, rtol=1e-9, atol=1e-9)  # attained
    rng = np.random.default_rng(0)
    for m, s in zip(mu + rng.normal(0, 1, 50), s_star * np.exp(rng.normal(0, 1, 50))):
        assert objective(m, s, True) <= bound + 1e-12
        assert objective(mu, s / 2, False) > objective(mu, s, False)  # plain: narrower noise always pays
    assert objective(mu, 1e-6, False) <= r(mu)  # ... up to the maximum of r, at a = mu


# ------------------------------------------------------------------ ObserverPPO.train_critic: the critic alone (chapter 6's critic_warmup)


def _params(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def test_train_critic_moves_the_critic_alone():
    ppo = ObserverPPO("Hopper-v5", TINY_WARMUP, seed=0)
    actor, critic = _params(ppo.actor), _params(ppo.critic)
    stats = [ppo.train_critic() for _ in range(4)]
    for before, after in zip(actor, ppo.actor.parameters()):
        assert_array_equal(before.numpy(), after.detach().numpy())  # bit for bit: the actor is frozen
    assert any(not torch.equal(b, a) for b, a in zip(critic, ppo.critic.parameters()))
    assert ppo.update == 0  # no update counted: the decay schedules have not started
    assert set(stats[0]) == {"value_loss", "explained_variance"}
    # the critic learns the rollouts' returns: the untrained critic explains none of them, the
    # trained one explains some of a rollout it has not seen
    assert stats[0]["explained_variance"] < 0.1 < stats[-1]["explained_variance"]


def test_a_warmed_up_update_starts_from_the_same_schedule_and_actor():
    """After warm-up, the first update runs at the first update's learning rate and clip."""
    cold, warm = ObserverPPO("Hopper-v5", TINY_WARMUP, seed=1), ObserverPPO("Hopper-v5", TINY_WARMUP, seed=1)
    warm.train_critic()
    a, b = cold.train_update(), warm.train_update()
    assert a["lr"] == b["lr"] == TINY_WARMUP.lr and a["clip"] == b["clip"] == TINY_WARMUP.clip_coef
    assert a["update"] == b["update"] == 1


# ------------------------------------------------------------------ freeze_obs_stats: the observation normalization held fixed (chapter 6's observer_obs_stats)


def test_frozen_statistics_do_not_move_and_running_ones_do():
    ppo = PPO(HOPPER, TINY_2MB, seed=0)
    ppo.train_update()
    assert not ppo.obs_stats_frozen
    ppo.freeze_obs_stats()
    mean, var = ppo._obs_stats()
    snap = ppo.snapshot()
    ppo.train_update()
    m2, v2 = ppo._obs_stats()
    assert_array_equal(m2, mean) and assert_array_equal(v2, var)
    # the clone's weights read through the same statistics: the same policy on raw states
    assert_array_equal(ppo.snapshot().obs_mean, snap.obs_mean)
    ppo.freeze_obs_stats(False)
    ppo.train_update()
    assert not np.array_equal(ppo._obs_stats()[0], mean)


def test_frozen_survives_a_checkpoint_and_an_older_checkpoint_runs():
    ppo = PPO(HOPPER, TINY_2MB, seed=2)
    ppo.freeze_obs_stats()
    ppo.train_update()
    resumed = PPO(HOPPER, TINY_2MB, seed=2)
    resumed.load_state_dict(ppo.state_dict())
    assert resumed.obs_stats_frozen
    ppo.train_update(), resumed.train_update()
    for p, q in zip(ppo.actor.parameters(), resumed.actor.parameters()):
        assert torch.equal(p, q)
    assert_array_equal(ppo._obs_stats()[0], resumed._obs_stats()[0])
    resumed.load_state_dict(PPO(HOPPER, TINY_2MB, seed=2).state_dict())  # no flag: running, as before
    assert not resumed.obs_stats_frozen


def test_freeze_refuses_bad_input():
    with pytest.raises(ValueError, match="freeze_obs_stats needs config.norm_obs=True"):
        PPO(HOPPER, PPOConfig(**{**TINY_2MB.to_dict(), "norm_obs": False}), seed=0).freeze_obs_stats()
    with pytest.raises(ValueError, match="frozen must be True or False; got 'yes'"):
        PPO(HOPPER, TINY_2MB, seed=0).freeze_obs_stats("yes")


def test_without_options_the_observer_ppo_is_the_plain_ppo_and_a_plain_ppo_refuses_its_options():
    plain, obs = PPO(HOPPER, TINY_RAW, seed=5), ObserverPPO(HOPPER, TINY_RAW, seed=5)
    for _ in range(2):
        assert plain.train_update() | {"rollout_s": 0, "update_s": 0} == obs.train_update() | {"rollout_s": 0,
                                                                                                "update_s": 0}
    for k, v in plain.actor.state_dict().items():
        assert_array_equal(v.numpy(), obs.actor.state_dict()[k].numpy())
    obs.set_soft(0.1)
    with pytest.raises(ValueError, match="checkpoint holds the observer's options .*ObserverPPO"):
        PPO(HOPPER, TINY_RAW, seed=5).load_state_dict(obs.state_dict())
    plain.close(), obs.close()
