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
from lfl_lib.experiments.study import OBSERVER_SOFT, main, make_config, variant_name  # noqa: E402

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
    anchor = both.snapshot()  # pi_0 unlike pi: its noise narrower, so the anchor term is far from 0
    anchor.actor_state["log_std"] = anchor.actor_state["log_std"] - 0.5
    both.set_anchor(anchor, 0.5)
    both.set_soft(0.7)
    a, b = plain._collect_rollout(), both._collect_rollout()
    assert_array_equal(a[1], b[1])  # the same actions
    soft_only = PPO(ENV, TINY, seed=3, reward_fn=_zero_reward)
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
