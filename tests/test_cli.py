"""Reward out and observer trained: lfl_lib.observer, the command line, and bad input at the entry points."""

from __future__ import annotations

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from conftest import observe_argv, random_rollouts, write_rollouts
from lfl_lib import _safe_io
from lfl_lib.cli import INTERRUPTED, main
from lfl_lib.data import Episode, save_episodes
from lfl_lib.deep_lfl import DeepLfLConfig, recover_reward
from lfl_lib.observer import RecoveredReward, load_reward, save_reward
from lfl_lib.ppo import PPOConfig

TINY = dict(policy_steps=3, kl_steps=3, reward_init_steps=3, consistency_steps=3)


@pytest.fixture(scope="module")
def reward():
    torch.set_num_threads(1)
    return recover_reward(random_rollouts(), TINY)[0]


# ------------------------------------------------------------------ bad input, continuous


def test_deep_recover_reward_validates_its_input():
    ros = random_rollouts()
    with pytest.raises(ValueError, match="got a single Rollout"):
        recover_reward(ros[0], TINY)
    with pytest.raises(ValueError, match="at least 2"):
        recover_reward(ros[:1], TINY)
    with pytest.raises(ValueError, match=r"config has unknown keys \['steps'\]"):
        recover_reward(ros, {"steps": 3})
    with pytest.raises(ValueError, match="lr must be a finite number"):
        recover_reward(ros, {**TINY, "lr": float("nan")})
    with pytest.raises(ValueError, match="entropy_bonus must be a finite number"):
        DeepLfLConfig(entropy_bonus=float("nan"))
    with pytest.raises(ValueError, match="config must be a DeepLfLConfig or a dict"):
        recover_reward(ros, [1, 2])
    with pytest.raises(ValueError, match="seed must be an integer"):
        recover_reward(ros, TINY, seed=-1)
    with pytest.raises(ValueError, match="ent_coef must be a finite number"):
        PPOConfig(ent_coef=float("nan"))


def test_reward_file_is_portable_and_wrapper_replaces_reward(tmp_path, reward):
    path = save_reward(reward, tmp_path / "reward.pt", {"note": "x"})
    obj = torch.load(path)  # the default weights_only=True
    assert obj["format"] == "lfl_lib.reward/1" and obj["obs_dim"] == 4 and obj["act_dim"] == 1
    back = load_reward(tmp_path)  # a folder works too
    rng = np.random.default_rng(3)
    s, a = rng.normal(size=(5, 4)), rng.normal(size=(5, 1))
    assert_allclose(back.reward_fn(s, a), reward.reward_fn(s, a), rtol=0, atol=0)
    env = RecoveredReward(gym.make("InvertedPendulum-v5"), path)
    obs, _ = env.reset(seed=0)
    act = np.array([0.3], dtype=np.float32)
    _, r, _, _, info = env.step(act)
    assert_allclose(r, reward.reward_fn(obs[None].astype(np.float64), act[None].astype(np.float64))[0], rtol=1e-6)
    assert info["true_reward"] == 1.0
    with pytest.raises(ValueError, match="obs_dim 4"):
        RecoveredReward(gym.make("Pendulum-v1"), back)
    with pytest.raises(ValueError, match="not a reward file"):
        torch.save({"a": 1}, tmp_path / "other.pt")
        load_reward(tmp_path / "other.pt")


def test_safe_checkpoint_round_trip(tmp_path):
    from lfl_lib.ppo import PPO

    cfg = PPOConfig(n_envs=2, n_steps=8, n_epochs=1, n_minibatches=2)
    ppo = PPO("InvertedPendulum-v5", cfg, seed=0)
    ppo.train_update()
    _safe_io.save({"ppo": ppo.state_dict()}, tmp_path / "ck.pt")
    torch.load(tmp_path / "ck.pt")  # loads under weights_only=True
    ppo2 = PPO("InvertedPendulum-v5", cfg, seed=5)
    ppo2.load_state_dict(_safe_io.load(tmp_path / "ck.pt")["ppo"])
    a, b = ppo.train_update(), ppo2.train_update()
    assert a["policy_loss"] == b["policy_loss"]
    ppo.close()
    ppo2.close()


