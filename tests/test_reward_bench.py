"""Tests of lfl_lib.experiments.reward_bench: the metrics, the exact grid benchmark and the table."""

from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from lfl_lib.experiments import reward_bench as rb


def test_rank_correlations_match_scipy():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(0, 5, 12).astype(float)  # with ties
        y = x + rng.normal(size=12)
        assert rb.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
        assert rb.pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    assert np.isnan(rb.spearman(np.ones(4), np.arange(4.0)))
    with pytest.raises(ValueError, match="same length"):
        rb.pearson(np.ones(3), np.ones(4))


def test_ranking_metrics_by_hand():
    updates = [1, 2, 3, 4, 5, 6]
    window = [2, 3]  # the last observed is 3; unseen 4, 5, 6
    true = np.array([0.0, 1.0, 2.0, 3.0, 5.0, 4.0])
    learned = np.array([9.0, 1.0, 2.0, 1.5, 2.5, 3.0])
    m = rb.ranking_metrics(learned, true, updates, window)
    assert m["spearman_unseen"] == pytest.approx(stats.spearmanr([1.5, 2.5, 3.0], [3.0, 5.0, 4.0])[0])
    assert m["spearman_all"] == pytest.approx(stats.spearmanr(learned, true)[0])
    assert m["share_above_last"] == pytest.approx(2 / 3)  # 2.5 and 3.0 are above 2.0
    assert m["true_share_above_last"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="last observed"):
        rb.ranking_metrics(learned, true, updates, [7])


def test_episode_returns_sum_only_the_valid_steps():
    obs = np.arange(4 * 2 * 3, dtype=np.float32).reshape(4, 2, 3)  # T=4 steps, 2 episodes
    act = np.ones((4, 2, 1), np.float32)
    traj = {"observations": obs, "actions": act, "lengths": np.array([4, 2])}
    got = rb.episode_returns(lambda o, a: o[:, 0] + a[:, 0], traj)
    assert_allclose(got, [obs[:, 0, 0].sum() + 4, obs[:2, 1, 0].sum() + 2])


def test_reward_names():
    assert rb._named("trex-L10-next-beta0.1") == ("trex", {"snippet": 10, "next_state": True, "beta": 0.1})
    assert rb._named("lfl-state") == ("lfl-state", {})
    with pytest.raises(ValueError, match="unknown"):
        rb._named("trex-X")
    with pytest.raises(ValueError, match="unknown reward"):
        rb._named("bc-foo")


def test_grid_benchmark_is_exact_for_the_true_and_the_theorem_2_reward():
    # the true reward ranks everything right by construction; Theorem 2's reward of the last observed
    # improvement of an SPI learner is the true reward up to a shaping, which moves every expected
    # discounted return from the start state by the same constant: its rankings are exact too
    for reward in ("true", "exact"):
        row = rb.grid_bench("SPI", 0, reward)
        m = row["metrics"]
        assert m["spearman_all"] == pytest.approx(1.0, abs=1e-12), (reward, m)
        assert m["diverse_spearman"] == pytest.approx(1.0, abs=1e-12), (reward, m)
        assert m["diverse_corr"] == pytest.approx(1.0, abs=1e-9), (reward, m)
        assert m["share_above_last"] == m["true_share_above_last"]
        L, T = np.array(row["returns"]["learned"]), np.array(row["returns"]["true"])
        assert_allclose(L - T, (L - T)[0], atol=1e-5)  # one constant (rounded to 1e-6 in the row)
    assert rb.grid_bench("SPI", 0, "true")["metrics"]["heldout_corr"] == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="reward"):
        rb.grid_bench("SPI", 0, "nope")


def test_bench_table_reads_the_files(tmp_path):
    for reward, seed, rho in (("trex", 1, 0.5), ("trex", 0, None), ("bc", 0, -1.0)):
        m = {k: 0.25 for k in rb.METRICS}
        m["spearman_unseen"] = rho
        d = {
            "reward": reward,
            "env_id": "Reacher-v5",
            "seed": seed,
            "metrics": {"mean": m, "sampled": {**m, "spearman_all": 0.9}},
        }
        (tmp_path / reward).mkdir(exist_ok=True)
        (tmp_path / reward / f"Reacher-v5_seed{seed}.json").write_text(json.dumps(d))
    rows = rb.bench_table(tmp_path)
    assert [(r["reward"], r["seed"]) for r in rows] == [("bc", 0), ("trex", 0), ("trex", 1)]
    assert rows[1]["spearman_unseen"] is None and rows[2]["spearman_unseen"] == 0.5
    assert rb.bench_table(tmp_path, "sampled")[0]["spearman_all"] == 0.9
    with pytest.raises(ValueError, match="protocol"):
        rb.bench_table(tmp_path, "median")


