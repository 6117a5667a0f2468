"""Tests of lfl_lib.gridworld: the grid of Fig. 2 exactly as FACTS.md gives it, and Table 1."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from lfl_lib import gridworld as gw
from lfl_lib.gridworld import cell, make_gridworld, state_index, state_reward
from lfl_lib.improvement import soft_improvement
from lfl_lib.inversion import invert_soft_improvement, state_only_regression
from lfl_lib.mdp import score, soft_optimal, uniform_policy

ALPHA = 0.3


def truncate(x: float, digits: int) -> float:
    """Truncate towards zero to ``digits`` decimals, as the paper prints its numbers."""
    return math.trunc(x * 10**digits) / 10**digits


def expected_next_cell(x, y, a):
    """FACTS.md: a=0: x+1, a=1: x-1, a=2: y-1, a=3: y+1, clipped at the border."""
    dx, dy = {0: (1, 0), 1: (-1, 0), 2: (0, -1), 3: (0, 1)}[a]
    return min(max(x + dx, 0), 4), min(max(y + dy, 0), 4)


RESETS = {24, 12}  # (4, 4) and (2, 2)


def test_constants_and_indexing():
    assert (gw.N_STATES, gw.N_ACTIONS, gw.GAMMA, gw.ALPHA, gw.ALPHA_MODEL, gw.START) == (25, 4, 0.96, 0.3, 0.7, 0)
    assert state_index(0, 0) == 0 and state_index(4, 0) == 20 and state_index(0, 4) == 4
    assert state_index(4, 4) == 24 and state_index(2, 2) == 12 and state_index(1, 3) == 8
    for s in range(25):
        assert state_index(*cell(s)) == s
    assert cell(7) == (1, 2)


@pytest.mark.parametrize("x, y", [(5, 0), (0, -1), (-1, 2)])
def test_state_index_rejects_cells_off_the_grid(x, y):
    with pytest.raises(ValueError, match=r"cell \(x, y\) must have"):
        state_index(x, y)


@pytest.mark.parametrize(
    "s, match", [(-1, r"^s must be in \[0, 24\]"), (25, r"^s must be in \[0, 24\]"), (2.5, r"^s must be an integer")]
)
def test_cell_rejects_bad_state(s, match):
    with pytest.raises(ValueError, match=match):
        cell(s)


def test_state_index_rejects_non_integers():
    with pytest.raises(ValueError, match=r"cell \(x, y\) must be a pair of integers"):
        state_index(1.5, 2)


def test_deterministic_grid_moves_clipping_and_resets():
    mdp = make_gridworld()
    assert mdp.P.shape == (25, 4, 25) and mdp.r.shape == (25, 4)
    assert mdp.gamma == 0.96 and mdp.start == 0
    for s in range(25):
        x, y = divmod(s, 5)
        for a in range(4):
            expected = np.zeros(25)
            if s in RESETS:
                expected[0] = 1.0  # every action of a reset cell leads to the start
            else:
                nx, ny = expected_next_cell(x, y, a)
                expected[5 * nx + ny] = 1.0
            assert_allclose(mdp.P[s, a], expected, rtol=0, atol=0, err_msg=f"s={s}, a={a}")


def test_a_few_moves_by_hand():
    P = make_gridworld().P
    assert P[0, 0, 5] == 1.0  # (0,0) x+1 -> (1,0)
    assert P[0, 1, 0] == 1.0  # (0,0) x-1 clipped
    assert P[0, 2, 0] == 1.0  # (0,0) y-1 clipped
    assert P[0, 3, 1] == 1.0  # (0,0) y+1 -> (0,1)
    assert P[20, 0, 20] == 1.0  # (4,0) x+1 clipped
    assert P[23, 3, 24] == 1.0  # (4,3) y+1 -> the objective (4,4)
    assert P[24, 1, 0] == 1.0 and P[24, 1, 19] == 0.0  # (4,4) resets instead of moving to (3,4)
    assert P[12, 3, 0] == 1.0 and P[12, 3, 13] == 0.0  # (2,2) resets instead of moving to (2,3)


def test_rewards_are_state_only_and_as_in_fig2():
    mdp = make_gridworld()
    expected = -np.ones(25)
    expected[24] = 10.0  # (4, 4)
    expected[20] = 0.0  # (4, 0)
    expected[4] = -12.0  # (0, 4)
    assert_allclose(state_reward(), expected, rtol=0, atol=0)
    assert_allclose(mdp.r, np.repeat(expected[:, None], 4, axis=1), rtol=0, atol=0)
    assert mdp.r[12, 0] == -1.0  # the middle is avoided for its dynamics, not its reward


def test_stochastic_variant_rows():
    det = make_gridworld()
    sto = make_gridworld(stochastic=True)
    assert sto.gamma == 0.96 and sto.start == 0
    assert_allclose(sto.r, det.r, rtol=0, atol=0)
    # (0, 0), a = 0: intended (1,0) w.p. 0.7 + 0.3/4; random x-1 and y-1 clip to (0,0): 0.3*2/4;
    # random y+1 -> (0,1): 0.3/4.
    row = np.zeros(25)
    row[5], row[0], row[1] = 0.7 + 0.075, 0.15, 0.075
    assert_allclose(sto.P[0, 0], row, rtol=0, atol=1e-15)
    # (2, 3), a = 3 (y+1 -> (2,4)); random moves -> (3,3), (1,3), (2,2), (2,4)
    row = np.zeros(25)
    row[14], row[18], row[8], row[12] = 0.775, 0.075, 0.075, 0.075
    assert_allclose(sto.P[13, 3], row, rtol=0, atol=1e-15)
    for s in RESETS:  # reset cells still reset
        assert_allclose(sto.P[s, :, 0], 1.0, rtol=0, atol=0)
    # every row is 0.7 * deterministic move + 0.3 * the average move
    non_reset = [s for s in range(25) if s not in RESETS]
    avg = det.P[non_reset].mean(axis=1, keepdims=True)
    assert_allclose(sto.P[non_reset], 0.7 * det.P[non_reset] + 0.3 * avg, rtol=0, atol=1e-15)
    # slip = 0 is the deterministic grid
    assert_allclose(make_gridworld(stochastic=True, slip=0.0).P, det.P, rtol=0, atol=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(stochastic="yes"), r"^stochastic must be a bool"),
        (dict(stochastic=1), r"^stochastic must be a bool"),
        (dict(stochastic=True, slip=1.5), r"^slip must be in \[0, 1\]"),
        (dict(stochastic=True, slip=np.nan), r"^slip must be in \[0, 1\]"),
        (dict(stochastic=True, slip="high"), r"^slip must be"),
    ],
)
def test_make_gridworld_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_gridworld(**kwargs)


# ---------------------------------------------------------------------------
# Table 1 of the paper (exact policies)
# ---------------------------------------------------------------------------
# soft_optimal converges to ||V_k+1 - V_k|| < 1e-12, i.e. an error <= 1e-12 * 0.96/0.04 = 2.4e-11
# on V; exact evaluation is a 25x25 linear solve. The reference values below are our own
# computations to 12 significant digits, so atol=1e-9 pins them while allowing
# floating-point differences between platforms.
TABLE1 = dict(rtol=0, atol=1e-9)
J_OPT = 5.683784080238
J_PI1 = -19.795124836519
J_PI2 = 0.726591081058


@pytest.fixture(scope="module")
def table1(grid, grid_optimal):
    pi_star = grid_optimal[0]
    pi1 = uniform_policy(25, 4)
    pi2 = soft_improvement(grid, pi1, ALPHA)
    r12 = invert_soft_improvement(grid, pi1, pi2, ALPHA)
    pi_obs, _, _ = soft_optimal(grid.with_reward(r12), ALPHA)
    fit = state_only_regression(grid, r12)
    pi_phi, _, _ = soft_optimal(grid.with_reward(np.repeat(fit.r[:, None], 4, axis=1)), ALPHA)
    return dict(
        opt=score(grid, pi_star, ALPHA),
        pi1=score(grid, pi1, ALPHA),
        pi2=score(grid, pi2, ALPHA),
        obs=score(grid, pi_obs, ALPHA),
        phi=score(grid, pi_phi, ALPHA),
        fit=fit,
    )


def test_table1_scores(table1):
    assert_allclose(table1["opt"], J_OPT, **TABLE1)
    assert_allclose(table1["pi1"], J_PI1, **TABLE1)
    assert_allclose(table1["pi2"], J_PI2, **TABLE1)


def test_table1_matches_the_papers_printed_digits(table1):
    # the paper truncates: optimal 5.68; pi_1 -19.7 (regret 25.4); pi_2 0.72 (regret 4.95)
    assert truncate(table1["opt"], 2) == 5.68
    assert truncate(table1["pi1"], 1) == -19.7
    assert truncate(table1["pi2"], 2) == 0.72
    assert truncate(table1["opt"] - table1["pi1"], 1) == 25.4
    assert truncate(table1["opt"] - table1["pi2"], 2) == 4.95
    assert truncate(table1["obs"], 2) == 5.68
    assert truncate(table1["phi"], 2) == 5.68


def test_table1_observers_are_optimal(table1):
    # paper: regret ~1e-13 with r_{1->2}, ~1e-10 with the state-only r_phi; both are limited
    # here by the value-iteration tolerance (2.4e-11), hence 1e-9.
    assert abs(table1["opt"] - table1["obs"]) < 1e-9
    assert abs(table1["opt"] - table1["phi"]) < 1e-9


def test_state_only_regression_on_the_grid_recovers_the_reward_up_to_a_constant(table1):
    fit = table1["fit"]
    assert fit.rank == 2 * 25 - 1  # only the constant direction is unidentified
    assert fit.residual < 1e-10  # r_{1->2} is exactly a state reward plus a shaping
    diff = fit.r - state_reward()
    # least squares on a 100 x 50 system with entries O(10): ~1e-13 accuracy; 1e-9 leaves margin
    assert_allclose(diff, diff.mean(), rtol=0, atol=1e-9)


def test_optimal_policy_reaches_the_objective(grid_optimal):
    # sanity of the picture in Fig. 2: from the start, the most likely path under pi*
    # reaches (4, 4) without crossing the middle reset cell.
    pi = grid_optimal[0]
    P = make_gridworld().P
    s, path = 0, [0]
    for _ in range(12):
        s = int(np.argmax(P[s, int(np.argmax(pi[s]))]))
        path.append(s)
        if s == 24:
            break
    assert path[-1] == 24 and 12 not in path


# ---------------------------------------------------------------------------
# Drawing helpers (bad input; a light smoke test)
# ---------------------------------------------------------------------------


def test_drawing_helpers_validate_and_draw():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with pytest.raises(ValueError, match=r"^values must have shape \(25,\)"):
        gw.draw_values(np.zeros(24))
    with pytest.raises(ValueError, match=r"^values must contain only finite"):
        gw.draw_values(np.full(25, np.nan))
    with pytest.raises(ValueError, match=r"each row of pi must sum to 1"):
        gw.draw_policy(np.full((25, 4), 0.3))
    ax = gw.draw_gridworld()
    texts = [t.get_text() for t in ax.texts]
    assert "+10" in texts and "-12" in texts and texts.count("reset") == 2 and "start" in texts
    ax = gw.draw_policy(uniform_policy(25, 4))
    assert len(ax.patches) == 23 * 4  # one arrow per move, none in the two reset cells
    plt.close("all")