def test_study_refuses_bad_input_before_writing(tmp_path):
    from lfl_lib.experiments.study import main as study_main
    from lfl_lib.experiments.study import make_config, parse_window

    with pytest.raises(ValueError, match="window must give at least 2 strictly increasing"):
        parse_window("5..2")
    with pytest.raises(ValueError, match="window must look like"):
        parse_window("a..b")
    with pytest.raises(ValueError, match="must be a MuJoCo environment"):
        make_config("Pendulum-v1", preset="smoke")
    with pytest.raises(ValueError, match="window must hold at least 2 strictly increasing"):
        make_config("Hopper-v5", preset="smoke", window=[3, 3])
    run = tmp_path / "run"
    assert study_main(["--env", "Pendulum-v1", "--preset", "smoke", "--run-dir", str(run), "--no-progress"]) == 2
    assert study_main(["--env", "Hopper-v5", "--window", "5..2", "--run-dir", str(run), "--no-progress"]) == 2
    assert not run.exists()


# ------------------------------------------------------------------ the command line


def test_cli_recover_then_observe(tmp_path, capsys):
    paths = write_rollouts(tmp_path, random_rollouts())
    out = tmp_path / "rec"
    argv = ["recover", "--rollouts", *paths, "--out", str(out), "--steps", "3", "--no-progress"]
    assert main(argv) == 0
    rep = json.loads((out / "recover_report.json").read_text())
    assert set(rep["losses"]) == {"policy_nll", "kl_mse", "bc_nll", "consistency"}
    assert len(rep["fitted_policy_std"]) == 3 and rep["rollouts"][paths[0]]["observations"] == [40, 4]
    assert {"torch", "numpy", "python"} <= set(rep["versions"])
    assert not (out / "recover_checkpoint.pt").exists()
    torch.load(out / "reward.pt")
    assert main(argv) == 0 and "already done" in capsys.readouterr().out  # the same command again
    assert main(["recover", "--rollouts", *paths[:2], "--out", str(out), "--steps", "3", "--no-progress"]) == 2
    obs = tmp_path / "obs"
    assert main(observe_argv(out, "InvertedPendulum-v5", start=paths[-1], bc_steps=3, out=obs)) == 0
    rep = json.loads((obs / "observe_report.json").read_text())
    assert len(rep["scores"]) == 2 and len(rep["returns"][0]) == 2
    torch.load(obs / "policy.pt")


def test_cli_terminal_bootstrap_travels_from_recover_to_observe(tmp_path):
    """recover --terminal bootstrap stores the setting in reward.pt; observe treats terminations the same way."""
    paths = write_rollouts(tmp_path, random_rollouts())
    out = tmp_path / "rec"
    assert (
        main(
            [
                "recover",
                "--rollouts",
                *paths,
                "--out",
                str(out),
                "--steps",
                "3",
                "--terminal",
                "bootstrap",
                "--no-progress",
            ]
        )
        == 0
    )
    assert json.loads((out / "recover_report.json").read_text())["settings"]["terminal"] == "bootstrap"
    observe = observe_argv(out, "InvertedPendulum-v5")
    for extra, want in (([], "bootstrap"), (["--terminal", "absorbing"], "absorbing")):
        obs = tmp_path / f"obs_{want}"
        assert main([*observe, *extra, "--out", str(obs)]) == 0
        rep = json.loads((obs / "observe_report.json").read_text())
        assert rep["terminal"] == want
        assert rep["ppo"].get("bootstrap_terminations", False) is (want == "bootstrap")
    # a reward recovered the paper's way (no setting stored) is observed the paper's way
    plain = tmp_path / "plain"
    assert main(["recover", "--rollouts", *paths, "--out", str(plain), "--steps", "3", "--no-progress"]) == 0
    assert main(observe_argv(plain, "InvertedPendulum-v5", out=tmp_path / "obs_plain")) == 0
    assert json.loads((tmp_path / "obs_plain" / "observe_report.json").read_text())["terminal"] == "absorbing"


