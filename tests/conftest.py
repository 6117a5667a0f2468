"""Shared fixtures and hypothesis strategies for the tests of lfl_lib's tabular core, and the
command lines that the tests of ``lfl recover`` and ``lfl observe`` share.

Hypothesis runs derandomized (the same examples on every run, so a failure is
reproducible and CI is deterministic) with no deadline (a shared, slow core must not
turn into flaky timing failures). The default profile keeps the whole suite fast;
``LFL_HYPOTHESIS_PROFILE=thorough`` runs many more examples.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import lfl_lib  # noqa: F401  (first: pins MKL's code path before numpy or torch loads, lfl_lib.code_paths)
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from lfl_lib.data import Episode, Rollout, save_episodes
from lfl_lib.gridworld import ALPHA, make_gridworld
from lfl_lib.mdp import TabularMDP, random_mdp, soft_optimal

settings.register_profile(
    "lfl",
    derandomize=True,
    deadline=None,
    max_examples=60,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    derandomize=True,
    deadline=None,
    max_examples=500,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("LFL_HYPOTHESIS_PROFILE", "lfl"))

# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------

#: Seeds for numpy Generators (every random array below comes from one).
seeds = st.integers(min_value=0, max_value=2**32 - 1)

#: Entropy weights. Bounded below so that soft policies stay strictly positive in
#: float64 for rewards of unit scale (exp(-Q/alpha) must not underflow to 0).
alphas = st.floats(min_value=0.2, max_value=2.0, allow_nan=False, allow_infinity=False)

#: Discount factors in [0, 0.95].
gammas = st.floats(min_value=0.0, max_value=0.95, allow_nan=False, allow_infinity=False)


@st.composite
def mdps(
    draw,
    min_states: int = 1,
    max_states: int = 8,
    min_actions: int = 1,
    max_actions: int = 4,
    gamma=gammas,
    sparse: bool = True,
) -> TabularMDP:
    """A random MDP: stochastic Dirichlet dynamics (some rows sparse), N(0, 1) rewards."""
    S = draw(st.integers(min_states, max_states))
    A = draw(st.integers(min_actions, max_actions))
    g = draw(gamma)
    sparsity = draw(st.sampled_from([0.0, 0.6])) if sparse else 0.0
    start = draw(st.integers(0, S - 1))
    mdp = random_mdp(S, A, np.random.default_rng(draw(seeds)), gamma=g, sparsity=sparsity)
    return TabularMDP(mdp.P, mdp.r, mdp.gamma, start=start)


def random_policy(rng: np.random.Generator, n_states: int, n_actions: int, p_deterministic: float = 0.25) -> np.ndarray:
    """A random policy: Dirichlet rows, some of them replaced by one-hot rows (zeros included)."""
    pi = rng.dirichlet(np.ones(n_actions), size=n_states)
    det = rng.random(n_states) < p_deterministic
    onehot = np.eye(n_actions)[rng.integers(n_actions, size=n_states)]
    pi[det] = onehot[det]
    return pi


def random_positive_policy(rng: np.random.Generator, n_states: int, n_actions: int) -> np.ndarray:
    """A random policy with every entry > 0."""
    return rng.dirichlet(np.ones(n_actions), size=n_states)


def random_state_function(rng: np.random.Generator, n_states: int, scale: float = 3.0) -> np.ndarray:
    """A random potential g(s)."""
    return scale * rng.standard_normal(n_states)


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def grid() -> TabularMDP:
    """The deterministic grid world of Fig. 2."""
    return make_gridworld()


@pytest.fixture(scope="session")
def grid_optimal(grid):
    """(pi*, Q*, V*) on the grid with the paper's alpha = 0.3."""
    return soft_optimal(grid, ALPHA)


@pytest.fixture
def small_mdp() -> TabularMDP:
    """A fixed 3-state, 2-action stochastic MDP used by the bad-input tests."""
    return random_mdp(3, 2, np.random.default_rng(0), gamma=0.9)


def random_consistency_problem(
    seed: int, n_states: int, n_actions: int = 2, n_targets: int = 2, gamma: float = 0.8
) -> tuple[TabularMDP, np.ndarray, np.ndarray]:
    """A random MDP with random Eq. (5) targets t_k and weights w_k (each w_k sums to 1)."""
    rng = np.random.default_rng(seed)
    mdp = random_mdp(n_states, n_actions, rng, gamma=gamma)
    t = rng.standard_normal((n_targets, n_states, n_actions))
    w = rng.random((n_targets, n_states, n_actions))
    w /= w.sum(axis=(1, 2), keepdims=True)
    return mdp, t, w


# ---------------------------------------------------------------------------
# Rollouts and command lines for the tests of `lfl recover` and `lfl observe`
# ---------------------------------------------------------------------------


def random_rollouts(
    n: int = 3, T: int = 40, obs_dim: int = 4, act_dim: int = 1, seed: int = 0, episode_ends: bool = True
) -> list[Rollout]:
    """``n`` rollouts of N(0, 1) observations and actions, the k-th one's actions scaled by 1 - 0.2 k.

    With ``episode_ends`` an episode terminates every 10 steps; without, none does.
    """
    rng = np.random.default_rng(seed)
    return [
        Rollout(
            rng.normal(size=(T, obs_dim)),
            rng.normal(size=(T, act_dim)) * (1 - 0.2 * k),
            rng.normal(size=(T, obs_dim)),
            np.arange(T) % 10 == 9 if episode_ends else np.zeros(T, bool),
        )
        for k in range(n)
    ]


def write_rollouts(folder: Path, rollouts: Sequence[Rollout]) -> list[str]:
    """Save ``rollouts`` as ``D1.npz``, ``D2.npz``, ... in ``folder``; their paths, in order."""
    return [str(r.save(folder / f"D{k + 1}.npz")) for k, r in enumerate(rollouts)]


def observe_argv(
    reward: str | Path,
    env_id: str,
    *,
    start: str | Path | None = None,
    bc_steps: int | None = None,
    updates: int = 1,
    out: str | Path | None = None,
) -> list[str]:
    """``lfl observe`` on a tiny budget: the small preset, ``updates`` PPO updates, 2 evaluation episodes.

    ``start`` (a rollout file) and ``bc_steps`` are passed when given; without ``out`` the caller adds ``--out``.
    """
    argv = ["observe", "--reward", str(reward), "--env", env_id, "--updates", str(updates), "--preset", "small"]
    argv += ["--eval-episodes", "2", "--no-progress"]
    if start is not None:
        argv += ["--start", str(start)]
    if bc_steps is not None:
        argv += ["--bc-steps", str(bc_steps)]
    if out is not None:
        argv += ["--out", str(out)]
    return argv


def write_tabular_logs(folder: Path, seed: int = 0) -> list[str]:
    """Three files ``T0.npz``..``T2.npz`` of 5 random episodes each (3 states, 2 actions, 10 steps)."""
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(3):
        eps = [Episode(rng.integers(3, size=11), rng.integers(2, size=10)) for _ in range(5)]
        paths.append(str(save_episodes(eps, folder / f"T{k}.npz")))
    return paths


def tabular_recover_argv(paths: Sequence[str]) -> list[str]:
    """``lfl recover --tabular`` of the files of :func:`write_tabular_logs`, their 3 states and 2 actions."""
    return ["recover", "--tabular", "--rollouts", *paths, "--n-states", "3", "--n-actions", "2"]
