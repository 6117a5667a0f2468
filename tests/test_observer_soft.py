"""Chapter 6's ``observer_soft="model"`` candidate: the observer maximises the soft return.

:meth:`lfl_lib.ppo.PPO.set_soft` adds ``-alpha ln pi(a|s)`` (the sampled action's) to each
step's reward before the reward normalization, so that PPO maximises
``E sum_t gamma^t (r + alpha H(pi(.|s_t)))``; the study takes ``alpha`` from the learner model
(``DeepLfLConfig.alpha_model``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

torch.set_num_threads(1)

from lfl_lib.ppo import PPO, PPOConfig  # noqa: E402
from lfl_lib.study import OBSERVER_SOFT, main, make_config, variant_name  # noqa: E402

# no reward normalization, so that the reward buffer shows the entropy term in the reward's units
TINY = PPOConfig(n_envs=2, n_steps=64, n_epochs=2, n_minibatches=2, anneal_updates=5, norm_reward=False)
ENV = "Hopper-v5"


def _zero_reward(obs: np.ndarray, act: np.ndarray) -> np.ndarray:
    return np.zeros(len(obs))


def test_the_soft_term_is_minus_alpha_times_the_sampled_log_probability():
    ppo = PPO(ENV, TINY, seed=0, reward_fn=_zero_reward)
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
    plain = PPO(ENV, TINY, seed=3, reward_fn=_zero_reward)
    both = PPO(ENV, TINY, seed=3, reward_fn=_zero_reward)
    both.set_anchor(both.snapshot(), 0.5)
    both.set_soft(0.7)
    a, b = plain._collect_rollout(), both._collect_rollout()
    assert_array_equal(a[1], b[1])  # the same actions
    soft_only = PPO(ENV, TINY, seed=3, reward_fn=_zero_reward)
    soft_only.set_soft(0.7)
    c = soft_only._collect_rollout()
    assert_allclose(c[3], -0.7 * c[2], rtol=1e-4, atol=1e-4)
    # with the anchor too, the reward is the soft term plus the anchor's: their mean difference is
    # -0.5 times the anchor's mean log-ratio (the rollouts are the same: same seed, same actions)
    assert_allclose(np.mean(b[3] - c[3]), -0.5 * both.anchor_kl[0], rtol=1e-3, atol=1e-6)
    for p in (plain, both, soft_only):
        p.close()


def test_soft_alpha_survives_a_checkpoint_and_a_plain_one_clears_it():
    ppo = PPO(ENV, TINY, seed=1, reward_fn=_zero_reward)
    ppo.set_soft(0.7)
    ppo.train_update()
    state = ppo.state_dict()
    resumed = PPO(ENV, TINY, seed=99, reward_fn=_zero_reward)
    resumed.load_state_dict(state)
    assert resumed.soft_alpha == 0.7 and resumed.soft_entropy == ppo.soft_entropy
    ppo.train_update(); resumed.train_update()
    assert_allclose(resumed.soft_entropy, ppo.soft_entropy, rtol=0, atol=0)
    plain = PPO(ENV, TINY, seed=1, reward_fn=_zero_reward)
    resumed.load_state_dict(plain.state_dict())
    assert resumed.soft_alpha == 0.0 and resumed.soft_entropy == []
    for p in (ppo, resumed, plain):
        p.close()


@pytest.mark.parametrize("alpha", [-0.1, float("nan"), float("inf"), "0.7", True, None])
def test_set_soft_refuses_bad_input(alpha):
    ppo = PPO(ENV, TINY, seed=0)
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        ppo.set_soft(alpha)
    assert ppo.soft_alpha == 0.0
    ppo.close()


def test_the_study_option_names_the_variant_and_refuses_unknown_values(capsys):
    assert OBSERVER_SOFT == ("none", "model")
    cfg = make_config("Hopper-v5", 100, "paper", estimator="fix", kl_weight=None, terminal="bootstrap",
                      observer_obs_stats="frozen", observer_soft="model")
    assert variant_name(cfg) == "fix_kl-fit_terminal-bootstrap_frozen-stats_soft"
    assert cfg.to_dict()["observer_soft"] == "model"
    assert "observer_soft" not in make_config("Hopper-v5", 100, "paper").to_dict()  # old configurations match
    with pytest.raises(ValueError, match="observer_soft must be one of 'none', 'model'; got 'yes'"):
        make_config("Hopper-v5", 0, "smoke", observer_soft="yes")
    with pytest.raises(SystemExit):
        main(["--env", "Hopper-v5", "--preset", "smoke", "--observer-soft", "alpha"])
    assert "--observer-soft" in capsys.readouterr().err
