"""Every public function that takes an MDP rejects something that is not a TabularMDP."""

import numpy as np
import pytest

from lfl_lib import improvement, inversion, mdp, shaping

PI = np.full((2, 2), 0.5)
CALLS = {
    "soft_evaluate": lambda m: mdp.soft_evaluate(m, PI, 0.3),
    "expected_return": lambda m: mdp.expected_return(m, PI),
    "discounted_entropy": lambda m: mdp.discounted_entropy(m, PI, 0.3),
    "soft_optimal": lambda m: mdp.soft_optimal(m, 0.3),
    "score": lambda m: mdp.score(m, PI, 0.3),
    "q_values": lambda m: improvement.q_values(m, PI),
    "greedy_improvement": lambda m: improvement.greedy_improvement(m, PI),
    "soft_improvement": lambda m: improvement.soft_improvement(m, PI, 0.3),
    "shaping_term": lambda m: shaping.shaping_term(m, np.zeros(2)),
    "shape_reward": lambda m: shaping.shape_reward(m, np.zeros(2)),
    "invert_soft_improvement": lambda m: inversion.invert_soft_improvement(m, PI, PI, 0.3),
    "state_only_regression": lambda m: inversion.state_only_regression(m, np.zeros((2, 2))),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_rejects_non_mdp(name):
    not_an_mdp = {"P": np.full((2, 2, 2), 0.5), "r": np.zeros((2, 2)), "gamma": 0.9}
    with pytest.raises(ValueError, match=r"mdp must be a lfl_lib\.mdp\.TabularMDP; got dict"):
        CALLS[name](not_an_mdp)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_accepts_mdp(name):
    m = mdp.TabularMDP(np.full((2, 2, 2), 0.5), np.zeros((2, 2)), 0.9)
    CALLS[name](m)  # must not raise
