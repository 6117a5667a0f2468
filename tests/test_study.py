"""Tests of the study command line: the smoke preset end to end, resume after a kill, bad input."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from lfl_lib.experiments.study import (DEFAULT_WINDOWS, HELD_OUT_CANDIDATES, HELD_OUT_ENV, HELD_OUT_SEEDS, LEARNER_KEYS,
                            held_out_choice, held_out_runs, main, make_config, parse_window, run_study,
                            select_candidate, variant_name)

ROOT = Path(__file__).resolve().parent.parent
ENV = "Reacher-v5"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One uninterrupted smoke run: (results dict, run folder, results folder)."""
    base = tmp_path_factory.mktemp("smoke")
    cfg = make_config(ENV, seed=0, preset="smoke")
    res = run_study(cfg, out_dir=base / "out", run_dir=base / "run", progress=False)
    return res, base / "run", base / "out"


@pytest.mark.slow  # a smoke run of the study: 20 s or more
def test_smoke_preset_end_to_end(smoke):
    res, run, out = smoke
    cfg = res["config"]
    assert res["env_id"] == ENV and res["preset"] == "smoke"
    assert res["learner"]["updates"] == [2, 3, 4]
    assert len(res["observer"]["score"]) == cfg["observer_updates"] + 1
    assert all(len(r) == 10 for r in res["learner"]["returns"] + res["observer"]["returns"])
    # the paper's normalization: first observed learner policy 0, last observed 1
    assert_allclose(res["learner"]["normalized"][0], 0.0, atol=1e-12)
    assert_allclose(res["learner"]["normalized"][-1], 1.0, atol=1e-12)
    lo, hi = res["learner"]["score"][0], res["learner"]["score"][-1]
    assert_allclose(res["final_observer_normalized"], (res["observer"]["score"][-1] - lo) / (hi - lo), rtol=1e-12)
    for key in ("command", "versions", "git_commit", "wall_time_s"):
        assert key in res
    on_disk = json.loads((out / f"{ENV}_seed0.json").read_text())
    assert on_disk == json.loads(json.dumps(res))
    assert not [p for p in out.iterdir() if ".tmp" in p.name]  # written atomically


def test_a_finished_run_is_not_redone(smoke):
    res, run, out = smoke
    path = out / f"{ENV}_seed0.json"
    before = path.stat().st_mtime_ns
    again = run_study(make_config(ENV, seed=0, preset="smoke"), out_dir=out, run_dir=run, progress=False)
    assert again == json.loads(path.read_text()) and path.stat().st_mtime_ns == before


@pytest.mark.slow  # a smoke run of the study: 20 s or more
def test_killed_run_resumes_without_redoing_updates(smoke, tmp_path):
    res, _, _ = smoke
    run, out = tmp_path / "run", tmp_path / "out"
    cmd = [sys.executable, "-m", "lfl_lib", "study", "--env", ENV, "--preset", "smoke",
           "--run-dir", str(run), "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ck = run / "learner.pt"
    deadline = time.time() + 240
    done = 0
    while time.time() < deadline and proc.poll() is None:
        if ck.exists():
            try:
                done = torch.load(ck, weights_only=False)["ppo"]["update"]
            except Exception:  # noqa: BLE001 - replaced while reading; try again
                done = 0
            if done >= 2:
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.02)
    proc.wait()
    assert 2 <= done < 4, "the run must be killed in the middle of the learner"
    kept = run / "observed" / "update_002.pt"
    stamp = kept.stat().st_mtime_ns
    assert not (out / f"{ENV}_seed0.json").exists()
    # same command again: resumes and completes
    subprocess.run(cmd, cwd=tmp_path, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert kept.stat().st_mtime_ns == stamp, "a completed update was redone"
    resumed = json.loads((out / f"{ENV}_seed0.json").read_text())
    # exact resume: the same numbers as the uninterrupted run
    assert_allclose(resumed["learner"]["returns"], res["learner"]["returns"], rtol=0, atol=0)
    assert_allclose(resumed["observer"]["returns"], res["observer"]["returns"], rtol=0, atol=0)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_unknown_env_id(tmp_path, capsys):
    assert main(["--env", "NoSuchEnv-v0", "--preset", "smoke", "--out", str(tmp_path / "o"),
                 "--run-dir", str(tmp_path / "r")]) == 2
    assert "registered gymnasium environment id" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_window_outside_the_learner_updates(tmp_path, capsys):
    args = ["--env", ENV, "--preset", "smoke", "--out", str(tmp_path / "o"), "--run-dir", str(tmp_path / "r")]
    assert main(args + ["--window", "3..6", "--learner-updates", "4"]) == 2
    assert "within the learner's updates 1..4" in capsys.readouterr().err
    assert main(args + ["--window", "0..3"]) == 2
    assert "within the learner's updates" in capsys.readouterr().err
    assert main(args + ["--window", "5"]) == 2
    assert "at least 2 strictly increasing" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_results_folder_with_another_configuration(smoke, tmp_path, capsys):
    _, run, out = smoke
    before = _snapshot(out)
    code = main(["--env", ENV, "--preset", "smoke", "--window", "2,4", "--out", str(out),
                 "--run-dir", str(tmp_path / "r")])
    assert code == 2
    assert "holds another configuration (differs in: window)" in capsys.readouterr().err
    assert _snapshot(out) == before and not any(tmp_path.iterdir())


def test_run_folder_with_another_configuration(smoke, tmp_path, capsys):
    _, run, _ = smoke
    before = _snapshot(run)
    code = main(["--env", ENV, "--preset", "smoke", "--seed", "1", "--out", str(tmp_path / "o"),
                 "--run-dir", str(run)])
    assert code == 2
    assert f"run folder {run} holds another configuration (differs in: seed)" in capsys.readouterr().err
    assert _snapshot(run) == before


def test_corrupt_checkpoint(smoke, tmp_path, capsys):
    _, run, _ = smoke
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "learner.pt").write_bytes(b"not a checkpoint")
    # as if the run had been started at another commit: a resumed run appends the current one,
    # which must not happen before the checkpoints are known to be readable
    (copy / "sessions.json").write_text(json.dumps({"git_commits": ["0" * 40]}))
    before = _snapshot(copy)
    code = main(["--env", ENV, "--preset", "smoke", "--out", str(tmp_path / "o"), "--run-dir", str(copy)])
    assert code == 2
    assert "learner.pt is corrupt or unreadable" in capsys.readouterr().err
    assert _snapshot(copy) == before and not (tmp_path / "o").exists()


