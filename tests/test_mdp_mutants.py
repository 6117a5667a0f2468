"""Contracts of lfl_lib.mdp that the mutation run (``make mutation``) found untested.

Each test pins a documented behaviour that a one-token change of ``lfl_lib/mdp.py`` broke
without any other test failing: exact error messages that name the argument, the
read-only copies a ``TabularMDP`` keeps, the defaults, and ``from_gymnasium`` on
handcrafted toy-text tables (expected rewards, zero-probability entries, the reachability
check for terminal states, the start state without an ``initial_state_distrib``).
"""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from lfl_lib.mdp import TabularMDP, policy_entropy, random_mdp, soft_optimal, uniform_policy

P2 = np.full((2, 2, 2), 0.5)
R2 = np.zeros((2, 2))


def _absorbing_2():
    """Two states, one action; state 1 absorbing."""
    P = np.zeros((2, 1, 2))
    P[:, 0, 1] = 1.0
    return P


class ToyText:
    """A stand-in for a gymnasium toy-text environment: only the attributes from_gymnasium reads.

    It has no ``unwrapped`` attribute, so from_gymnasium must fall back to the object itself.
    """

    def __init__(self, table, initial_state_distrib=None, s=None):
        self.P = table
        if initial_state_distrib is not None:
            self.initial_state_distrib = initial_state_distrib
        if s is not None:
            self.s = s


# ----------------------------------------------------------------------------- TabularMDP