def _fake_log(run_dir, env_id="Reacher-v5", n_updates=30):
    """A learner log in the learner_logs layout: one random policy's data, its returns shifted by update."""
    import torch

    from lfl_lib import _safe_io
    from lfl_lib.data import Rollout
    from lfl_lib.nets import GaussianActor, PolicySnapshot

    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "trajectories").mkdir()
    torch.manual_seed(0)
    actor = GaussianActor(10, 2, (8,))
    pol = PolicySnapshot(
        {k: v.detach().clone() for k, v in actor.state_dict().items()}, np.zeros(10), np.ones(10), (8,)
    )
    tr = rb.noisy_episodes(env_id, pol, 0.0, 2, 10, stochastic=True)
    o, a = tr["observations"].astype(np.float64), tr["actions"].astype(np.float64)
    obs = np.concatenate([o[:, 0], o[:, 1]])
    act = np.concatenate([a[:, 0], a[:, 1]])
    nxt = np.concatenate([obs[1:], obs[-1:]])
    trunc = np.zeros(len(obs), bool)
    trunc[[49, 99]] = True
    ro = Rollout(obs, act, nxt, np.zeros(len(obs), bool), trunc)
    evals = {p: rb.noisy_episodes(env_id, pol, 0.0, 2, 1000, stochastic=p == "sampled") for p in ("mean", "sampled")}
    rng = np.random.default_rng(0)
    for u in range(1, n_updates + 1):
        _safe_io.save(
            {"update": u, "rollout": ro.to_arrays(), "policy": pol.to_dict()},
            run_dir / "checkpoints" / f"update_{u:03d}.pt",
        )
        for prot, t in evals.items():
            t = {**t, "returns": t["returns"] + rng.normal(0.0, 5.0)}
            np.savez_compressed(run_dir / "trajectories" / f"update_{u:03d}_{prot}.npz", **t)


def test_bench_run_end_to_end_on_a_fake_log(tmp_path, monkeypatch):
    monkeypatch.setattr(rb, "NOISE_EPISODES", 1)
    monkeypatch.setattr(rb, "BC_STEPS", 50)
    runs = tmp_path / "runs"
    _fake_log(runs / "Reacher-v5_seed0")
    out = tmp_path / "out"
    path = rb.bench_run("true", "Reacher-v5", 0, runs, out, tmp_path / "cache", command="test")
    d = json.loads(path.read_text())
    for prot in ("mean", "sampled"):
        m = d["metrics"][prot]
        # the true reward's learned return is the true return: every correlation is 1
        assert m["spearman_all"] == pytest.approx(1.0) and m["heldout_corr"] == pytest.approx(1.0)
        assert m["diverse_corr"] == pytest.approx(1.0) and m["share_above_last"] == m["true_share_above_last"]
        assert m["diverse_episodes"] == 3 * len(rb.NOISE_LEVELS) * rb.NOISE_EPISODES
    assert d["unseen"] == list(range(21, 31)) and d["command"] == "test"
    # the noise-injected episodes are cached: a second reward reads them back
    rb.main(
        [
            "--rewards",
            "true",
            "bc",
            "--envs",
            "Reacher-v5",
            "--seeds",
            "0",
            "--runs",
            str(runs),
            "--out",
            str(out),
            "--cache",
            str(tmp_path / "cache"),
        ]
    )
    bc = json.loads((out / "bc" / "Reacher-v5_seed0.json").read_text())
    assert -1.0 <= bc["metrics"]["mean"]["heldout_corr"] <= 1.0
    assert [r["reward"] for r in rb.bench_table(out)] == ["bc", "true"]
    # another seed's log completes: rescoring adds its episodes to the diverse set, from the cached reward
    _fake_log(runs / "Reacher-v5_seed1")
    f = out / "bc" / "Reacher-v5_seed0.json"
    assert rb.rescore(f, runs, tmp_path / "cache")
    again = json.loads(f.read_text())
    assert again["diverse"]["other_seeds"] == ["seed1"] and bc["diverse"]["other_seeds"] == []
    m0, m1 = bc["metrics"]["mean"], again["metrics"]["mean"]
    assert m1["other_seeds_episodes"] == 2 * rb.OTHER_SEED_UPDATES and m0["other_seeds_episodes"] == 0
    assert m1["diverse_episodes"] == m0["diverse_episodes"] + m1["other_seeds_episodes"]
    assert m1["heldout_corr"] == m0["heldout_corr"] and m1["noise_corr"] == m0["noise_corr"]  # the same reward
    assert not rb.rescore(f, runs, tmp_path / "cache")  # nothing new


