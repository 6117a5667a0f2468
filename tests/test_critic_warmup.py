"""Chapter 6's ``critic_warmup`` candidate: the observer's critic trained alone before PPO starts.

:meth:`lfl_lib.ppo.PPO.train_critic` collects a rollout with the actor frozen and runs the
value-loss epochs of an update; the study runs ``critic_warmup`` such rounds between the
observer's start and its first update.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal

torch.set_num_threads(1)

from lfl_lib.ppo import PPO, PPOConfig  # noqa: E402
from lfl_lib.experiments.study import main, make_config, variant_name  # noqa: E402

TINY = PPOConfig(n_envs=2, n_steps=128, n_epochs=4, n_minibatches=4, anneal_updates=5)


def _params(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def test_train_critic_moves_the_critic_alone():
    ppo = PPO("Hopper-v5", TINY, seed=0)
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
    cold, warm = PPO("Hopper-v5", TINY, seed=1), PPO("Hopper-v5", TINY, seed=1)
    warm.train_critic()
    a, b = cold.train_update(), warm.train_update()
    assert a["lr"] == b["lr"] == TINY.lr and a["clip"] == b["clip"] == TINY.clip_coef
    assert a["update"] == b["update"] == 1


def test_critic_warmup_option_is_checked_named_and_stored_only_when_used():
    assert "critic_warmup" not in make_config("Hopper-v5").to_dict()
    cfg = make_config("Hopper-v5", kl_weight=None, terminal="bootstrap", critic_warmup=6)
    assert cfg.to_dict()["critic_warmup"] == 6
    assert variant_name(cfg) == "paper_kl-fit_terminal-bootstrap_warmup-6"
    with pytest.raises(ValueError, match="critic_warmup must be an integer >= 0"):
        make_config("Hopper-v5", critic_warmup=-1)
    with pytest.raises(ValueError, match="critic_warmup must be an integer"):
        make_config("Hopper-v5", critic_warmup=1.5)


def test_cli_refuses_a_negative_warmup_and_writes_nothing(tmp_path, capsys):
    code = main(["--env", "Reacher-v5", "--preset", "smoke", "--critic-warmup", "-2",
                 "--out", str(tmp_path / "o"), "--run-dir", str(tmp_path / "r")])
    assert code == 2
    assert "critic_warmup must be an integer >= 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "r").exists()
