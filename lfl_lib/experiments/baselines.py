"""Chapter 7's table: behaviour cloning, maximum-entropy IRL and LfL on the same runs of Table 2.

:func:`compare_run` scores every method of :data:`METHODS` on one run of Table 2; the
command line runs the comparison over seeds::

    lfl baselines --runs 10     # writes book/data/baselines/comparison_10runs.json

The methods themselves are the library's (:mod:`lfl_lib.baselines`,
:mod:`lfl_lib.tabular_lfl`).
"""

from __future__ import annotations

import os

if __name__ == "__main__":
    # Before numpy loads: the matrices here are tiny (25 x 25), and on a shared machine
    # OpenBLAS's worker threads make each solve many times slower, not faster.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

from .._io import provenance, write_json
from ..baselines import behaviour_cloning, maxent_irl
from ..gridworld import ALPHA, ALPHA_MODEL, make_gridworld
from ..mdp import TabularMDP, check_mdp, score
from ..tabular_lfl import observer_score, recover_reward
from .table2 import LEARNERS, PIPELINE_FILES, observed_run

__all__ = ["METHODS", "compare_run", "compare_many", "main"]


# ----------------------------------------------------------------------------- the comparison

#: The methods of :func:`compare_run`, in the order of the book's table.
METHODS: dict[str, str] = {
    "learner_last": "learner's last policy",
    "lfl": "LfL, all trajectories",
    "lfl_last2": "LfL, last two trajectories",
    "bc_last": "BC, last trajectory",
    "irl_last": "max-ent IRL r(s), last trajectory",
    "irl_sa_last": "max-ent IRL r(s,a), last trajectory",
    "irl_last_am": "max-ent IRL r(s), last trajectory, alpha_model",
    "irl_pooled": "max-ent IRL r(s), all trajectories",
}


def compare_run(
    name: str,
    seed: int,
    mdp: TabularMDP | None = None,
    n_pairs: int = 1000,
    alpha: float = ALPHA,
    alpha_model: float = ALPHA_MODEL,
    methods: Sequence[str] = tuple(METHODS),
) -> dict[str, float]:
    """Observer scores :math:`J` of every method on one run of Table 2 (same data for all).

    The data are those of :func:`lfl_lib.experiments.table2.run_once` for the same ``name`` and ``seed``
    (:func:`lfl_lib.experiments.table2.observed_run`: ``n_pairs`` pairs per observed policy).

    ``"learner_last"``: the learner's last policy. ``"lfl"``: :func:`~lfl_lib.tabular_lfl.recover_reward`
    with its defaults on all trajectories; ``"lfl_last2"``: on the last two only.
    ``"bc_last"``: :func:`~lfl_lib.baselines.behaviour_cloning` of the last trajectory, played directly.
    ``"irl_last"``, ``"irl_sa_last"``: :func:`~lfl_lib.baselines.maxent_irl` on the last trajectory with
    state or state-action features; ``"irl_pooled"``: on all trajectories pooled (the
    wrong model: the early policies are far from optimal). IRL assumes the true
    ``alpha``, except ``"irl_last_am"``, which assumes ``alpha_model`` like LfL (a
    larger assumed temperature scales the recovered reward up, so the observer, which
    plans with ``alpha``, acts more greedily than the demonstrator). Every reward is scored by
    :func:`~lfl_lib.tabular_lfl.observer_score` with ``alpha`` on ``mdp``.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"methods must be among {list(METHODS)}; got {unknown}")
    mdp = make_gridworld() if mdp is None else check_mdp(mdp)
    policies, trajs = observed_run(name, seed, n_pairs=n_pairs, mdp=mdp)
    S, A, g = mdp.n_states, mdp.n_actions, mdp.gamma
    out: dict[str, float] = {}
    for m in methods:
        if m == "learner_last":
            out[m] = score(mdp, policies[-1], alpha)
        elif m == "bc_last":
            out[m] = score(mdp, behaviour_cloning(trajs[-1], S, A), alpha)
        else:
            if m == "lfl":
                r = recover_reward(trajs, S, A, g, alpha_model)
            elif m == "lfl_last2":
                r = recover_reward(trajs[-2:], S, A, g, alpha_model)
            elif m == "irl_last":
                r = maxent_irl(mdp, trajs[-1], alpha, "state").r
            elif m == "irl_sa_last":
                r = maxent_irl(mdp, trajs[-1], alpha, "state_action").r
            elif m == "irl_last_am":
                r = maxent_irl(mdp, trajs[-1], alpha_model, "state").r
            else:
                r = maxent_irl(mdp, trajs, alpha, "state").r
            out[m] = observer_score(mdp, r, alpha).J
    return out


def compare_many(
    names: Sequence[str], seeds: Sequence[int], progress: bool = False, **kwargs
) -> list[dict[str, float | int | str]]:
    """:func:`compare_run` for every learner and seed; one row per run (learner, seed, scores)."""
    jobs = [(n, int(s)) for n in names for s in seeds]
    it = jobs
    if progress:
        from tqdm import tqdm

        it = tqdm(jobs, desc="runs", file=sys.stderr)
    mdp = make_gridworld()
    return [{"learner": n, "seed": s, **compare_run(n, s, mdp=mdp, **kwargs)} for n, s in it]


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: the comparison over seeds 0..runs-1, written as JSON with its provenance."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="lfl baselines", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="number of seeds (0..runs-1)")
    parser.add_argument("--out", type=Path, default=Path("book/data/baselines"))
    args = parser.parse_args(argv)
    start = time.time()
    seeds = list(range(args.runs))
    rows = compare_many(list(LEARNERS), seeds, progress=True)
    prov = provenance(
        "lfl baselines " + shlex.join(argv),
        time.time() - start,
        (*PIPELINE_FILES, "lfl_lib/baselines.py", "lfl_lib/experiments/baselines.py"),
    )
    prov["OPENBLAS_NUM_THREADS"] = os.environ.get("OPENBLAS_NUM_THREADS")
    data = {
        "seeds": seeds,
        "methods": METHODS,
        "n_pairs": 1000,
        "alpha": ALPHA,
        "alpha_model": ALPHA_MODEL,
        "runs": [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()} for row in rows],
        "provenance": prov,
    }
    path = args.out / f"comparison_{args.runs}runs.json"
    write_json(data, path, sort_keys=False, mkdir=True)
    print(f"wrote {path} in {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()
