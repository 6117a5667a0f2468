"""LearnerLog: a stable-baselines3 learner's policies recorded as the library's .npz rollouts.

Needs the optional extra ``lfl_lib[sb3]`` (installed by ``make test``); skipped with a
message where it is missing.
"""

from __future__ import annotations

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

sb3 = pytest.importorskip("stable_baselines3", reason="stable-baselines3 is not installed: pip install 'lfl_lib[sb3]'")

from lfl_lib.cli import main  # noqa: E402
from lfl_lib.data import load_rollout  # noqa: E402
from lfl_lib.observer import RecoveredReward, load_reward  # noqa: E402
from lfl_lib.sb3 import LearnerLog  # noqa: E402


def test_import_does_not_import_sb3():
    import subprocess
    import sys

    code = "import sys, lfl_lib.sb3; assert 'stable_baselines3' not in sys.modules; print('ok')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "ok"


def test_ppo_on_cartpole_logs_discrete_rollouts_that_recover_runs_on(tmp_path, capsys):
    torch.set_num_threads(1)
    out = tmp_path / "log"
    model = sb3.PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(192, callback=LearnerLog(every=64, episodes=2, out=out))
    info = json.loads((out / "learner_log.json").read_text())
    assert info["env_id"] == "CartPole-v1" and info["algorithm"] == "PPO"
    files = [r["file"] for r in info["records"]]
    assert files == ["D001.npz", "D002.npz", "D003.npz", "D004.npz"]  # before training, after each update
    assert [r["step"] for r in info["records"]] == [0, 64, 128, 192]
    for rec in info["records"]:
        r = load_rollout(out / rec["file"])
        assert r.n_actions == 2 and r.obs_dim == 4 and len(r) == sum(rec["lengths"])
        assert r.terminations.sum() + r.truncations.sum() == 2  # two episodes, each ended once
        assert rec["returns"] == [float(n) for n in rec["lengths"]]  # CartPole pays 1 per step
    rec_dir = tmp_path / "rec"
    paths = [str(out / f) for f in files]
    assert main(["recover", "--rollouts", *paths, "--out", str(rec_dir), "--steps", "3", "--no-progress"]) == 0
    rep = json.loads((rec_dir / "recover_report.json").read_text())
    assert rep["env"] == "CartPole-v1" and rep["n_actions"] == 2  # from learner_log.json
    reward = load_reward(rec_dir)
    assert reward.n_actions == 2 and reward.env_record["id"] == "CartPole-v1"
    env = RecoveredReward(gym.make("CartPole-v1"), rec_dir)
    obs, _ = env.reset(seed=0)
    _, r, *_, info_step = env.step(1)
    assert np.isfinite(r) and r <= 0 and info_step["true_reward"] == 1.0  # ln pi_phi(a|s) <= 0
    with pytest.raises(ValueError, match=r"Discrete\(2\) actions; env has Box"):
        RecoveredReward(gym.make("InvertedPendulum-v5"), rec_dir)


def test_sac_on_pendulum_logs_continuous_rollouts(tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "log"
    model = sb3.SAC("MlpPolicy", "Pendulum-v1", learning_starts=50, batch_size=16, seed=0, device="cpu")
    model.learn(100, callback=LearnerLog(every=100, episodes=1, out=out))
    info = json.loads((out / "learner_log.json").read_text())
    assert [r["step"] for r in info["records"]] == [0, 100]
    r = load_rollout(out / "D002.npz")
    assert r.n_actions is None and r.act_dim == 1 and len(r) == 200 and r.truncations[-1]


def test_a_reward_used_on_another_environment_warns_or_is_refused(tmp_path):
    from lfl_lib.deep_lfl import recover_reward
    from lfl_lib.data import Rollout
    from lfl_lib.observer import save_reward

    rng = np.random.default_rng(0)
    D = [
        Rollout(rng.normal(size=(30, 4)), rng.normal(size=(30, 1)), rng.normal(size=(30, 4)), np.zeros(30, bool))
        for _ in range(2)
    ]
    reward, _ = recover_reward(D, dict(policy_steps=2, kl_steps=2, reward_init_steps=2, consistency_steps=2))
    path = save_reward(reward, tmp_path / "r.pt", env="InvertedPendulum-v5")
    meta = json.loads(torch.load(path)["metadata"])
    assert meta["env"]["id"] == "InvertedPendulum-v5" and "Gaussian" in meta["reward_form"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RecoveredReward(gym.make("InvertedPendulum-v5"), path)  # its own environment: no warning
    other = gym.make("InvertedPendulum-v5")  # same spaces, another id
    other.spec.id = "CartPoleLike-v0"
    with pytest.warns(UserWarning, match="recovered on 'InvertedPendulum-v5' and is used on 'CartPoleLike-v0'"):
        RecoveredReward(other, path)
    with pytest.raises(ValueError, match="refused under strict"):
        RecoveredReward(other, path, strict=True)
