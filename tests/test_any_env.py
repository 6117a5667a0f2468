"""observe and train_observer on gymnasium Box environments that are not MuJoCo, and the CLI's failures.

The PPO checkpoint saves what each environment exposes: MuJoCo physics, or the attributes
of a Python environment (Pendulum-v1, MountainCarContinuous-v0); an environment whose state
cannot be saved gets a checkpoint that says so and resumes with fresh episodes.
"""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from conftest import observe_argv, random_rollouts, tabular_recover_argv, write_rollouts, write_tabular_logs
from lfl_lib.cli import main
from lfl_lib.data import Rollout
from lfl_lib.ppo import PPO, PPOConfig

TINY_PPO = PPOConfig(n_envs=2, n_steps=64, n_epochs=1, n_minibatches=2, anneal_updates=4)


def _rollouts(obs_dim: int) -> list[Rollout]:
    """Rollouts of a task without terminations, as the classic-control ones."""
    return random_rollouts(obs_dim=obs_dim, episode_ends=False)


def _continue(env_id: str, interrupt: bool) -> dict[str, float]:
    """Two updates, straight or through a checkpoint after the first; the second update's statistics."""
    torch.set_num_threads(1)
    a = PPO(env_id, TINY_PPO, seed=3)
    a.train_update()
    if interrupt:
        saved = a.state_dict()
        a.close()
        a = PPO(env_id, TINY_PPO, seed=3)
        a.load_state_dict(saved)
        assert a.resumed_exactly
    out = a.train_update()
    a.close()
    return {k: v for k, v in out.items() if not k.endswith("_s")}


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "MountainCarContinuous-v0"])
def test_checkpoint_of_a_classic_control_env_resumes_exactly(env_id):
    straight, resumed = _continue(env_id, False), _continue(env_id, True)
    assert straight.keys() == resumed.keys()
    for k in straight:  # same arithmetic, same order: equal to the last bit (nan == nan for an empty return list)
        assert_allclose(resumed[k], straight[k], rtol=0, atol=0, equal_nan=True, err_msg=k)


