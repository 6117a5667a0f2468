"""The 5 x 5 grid world of Section 6.1 (Figure 2), and pictures of it.

Cells are (x, y) with x, y in 0..4 and state index ``s = 5 * x + y``. Actions move
``a=0: x+1``, ``a=1: x-1``, ``a=2: y-1``, ``a=3: y+1``, clipped at the border. The cells
(4, 4) and (2, 2) reset: every action leads to the start (0, 0). The reward depends on
the state only: +10 at (4, 4), 0 at (4, 0), -12 at (0, 4), -1 elsewhere. The paper
uses gamma = 0.96 and alpha = 0.3.

In the pictures x is the row (growing downwards) and y the column, so the objective
(4, 4) is bottom-right and the small-reward corner (4, 0) bottom-left, as in Figure 2.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import as_float_array, check_policy
from .mdp import TabularMDP

__all__ = [
    "SIZE",
    "N_STATES",
    "N_ACTIONS",
    "GAMMA",
    "ALPHA",
    "ALPHA_MODEL",
    "START",
    "RESET_CELLS",
    "MOVES",
    "state_index",
    "cell",
    "state_reward",
    "make_gridworld",
    "draw_values",
    "draw_policy",
    "draw_gridworld",
]

SIZE = 5
N_STATES = SIZE * SIZE
N_ACTIONS = 4
GAMMA = 0.96
ALPHA = 0.3
ALPHA_MODEL = 0.7
START = 0
RESET_CELLS = ((4, 4), (2, 2))
#: (dx, dy) of each action.
MOVES = ((1, 0), (-1, 0), (0, -1), (0, 1))
_ACTION_NAMES = ("x+1 (down)", "x-1 (up)", "y-1 (left)", "y+1 (right)")


def state_index(x: int, y: int) -> int:
    """State index ``5 * x + y`` of cell (x, y)."""
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (x, y)):
        raise ValueError(f"cell (x, y) must be a pair of integers; got ({x!r}, {y!r})")
    if not (0 <= x < SIZE and 0 <= y < SIZE):
        raise ValueError(f"cell (x, y) must have 0 <= x, y < {SIZE}; got ({x}, {y})")
    return SIZE * x + y


def cell(s: int) -> tuple[int, int]:
    """Cell (x, y) of state index ``s``."""
    if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
        raise ValueError(f"s must be an integer state index; got {s!r}")
    if not 0 <= s < N_STATES:
        raise ValueError(f"s must be in [0, {N_STATES - 1}]; got {s}")
    return divmod(int(s), SIZE)


def state_reward() -> NDArray[np.float64]:
    """The true state-only reward r(s) of Figure 2, shape (25,)."""
    r = -np.ones(N_STATES)
    r[state_index(4, 4)] = 10.0
    r[state_index(4, 0)] = 0.0
    r[state_index(0, 4)] = -12.0
    return r


def make_gridworld(stochastic: bool = False, slip: float = 0.3) -> TabularMDP:
    """The grid world of Figure 2 as a :class:`~lfl_lib.mdp.TabularMDP`.

    Parameters
    ----------
    stochastic : bool, default False
        The paper's tables use the deterministic grid. With ``True``, the variant of the
        authors' code: with probability ``slip`` the intended move is replaced by a
        move in a uniformly random direction (reset cells still reset).
    slip : float, default 0.3
        Probability of a random move in the stochastic variant; ignored otherwise.

    Returns
    -------
    TabularMDP
        25 states, 4 actions, gamma = 0.96, start state 0, reward ``r[s, a] = r(s)``.
    """
    if not isinstance(stochastic, (bool, np.bool_)):
        raise ValueError(f"stochastic must be a bool; got {stochastic!r}")
    try:
        slip = float(slip)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"slip must be a number in [0, 1]; got {slip!r}") from exc
    if not 0.0 <= slip <= 1.0:
        raise ValueError(f"slip must be in [0, 1]; got {slip}")
    move = np.zeros((N_STATES, N_ACTIONS, N_STATES))
    for s in range(N_STATES):
        x, y = cell(s)
        for a, (dx, dy) in enumerate(MOVES):
            nx = min(max(x + dx, 0), SIZE - 1)
            ny = min(max(y + dy, 0), SIZE - 1)
            move[s, a, state_index(nx, ny)] = 1.0
    P = move.copy()
    if stochastic:
        random_move = move.mean(axis=1, keepdims=True)
        P = (1.0 - slip) * move + slip * random_move
    for cx, cy in RESET_CELLS:
        s = state_index(cx, cy)
        P[s] = 0.0
        P[s, :, START] = 1.0
    r = np.repeat(state_reward()[:, None], N_ACTIONS, axis=1)
    return TabularMDP(P, r, GAMMA, start=START)


def draw_values(
    values: ArrayLike, ax=None, cmap: str = "viridis", fmt: str = "{:.1f}", annotate: bool = True, colorbar: bool = True
):
    """Draw a state function (a reward map, a value function) on the 5 x 5 grid.

    Parameters
    ----------
    values : array_like, shape (25,)
    ax : matplotlib Axes, optional
    cmap : str
    fmt : str
        Format of the number written in each cell when ``annotate`` is true.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    v = as_float_array(values, "values", ndim=1)
    if v.shape != (N_STATES,):
        raise ValueError(f"values must have shape ({N_STATES},); got {v.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.2))
    grid = v.reshape(SIZE, SIZE)
    im = ax.imshow(grid, cmap=cmap)
    if annotate:
        # Text colour from the luminance of the cell's own colour, so that labels stay
        # readable with any colormap (and do not flip between equal values).
        for x in range(SIZE):
            for y in range(SIZE):
                red, green, blue, _ = im.cmap(im.norm(grid[x, y]))
                dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
                ax.text(
                    y,
                    x,
                    fmt.format(grid[x, y]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else "black",
                )
    ax.set_xticks(range(SIZE))
    ax.set_yticks(range(SIZE))
    ax.set_xlabel("y")
    ax.set_ylabel("x")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return ax


def draw_policy(pi: ArrayLike, ax=None, color: str = "black"):
    """Draw a policy as arrows whose length is the probability of each move.

    Parameters
    ----------
    pi : array_like, shape (25, 4)
    ax : matplotlib Axes, optional
        Drawn on top of whatever ``ax`` holds (for instance :func:`draw_values`).

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    pi = check_policy(pi, N_STATES, N_ACTIONS)
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.2))
        ax.set_xlim(-0.5, SIZE - 0.5)
        ax.set_ylim(SIZE - 0.5, -0.5)
        ax.set_aspect("equal")
        ax.set_xlabel("y")
        ax.set_ylabel("x")
    reset = {state_index(*c) for c in RESET_CELLS}
    for s in range(N_STATES):
        if s in reset:
            continue
        x, y = cell(s)
        for a, (dx, dy) in enumerate(MOVES):
            p = pi[s, a]
            if p < 0.02:
                continue
            # x is the row (vertical axis, downwards), y the column (horizontal axis).
            ax.arrow(
                y,
                x,
                0.42 * p * dy,
                0.42 * p * dx,
                width=0.03,
                head_width=0.12,
                head_length=0.08,
                length_includes_head=True,
                color=color,
            )
    return ax


def draw_gridworld(ax=None):
    """Draw Figure 2: the reward of each cell, the start and the two reset cells."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(3.4, 3.4))
    draw_values(state_reward(), ax=ax, cmap="RdYlGn", fmt="{:+.0f}", colorbar=False)
    for cx, cy in RESET_CELLS:
        ax.text(cy, cx + 0.32, "reset", ha="center", va="center", fontsize=7)
    ax.text(0, 0.32, "start", ha="center", va="center", fontsize=7)
    return ax
