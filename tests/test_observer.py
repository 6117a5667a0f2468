"""Tests of lfl_lib.observer.train_observer's options (the study's observer, one function) and of lfl_lib.recovery."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import random_rollouts
from lfl_lib.deep_lfl import recover_reward
from lfl_lib.nets import PolicySnapshot
from lfl_lib.observer import train_observer
from lfl_lib.ppo import PPOConfig
from lfl_lib.recovery import recover_with_checkpoints

ENV = "InvertedPendulum-v5"  # obs_dim 4, act_dim 1
TINY = dict(policy_steps=3, kl_steps=3, reward_init_steps=3, consistency_steps=3)
PPO_TINY = PPOConfig(n_envs=2, n_steps=32, n_epochs=1, n_minibatches=2, anneal_updates=2)
COMMON = dict(updates=2, ppo_config=PPO_TINY, eval_episodes=2, bc_steps=3, bc_config=TINY)


@pytest.fixture(scope="module")
def reward():
    torch.set_num_threads(1)
    return recover_reward(random_rollouts(), TINY)[0]


def _start(reward) -> PolicySnapshot:
    std = reward.norm.std.numpy().astype(np.float64)
    return PolicySnapshot(reward.policy.state_dict(), reward.norm.mean.numpy().astype(np.float64), std**2)


def test_every_option_is_recorded_and_a_checkpoint_resumes_to_the_same_result(reward, tmp_path):
    opts = dict(
        COMMON,
        start=_start(reward),
        start_count=240,
        anchor_weight=0.5,
        soft_alpha=0.1,
        critic_warmup=1,
        scores={"sigma": lambda pol: float(pol.actor_state["log_std"].exp()[0])},
        paper_code=True,
    )
    full = train_observer(ENV, reward, checkpoint=tmp_path / "a.pt", **opts)
    rec = full.record
    assert len(full.returns) == 3 and len(rec["sigma"]) == 3 and len(rec["paper_code"]) == 2
    # one entry per rollout: the critic's warm-up round, then each update
    assert len(rec["warmup"]) == 1 and len(rec["anchor_kl"]) == 3 and rec["anchor_weight"] == 0.5
    assert rec["soft_alpha"] == 0.1 and len(rec["soft_entropy"]) == 3
    # the start is the given policy, acting on raw states through its own statistics
    assert rec["sigma"][0] == pytest.approx(float(reward.policy.log_std.exp()[0]), abs=1e-6)
    # stopped after the first update, resumed from the checkpoint: the same numbers
    part = train_observer(ENV, reward, checkpoint=tmp_path / "b.pt", **{**opts, "updates": 1})
    assert part.returns == full.returns[:2]
    resumed = train_observer(ENV, reward, checkpoint=tmp_path / "b.pt", **opts)
    assert resumed.returns == full.returns and resumed.record["paper_code"] == rec["paper_code"]
    # a checkpoint written without one of the recorded options is refused, named
    with pytest.raises(ValueError, match="written with other options"):
        train_observer(ENV, reward, checkpoint=tmp_path / "a.pt", **{**opts, "scores": {"other": lambda p: 0}})


def test_the_defaults_are_the_held_out_choice(reward):
    import inspect

    params = inspect.signature(train_observer).parameters
    assert params["freeze_obs_stats"].default is True and params["anchor_weight"].default is None
    assert params["soft_alpha"].default == 0.0 and params["critic_warmup"].default == 0
    res = train_observer(ENV, reward, start=random_rollouts()[-1], **COMMON)
    assert set(res.record) == {"returns"} and len(res.scores) == 3


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(start="D3.npz"), "start must be a lfl_lib.data.Rollout"),
        (dict(anchor_weight=-1.0), "anchor_weight must be None or a finite number >= 0"),
        (dict(soft_alpha=float("nan")), "soft_alpha must be a finite number >= 0"),
        (dict(critic_warmup=-1), "critic_warmup"),
        (dict(paper_code="yes"), "paper_code must be True or False"),
    ],
)
def test_bad_options_are_refused_by_name(reward, bad, match):
    with pytest.raises(ValueError, match=match):
        train_observer(ENV, reward, **{**COMMON, **bad})


def test_a_recovery_resumes_from_its_checkpoint_and_refuses_another(tmp_path):
    rollouts = random_rollouts()
    ck = tmp_path / "ck.pt"
    ref, _ = recover_reward(rollouts, TINY, seed=1)
    rec = recover_with_checkpoints(rollouts, TINY, ck, seed=1, key={"data": "a"})
    assert set(rec.state) >= {"policies", "rho", "reward"} and ck.exists()
    for k, v in ref.state_dict().items():
        assert torch.equal(v, rec.reward.state_dict()[k])
    again = recover_with_checkpoints(rollouts, TINY, ck, seed=1, key={"data": "a"})  # every stage done: loaded
    for k, v in ref.state_dict().items():
        assert torch.equal(v, again.reward.state_dict()[k])
    with pytest.raises(ValueError, match="checkpoint of another recovery"):
        recover_with_checkpoints(rollouts, TINY, ck, seed=1, key={"data": "b"})
    plain = recover_with_checkpoints(rollouts, TINY, seed=1)  # no file: the full result only
    assert plain.losses == rec.losses and set(plain.state) == set(rec.state)


def test_a_callable_reward_is_trained_on_as_it_is(reward):
    # any reward_fn(obs, actions) is accepted: here the RewardModel's own reward_fn, which must
    # give the observer exactly the numbers the RewardModel gives
    a = train_observer(ENV, reward, start=random_rollouts()[-1], **COMMON)
    b = train_observer(ENV, reward.reward_fn, start=random_rollouts()[-1], **COMMON)
    assert b.returns == a.returns
    calls = []

    def state_only(obs, actions):
        calls.append(obs.shape)
        return -np.abs(obs[:, 1])

    c = train_observer(ENV, state_only, start=random_rollouts()[-1], **COMMON)
    assert len(c.returns) == 3 and calls and calls[0][1] == 4
    with pytest.raises(ValueError, match="reward must be a RewardModel, a reward file or a callable"):
        train_observer(ENV, 3.0, **COMMON)  # type: ignore[arg-type]