def test_cli_observe_with_frozen_observation_statistics(tmp_path):
    """observe --obs-stats frozen keeps the clone's statistics: the first score is the clone's, the
    policy's normalization at the end is the start rollout's mean and variance. Frozen is the default
    (held-out outcome 4 of chapter 6); 'running' is the paper's PPO."""
    from lfl_lib.data import load_rollout

    paths = write_rollouts(tmp_path, random_rollouts())
    rec = tmp_path / "rec"
    assert main(["recover", "--rollouts", *paths, "--out", str(rec), "--steps", "3", "--no-progress"]) == 0
    common = observe_argv(rec, "InvertedPendulum-v5", start=paths[-1], bc_steps=3, updates=2)
    reps = {}
    for mode in ("running", "frozen"):
        assert main([*common, "--obs-stats", mode, "--out", str(tmp_path / mode)]) == 0
        reps[mode] = json.loads((tmp_path / mode / "observe_report.json").read_text())
        assert reps[mode]["obs_stats"] == mode
    assert main([*common, "--out", str(tmp_path / "default")]) == 0
    default = json.loads((tmp_path / "default" / "observe_report.json").read_text())
    assert default["obs_stats"] == "frozen" and default["returns"] == reps["frozen"]["returns"]
    import inspect

    from lfl_lib.observer import train_observer

    assert inspect.signature(train_observer).parameters["freeze_obs_stats"].default is True
    assert reps["running"]["returns"][0] == reps["frozen"]["returns"][0]  # the same clone, scored before PPO
    states = load_rollout(paths[-1]).observations
    from lfl_lib import _safe_io

    frozen, running = (_safe_io.load(tmp_path / m / "policy.pt") for m in ("frozen", "running"))
    np.testing.assert_allclose(np.asarray(frozen["obs_mean"]), states.mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(frozen["obs_var"]), states.var(0), rtol=1e-12, atol=1e-12)
    assert not np.allclose(np.asarray(running["obs_mean"]), states.mean(0))
    with pytest.raises(SystemExit):
        main([*common, "--obs-stats", "fixed", "--out", str(tmp_path / "bad")])
    assert not (tmp_path / "bad").exists()


def test_cli_recover_kl_weight(tmp_path, capsys):
    """recover --kl-weight: 'fit' fits lambda (reported in the losses), a number is used as given, and the
    setting is stored in the report and in reward.pt; the default is the paper's model (no KL term)."""
    from lfl_lib.observer import reward_settings

    paths = write_rollouts(tmp_path, random_rollouts())
    base = ["recover", "--rollouts", *paths, "--steps", "3", "--no-progress"]
    for arg, stored in (("fit", None), ("0.25", 0.25)):
        out = tmp_path / f"rec_{arg}"
        assert main([*base, "--kl-weight", arg, "--out", str(out)]) == 0
        rep = json.loads((out / "recover_report.json").read_text())
        assert rep["settings"]["kl_weight"] == stored and reward_settings(out)["kl_weight"] == stored
        assert np.isfinite(rep["losses"]["kl_weight"]) and rep["losses"]["kl_weight"] >= 0
        if stored is not None:
            assert_allclose(rep["losses"]["kl_weight"], stored, rtol=1e-6)  # a given weight is not fitted
    assert main([*base, "--out", str(tmp_path / "rec_default")]) == 0
    rep = json.loads((tmp_path / "rec_default" / "recover_report.json").read_text())
    assert "kl_weight" not in rep["settings"] and "kl_weight" not in rep["losses"]
    for bad in ("-1", "nan", "fitted"):
        with pytest.raises(SystemExit):
            main([*base, "--kl-weight", bad, "--out", str(tmp_path / "bad")])
        assert "--kl-weight" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["recover", "--rollouts", "D1.npz"], "at least 2"),
        (["recover", "--rollouts", "missing.npz", "D1.npz"], "does not exist"),
        (["recover", "--rollouts", "NAN", "D1.npz"], "actions must be finite"),
        (["recover", "--rollouts", "D1.npz", "D2.npz", "--gamma", "1.5"], "gamma must be in"),
        (["recover", "--rollouts", "D1.npz", "D2.npz", "--terminal", "reset"], "--terminal 'reset' is for --tabular"),
        (
            ["recover", "--tabular", "--rollouts", "D1.npz", "D2.npz", "--terminal", "bootstrap"],
            "--terminal 'bootstrap' is for a continuous recovery",
        ),
        (
            ["recover", "--tabular", "--rollouts", "D1.npz", "D2.npz", "--kl-weight", "fit"],
            "--kl-weight is for a continuous recovery",
        ),
        (["observe", "--reward", "nothing", "--env", "InvertedPendulum-v5"], "does not exist"),
        (["observe", "--reward", "REWARD", "--env", "Pendulum-v1"], "obs_dim 4"),
        (["observe", "--reward", "REWARD", "--env", "NoSuchEnv-v0"], "registered gymnasium"),
    ],
)
def test_cli_bad_input_writes_nothing(tmp_path, capsys, reward, argv, match):
    write_rollouts(tmp_path, random_rollouts(2))
    bad = random_rollouts(1)[0].to_arrays()
    bad["actions"] = np.full_like(bad["actions"], np.nan)
    np.savez(tmp_path / "NAN.npz", **bad)
    save_reward(reward, tmp_path / "reward_file.pt")
    argv = [
        str(tmp_path / "NAN.npz")
        if a == "NAN"
        else str(tmp_path / "reward_file.pt")
        if a == "REWARD"
        else str(tmp_path / a)
        if a.endswith(".npz")
        else a
        for a in argv
    ]
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out), "--no-progress"]) == 2
    assert match in capsys.readouterr().err
    assert not out.exists()