def test_parse_window_and_paper_defaults():
    assert parse_window("10..20") == tuple(range(10, 21))
    assert parse_window("10..30:5") == (10, 15, 20, 25, 30)
    assert parse_window("3,5") == (3, 5)
    with pytest.raises(ValueError, match="window must look like"):
        parse_window("ten")
    cfg = make_config("HalfCheetah-v5")
    assert cfg.window == DEFAULT_WINDOWS["HalfCheetah-v5"] == tuple(range(30, 41))
    assert cfg.learner_ppo.n_envs * cfg.learner_ppo.n_steps == 65536
    assert cfg.observer_updates == 30 and cfg.lfl.alpha_model == 0.7


# ------------------------------------------------------------------ the fix estimator, a shared learner


def test_fix_estimator_config():
    paper, fix = make_config(ENV, preset="smoke"), make_config(ENV, preset="smoke", estimator="fix")
    assert paper.estimator == "paper" and fix.estimator == "fix"
    assert fix.lfl.log_std == "exact" and fix.lfl.holdout == 0.2
    # only Algorithm 1's fits differ: the learner, observer and protocol are the same
    a, b = paper.to_dict(), fix.to_dict()
    assert [k for k in a if a[k] != b[k]] == ["lfl"]
    with pytest.raises(ValueError, match="estimator must be one of 'paper', 'fix'"):
        make_config(ENV, preset="smoke", estimator="better")


@pytest.mark.slow  # a smoke run of the study: 20 s or more
def test_fix_run_reuses_the_learner_of_a_paper_run(smoke, tmp_path):
    res, run, _ = smoke
    learner_before = _snapshot(run / "observed")
    cfg = make_config(ENV, seed=0, preset="smoke", estimator="fix")
    fix = run_study(cfg, out_dir=tmp_path / "o", run_dir=tmp_path / "r", progress=False, learner_from=run)
    assert fix["learner"] == res["learner"]  # the same observed policies, scored once
    assert fix["learner_from"] == str(run.resolve())  # outside the repository: an absolute path
    assert fix["stage_time_s"]["learner"] == res["stage_time_s"]["learner"]
    assert _snapshot(tmp_path / "r" / "observed") == learner_before
    assert (tmp_path / "r" / "learner.pt").read_bytes() == (run / "learner.pt").read_bytes()
    assert fix["config"]["lfl"]["log_std"] == "exact" and "--estimator fix" in fix["command"]
    assert "policy_stop_step" in fix["recovery_losses"]
    assert _snapshot(run / "observed") == learner_before  # the source is not touched