def test_noise_free_episodes_are_the_evaluation_episodes():
    import torch

    from lfl_lib.nets import GaussianActor, PolicySnapshot
    from lfl_lib.ppo import evaluate_episodes

    torch.manual_seed(0)
    actor = GaussianActor(10, 2, (8,))
    pol = PolicySnapshot(actor.state_dict(), np.zeros(10), np.ones(10), (8,))
    got = rb.noisy_episodes("Reacher-v5", pol, 0.0, 3, 123, stochastic=False)
    want = evaluate_episodes("Reacher-v5", pol, 3, 123)
    assert_allclose(got["returns"], want["returns"], rtol=1e-12)
    assert got["lengths"].tolist() == want["lengths"]
    noisy = rb.noisy_episodes("Reacher-v5", pol, 1.0, 3, 123, stochastic=False)
    assert not np.allclose(noisy["returns"], want["returns"])


@pytest.mark.parametrize("name", ["trex-L5-beta0.5", "bc", "lfl-state"])
def test_a_fitted_reward_is_rebuilt_from_its_spec(name, monkeypatch, tmp_path):
    import functools

    from lfl_lib import _safe_io
    from lfl_lib.deep_lfl import DeepLfLConfig
    from lfl_lib.data import Rollout
    from lfl_lib.trex import TrexConfig

    monkeypatch.setattr(rb, "TrexConfig", functools.partial(TrexConfig, steps=5, n_pairs=20, ensemble=2, hidden=(4,)))
    monkeypatch.setattr(rb, "BC_STEPS", 5)
    small = dict(policy_steps=3, kl_steps=3, reward_init_steps=3, consistency_steps=3, hidden=(4,), shared_units=4)
    monkeypatch.setattr(rb, "DeepLfLConfig", functools.partial(DeepLfLConfig, **small))
    rng = np.random.default_rng(0)
    rolls = []
    for _ in range(3):
        s = rng.normal(size=(40, 3))
        rolls.append(Rollout(s, rng.normal(size=(40, 2)), s + 0.1, np.zeros(40, bool), (np.arange(40) % 10) == 9))
    fn, info, spec = rb.fit_named_reward(name, rolls, seed=0)
    _safe_io.save(spec, tmp_path / "r.pt")
    back = rb.reward_from_spec(_safe_io.load(tmp_path / "r.pt"))
    x, a = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    assert_allclose(back(x, a), fn(x, a), rtol=1e-6)
    assert rb.fit_named_reward("true", rolls)[0] is None
    with pytest.raises(ValueError, match="kind"):
        rb.reward_from_spec({"kind": "nope"})


def test_the_committed_results_are_consistent():
    # every committed benchmark file: both protocols, every metric, the window of its environment, and the
    # ceiling (the true reward) exact; the grid file: the true and Theorem 2's reward exact for SPI
    from pathlib import Path

    from lfl_lib.experiments.study import DEFAULT_WINDOWS

    folder = Path(__file__).resolve().parent.parent / "book" / "data" / "reward_bench"
    files = sorted(folder.glob("*/*_seed*.json"))
    for f in files:
        d = json.loads(f.read_text())
        assert f.parent.name == d["reward"] and f.name == f"{d['env_id']}_seed{d['seed']}.json"
        assert d["window"] == list(DEFAULT_WINDOWS[d["env_id"]]) and min(d["unseen"]) == max(d["window"]) + 1
        for prot in ("mean", "sampled"):
            m = d["metrics"][prot]
            assert set(rb.METRICS) <= set(m)
            if d["reward"] == "true":
                assert m["spearman_all"] == 1.0 and m["heldout_corr"] == 1.0 and m["diverse_corr"] == 1.0
                assert m["share_above_last"] == m["true_share_above_last"]
    assert len(rb.bench_table(folder)) == len(files)
    grid = json.loads((folder / "grid.json").read_text())["rows"]
    for row in grid:
        if row["reward"] == "true" or (row["reward"] == "exact" and row["learner"] == "SPI"):
            assert row["metrics"]["spearman_all"] == 1.0 and row["metrics"]["diverse_spearman"] == 1.0, row