def test_cli_ctrl_c_exits_130_and_resumes(tmp_path, capsys, monkeypatch):
    import lfl_lib.recovery as deep  # lfl recover runs Algorithm 1 through lfl_lib.recovery

    paths = write_rollouts(tmp_path, random_rollouts())
    out = tmp_path / "rec"
    real = deep.recover_reward

    def interrupted(*args, checkpoint=None, **kw):  # Ctrl-C after the first stage's checkpoint
        def ck(st):
            checkpoint(st)
            raise KeyboardInterrupt

        return real(*args, checkpoint=ck, **kw)

    monkeypatch.setattr(deep, "recover_reward", interrupted)
    argv = ["recover", "--rollouts", *paths, "--out", str(out), "--steps", "3", "--no-progress"]
    assert main(argv) == 130
    assert INTERRUPTED in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["recover_checkpoint.pt"]  # nothing half-written
    monkeypatch.setattr(deep, "recover_reward", real)
    assert main(argv) == 0
    assert (out / "reward.pt").exists() and not (out / "recover_checkpoint.pt").exists()


def test_cli_tabular(tmp_path):
    rng = np.random.default_rng(0)
    env = gym.make("FrozenLake-v1")
    paths = []
    for k in range(2):
        eps = []
        for _ in range(5):
            s, _ = env.reset(seed=int(rng.integers(1000)))
            st, ac, done = [s], [], False
            while not done:
                a = int(rng.integers(4))
                s, _, te, tr, _ = env.step(a)
                st.append(s)
                ac.append(a)
                done = te or tr
            eps.append(Episode(st, ac, te, tr and not te))
        paths.append(str(save_episodes(eps, tmp_path / f"P{k}.npz")))
    out = tmp_path / "tab"
    assert main(["recover", "--tabular", "--rollouts", *paths, "--env", "FrozenLake-v1", "--out", str(out)]) == 0
    with np.load(out / "reward.npz") as z:
        assert z["r"].shape == (16, 4)
    assert (
        main(["observe", "--reward", str(out), "--env", "FrozenLake-v1", "--out", str(out), "--eval-episodes", "20"])
        == 0
    )
    rep = json.loads((out / "observe_report.json").read_text())
    assert 0.0 <= rep["mean_return"] <= 1.0
    assert main(["recover", "--tabular", "--rollouts", *paths, "--out", str(tmp_path / "x")]) == 2


def test_help_says_where_output_goes():
    for cmd in ("recover", "observe"):
        out = subprocess.run(
            [sys.executable, "-m", "lfl_lib", cmd, "--help"], capture_output=True, text=True, check=True
        ).stdout
        assert "default: the current working directory" in out


def test_import_is_light_and_exposes_the_entry_points():
    code = (
        "import sys, lfl_lib; assert 'torch' not in sys.modules, 'torch imported'; "
        "from lfl_lib import Rollout, Episode, TabularMDP, recover_tabular_reward, observer_policy; "
        "assert 'torch' not in sys.modules; from lfl_lib import recover_reward, train_observer, save_reward; "
        "print(recover_reward.__module__, train_observer.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["lfl_lib.deep_lfl", "lfl_lib.observer"]
