"""Logs of any size: Algorithm 1's stages on minibatches beyond one batch, the paper's full batches below.

The paper preset on rollouts of at most ``DeepLfLConfig.minibatch`` transitions (the study's
hold 2,048) computes exactly what it computed before minibatches existed: the reference
numbers in ``tests/data/recover_paper_reference.json`` were written by that code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from lfl_lib.data import Rollout
from lfl_lib.deep_lfl import DeepLfLConfig, recover_reward

REFERENCE = Path(__file__).parent / "data" / "recover_paper_reference.json"


def _fixed_input() -> tuple[list[Rollout], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    D = []
    for k in range(2):
        s = rng.normal(size=(128, 5))
        a = rng.normal(size=(128, 2)) * (1.0 - 0.25 * k) + 0.1 * k
        D.append(Rollout(s, a, s + 0.1 * rng.normal(size=(128, 5)), np.arange(128) % 64 == 63))
    return D, rng.normal(size=(16, 5)), rng.normal(size=(16, 2))


def test_paper_preset_is_bitwise_as_before_minibatches():
    torch.set_num_threads(1)
    D, probe_s, probe_a = _fixed_input()
    reward, info = recover_reward(D, None, seed=0)
    ref = json.loads(REFERENCE.read_text())
    assert {k: float(v) for k, v in info.items()} == ref["info"]
    assert_allclose(reward.reward_fn(probe_s, probe_a), ref["reward"], rtol=0, atol=0)


def _big(T: int = 600, K: int = 3, seed: int = 0) -> list[Rollout]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(K):
        s = rng.normal(size=(T, 3))
        a = 0.5 * s[:, :1] * (k + 1) + rng.normal(size=(T, 1)) * (1.0 - 0.2 * k)
        out.append(Rollout(s, a, s + 0.1 * rng.normal(size=(T, 3)), np.arange(T) % 100 == 99))
    return out


SMALL_STEPS = dict(policy_steps=60, kl_steps=20, reward_init_steps=60, consistency_steps=60)


def test_minibatches_beyond_one_batch_are_seeded_and_match_full_batch_quality(monkeypatch):
    """Beyond ``minibatch`` transitions, the stages take minibatch steps: deterministic per seed, and
    on this data the fitted reward agrees with the full-batch fit's (correlation of r_phi on the
    data above 0.9; both are fitted from the same 600 transitions per policy)."""
    import lfl_lib.deep_lfl as deep

    torch.set_num_threads(1)
    D = _big()
    calls = []
    real = deep.fit_gaussian_policies

    def spy(*args, **kw):
        calls.append(args[9] if len(args) > 9 else kw.get("batch"))
        return real(*args, **kw)

    monkeypatch.setattr(deep, "fit_gaussian_policies", spy)
    cfg = DeepLfLConfig(**SMALL_STEPS, minibatch=128)
    r1, info1 = recover_reward(D, cfg, seed=3)
    r2, info2 = recover_reward(D, cfg, seed=3)
    assert calls == [128, 128, 128, 128]  # stages 1 and 3 took minibatches, in both runs
    assert info1 == info2
    s, a = D[-1].observations, D[-1].actions
    assert_allclose(r1.reward_fn(s, a), r2.reward_fn(s, a), rtol=0, atol=0)
    calls.clear()
    full, _ = recover_reward(D, DeepLfLConfig(**SMALL_STEPS), seed=3)
    assert calls == [None, None]  # 600 <= 4096: the paper's full batches
    assert np.corrcoef(r1.reward_fn(s, a), full.reward_fn(s, a))[0, 1] > 0.9


def test_minibatch_targets_equal_the_full_ones():
    """A large log's targets (stages 2 and 4) are computed per minibatch, from rows converted as they are
    drawn: the same numbers as the targets of the whole log's tensors at those rows (float32: 1e-6)."""
    import lfl_lib.deep_lfl as deep

    torch.set_num_threads(1)
    D = _big(T=700)
    cfg = DeepLfLConfig(policy_steps=5, kl_steps=5, reward_init_steps=5, consistency_steps=1, minibatch=128)
    state: dict = {}
    recover_reward(D, cfg, seed=0, checkpoint=state.update)
    d = deep._prepare_data(D, cfg, 0)
    assert d.big and d.S == []  # no tensor of the whole log
    all_s = np.concatenate([np.concatenate([r.observations, r.next_observations]) for r in D])
    assert_allclose(d.mean, all_s.mean(0), rtol=1e-15) and assert_allclose(d.std, all_s.std(0), rtol=1e-15)
    pols, rho, _, _ = deep._networks(d, cfg, 0)
    for p, sd in zip(pols, state["policies"]):
        p.load_state_dict(sd)
    rho.load_state_dict(state["rho"])
    S = [deep._t(r.observations) for r in D]
    A = [deep._t(r.actions) for r in D]
    S2 = [deep._t(r.next_observations) for r in D]
    live = [deep.live_mask(r) for r in D]
    j = torch.randint(700, (128,), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = deep.consistency_targets(pols, rho, d.norm, S, A, S2, live, 0.7, 0.99)
        direction = deep.kl_direction_targets(pols, rho, d.norm, S, A, S2, live, 0.99)
        kl = deep.divergence_targets(pols, d.norm, [torch.cat([S[k], S2[k], S[k + 1], S2[k + 1]]) for k in range(2)])
        for k in range(2):
            s, a, s2, lv = d.rows(k + 1, j)
            got = deep._consistency_target(pols[k + 1], rho, k, d.norm, s, a, s2, lv, 0.7, 0.99)
            assert_allclose(got.numpy(), full[k][j].numpy(), rtol=0, atol=1e-6)
            got = deep._kl_direction_target(pols[k], pols[k + 1], rho, k, d.norm, s, a, s2, lv, 0.99)
            assert_allclose(got.numpy(), direction[k][j].numpy(), rtol=0, atol=1e-6)
            rows = deep._Rows(
                [D[k].observations, D[k].next_observations, D[k + 1].observations, D[k + 1].next_observations]
            )
            i = torch.randint(len(rows), (128,), generator=torch.Generator().manual_seed(2))
            got = deep.policy_kl(pols[k], pols[k + 1], d.norm(rows[i]))
            assert_allclose(got.numpy(), kl[k][i].numpy(), rtol=0, atol=1e-6)


def test_rows_draws_equal_the_whole_tensor_rows():
    """``_Rows`` stands for the float32 tensor of its arrays one after the other: the same rows, exactly,
    also through a subset (the training rows of an early-stopped fit)."""
    from lfl_lib.deep_lfl import _Rows

    rng = np.random.default_rng(0)
    parts = [rng.normal(size=(n, 3)) for n in (5, 1, 7)]
    whole = torch.as_tensor(np.concatenate(parts).astype(np.float32))
    rows = _Rows(parts)
    assert len(rows) == 13
    i = torch.tensor([12, 0, 5, 5, 6, 4])
    assert torch.equal(rows[i], whole[i]) and torch.equal(rows.all(), whole)
    mask = torch.as_tensor(rng.random(13) < 0.5)
    assert len(rows.subset(mask)) == int(mask.sum())
    assert torch.equal(rows.subset(mask)[torch.tensor([1, 0])], whole[mask][torch.tensor([1, 0])])
    assert torch.equal(rows[mask], whole[mask])


def test_a_large_log_is_not_copied(monkeypatch):
    """Memory beyond the rollouts passed in stays bounded: no concatenation or float32 copy of the log.
    The peak of what is allocated during a recovery (tracemalloc) is below a quarter of the log's
    states (a float32 copy of them alone would be half), and no tensor op converts or concatenates
    more rows than a minibatch."""
    import tracemalloc

    import lfl_lib.deep_lfl as deep

    torch.set_num_threads(1)
    monkeypatch.setattr(deep, "CHUNK", 4096)
    D = _big(T=50_000, K=3)
    states_bytes = sum(r.observations.nbytes + r.next_observations.nbytes for r in D)
    widest = []
    real_cat, real_t = torch.cat, deep._t

    def cat(tensors, *args, **kw):
        out = real_cat(tensors, *args, **kw)
        widest.append(len(out))
        return out

    def t(x):
        widest.append(len(x))
        return real_t(x)

    monkeypatch.setattr(torch, "cat", cat)
    monkeypatch.setattr(deep, "_t", t)
    cfg = DeepLfLConfig(policy_steps=3, kl_steps=3, reward_init_steps=3, consistency_steps=3, minibatch=256)
    recover_reward(_big(T=600), cfg, seed=0)  # first calls import and initialise what they use: not traced
    tracemalloc.start()
    try:
        recover_reward(D, cfg, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < states_bytes / 4, (peak, states_bytes)  # measured: 0.7 MB of 7.2 MB (before: 14.5 MB)
    assert max(widest) <= 256


def test_minibatch_must_be_a_positive_int():
    with pytest.raises(ValueError, match="minibatch"):
        DeepLfLConfig(minibatch=0)
    assert "minibatch" not in DeepLfLConfig().to_dict() and DeepLfLConfig(minibatch=100).to_dict()["minibatch"] == 100
