"""Progress of the learner-model selection (tabular ``learner_model="auto"``): the candidate being fitted."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from conftest import tabular_recover_argv, write_tabular_logs
from lfl_lib.learners import kl_soft_policy_iteration
from lfl_lib.mdp import random_mdp
from lfl_lib.tabular_lfl import KL_RATIO_GRID, fit_lfl, select_learner_model
from lfl_lib.trajectories import sample_trajectories

GAMMA, ALPHA_M = 0.8, 0.7


@pytest.fixture(scope="module")
def runs():
    """A KL learner on a random 3-state MDP: 4 policies, 200 pairs each."""
    mdp = random_mdp(3, 2, np.random.default_rng(0), gamma=GAMMA, reward_scale=3.0)
    return sample_trajectories(mdp, kl_soft_policy_iteration(mdp, 0.7, 6.0, 3), 200, np.random.default_rng(0))


def test_auto_reports_every_candidate_fit_then_the_final_fit(runs):
    calls = []
    res = fit_lfl(runs, 3, 2, GAMMA, ALPHA_M, learner_model="auto", progress=lambda *c: calls.append(c))
    n_cands = len(KL_RATIO_GRID)  # "spi" (lambda = 0) and one "kl" per other ratio
    total = 2 * n_cands + 1
    assert all(t == total for _, _, t in calls), calls
    assert [d for _, d, _ in calls] == list(range(total + 1))  # one call before each fit, one at the end
    labels = [lab for lab, _, _ in calls]
    assert labels[0] == "fold 1/2, candidate spi" and labels[n_cands] == "fold 2/2, candidate spi"
    assert {lab.split("candidate ")[1] for lab in labels[:-2]} == set(res.selection.log_likelihood)
    final = res.learner_model if res.learner_model != "kl" else f"kl:{res.kl_weight:g}"
    assert labels[-2:] == [f"final fit: {final}", f"chose {final}"]
    # the same result as without progress
    assert_array_equal(res.r, fit_lfl(runs, 3, 2, GAMMA, ALPHA_M, learner_model="auto").r)


def test_kl_weight_fit_and_select_learner_model_report_too(runs):
    calls = []
    fit_lfl(runs, 3, 2, GAMMA, ALPHA_M, learner_model="kl", progress=lambda *c: calls.append(c))
    total = 2 * len(KL_RATIO_GRID)
    assert [d for _, d, _ in calls] == list(range(total + 1)) and calls[-1][2] == total
    calls.clear()
    select_learner_model(runs, 3, 2, GAMMA, ALPHA_M, candidates=("spi",), progress=lambda *c: calls.append(c))
    assert calls == [("fold 1/2, candidate spi", 0, 2), ("fold 2/2, candidate spi", 1, 2), ("selected spi", 2, 2)]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_shows_on_a_terminal_only(runs, monkeypatch, capsys):
    fit_lfl(runs, 3, 2, GAMMA, ALPHA_M, learner_model="auto", progress=True)  # stderr captured: no terminal
    assert capsys.readouterr().err == ""
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    fit_lfl(runs, 3, 2, GAMMA, ALPHA_M, learner_model="auto", progress=True)
    fit_lfl(runs, 3, 2, GAMMA, ALPHA_M, learner_model="auto", progress=False)  # adds nothing
    out = tty.getvalue()
    assert "learner model 'auto'" in out and "fold 2/2, candidate kl:" in out and "final fit" in out, out
    n = len(out)
    fit_lfl(runs, 3, 2, GAMMA, ALPHA_M, learner_model="spi", progress=True)  # no selection: no bar
    assert len(tty.getvalue()) == n


def test_bad_progress_is_refused(runs):
    with pytest.raises(ValueError, match="progress must be a bool or a callable"):
        fit_lfl(runs, 3, 2, GAMMA, ALPHA_M, learner_model="auto", progress="yes")
    with pytest.raises(ValueError, match="progress must be a bool or a callable"):
        select_learner_model(runs, 3, 2, GAMMA, ALPHA_M, progress=1)


def test_cli_recover_tabular_auto_shows_the_candidates_on_a_terminal(tmp_path, monkeypatch):
    from lfl_lib.cli import main

    argv = [*tabular_recover_argv(write_tabular_logs(tmp_path)), "--learner-model", "auto"]
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    assert main([*argv, "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    assert "candidate" not in tty.getvalue()
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    assert "fold 1/2, candidate spi" in tty.getvalue() and "final fit" in tty.getvalue()