class _Unsaveable(gym.Env):
    """A 1-d task whose state holds something that cannot be pickled (as Box2D's world)."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self) -> None:
        self.handle = lambda: None  # not picklable
        self.x = 0.0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-1, 1))
        return np.array([self.x, 0.0]), {}

    def step(self, action):
        self.x += 0.1 * float(action[0])
        return np.array([self.x, 1.0]), -abs(self.x), False, False, {}


gym.register("LflTest/Unsaveable-v0", entry_point=_Unsaveable, max_episode_steps=20)


def test_checkpoint_says_when_the_env_cannot_be_saved_and_resumes_with_fresh_episodes():
    torch.set_num_threads(1)
    a = PPO("LflTest/Unsaveable-v0", TINY_PPO, seed=0)
    a.train_update()
    saved = a.state_dict()
    assert saved["envs"]["exact"] is False and "_Unsaveable" in saved["envs"]["inexact_reason"]
    b = PPO("LflTest/Unsaveable-v0", TINY_PPO, seed=0)
    with pytest.warns(RuntimeWarning, match="fresh episodes"):
        b.load_state_dict(saved)
    assert not b.resumed_exactly and b.update == 1
    for x, y in zip(b._obs_stats(), a._obs_stats()):  # the checkpoint's normalization, not the reset's
        assert_allclose(x, y, rtol=0, atol=0)
    assert_allclose(b._obs, b._normalize(b.tap.raw_obs), rtol=0, atol=0)
    assert np.isfinite(b.train_update()["policy_loss"])
    a.close(), b.close()


@pytest.mark.parametrize("env_id,obs_dim", [("Pendulum-v1", 3), ("MountainCarContinuous-v0", 2)])
def test_cli_observe_on_a_classic_control_env(tmp_path, env_id, obs_dim):
    paths = write_rollouts(tmp_path, _rollouts(obs_dim))
    rec = tmp_path / "rec"
    assert main(["recover", "--rollouts", *paths, "--out", str(rec), "--steps", "3", "--no-progress"]) == 0
    obs = tmp_path / "obs"
    assert main(observe_argv(rec, env_id, start=paths[-1], bc_steps=3, out=obs)) == 0
    rep = json.loads((obs / "observe_report.json").read_text())
    assert len(rep["scores"]) == 2 and all(np.isfinite(rep["scores"]))
    assert not (obs / "observe_checkpoint.pt").exists()


def test_train_observer_checkpoint_on_pendulum(tmp_path):
    from lfl_lib.deep_lfl import recover_reward
    from lfl_lib.observer import train_observer

    torch.set_num_threads(1)
    reward, _ = recover_reward(_rollouts(3), dict(policy_steps=3, kl_steps=3, reward_init_steps=3, consistency_steps=3))
    ck = tmp_path / "ck.pt"
    kw = dict(updates=2, ppo_config=TINY_PPO, eval_episodes=1, bc_steps=3)
    straight = train_observer("Pendulum-v1", reward, **kw)
    first = train_observer("Pendulum-v1", reward, checkpoint=ck, **{**kw, "updates": 1})
    assert ck.exists() and first.scores == straight.scores[:2]
    resumed = train_observer("Pendulum-v1", reward, checkpoint=ck, **kw)
    assert resumed.scores == straight.scores


def test_cli_unexpected_error_is_one_line_and_leaves_no_folder(tmp_path, capsys, monkeypatch):
    import lfl_lib.observer as observer

    paths = write_rollouts(tmp_path, _rollouts(3))
    rec = tmp_path / "rec"
    assert main(["recover", "--rollouts", *paths, "--out", str(rec), "--steps", "3", "--no-progress"]) == 0

    def broken(*args, **kw):
        raise RuntimeError("simulator exploded")

    monkeypatch.setattr(observer, "train_observer", broken)
    argv = ["observe", "--reward", str(rec), "--env", "Pendulum-v1", "--updates", "1", "--no-progress"]
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "o1")]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "error: unexpected RuntimeError: simulator exploded (run again with --debug for the traceback)"
    ]
    assert not (tmp_path / "o1").exists()
    assert main([*argv, "--out", str(tmp_path / "o2"), "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().endswith("simulator exploded")
    assert not (tmp_path / "o2").exists()


def test_cli_refuses_the_same_file_twice(tmp_path, capsys):
    paths = write_rollouts(tmp_path, _rollouts(3))
    argv = [
        "recover",
        "--rollouts",
        paths[0],
        paths[1],
        str(tmp_path / "." / "D2.npz"),
        "--out",
        str(tmp_path / "o"),
        "--steps",
        "3",
        "--no-progress",
    ]
    assert main(argv) == 2
    assert "same file twice" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_cli_progress_prints_each_tick_once(tmp_path, capsys):
    paths = write_rollouts(tmp_path, _rollouts(3))
    assert main(["recover", "--rollouts", *paths, "--out", str(tmp_path / "o"), "--steps", "50"]) == 0
    err = capsys.readouterr().err
    assert err.count("stage=policies") == 1 and err.count("stage=divergences") == 1  # one refresh per tick


def test_cli_tabular_reward_range_and_learner_model(tmp_path, capsys):
    paths = write_tabular_logs(tmp_path)
    out = tmp_path / "tab"
    assert main([*tabular_recover_argv(paths), "--out", str(out), "--learner-model", "svi", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "reward range [" in printed and "learner model svi" in printed and "losses" not in printed
    assert json.loads((out / "recover_report.json").read_text())["settings"]["learner_model"] == "svi"
    assert main(["recover", "--rollouts", *paths[:2], "--learner-model", "kl", "--out", str(tmp_path / "x")]) == 2
    assert "--learner-model is for --tabular" in capsys.readouterr().err
