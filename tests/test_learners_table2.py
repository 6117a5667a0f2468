"""Tests of the Table 2 learners (lfl_lib.learners) and of the Table 2 runner (lfl_lib.experiments.table2)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from lfl_lib.gridworld import ALPHA
from lfl_lib.learners import q_learning, random_improvements, soft_policy_iteration, soft_value_iteration
from lfl_lib.mdp import score, soft_evaluate, soft_optimal, uniform_policy
from lfl_lib.experiments.table2 import LEARNERS, run_once, summarize


def test_spi_scores_increase_and_match_the_paper_learner(grid):
    pols = soft_policy_iteration(grid, ALPHA, 3)
    J = [score(grid, pi, ALPHA) for pi in pols]
    assert np.all(np.diff(J) > 0)
    # Table 2 prints the learner's score as 4.18 (we compute 4.1793...: rounded, to 0.005).
    assert abs(J[-1] - 4.18) < 0.005


def test_svi_starts_like_spi_and_its_values_increase(grid):
    """SVI from V_0 = V^uniform: pi_2 = SPI(uniform), V_k nondecreasing, J(pi_{k+1}) >= V_k(start)."""
    K = 20
    pols = soft_value_iteration(grid, ALPHA, K)
    assert len(pols) == K + 1
    assert_allclose(pols[0], uniform_policy(25, 4))
    assert_allclose(pols[1], soft_policy_iteration(grid, ALPHA, 1)[1], atol=1e-12)
    # Recompute the iterates V_k to check the monotone bounds.
    _, V = soft_evaluate(grid, pols[0], ALPHA)
    for pi_next in pols[1:]:
        Q = grid.r + grid.gamma * (grid.P @ V)
        V_next = ALPHA * np.log(np.exp(Q / ALPHA).sum(axis=1))
        assert np.all(V_next >= V - 1e-9)
        assert score(grid, pi_next, ALPHA) >= V[grid.start] - 1e-9
        V = V_next
    pi_star, _, _ = soft_optimal(grid, ALPHA)
    assert score(grid, pols[-1], ALPHA) > score(grid, pi_star, ALPHA) - 0.05


def test_svi_from_zero_values_repeats_the_uniform_policy(grid):
    """With V_0 = 0 and a state-only reward, Q_0 = r(s) is flat in a: pi_2 is uniform too."""
    pols = soft_value_iteration(grid, ALPHA, 3, v0=np.zeros(25))
    assert_allclose(pols[1], uniform_policy(25, 4), atol=1e-15)
    assert not np.allclose(pols[2], uniform_policy(25, 4))
    with pytest.raises(ValueError, match="v0"):
        soft_value_iteration(grid, ALPHA, 3, v0=np.zeros(24))


def test_q_learning_is_reproducible_and_improves(grid):
    a = q_learning(grid, ALPHA, 10, np.random.default_rng(4), n_steps=300)
    b = q_learning(grid, ALPHA, 10, np.random.default_rng(4), n_steps=300)
    assert len(a) == 11
    for pa, pb in zip(a, b):
        assert_array_equal(pa, pb)
        assert_allclose(pa.sum(axis=1), 1.0)
    assert_allclose(a[0], uniform_policy(25, 4))
    long = q_learning(grid, ALPHA, 50, np.random.default_rng(0))
    assert score(grid, long[-1], ALPHA) > score(grid, long[0], ALPHA) + 15.0


def test_random_improvements_are_sorted_mixtures(grid):
    pols = random_improvements(grid, ALPHA, np.random.default_rng(1), n_policies=15, n_observed=10)
    assert len(pols) == 10
    pi_star, _, _ = soft_optimal(grid, ALPHA)
    u = uniform_policy(25, 4)
    # Recover each mixing weight t from the start state and check the mixture everywhere.
    a = int(np.argmax(pi_star[0] - u[0]))
    t = np.array([(pi[0, a] - u[0, a]) / (pi_star[0, a] - u[0, a]) for pi in pols])
    assert np.all(np.diff(t) >= 0) and np.all((t >= 0) & (t <= 1))
    for ti, pi in zip(t, pols):
        assert_allclose(pi, (1 - ti) * u + ti * pi_star, atol=1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: soft_value_iteration(m, 0.0, 3), "alpha must be"),
        (lambda m: soft_value_iteration(m, 0.3, -1), "n_improvements"),
        (lambda m: q_learning(m, 0.3, 2, rng=1), "numpy.random.Generator"),
        (lambda m: q_learning(m, -0.3, 2, np.random.default_rng(0)), "alpha must be"),
        (lambda m: q_learning(m, 0.3, 2, np.random.default_rng(0), step_size=0.0), "step_size"),
        (lambda m: q_learning(m, 0.3, 2, np.random.default_rng(0), n_steps=0), "n_steps"),
        (lambda m: random_improvements(m, 0.3, np.random.default_rng(0), 5, 6), "n_observed"),
        (lambda m: random_improvements(m, 0.3, None), "numpy.random.Generator"),
    ],
)
def test_learners_reject_bad_input(small_mdp, call, match):
    with pytest.raises(ValueError, match=match):
        call(small_mdp)


def test_table2_runner_is_deterministic_and_complete():
    rows = [run_once(name, seed=0, n_pairs=200) for name in LEARNERS]
    again = run_once("Q-learning", seed=0, n_pairs=200)
    assert again == rows[2]
    for row in rows:
        assert np.isfinite(row.observer_J)
        assert_allclose(row.observer_J, row.observer_ret + row.observer_ent, rtol=1e-9)
        assert_allclose(row.learner_J, row.learner_ret + row.learner_ent, rtol=1e-9)
    summary = summarize(rows)
    assert list(summary) == list(LEARNERS)
    assert summary["SPI"]["runs"] == 1 and np.isnan(summary["SPI"]["observer_J_std"])  # one run: no sample SD
    two = summarize([rows[0], run_once("SPI", seed=1, n_pairs=200)])["SPI"]
    assert_allclose(
        two["observer_J_std"],
        np.std([rows[0].observer_J, run_once("SPI", seed=1, n_pairs=200).observer_J], ddof=1),
        rtol=1e-12,
    )
    with pytest.raises(ValueError, match="name must be one of"):
        run_once("PPO", seed=0)


def test_table2_does_not_import_its_study_module():
    """The Table 2 module and the study module import in one direction only (study -> table2)."""
    import ast
    import inspect

    import lfl_lib.experiments.table2 as t2

    tree = ast.parse(inspect.getsource(t2))
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "table2_study" not in modules


def test_best_learner_score_is_at_least_the_last():
    """SPI improves monotonically, so its best observed policy is its last (Table 2's caption says best)."""
    from lfl_lib.experiments.table2_study import best_learner_scores

    ((best, last),) = best_learner_scores("SPI", [0])
    np.testing.assert_allclose(best, last, rtol=0, atol=1e-12)
    ((best_q, last_q),) = best_learner_scores("Q-learning", [0])
    assert best_q >= last_q
