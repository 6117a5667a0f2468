"""The margin of learner_model="auto": SPI is kept unless a candidate beats it by se_margin standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from lfl_lib.learners import kl_soft_policy_iteration
from lfl_lib.mdp import random_mdp
from lfl_lib.tabular_lfl import AUTO_SE_MARGIN, fit_lfl, predict_next_policies, select_learner_model
from lfl_lib.trajectories import Trajectory, sample_trajectories

GAMMA, ALPHA_M = 0.8, 0.7


@pytest.fixture(scope="module")
def kl_runs():
    """A KL learner (lambda = 6) on a random 3-state MDP: 4 policies, 300 pairs each."""
    mdp = random_mdp(3, 2, np.random.default_rng(0), gamma=GAMMA, reward_scale=3.0)
    return sample_trajectories(mdp, kl_soft_policy_iteration(mdp, 0.7, 6.0, 3), 300, np.random.default_rng(0))


def _per_pair_log_probs(trajs, model, lam):
    """Independent reference: every held-out pair's forward log-probability, fold by fold, pair by pair."""
    halves = (
        [Trajectory(tr.states[: len(tr) // 2 + 1], tr.actions[: len(tr) // 2]) for tr in trajs],
        [Trajectory(tr.states[len(tr) // 2 :], tr.actions[len(tr) // 2 :]) for tr in trajs],
    )
    out = []
    for fit, test in (halves, halves[::-1]):
        res = fit_lfl(fit, 3, 2, GAMMA, ALPHA_M, learner_model=model, kl_weight=lam)
        preds = predict_next_policies(res, GAMMA, ALPHA_M, "forward")
        for tr, p in zip(test[1:], preds):
            out += [float(np.log(p[s, a])) for s, a in zip(tr.states[:-1], tr.actions)]
    return np.array(out)


def test_standard_errors_are_those_of_the_per_pair_differences(kl_runs):
    sel = select_learner_model(kl_runs, 3, 2, GAMMA, ALPHA_M, se_margin=0.0)
    spi = _per_pair_log_probs(kl_runs, "spi", None)
    assert sel.standard_error["spi"] == 0.0
    for key in ("kl:0.35", "kl:2.8", "kl:11.2"):
        d = _per_pair_log_probs(kl_runs, "kl", float(key.split(":")[1])) - spi
        assert_allclose(sel.log_likelihood[key] - sel.log_likelihood["spi"], d.mean(), rtol=1e-9)
        assert_allclose(sel.standard_error[key], d.std(ddof=1) / math.sqrt(d.size), rtol=1e-9)


def test_margin_zero_is_the_best_candidate_and_infinity_is_spi(kl_runs):
    best = select_learner_model(kl_runs, 3, 2, GAMMA, ALPHA_M, se_margin=0.0)
    key = max(best.log_likelihood, key=best.log_likelihood.get)
    assert key.startswith("kl:") and best.model == "kl" and best.kl_weight == float(key.split(":")[1])
    never = select_learner_model(kl_runs, 3, 2, GAMMA, ALPHA_M, se_margin=math.inf)
    assert never.model == "spi" and never.kl_weight == 0.0
    assert never.log_likelihood == best.log_likelihood  # the margin changes the choice, not the criterion


def test_the_margin_is_a_threshold_in_standard_errors(kl_runs):
    sel = select_learner_model(kl_runs, 3, 2, GAMMA, ALPHA_M, se_margin=0.0)
    key = max(sel.log_likelihood, key=sel.log_likelihood.get)
    z = (sel.log_likelihood[key] - sel.log_likelihood["spi"]) / sel.standard_error[key]
    assert z > 0
    assert select_learner_model(kl_runs, 3, 2, GAMMA, ALPHA_M, se_margin=0.99 * z).model == "kl"
    assert select_learner_model(kl_runs, 3, 2, GAMMA, ALPHA_M, se_margin=1.01 * z).model == "spi"


def test_auto_uses_the_default_margin(kl_runs):
    auto = fit_lfl(kl_runs, 3, 2, GAMMA, ALPHA_M, learner_model="auto")
    assert auto.selection == select_learner_model(kl_runs, 3, 2, GAMMA, ALPHA_M, se_margin=AUTO_SE_MARGIN)


def test_the_kl_weight_estimate_ignores_the_margin(kl_runs):
    """learner_model="kl" without a weight takes the best weight of the grid, whatever AUTO_SE_MARGIN says."""
    sel = select_learner_model(kl_runs, 3, 2, GAMMA, ALPHA_M, candidates=("kl",), se_margin=0.0)
    assert fit_lfl(kl_runs, 3, 2, GAMMA, ALPHA_M, learner_model="kl").kl_weight == sel.kl_weight


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "one", None])
def test_bad_margin_is_refused(kl_runs, bad):
    with pytest.raises(ValueError, match=r"^se_margin must be a number >= 0 \(inf allowed\); got "):
        select_learner_model(kl_runs, 3, 2, GAMMA, ALPHA_M, se_margin=bad)


def test_fit_lfl_passes_the_margin_to_auto_only(kl_runs):
    auto = fit_lfl(kl_runs, 3, 2, GAMMA, ALPHA_M, learner_model="auto", se_margin=0.0)
    assert auto.learner_model == "kl" and auto.selection.model == "kl"
    with pytest.raises(
        ValueError,
        match=r"^se_margin applies to learner_model 'auto' only; got se_margin=0.0 "
        r"with learner_model='spi'$",
    ):
        fit_lfl(kl_runs, 3, 2, GAMMA, ALPHA_M, se_margin=0.0)


def test_the_default_margin_keeps_spi_on_a_kl_learner(kl_runs):
    """The margin chosen on the held-out seeds is infinite: "auto" keeps the paper's model."""
    assert AUTO_SE_MARGIN == math.inf
    assert fit_lfl(kl_runs, 3, 2, GAMMA, ALPHA_M, learner_model="auto").learner_model == "spi"
