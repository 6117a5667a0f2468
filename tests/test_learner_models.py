"""Tests of the learner models beyond SPI (book chapter "What kind of learner?").

Exact inversions of KL-regularized soft improvements and of soft value iteration,
checked with hypothesis on random stochastic MDPs (Dirichlet dynamics, some rows sparse);
the KL learner; and the learner_model option of recover_reward.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from conftest import alphas, mdps, random_positive_policy, seeds
from lfl_lib.gridworld import ALPHA, make_gridworld
from lfl_lib.improvement import soft_improvement
from lfl_lib.inversion import invert_kl_improvement, invert_soft_improvement, invert_value_iteration
from lfl_lib.learners import kl_soft_improvement, kl_soft_policy_iteration, soft_value_iteration
from lfl_lib.mdp import soft_evaluate, soft_optimal
from lfl_lib.tabular_lfl import (
    consistency_fit,
    fit_lfl,
    kl_targets,
    kl_weight_from_consistency,
    recover_reward,
    select_learner_model,
    targets,
)
from lfl_lib.experiments.table2 import observed_run
from lfl_lib.trajectories import Trajectory

kl_weights = st.floats(min_value=0.0, max_value=5.0, allow_nan=False, allow_infinity=False)
TOL = 1e-6  # the tolerance; the identities hold to ~1e-10 here


def _shaping_residual(mdp, d):
    """Max |d - (g - gamma P g)| over (s, a) for the least-squares g: 0 iff d is a shaping."""
    S, A = mdp.n_states, mdp.n_actions
    B = np.repeat(np.eye(S), A, axis=0) - mdp.gamma * mdp.P.reshape(S * A, S)
    g, *_ = np.linalg.lstsq(B, d.reshape(-1), rcond=None)
    return float(np.abs(B @ g - d.reshape(-1)).max())


# ----------------------------------------------------------------------------- KL-regularized SPI


@given(mdp=mdps(), alpha=alphas, lam=kl_weights, seed=seeds)
def test_kl_inversion_differs_from_the_reward_by_a_shaping(mdp, alpha, lam, seed):
    pi1 = random_positive_policy(np.random.default_rng(seed), mdp.n_states, mdp.n_actions)
    pi2 = kl_soft_improvement(mdp, pi1, alpha, lam)
    r = invert_kl_improvement(mdp, pi1, pi2, alpha, lam)
    scale = 1.0 + np.abs(r).max() + np.abs(mdp.r).max()
    assert _shaping_residual(mdp, r - mdp.r) < TOL * scale
    # the potential is the closed form -(alpha + lam) ln sum_a pi1^(lam/(alpha+lam)) exp(Q/(alpha+lam))
    Q1, _ = soft_evaluate(mdp, pi1, alpha)
    beta = alpha + lam
    Z = beta * np.log((pi1 ** (lam / beta) * np.exp((Q1 - Q1.max(1, keepdims=True)) / beta)).sum(1)) + Q1.max(1)
    assert_allclose(r - mdp.r, -(Z[:, None] - mdp.gamma * (mdp.P @ Z)), rtol=0, atol=TOL * scale)


@given(mdp=mdps(), alpha=alphas, lam=kl_weights, seed=seeds)
def test_kl_inversion_reproduces_the_step_and_the_optimal_policy(mdp, alpha, lam, seed):
    pi1 = random_positive_policy(np.random.default_rng(seed), mdp.n_states, mdp.n_actions)
    pi2 = kl_soft_improvement(mdp, pi1, alpha, lam)
    observer = mdp.with_reward(invert_kl_improvement(mdp, pi1, pi2, alpha, lam))
    assert_allclose(kl_soft_improvement(observer, pi1, alpha, lam), pi2, rtol=0, atol=TOL)
    assert_allclose(soft_optimal(observer, alpha)[0], soft_optimal(mdp, alpha)[0], rtol=0, atol=TOL)


@given(mdp=mdps(), alpha=alphas, seed=seeds)
def test_kl_inversion_with_zero_weight_is_theorem2_bitwise(mdp, alpha, seed):
    pi1 = random_positive_policy(np.random.default_rng(seed), mdp.n_states, mdp.n_actions)
    pi2 = soft_improvement(mdp, pi1, alpha)
    assert_array_equal(invert_kl_improvement(mdp, pi1, pi2, alpha, 0.0), invert_soft_improvement(mdp, pi1, pi2, alpha))
    assert_array_equal(kl_soft_improvement(mdp, pi1, alpha, 0.0), pi2)


@given(mdp=mdps(min_actions=2), alpha=alphas, lam=kl_weights, lam2=kl_weights, seed=seeds)
def test_one_kl_step_is_explained_by_every_kl_weight(mdp, alpha, lam, lam2, seed):
    # non-identifiability of lambda from one improvement: the reward built with any other
    # weight makes that weight's learner take exactly the same step
    pi1 = random_positive_policy(np.random.default_rng(seed), mdp.n_states, mdp.n_actions)
    pi2 = kl_soft_improvement(mdp, pi1, alpha, lam)
    other = mdp.with_reward(invert_kl_improvement(mdp, pi1, pi2, alpha, lam2))
    assert_allclose(kl_soft_improvement(other, pi1, alpha, lam2), pi2, rtol=0, atol=TOL)


@given(mdp=mdps(), alpha=alphas, lam=kl_weights, c=st.floats(0.1, 10.0), seed=seeds)
def test_reward_alpha_and_kl_weight_scale_together(mdp, alpha, lam, c, seed):
    pi1 = random_positive_policy(np.random.default_rng(seed), mdp.n_states, mdp.n_actions)
    scaled = mdp.with_reward(c * mdp.r)
    assert_allclose(
        kl_soft_improvement(scaled, pi1, c * alpha, c * lam),
        kl_soft_improvement(mdp, pi1, alpha, lam),
        rtol=0,
        atol=TOL,
    )


def test_kl_weight_is_identified_from_two_exact_improvements_on_the_grid():
    grid = make_gridworld()
    for lam in (0.5, 1.0, 3.0):
        pols = kl_soft_policy_iteration(grid, ALPHA, lam, 3)
        w = np.full((3, grid.n_states, grid.n_actions), 1.0 / grid.P[:, :, 0].size)
        # the observer's scale alpha_m: the estimate is lambda * alpha_m / alpha
        assert_allclose(kl_weight_from_consistency(pols, grid.P, grid.gamma, 0.7, w), lam * 0.7 / ALPHA, rtol=1e-6)


# ----------------------------------------------------------------------------- soft value iteration


@given(mdp=mdps(), alpha=alphas, seed=seeds, n=st.integers(2, 5), start=st.integers(0, 3))
def test_value_iteration_inversion_differs_from_the_reward_by_a_shaping(mdp, alpha, seed, n, start):
    v0 = 3.0 * np.random.default_rng(seed).standard_normal(mdp.n_states)
    pols = soft_value_iteration(mdp, alpha, start + n, v0=v0)[1 + start :]  # n policies, each from a backup
    r = invert_value_iteration(mdp, pols, alpha)
    scale = 1.0 + np.abs(r).max() + np.abs(mdp.r).max()
    assert _shaping_residual(mdp, r - mdp.r) < TOL * scale
    assert_allclose(soft_optimal(mdp.with_reward(r), alpha)[0], soft_optimal(mdp, alpha)[0], rtol=0, atol=TOL)


def test_value_iteration_inversion_on_the_grid_and_bad_input():
    grid = make_gridworld()
    pols = soft_value_iteration(grid, ALPHA, 20)
    r = invert_value_iteration(grid, pols[1:], ALPHA)
    assert _shaping_residual(grid, r - grid.r) < 1e-8
    with pytest.raises(ValueError, match="two or more"):
        invert_value_iteration(grid, pols[1:2], ALPHA)
    with pytest.raises(ValueError, match=r"policies\[0\] must be > 0"):
        invert_value_iteration(grid, [np.eye(4)[np.zeros(25, int)], pols[1]], ALPHA)
    with pytest.raises(ValueError, match="kl_weight must be a finite number >= 0"):
        invert_kl_improvement(grid, pols[0], pols[1], ALPHA, -1.0)
    with pytest.raises(ValueError, match="kl_weight must be a finite number >= 0"):
        kl_soft_policy_iteration(grid, ALPHA, float("nan"), 2)


# ----------------------------------------------------------------------------- recover_reward(learner_model=...)


def test_spi_model_is_todays_behaviour_bitwise():
    # the committed Table 2 (100 runs) was computed before learner_model existed
    data = json.loads((Path(__file__).parents[1] / "book/data/tabular/table2_100runs.json").read_text())
    from lfl_lib.experiments.table2 import run_once

    for row in data["runs"][::97][:4]:
        res = run_once(row["learner"], row["seed"])
        assert round(res.observer_J, 6) == row["observer_J"]
    grid = make_gridworld()
    _, trajs = observed_run("SPI", 3, mdp=grid)
    base = recover_reward(trajs, 25, 4, grid.gamma, 0.7)
    assert_array_equal(recover_reward(trajs, 25, 4, grid.gamma, 0.7, learner_model="spi"), base)
    assert_array_equal(recover_reward(trajs, 25, 4, grid.gamma, 0.7, learner_model="kl", kl_weight=0.0), base)


def test_models_recover_exact_rewards_from_exact_policies():
    grid = make_gridworld()
    pols = kl_soft_policy_iteration(grid, ALPHA, 1.0, 4)
    tk = kl_targets(pols, grid.P, grid.gamma, ALPHA, 1.0)
    w = np.full(tk.shape, 1.0 / tk[0].size)
    r, _ = consistency_fit(tk, w, grid.P, grid.gamma, ridge_r=0.0)
    assert _shaping_residual(grid, r - grid.r) < 1e-6
    assert_array_equal(kl_targets(pols, grid.P, grid.gamma, 0.7, 0.0), targets(pols, grid.P, grid.gamma, 0.7))


@pytest.fixture(scope="module")
def kl_data():
    grid = make_gridworld()
    return observed_run("KL-1", 1000, mdp=grid)[1]


def test_kl_and_auto_models_run_and_report(kl_data):
    grid = make_gridworld()
    res = fit_lfl(kl_data, 25, 4, grid.gamma, 0.7, learner_model="kl")
    assert res.learner_model == "kl" and res.kl_weight >= 0
    svi = fit_lfl(kl_data, 25, 4, grid.gamma, 0.7, learner_model="svi")
    assert svi.shapings.shape == (len(kl_data), 25)
    auto = fit_lfl(kl_data, 25, 4, grid.gamma, 0.7, learner_model="auto")
    assert auto.learner_model in ("spi", "kl", "svi") and auto.selection is not None
    best = max(auto.selection.log_likelihood.values())
    key = auto.learner_model if auto.learner_model != "kl" else f"kl:{auto.kl_weight:g}"
    assert auto.selection.log_likelihood[key] == best
    sel = select_learner_model(kl_data, 25, 4, grid.gamma, 0.7, candidates=("spi",))
    assert sel.model == "spi" and list(sel.log_likelihood) == ["spi"]


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(learner_model="ppo"), "learner_model must be one of"),
        (dict(learner_model="kl", kl_weight=-0.1), "kl_weight must be a finite number >= 0"),
        (dict(learner_model="kl", kl_weight=float("nan")), "kl_weight must be a finite number >= 0"),
        (dict(learner_model="spi", kl_weight=1.0), "kl_weight applies to learner_model"),
        (dict(learner_model="svi"), "trajectories must hold at least 3"),
        (dict(learner_model="kl"), "at least 3 observed policies to estimate kl_weight"),
        (dict(learner_model="auto"), "trajectories must hold at least 3"),
    ],
)
def test_learner_model_rejects_bad_input(change, match):
    good = [Trajectory(states=[0, 1, 2, 3], actions=[0, 1, 1]), Trajectory(states=[3, 2, 1], actions=[1, 0])]
    with pytest.raises(ValueError, match=match):
        recover_reward(good, 4, 2, 0.9, 0.7, **change)


def test_auto_needs_two_pairs_per_trajectory():
    trajs = [Trajectory(states=[0, 1, 2], actions=[0, 1])] * 2 + [Trajectory(states=[0, 1], actions=[1])]
    with pytest.raises(ValueError, match="at least 2 pairs"):
        recover_reward(trajs, 4, 2, 0.9, 0.7, learner_model="auto")


def test_forward_predictions_are_the_models_own_steps(kl_data):
    grid = make_gridworld()
    from lfl_lib.learners import kl_soft_improvement as step
    from lfl_lib.mdp import TabularMDP
    from lfl_lib.tabular_lfl import predict_next_policies

    for model, lam in (("spi", None), ("kl", 1.4)):
        res = fit_lfl(kl_data, 25, 4, grid.gamma, 0.7, learner_model=model, kl_weight=lam)
        planner = TabularMDP(res.P_hat, res.r, grid.gamma)
        want = [step(planner, pi, 0.7, res.kl_weight) for pi in res.policies[:-1]]
        assert_allclose(predict_next_policies(res, grid.gamma, 0.7, "forward"), want, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="kind must be"):
        predict_next_policies(res, grid.gamma, 0.7, "backward")


def test_learner_models_take_episode_groups_and_a_known_model(kl_data):
    """The models of the learner-models chapter accept the data forms of 'Your own learner':
    one list of Episode per policy (the held-out criterion then splits each policy's
    episodes in two) and a known transition model ``P=``."""
    from lfl_lib.data import Episode

    grid = make_gridworld()
    groups = []
    for tr in kl_data:  # each policy's run cut into 4 truncated episodes
        cuts = np.linspace(0, len(tr), 5).astype(int)
        groups.append(
            [Episode(tr.states[a : b + 1], tr.actions[a:b], truncated=True) for a, b in zip(cuts[:-1], cuts[1:])]
        )
    same = fit_lfl(groups, 25, 4, grid.gamma, 0.7, learner_model="kl", kl_weight=0.7)
    ref = fit_lfl(kl_data, 25, 4, grid.gamma, 0.7, learner_model="kl", kl_weight=0.7)
    # the same pairs and transitions: the counts, hence the reward, agree (up to summation order)
    assert_allclose(same.r, ref.r, atol=1e-9)
    auto = fit_lfl(groups, 25, 4, grid.gamma, 0.7, learner_model="auto", P=grid.P)
    assert auto.selection is not None and np.isfinite(auto.r).all() and auto.r.shape == (25, 4)
    assert_array_equal(auto.P_hat, grid.P)
    with pytest.raises(ValueError, match="2 episodes"):
        fit_lfl([g[:1] for g in groups], 25, 4, grid.gamma, 0.7, learner_model="auto")