def test_tabular_mdp_keeps_read_only_float_copies_of_every_field():
    P = P2.copy()
    mu = np.array([0.25, 0.75])
    mdp = TabularMDP(P, R2, np.float32(0.5), 1, start_distribution=mu)
    P[0, 0] = [1.0, 0.0]
    mu[:] = [1.0, 0.0]
    assert_array_equal(mdp.P[0, 0], [0.5, 0.5])  # later edits of the inputs do not leak in
    assert_array_equal(mdp.start_distribution, [0.25, 0.75])
    assert not mdp.P.flags.writeable and not mdp.start_distribution.flags.writeable
    assert type(mdp.gamma) is float and mdp.gamma == 0.5
    term = [False, True]
    m = TabularMDP(_absorbing_2(), np.ones((2, 1)), 0.9, terminal=term)
    term[1] = False
    assert isinstance(m.terminal, np.ndarray) and m.terminal.dtype == np.bool_
    assert_array_equal(m.terminal, [False, True])
    assert not m.terminal.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        m.terminal[0] = True


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            dict(terminal=np.array([0, 2])),
            r"^terminal must be a boolean mask of shape \(2,\); got int64 of shape \(2,\)$",
        ),
        (
            dict(terminal=[False, True, False]),
            r"^terminal must be a boolean mask of shape \(2,\); got bool of shape \(3,\)$",
        ),
        (
            dict(terminal=[True, False]),
            r"^terminal states must be absorbing: P\[t, a, t\] must be 1 for every terminal t "
            r"\(TabularMDP\.from_gymnasium builds them so\)$",
        ),
        (dict(start_distribution=[0.5, np.nan]), r"^start_distribution must contain only finite numbers"),
        (dict(start_distribution=[[0.5], [0.5]]), r"^start_distribution must have 1 dimensions; got shape \(2, 1\)"),
        (
            dict(start_distribution=[0.5, 0.25, 0.25]),
            r"^start_distribution must be 2 non-negative probabilities summing to 1; got shape \(3,\), sum 1$",
        ),
        (
            dict(start_distribution=[1.5, -0.5]),
            r"^start_distribution must be 2 non-negative probabilities summing to 1; got shape \(2,\), sum 1$",
        ),
    ],
)
def test_tabular_mdp_rejects_bad_terminal_and_start_distribution(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TabularMDP(_absorbing_2(), np.zeros((2, 1)), 0.9, **kwargs)


def test_with_reward_keeps_the_start_and_the_start_distribution():
    mdp = TabularMDP(P2, R2, 0.9, start=1)
    assert mdp.with_reward(np.ones((2, 2))).start == 1
    mu = TabularMDP(P2, R2, 0.9, start=1, start_distribution=[0.25, 0.75]).with_reward(np.ones((2, 2)))
    assert mu.start == 1
    assert_array_equal(mu.start_distribution, [0.25, 0.75])


# ----------------------------------------------------------------------------- helpers


def test_argument_names_in_error_messages():
    for call, name in [
        (lambda: uniform_policy(0, 2), "n_states"),
        (lambda: uniform_policy(2, 0), "n_actions"),
        (lambda: random_mdp(0, 2, np.random.default_rng(0)), "n_states"),
        (lambda: random_mdp(2, 0, np.random.default_rng(0)), "n_actions"),
    ]:
        with pytest.raises(ValueError, match=rf"^{name} must be an integer >= 1; got 0$"):
            call()
    with pytest.raises(ValueError, match=r"^rng must be a numpy.random.Generator; got int$"):
        random_mdp(2, 2, 0)
    with pytest.raises(ValueError, match=r"^pi must have 2 dimensions; got shape \(3,\)$"):
        policy_entropy(np.full(3, 1 / 3))


def test_random_mdp_is_the_documented_draw():
    """Flat Dirichlet rows, then (when sparse) the mask and the kept entry per row, then N(0, scale^2) rewards."""
    S, A = 4, 3
    rng = np.random.default_rng(11)
    P = rng.dirichlet(np.ones(S), size=(S, A))
    r = 0.5 * rng.standard_normal((S, A))
    dense = random_mdp(S, A, np.random.default_rng(11), reward_scale=0.5)
    assert_allclose(dense.P, P, rtol=1e-15, atol=0)  # renormalising a Dirichlet row changes at most its last bit
    assert_array_equal(dense.r, r)
    rng = np.random.default_rng(12)
    P = rng.dirichlet(np.ones(S), size=(S, A))
    mask = rng.random(P.shape) >= 0.6
    keep = rng.integers(S, size=(S, A))
    mask[np.arange(S)[:, None], np.arange(A)[None, :], keep] = True
    P = P * mask
    P /= P.sum(axis=2, keepdims=True)
    r = 2.0 * rng.standard_normal((S, A))
    sparse = random_mdp(S, A, np.random.default_rng(12), sparsity=0.6, reward_scale=2.0)
    assert_allclose(sparse.P, P, rtol=1e-15, atol=0)
    assert_array_equal(sparse.r, r)


def test_random_mdp_defaults_and_reward_scales_below_one():
    default = random_mdp(3, 2, np.random.default_rng(4))
    explicit = random_mdp(3, 2, np.random.default_rng(4), gamma=0.9, reward_scale=1.0, sparsity=0.0)
    assert default.gamma == 0.9 and default.start == 0 and default.start_distribution is None
    assert_array_equal(default.r, explicit.r)
    assert_array_equal(random_mdp(3, 2, np.random.default_rng(4), reward_scale=0.0).r, 0.0)
    assert_array_equal(random_mdp(3, 2, np.random.default_rng(4), reward_scale=0.5).r, 0.5 * explicit.r)


def test_random_mdp_keeps_its_own_entry_in_each_row():
    # with sparsity 1 - 1e-12 every other entry is dropped: each row keeps the one entry drawn for it,
    # uniform over the 20 states, so 60 rows all keeping the same state has probability 20^-59
    mdp = random_mdp(20, 3, np.random.default_rng(0), sparsity=1 - 1e-12)
    support = (mdp.P > 0).sum(axis=2)
    assert_array_equal(support, 1)
    assert len(np.unique(mdp.P.argmax(axis=2))) > 1


def test_soft_optimal_stops_when_the_change_is_strictly_below_tol():
    # one state, one action, r = 1, gamma = 1/2, alpha = 1: the sweeps give V = 1, 1.5, 1.75, ...
    # with changes 1, 0.5, ...: tol = 1 stops after the second sweep, not the first
    mdp = TabularMDP(np.ones((1, 1, 1)), np.ones((1, 1)), 0.5)
    _, _, V = soft_optimal(mdp, 1.0, tol=1.0)
    assert_array_equal(V, [1.5])
    # the default iteration cap is the documented one
    assert inspect.signature(soft_optimal).parameters["max_iter"].default == 100_000


# ----------------------------------------------------------------------------- from_gymnasium


def _chain_table(reach_terminal_alive: bool):
    """0 -> 1 (alive) or -> 2 (terminated); 1 -> 2, alive when ``reach_terminal_alive``; 2 stays."""
    return {
        0: {0: [(1.0, 1, 0.0, False)], 1: [(1.0, 2, 1.0, True)]},
        1: {0: [(1.0, 2, 0.0, not reach_terminal_alive)], 1: [(1.0, 0, 0.0, False)]},
        2: {0: [(1.0, 2, 0.0, False)], 1: [(1.0, 2, 0.0, False)]},
    }


def test_from_gymnasium_rejects_a_terminal_state_entered_alive_from_a_reachable_state():
    env = ToyText(_chain_table(True), initial_state_distrib=np.array([1.0, 0.0, 0.0]))
    with pytest.raises(
        ValueError,
        match=r"^state 2 is entered both with and without termination; "
        r"it cannot be made an absorbing terminal state$",
    ):
        TabularMDP.from_gymnasium(env)
    mdp = TabularMDP.from_gymnasium(ToyText(_chain_table(False), initial_state_distrib=np.array([1.0, 0.0, 0.0])))
    assert_array_equal(mdp.terminal, [False, False, True])
    assert mdp.gamma == 0.99  # the documented default
    assert_array_equal(mdp.r, [[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])


def test_from_gymnasium_expected_rewards_and_zero_probability_entries():
    table = {
        # a slippery step: reward 4 with probability 1/4; zero-probability entries, one of them
        # terminating into 2 and one entering the terminal state 1 alive, are never taken
        0: {0: [(0.25, 1, 4.0, True), (0.0, 2, 0.0, True), (0.0, 1, 0.0, False), (0.75, 0, 0.0, False)]},
        1: {0: [(1.0, 1, 0.0, False)]},
        2: {0: [(1.0, 0, 0.0, False)]},
    }
    mdp = TabularMDP.from_gymnasium(ToyText(table, initial_state_distrib=[1, 0, 0]), gamma=0.5)
    assert_array_equal(mdp.terminal, [False, True, False])
    assert_allclose(mdp.r[0, 0], 1.0, rtol=0, atol=1e-15)
    assert_allclose(mdp.P[0, 0], [0.75, 0.25, 0.0], rtol=0, atol=1e-15)


def test_from_gymnasium_start_without_an_initial_state_distribution():
    table = {s: {0: [(1.0, s, 0.0, False)]} for s in range(3)}
    at_2 = TabularMDP.from_gymnasium(ToyText(table, s=2))  # the environment's current state
    assert at_2.start == 2
    assert_array_equal(at_2.start_distribution, [0.0, 0.0, 1.0])
    at_0 = TabularMDP.from_gymnasium(ToyText(table))  # no state either: state 0
    assert at_0.start == 0
    assert_array_equal(at_0.start_distribution, [1.0, 0.0, 0.0])


def test_from_gymnasium_normalises_the_start_weights_in_float64():
    table = {s: {0: [(1.0, s, 0.0, False)]} for s in range(3)}
    mdp = TabularMDP.from_gymnasium(ToyText(table, initial_state_distrib=np.array([1.0, 1.0, 2.0], np.float32)))
    assert mdp.start == 2 and mdp.start_distribution.dtype == np.float64
    assert_array_equal(mdp.start_distribution, [0.25, 0.25, 0.5])
    thirds = TabularMDP.from_gymnasium(ToyText(table, initial_state_distrib=np.ones(3, np.float32)))
    assert_allclose(thirds.start_distribution, 1 / 3, rtol=1e-15, atol=0)  # float32 division would be 1e-8 off


def test_from_gymnasium_reset_cells():
    table = _chain_table(False)
    table[2] = {0: [(1.0, 2, 5.0, False)], 1: [(1.0, 2, 5.0, False)]}  # rewards of the terminal state: dropped
    mu = np.array([0.25, 0.75, 0.0])
    mdp = TabularMDP.from_gymnasium(ToyText(table, initial_state_distrib=mu), gamma=0.8, terminal="reset")
    assert mdp.terminal is None and mdp.gamma == 0.8
    assert mdp.start == 1  # the most likely start state
    assert_array_equal(mdp.start_distribution, mu)
    assert_array_equal(mdp.P[2], [mu, mu])
    assert_array_equal(mdp.r[2], [0.0, 0.0])


@pytest.mark.parametrize(
    "table, match",
    [
        ({}, "env must expose a transition table env.unwrapped.P (toy-text environments); got ToyText"),
        (
            {0: {0: [(1.0, 1, 0.0, False)], 1: [(1.0, 1, 0.0, False)]}, 1: {0: [(1.0, 1, 0.0, False)]}},
            "env.unwrapped.P[1] has 1 actions; P[0] has 2",
        ),
    ],
)
def test_from_gymnasium_error_messages(table, match):
    with pytest.raises(ValueError, match="^" + re.escape(match) + "$"):
        TabularMDP.from_gymnasium(ToyText(table, initial_state_distrib=[1.0, 0.0]))
