"""Tests of lfl_lib.experiments.terminations: episode ends and the recovered reward of a finished smoke run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from lfl_lib.experiments.study import make_config, run_study
from lfl_lib.experiments.terminations import main, termination_report

torch.set_num_threads(1)
ENV = "Hopper-v5"  # terminates when the robot falls


@pytest.fixture(scope="module")
def hopper_smoke(tmp_path_factory):
    base = tmp_path_factory.mktemp("hopper")
    res = run_study(
        make_config(ENV, seed=0, preset="smoke"), out_dir=base / "out", run_dir=base / "run", progress=False
    )
    return res, base / "run"


@pytest.mark.slow  # a smoke run of the study: 20 s or more
def test_report_uses_the_study_protocol(hopper_smoke):
    res, run = hopper_smoke
    rep = termination_report(run)
    assert (rep["env_id"], rep["seed"], rep["estimator"]) == (ENV, 0, "paper")
    # the same episodes as the study's evaluation: identical returns, to the last bit
    assert_allclose(rep["learner_last"]["returns"], res["learner"]["returns"][-1], rtol=0, atol=0)
    assert_allclose(rep["learner_first"]["returns"], res["learner"]["returns"][0], rtol=0, atol=0)
    assert_allclose(rep["observer_final"]["returns"], res["observer"]["returns"][-1], rtol=0, atol=0)
    for who in ("learner_first", "learner_last", "observer_final"):
        ends = rep[who]
        lengths = np.array(ends["lengths"])
        assert len(lengths) == 10 and lengths.min() >= 1 and lengths.max() <= 1000
        # an episode shorter than the time limit can only have ended by termination
        assert all(t for n, t in zip(lengths, ends["terminated"]) if n < 1000)
        assert_allclose(ends["mean_length"], lengths.mean(), rtol=1e-12)
    # the stochastic protocol: the same start states, sampled actions, reproducible
    sampled = rep["stochastic"]
    assert set(sampled) == {"learner_first", "learner_last", "observer_final"}
    assert sampled["learner_last"]["returns"] != rep["learner_last"]["returns"]
    again = termination_report(run)["stochastic"]["learner_last"]["returns"]
    assert_allclose(again, sampled["learner_last"]["returns"], rtol=0, atol=0)
    stats = rep["recovered_reward_on_last_rollout"]
    assert_allclose(stats["discounted_forever_at_mean"], stats["mean"] / (1 - 0.99), rtol=1e-12)
    assert 0.0 <= stats["share_negative"] <= 1.0
    # r_phi along the sampled episodes: its sum over all steps over their number
    for ends in sampled.values():
        assert len(ends["reward_fn_returns"]) == 10
        assert_allclose(
            ends["recovered_reward_per_step"], np.sum(ends["reward_fn_returns"]) / np.sum(ends["lengths"]), rtol=1e-12
        )
    for who in ("learner_first", "learner_last", "observer_final"):  # with mean actions too
        assert_allclose(
            rep[who]["recovered_reward_per_step"],
            np.sum(rep[who]["reward_fn_returns"]) / np.sum(rep[who]["lengths"]),
            rtol=1e-12,
        )
    assert "recovered_reward_per_step" in rep["start_drift"]["clone_stochastic"]
    assert np.isfinite(rep["start_drift"]["clone_recovered_reward_per_step"])


def test_evaluate_episodes_sums_a_reward_fn_without_changing_the_episodes(hopper_smoke):
    from lfl_lib.deep_lfl import RewardModel
    from lfl_lib.ppo import PolicySnapshot, evaluate_episodes
    from lfl_lib._safe_io import load_checkpoint as _load

    _, run = hopper_smoke
    pol = PolicySnapshot.from_dict(_load(sorted((run / "observed").glob("update_*.pt"))[-1], ["policy"])["policy"])
    plain = evaluate_episodes(ENV, pol, 3, 7, stochastic=True)
    ones = evaluate_episodes(ENV, pol, 3, 7, stochastic=True, reward_fn=lambda o, a: np.ones(len(o)))
    assert plain["returns"] == ones["returns"] and plain["lengths"] == ones["lengths"]
    assert_allclose(ones["reward_fn_returns"], ones["lengths"], rtol=0, atol=0)  # one per step, active envs only
    # a reward of the state and the (unclipped) action: recomputed by replaying one episode by hand
    obs_dim, act_dim = 11, 3
    torch.manual_seed(0)
    reward = RewardModel(obs_dim, act_dim, np.zeros(obs_dim), np.ones(obs_dim))
    got = evaluate_episodes(ENV, pol, 1, 7, stochastic=True, reward_fn=reward.reward_fn)
    import gymnasium as gym

    env = gym.make(ENV)
    obs, _ = env.reset(seed=7)
    noise, sigma = np.random.default_rng(7), pol.actor().log_std.detach().exp().numpy().astype(np.float64)
    total, done = 0.0, False
    while not done:
        act = pol.mean_action(np.asarray(obs, np.float64)[None])[0] + sigma * noise.standard_normal((1, act_dim))[0]
        total += float(reward.reward_fn(np.asarray(obs, np.float64)[None], act[None])[0])
        obs, _, term, trunc, _ = env.step(np.clip(act, env.action_space.low, env.action_space.high))
        done = term or trunc
    env.close()
    assert_allclose(got["reward_fn_returns"][0], total, rtol=1e-9, atol=1e-9)


def test_command_line_writes_one_file(hopper_smoke, tmp_path, capsys):
    _, run = hopper_smoke
    out = tmp_path / "t.json"
    assert main([str(run), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert len(data["runs"]) == 1 and data["command"].startswith("lfl terminations")
    assert data["wall_time_s"] >= 0 and data["git_commit"]
    assert "observer length" in capsys.readouterr().out
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_bad_run_folders(hopper_smoke, tmp_path, capsys):
    _, run = hopper_smoke
    out = tmp_path / "t.json"
    assert main([str(tmp_path), "--out", str(out)]) == 2
    assert "is not a run folder" in capsys.readouterr().err
    partial = tmp_path / "partial"
    shutil.copytree(run, partial)
    (partial / "observer.pt").unlink()
    assert main([str(partial), "--out", str(out)]) == 2
    assert "holds no finished run (missing observer.pt)" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    "warmup, anchor, stats, soft",
    [
        (0, "none", "running", "none"),
        (1, "none", "running", "none"),
        (0, "kl", "running", "none"),
        (0, "none", "frozen", "none"),
        (0, "none", "frozen", "model"),
    ],
)
@pytest.mark.slow  # a smoke run of the study: 20 s or more
def test_report_of_the_kl_and_terminal_bootstrap_candidates(hopper_smoke, tmp_path, warmup, anchor, stats, soft):
    """Chapter 6's fourth to ninth candidates: their run folders are recognized and replayed exactly."""
    _, run = hopper_smoke
    cfg = make_config(
        ENV,
        seed=0,
        preset="smoke",
        kl_weight=None,
        terminal="bootstrap",
        critic_warmup=warmup,
        observer_anchor=anchor,
        observer_obs_stats=stats,
        observer_soft=soft,
    )
    res = run_study(cfg, out_dir=tmp_path / "out", run_dir=tmp_path / "run", progress=False, learner_from=run)
    rep = termination_report(tmp_path / "run")
    assert (
        rep["estimator"],
        rep["kl_weight"],
        rep["terminal"],
        rep["observer_init"],
        rep["critic_warmup"],
        rep["observer_anchor"],
        rep["observer_obs_stats"],
    ) == ("paper", None, "bootstrap", "clone", warmup, anchor, stats)
    assert rep.get("observer_soft", "none") == soft
    assert_allclose(rep["observer_final"]["returns"], res["observer"]["returns"][-1], rtol=0, atol=0)
    assert termination_report(run)["terminal"] == "absorbing"
    # the start rebuilt exactly; with frozen statistics the clone's weights read through the final
    # statistics are the clone itself (KL 0, its returns the start's), with running ones they are not
    drift = rep["start_drift"]
    assert drift["clone_reproduced"] is True
    if stats == "frozen":
        assert drift["kl_clone_weights_final_stats"] == 0.0
        assert_allclose(drift["clone_weights_final_stats"]["returns"], res["observer"]["returns"][0], rtol=0, atol=0)
    else:
        assert drift["kl_clone_weights_final_stats"] > 0.0
    assert drift["kl_final_observer"] >= 0.0