def test_learner_from_another_learner_is_refused(smoke, tmp_path, capsys):
    _, run, _ = smoke
    before = _snapshot(run)
    args = ["--env", ENV, "--preset", "smoke", "--estimator", "fix", "--out", str(tmp_path / "o"),
            "--run-dir", str(tmp_path / "r")]
    assert main(args + ["--seed", "1", "--learner-from", str(run)]) == 2
    assert "ran another learner (differs in: seed)" in capsys.readouterr().err
    assert main(args + ["--learner-from", str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err
    assert _snapshot(run) == before and not any(tmp_path.iterdir())


# ------------------------------------------------------------------ scoring protocols, released-code estimator (issue 14)

from lfl_lib.experiments.study import PROTOCOLS, protocol_scores  # noqa: E402

KEYS = ("learner_returns", "learner_normalized", "observer_returns", "observer_normalized", "final_observer_normalized")


def test_every_results_file_holds_the_three_protocols(smoke):
    res, _, _ = smoke
    cfg = res["config"]
    assert set(res["scores"]) == set(PROTOCOLS)
    for name in PROTOCOLS:
        sc = res["scores"][name]
        assert all(k in sc for k in KEYS)
        lm = [np.mean(v) for v in sc["learner_returns"]]
        om = [np.mean(v) for v in sc["observer_returns"]]
        assert_allclose(sc["learner_normalized"][0], 0.0, atol=1e-12)
        assert_allclose(sc["learner_normalized"][-1], 1.0, atol=1e-12)
        assert_allclose(sc["observer_normalized"], (np.array(om) - lm[0]) / (lm[-1] - lm[0]), rtol=1e-12)
        assert sc["final_observer_normalized"] == sc["observer_normalized"][-1]
    # mean-return is the protocol of the older entries, unchanged
    assert res["scores"]["mean-return"]["observer_returns"] == res["observer"]["returns"]
    assert res["scores"]["mean-return"]["final_observer_normalized"] == res["final_observer_normalized"]
    # sampled-return: the same number of episodes, other returns than with the mean action
    samp = res["scores"]["sampled-return"]
    assert all(len(r) == cfg["eval_episodes"] for r in samp["learner_returns"] + samp["observer_returns"])
    assert samp["learner_returns"] != res["learner"]["returns"]
    # paper-code: the queue of 10 values per training rollout; the observer's rollouts are its updates
    pc = res["scores"]["paper-code"]
    assert all(len(v) == 10 for v in pc["learner_returns"] + pc["observer_returns"])
    assert len(pc["observer_returns"]) == cfg["observer_updates"]
    assert pc["observer_policy"] == list(range(cfg["observer_updates"]))
    # sigma of every scored policy: the learner's from its snapshot, the observer's after each update
    assert res["action_std"]["learner"] == res["diagnostics"]["learner_action_std"]
    assert len(res["action_std"]["observer"]) == cfg["observer_updates"] + 1
    assert "reward_policy_returns" in res["scores"]["mean-return"]


def test_the_paper_code_score_is_the_last_reward_of_the_last_environments(smoke):
    """Replay the smoke learner's first two updates with a tap of our own: its queue is the recorded value."""
    from lfl_lib.ppo import PPO

    res, _, _ = smoke
    cfg = make_config(ENV, seed=0, preset="smoke")
    ppo = PPO(ENV, cfg.learner_ppo, seed=0)
    ppo.tap.capture_reward_terms(10)
    steps = []
    orig = ppo.tap.step

    def spy(actions):  # the true reward and the sampled action of every step
        out = orig(actions)
        steps.append((np.asarray(out[1], float).copy(), np.asarray(actions, float).copy()))
        return out

    ppo.tap.step = spy
    ppo.train_update()
    ppo.train_update()  # update 2 is the first observed one
    ppo.close()
    got = res["scores"]["paper-code"]["learner_returns"][0]
    assert_allclose(got, list(ppo.tap.reward_terms), rtol=0, atol=0)
    # 4 environments: the queue ends with the last step's 4 values, preceded by the step before's;
    # Reacher's reward with the control cost (weight 1) of the unclipped action in place of the clipped one
    for (r, a), vals in ((steps[-1], got[-4:]), (steps[-2], got[-8:-4])):
        want = r + (np.clip(a, -1, 1) ** 2).sum(-1) - (a ** 2).sum(-1)
        assert_allclose(vals, want, rtol=0, atol=1e-12)


@pytest.mark.slow  # a smoke run of the study: 20 s or more
def test_released_code_estimator(smoke, tmp_path):
    res, run, _ = smoke
    cfg = make_config(ENV, seed=0, preset="smoke", estimator="released-code")
    assert cfg.estimator == "released-code" and cfg.observer_init == "last-fit"
    assert cfg.lfl.policy_fit == "chained" and not cfg.observer_ppo.norm_reward
    assert make_config(ENV, estimator="released-code").lfl.policy_steps == 3000  # the released code's steps
    rc = run_study(cfg, out_dir=tmp_path / "o", run_dir=tmp_path / "r", progress=False, learner_from=run)
    assert rc["learner"] == res["learner"] and "what produced the paper's numbers" in rc["label"]
    assert rc["scores"]["paper-code"]["learner_returns"] == res["scores"]["paper-code"]["learner_returns"]
    fitted = rc["diagnostics"]["fitted_policy_std"]
    assert all(f == fitted[-1] for f in fitted)  # all fits equal the last
    # the observer starts as the last fitted policy
    assert_allclose(rc["action_std"]["observer"][0], fitted[-1], atol=1e-4)
    assert "--estimator released-code" in rc["command"]


def test_old_results_files_stay_readable():
    old = json.loads((ROOT / "book" / "data" / "mujoco" / "Reacher-v5_seed0.json").read_text())
    if "scores" in old:
        pytest.skip("the committed file has been rerun with the protocols")
    sc = protocol_scores(old, "mean-return")
    assert sc["final_observer_normalized"] == old["final_observer_normalized"]
    with pytest.raises(ValueError, match="protocol 'paper-code': this results file predates"):
        protocol_scores(old, "paper-code")


def test_unknown_protocol_and_estimator_are_refused(smoke, tmp_path, capsys):
    res, _, _ = smoke
    with pytest.raises(ValueError, match="protocol must be one of 'paper-code', 'sampled-return', 'mean-return'"):
        protocol_scores(res, "best")
    args = ["--env", ENV, "--preset", "smoke", "--out", str(tmp_path / "o"), "--run-dir", str(tmp_path / "r")]
    for opt in ("--protocol", "--estimator"):
        with pytest.raises(SystemExit) as exc:
            main(args + [opt, "best"])
        assert exc.value.code == 2 and f"argument {opt}: invalid choice: 'best'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_an_old_layout_results_file_is_not_taken_as_done(smoke, tmp_path, capsys):
    res, _, _ = smoke
    out = tmp_path / "o"
    out.mkdir()
    old = {k: v for k, v in res.items() if k != "scores"}
    (out / f"{ENV}_seed0.json").write_text(json.dumps(old))
    before = _snapshot(out)
    assert main(["--env", ENV, "--preset", "smoke", "--out", str(out), "--run-dir", str(tmp_path / "r")]) == 2
    assert "predates the scoring protocols" in capsys.readouterr().err
    assert _snapshot(out) == before and not (tmp_path / "r").exists()


@pytest.mark.slow  # a smoke run of the study: 20 s or more
def test_observer_started_from_the_reward_policy(smoke, tmp_path, capsys):
    res, run, _ = smoke
    cfg = make_config(ENV, seed=0, preset="smoke", observer_init="reward-policy")
    assert cfg.estimator == "paper" and cfg.to_dict()["observer_init"] == "reward-policy"
    mu = run_study(cfg, out_dir=tmp_path / "o", run_dir=tmp_path / "r", progress=False, learner_from=run)
    # the same recovered reward as the paper run; the observer starts as pi_phi itself
    assert mu["recovery_losses"] == res["recovery_losses"]
    assert_allclose(mu["action_std"]["observer"][0], res["diagnostics"]["reward_std"], atol=1e-4)
    assert_allclose(mu["action_std"]["reward_policy"], res["diagnostics"]["reward_std"], atol=1e-4)
    with pytest.raises(ValueError, match="observer_init must be one of 'clone', 'last-fit', 'reward-policy'"):
        make_config(ENV, preset="smoke", observer_init="mu")


@pytest.mark.slow  # a smoke run of the study: 20 s or more
def test_kl_learner_model_candidate(smoke, tmp_path, capsys):
    res, run, _ = smoke
    cfg = make_config(ENV, seed=0, preset="smoke", kl_weight=None)
    assert cfg.estimator == "paper" and cfg.to_dict()["lfl"]["kl_weight"] is None
    # the paper's configuration is unchanged by the option's existence
    assert "kl_weight" not in make_config(ENV, seed=0, preset="smoke").to_dict()["lfl"]
    kl = run_study(cfg, out_dir=tmp_path / "o", run_dir=tmp_path / "r", progress=False, learner_from=run)
    # the same learner and stage-1 fits as the paper run; lambda fitted (softplus: > 0) moves the reward
    assert kl["learner"] == res["learner"]
    assert kl["recovery_losses"]["policy_nll"] == res["recovery_losses"]["policy_nll"]
    assert kl["recovery_losses"]["kl_weight"] > 0
    assert kl["recovery_losses"]["consistency"] != res["recovery_losses"]["consistency"]
    with pytest.raises(ValueError, match="kl_weight must be 0 with estimator 'released-code'"):
        make_config(ENV, preset="smoke", estimator="released-code", kl_weight=1.0)
    args = ["--env", ENV, "--preset", "smoke", "--out", str(tmp_path / "o2"), "--run-dir", str(tmp_path / "r2")]
    for bad in ("-1", "nan", "lots"):
        assert main(args + ["--kl-weight", bad]) == 2
        assert f"--kl-weight must be a number >= 0 or 'fit'; got '{bad}'" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists() and not (tmp_path / "r2").exists()



@pytest.mark.slow  # a smoke run of the study: 20 s or more
def test_terminal_bootstrap_candidate(smoke, tmp_path, capsys):
    res, run, _ = smoke
    cfg = make_config(ENV, seed=0, preset="smoke", terminal="bootstrap")
    d, paper = cfg.to_dict(), make_config(ENV, seed=0, preset="smoke").to_dict()
    assert cfg.estimator == "paper"
    assert d["lfl"]["terminal"] == "bootstrap" and d["observer_ppo"]["bootstrap_terminations"] is True
    # the learner is the paper run's (it can be shared), and the paper's configuration is unchanged
    assert all(d[k] == paper[k] for k in LEARNER_KEYS)
    assert "terminal" not in paper["lfl"] and "bootstrap_terminations" not in paper["observer_ppo"]
    # Reacher never terminates: the candidate computes exactly what the paper run computed
    boot = run_study(cfg, out_dir=tmp_path / "o", run_dir=tmp_path / "r", progress=False, learner_from=run)
    assert boot["recovery_losses"] == res["recovery_losses"]
    assert boot["scores"] == res["scores"]
    with pytest.raises(ValueError, match="terminal must be 'absorbing' or 'bootstrap'; got 'reset'"):
        make_config(ENV, preset="smoke", terminal="reset")
    args = ["--env", ENV, "--preset", "smoke", "--out", str(tmp_path / "o2"), "--run-dir", str(tmp_path / "r2")]
    with pytest.raises(SystemExit) as exc:
        main(args + ["--terminal", "reset"])
    assert exc.value.code == 2 and "--terminal" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists() and not (tmp_path / "r2").exists()


def _fake(finals: dict[str, float], rises: bool = True) -> dict:
    """A results dict with the scores layout only: one final normalized value per protocol."""
    learner = [0.0, 1.0] if rises else [1.0, 0.0]
    return {"scores": {p: {"learner_score": learner, "final_observer_normalized": finals.get(p, 0.0)}
                       for p in ("paper-code", "sampled-return", "mean-return")}}


def test_select_candidate_takes_the_best_worse_protocol():
    a = [_fake({"mean-return": 1.5, "sampled-return": 0.2}), _fake({"mean-return": 1.5, "sampled-return": 0.4})]
    b = [_fake({"mean-return": 0.6, "sampled-return": 0.8}), _fake({"mean-return": 0.8, "sampled-return": 0.9})]
    chosen, table = select_candidate({"a": a, "b": b})
    # a's worse protocol averages 0.3, b's 0.7: b is chosen although a has the best single mean
    assert chosen == "b"
    assert_allclose(table["a"]["criterion"], 0.3, rtol=1e-12)
    assert_allclose(table["b"]["means"]["mean-return"], 0.7, rtol=1e-12)
    assert table["b"]["n"] == {"mean-return": 2, "sampled-return": 2}
    # within the tie margin the first listed wins, whichever is larger
    c = [_fake({"mean-return": 0.705, "sampled-return": 0.705})]
    assert select_candidate({"b": b, "c": c})[0] == "b"
    assert select_candidate({"c": c, "b": b})[0] == "c"
    assert select_candidate({"b": b, "c": c}, tie=0.0)[0] == "c"


def test_select_candidate_leaves_out_runs_whose_learner_fell():
    good = _fake({"mean-return": 0.5, "sampled-return": 0.5})
    fell = _fake({"mean-return": 9.0, "sampled-return": 9.0}, rises=False)
    chosen, table = select_candidate({"x": [good, fell], "y": [fell]})
    assert chosen == "x" and table["x"]["n"]["mean-return"] == 1
    assert_allclose(table["x"]["criterion"], 0.5, rtol=1e-12)
    assert table["y"]["criterion"] is None and table["y"]["means"]["sampled-return"] is None
    with pytest.raises(ValueError, match="no candidate has a run whose learner rose"):
        select_candidate({"y": [fell]})
    with pytest.raises(ValueError, match=r"candidates\['z'\] must hold at least one results dict"):
        select_candidate({"z": []})
    with pytest.raises(ValueError, match="protocols must be names in"):
        select_candidate({"x": [good]}, protocols=("best",))
    with pytest.raises(ValueError, match="candidates must hold at least one candidate"):
        select_candidate({})


def test_held_out_choice_reads_the_folder_and_refuses_an_incomplete_one(tmp_path):
    finals = {"paper": 0.2, "paper_obs-reward-policy": -0.5, "paper_kl-fit": 0.6, "paper_kl-fit_terminal-bootstrap": 0.3,
              "paper_kl-fit_terminal-bootstrap_warmup-6": 0.605,  # within the tie margin: the earlier one wins
              "paper_kl-fit_terminal-bootstrap_anchor-kl": -0.1, "paper_kl-fit_terminal-bootstrap_frozen-stats": 0.0,
              "fix_kl-fit_terminal-bootstrap_frozen-stats": 0.55,
              "fix_kl-fit_terminal-bootstrap_frozen-stats_soft": 0.4,
              "fix_kl-fit_terminal-bootstrap_anchor-kl_frozen-stats": -0.2}
    assert list(finals) == list(HELD_OUT_CANDIDATES)  # the README's order
    for cand, v in finals.items():
        (tmp_path / cand).mkdir()
        for i, seed in enumerate(HELD_OUT_SEEDS):
            res = _fake({"mean-return": v + 0.1 * i, "sampled-return": v + 0.2})
            (tmp_path / cand / f"{HELD_OUT_ENV}_seed{seed}.json").write_text(json.dumps(res))
    chosen, table = held_out_choice(tmp_path)
    assert chosen == "paper_kl-fit"
    assert table["paper_kl-fit"]["criterion"] == pytest.approx(0.7)  # mean of 0.6, 0.7, 0.8; sampled 0.8
    runs, missing = held_out_runs(tmp_path)
    assert missing == [] and [len(v) for v in runs.values()] == [3] * 10
    (tmp_path / "paper_kl-fit" / f"{HELD_OUT_ENV}_seed101.json").unlink()
    runs, missing = held_out_runs(tmp_path)
    assert missing == ["paper_kl-fit seed 101"] and len(runs["paper_kl-fit"]) == 2
    with pytest.raises(ValueError, match="no choice yet: held-out runs missing under .*: paper_kl-fit seed 101"):
        held_out_choice(tmp_path)
    with pytest.raises(ValueError, match="folder must be the held-out results folder"):
        held_out_runs(tmp_path / "nowhere")


def test_variant_name_names_every_option_off_its_default():
    name = lambda **kw: variant_name(make_config("Hopper-v5", **kw))
    assert name() == "paper"
    assert name(estimator="released-code") == "released-code"
    assert name(estimator="fix") == "fix"
    assert name(observer_init="reward-policy") == "paper_obs-reward-policy"
    assert name(estimator="released-code", observer_init="clone") == "released-code_obs-clone"  # its own: last-fit
    assert name(estimator="released-code", observer_init="last-fit") == "released-code"
    assert name(observer_init=make_config("Hopper-v5").observer_init) == "paper"  # the default named: no suffix
    assert name(kl_weight=None) == "paper_kl-fit"
    assert name(kl_weight=0.5) == "paper_kl-0.5"
    assert name(kl_weight=None, terminal="bootstrap") == "paper_kl-fit_terminal-bootstrap"
    assert name(terminal="bootstrap", observer_init="reward-policy") == "paper_obs-reward-policy_terminal-bootstrap"
    # every held-out candidate is a variant name
    cands = [name(), name(observer_init="reward-policy"), name(kl_weight=None), name(kl_weight=None, terminal="bootstrap"),
             name(kl_weight=None, terminal="bootstrap", critic_warmup=6),
             name(kl_weight=None, terminal="bootstrap", observer_anchor="kl"),
             name(kl_weight=None, terminal="bootstrap", observer_obs_stats="frozen"),
             name(estimator="fix", kl_weight=None, terminal="bootstrap", observer_obs_stats="frozen"),
             name(estimator="fix", kl_weight=None, terminal="bootstrap", observer_obs_stats="frozen",
                  observer_soft="model"),
             name(estimator="fix", kl_weight=None, terminal="bootstrap", observer_obs_stats="frozen",
                  observer_anchor="kl")]
    assert cands == list(HELD_OUT_CANDIDATES)
    with pytest.raises(ValueError, match="cfg must be a StudyConfig"):
        variant_name({"estimator": "paper"})


@pytest.mark.slow  # a smoke run of the study: 20 s or more
def test_critic_warmup_run_starts_from_the_same_clone_and_resumes_exactly(smoke, tmp_path, monkeypatch):
    """Two warm-up rounds between the start and the first update: the start's score is the
    paper run's, the warm-up is stored, and a run stopped during it ends as an uninterrupted one."""
    from lfl_lib.observer_ppo import ObserverPPO

    res, run, _ = smoke
    cfg = make_config(ENV, seed=0, preset="smoke", critic_warmup=2)
    warm = run_study(cfg, out_dir=tmp_path / "o", run_dir=tmp_path / "r", progress=False, learner_from=run)
    assert warm["observer"]["returns"][0] == res["observer"]["returns"][0]  # the same clone, scored before
    assert warm["observer"]["returns"][1:] != res["observer"]["returns"][1:]
    assert len(warm["observer"]["critic_warmup"]) == 2 and "critic_warmup" not in res["observer"]
    ostep = cfg.observer_ppo.n_envs * cfg.observer_ppo.n_steps
    assert warm["observer"]["env_steps"][0] == res["observer"]["env_steps"][0]
    assert warm["observer"]["env_steps"][1] == res["observer"]["env_steps"][1] + 2 * ostep
    assert warm["config"]["critic_warmup"] == 2
    assert (tmp_path / "r" / "observer.pt").exists()

    # stop the second warm-up round: the checkpoint holds the first; the rerun does the second only
    real, calls = ObserverPPO.train_critic, []

    def stop_second(self):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(ObserverPPO, "train_critic", stop_second)
    with pytest.raises(KeyboardInterrupt):
        run_study(cfg, out_dir=tmp_path / "o2", run_dir=tmp_path / "r2", progress=False, learner_from=run)
    assert not (tmp_path / "o2").exists() or not any((tmp_path / "o2").iterdir())
    monkeypatch.setattr(ObserverPPO, "train_critic", lambda self: (calls.append(1), real(self))[1])
    again = run_study(cfg, out_dir=tmp_path / "o2", run_dir=tmp_path / "r2", progress=False, learner_from=run)
    assert len(calls) == 3  # one round before the stop, the stopped one, and one after it
    assert again["observer"]["returns"] == warm["observer"]["returns"]
    assert again["observer"]["critic_warmup"] == warm["observer"]["critic_warmup"]


def test_results_git_commits_reads_the_old_and_the_new_key(tmp_path, monkeypatch):
    from lfl_lib.experiments import study
    from lfl_lib.experiments.study import results_git_commits

    assert results_git_commits({"git_commits_all_runs": ["a", "b"]}) == ["a", "b"]
    assert results_git_commits({"git_commits_all_sessions": ["c"]}) == ["c"]
    with pytest.raises(ValueError, match="git_commits_all_runs"):
        results_git_commits({"git_commit": "a"})
    # a run folder of the older layout: its commits are carried over into commits.json
    (tmp_path / "sessions.json").write_text(json.dumps({"git_commits": ["0" * 40]}))
    monkeypatch.setattr(study, "git_commit", lambda: "1" * 40)
    assert study._record_commit(tmp_path) == {"git_commits": ["0" * 40, "1" * 40]}
    assert json.loads((tmp_path / "commits.json").read_text()) == {"git_commits": ["0" * 40, "1" * 40]}
    assert study._record_commit(tmp_path) == {"git_commits": ["0" * 40, "1" * 40]}


# ------------------------------------------------------------------ the observer's options of chapter 6

HOPPER = "Hopper-v5"


@pytest.mark.parametrize("option, values, value, extra, variant, bad", [
    ("observer_anchor", ("none", "kl"), "kl", {}, "paper_kl-fit_terminal-bootstrap_anchor-kl", "clip"),
    ("observer_obs_stats", ("running", "frozen"), "frozen", {}, "paper_kl-fit_terminal-bootstrap_frozen-stats", "fixed"),
    ("observer_soft", ("none", "model"), "model", {"estimator": "fix", "observer_obs_stats": "frozen"},
     "fix_kl-fit_terminal-bootstrap_frozen-stats_soft", "yes"),
])
def test_an_observer_option_is_checked_named_and_stored_only_when_used(option, values, value, extra, variant, bad,
                                                                      tmp_path, capsys):
    from lfl_lib.experiments import study

    choices = {"observer_anchor": study.OBSERVER_ANCHORS, "observer_obs_stats": study.OBSERVER_OBS_STATS,
               "observer_soft": study.OBSERVER_SOFT}[option]
    assert choices == values
    assert option not in make_config(HOPPER).to_dict()  # older configurations still match
    cfg = make_config(HOPPER, kl_weight=None, terminal="bootstrap", **extra, **{option: value})
    assert cfg.to_dict()[option] == value
    assert variant_name(cfg) == variant
    with pytest.raises(ValueError, match=f"{option} must be one of '{values[0]}', '{values[1]}'; got '{bad}'"):
        make_config(HOPPER, kl_weight=None, **{option: bad})
    flag = "--" + option.replace("_", "-")
    with pytest.raises(SystemExit):
        main(["--env", HOPPER, "--preset", "smoke", "--kl-weight", "fit", flag, bad,
              "--out", str(tmp_path / "o"), "--run-dir", str(tmp_path / "r")])
    assert flag in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "r").exists()


def test_the_anchor_needs_a_fitted_kl_weight(tmp_path, capsys):
    with pytest.raises(ValueError, match="kl_weight must be 'fit' .* got 0"):
        make_config(HOPPER, observer_anchor="kl")
    assert main(["--env", HOPPER, "--preset", "smoke", "--observer-anchor", "kl",
                 "--out", str(tmp_path / "o"), "--run-dir", str(tmp_path / "r")]) == 2
    assert "kl_weight must be 'fit'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "r").exists()


def test_critic_warmup_option_is_checked_named_and_stored_only_when_used(tmp_path, capsys):
    assert "critic_warmup" not in make_config(HOPPER).to_dict()
    cfg = make_config(HOPPER, kl_weight=None, terminal="bootstrap", critic_warmup=6)
    assert cfg.to_dict()["critic_warmup"] == 6
    assert variant_name(cfg) == "paper_kl-fit_terminal-bootstrap_warmup-6"
    with pytest.raises(ValueError, match="critic_warmup must be an integer >= 0"):
        make_config(HOPPER, critic_warmup=-1)
    with pytest.raises(ValueError, match="critic_warmup must be an integer"):
        make_config(HOPPER, critic_warmup=1.5)
    code = main(["--env", "Reacher-v5", "--preset", "smoke", "--critic-warmup", "-2",
                 "--out", str(tmp_path / "o"), "--run-dir", str(tmp_path / "r")])
    assert code == 2
    assert "critic_warmup must be an integer >= 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def hopper_kl_fit(tmp_path_factory):
    """A Hopper smoke run with the KL model fitted and terminations bootstrapped: (results, run folder)."""
    base = tmp_path_factory.mktemp("hopper_kl_fit")
    cfg = make_config(HOPPER, seed=0, preset="smoke", kl_weight=None, terminal="bootstrap")
    return run_study(cfg, out_dir=base / "o", run_dir=base / "r", progress=False), base / "r"


@pytest.mark.slow  # smoke runs of the study: 20 s or more each
@pytest.mark.parametrize("option, value", [("observer_anchor", "kl"), ("observer_obs_stats", "frozen")])
def test_an_observer_option_changes_the_observer_only(hopper_kl_fit, option, value, tmp_path):
    from lfl_lib._safe_io import load_checkpoint as _load
    from lfl_lib.data import Rollout

    base, learner_dir = hopper_kl_fit
    cfg = make_config(HOPPER, seed=0, preset="smoke", kl_weight=None, terminal="bootstrap", **{option: value})
    res = run_study(cfg, out_dir=tmp_path / "o", run_dir=tmp_path / "r", progress=False, learner_from=learner_dir)
    assert res["learner"] == base["learner"]
    assert res["recovery_losses"] == base["recovery_losses"]  # the same recovery: only the observer differs
    assert res["observer"]["returns"][0] == base["observer"]["returns"][0]  # the same clone, scored before any update
    if option == "observer_anchor":
        obs = res["observer"]
        assert obs["anchor_weight"] == pytest.approx(res["recovery_losses"]["kl_weight"], rel=1e-6)
        assert len(obs["anchor_kl"]) == cfg.observer_updates and all(np.isfinite(obs["anchor_kl"]))
        assert "anchor_kl" not in base["observer"]
    else:
        state = _load(tmp_path / "r" / "observer.pt", ["ppo"])["ppo"]
        assert state["obs_stats_frozen"] is True
        # the statistics at the end are the clone's: the mean and variance of the last observed rollout's states
        last = _load(sorted((tmp_path / "r" / "observed").glob("update_*.pt"))[-1], ["rollout"])["rollout"]
        states = Rollout(**last).observations
        mean, var, _ = state["envs"]["obs_rms"]
        assert_allclose(mean, states.mean(0), rtol=1e-12, atol=1e-12)
        assert_allclose(var, states.var(0), rtol=1e-12, atol=1e-12)