@pytest.mark.slow  # a smoke run of the study: 20 s or more
def test_merge_keeps_earlier_records_and_replaces_the_same_run(hopper_smoke, tmp_path, capsys):
    _, run = hopper_smoke
    out = tmp_path / "t.json"
    assert main([str(run), "--out", str(out)]) == 0
    first = json.loads(out.read_text())
    # a record of a run folder that no longer exists stays when another run is merged in
    ghost = {**first["runs"][0], "run_dir": "runs/mujoco/gone_seed9", "seed": 9}
    out.write_text(json.dumps({**first, "runs": [ghost, *first["runs"]]}))
    assert main([str(run), "--out", str(out), "--merge"]) == 0
    merged = json.loads(out.read_text())
    assert [r["run_dir"] for r in merged["runs"]] == ["runs/mujoco/gone_seed9", first["runs"][0]["run_dir"]]
    assert merged["runs"][1]["learner_last"]["returns"] == first["runs"][0]["learner_last"]["returns"]
    assert merged["earlier"] == [
        {
            "command": first["command"],
            "git_commit": first["git_commit"],
            "wall_time_s": first["wall_time_s"],
            "run_dirs": ["runs/mujoco/gone_seed9", first["runs"][0]["run_dir"]],
        }
    ]
    assert "--merge" in merged["command"]
    # without --merge the file is replaced by the runs given
    assert main([str(run), "--out", str(out)]) == 0
    assert len(json.loads(out.read_text())["runs"]) == 1 and "earlier" not in json.loads(out.read_text())
    capsys.readouterr()


@pytest.mark.parametrize("content", ["not json", json.dumps({"runs": "x"}), json.dumps([1, 2])])
def test_merge_refuses_a_file_it_did_not_write(hopper_smoke, tmp_path, capsys, content):
    _, run = hopper_smoke
    out = tmp_path / "t.json"
    out.write_text(content)
    assert main([str(run), "--out", str(out), "--merge"]) == 2
    assert "--merge" in capsys.readouterr().err
    assert out.read_text() == content
