"""Table 2 of the paper: Algorithm 1 on the grid world against four learners.

One *run* draws a learner's sequence of policies, samples ``n_pairs`` state-action
pairs from each, recovers a reward with :func:`lfl_lib.tabular_lfl.recover_reward`
and scores the observer that plans on it (:func:`lfl_lib.tabular_lfl.observer_score`).
Seeds: a run with seed ``n`` for learner number ``i`` (in the order of :data:`LEARNERS`)
draws everything from ``numpy.random.SeedSequence([n, i])``: its first child drives the
learner (Q-learning, random improvements), its second the observed trajectories.

Command line (results with provenance under ``book/data/tabular/``)::

    lfl table2 table --runs 100               # Table 2 at 100 runs

The studies built on these runs (estimator choice on held-out seeds, ablations) live in
:mod:`lfl_lib.experiments.table2_study`, and the extended Table 2 of chapter 8 in
:mod:`lfl_lib.experiments.table2_extended`; both import this module, which imports neither.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray

from .._io import provenance, write_json
from ..gridworld import ALPHA, ALPHA_MODEL, make_gridworld
from ..learners import (
    kl_soft_policy_iteration,
    q_learning,
    random_improvements,
    soft_policy_iteration,
    soft_value_iteration,
)
from ..mdp import TabularMDP, discounted_entropy, expected_return, score
from ..tabular_lfl import observer_score, recover_reward
from ..trajectories import Trajectory, sample_trajectories

__all__ = [
    "LEARNERS",
    "KL_LEARNERS",
    "EXTENDED_LEARNERS",
    "PAPER_TABLE2",
    "REPORTED_SEEDS",
    "HELD_OUT_SEEDS",
    "learner_policies",
    "observed_run",
    "RunResult",
    "run_once",
    "run_many",
    "summarize",
]

#: Learner name -> K, the number of observed improvements in Table 2.
LEARNERS: dict[str, int] = {"SPI": 3, "SVI": 20, "Q-learning": 50, "random": 10}
#: KL-regularized SPI learners of the extended Table 2 (book chapter "What kind of learner?"):
#: name -> kl_weight lambda. Their K (in :data:`EXTENDED_LEARNERS`) is the one whose exact last policy
#: scores nearest the SPI learner's 4.18 (lambda = 1: K = 4 scores 4.69, K = 3 3.55; lambda = 3: K = 7, 4.16).
KL_LEARNERS: dict[str, float] = {"KL-1": 1.0, "KL-3": 3.0}
#: The four learners of Table 2 and the two KL-regularized ones: name -> K. A run's seed index is the
#: position in this dict, so the first four draw exactly what they draw in Table 2.
EXTENDED_LEARNERS: dict[str, int] = {**LEARNERS, "KL-1": 4, "KL-3": 7}
#: The paper's Table 2: (learner mean, learner std or None, observer mean, observer std).
PAPER_TABLE2: dict[str, tuple[float, float | None, float, float]] = {
    "SPI": (4.18, None, 4.68, 0.24),
    "SVI": (3.59, None, 4.73, 0.61),
    "Q-learning": (3.99, 0.88, 3.65, 0.78),
    "random": (1.76, 2.64, 3.95, 0.49),
}
#: Seeds of the runs that the book's tables report, 0-9 for 10 runs and 0-99 for 100 runs.
REPORTED_SEEDS = range(0, 100)
#: Seeds kept apart for choosing the estimator; never used by the reported tables.
HELD_OUT_SEEDS = range(1000, 1100)


def learner_policies(
    name: str, mdp: TabularMDP, rng: np.random.Generator, alpha: float = ALPHA, K: int | None = None
) -> list[NDArray[np.float64]]:
    """The observed policies of learner ``name`` (K + 1 of them; K from :data:`LEARNERS` by default).

    For the random learner, K + 1 = 10 policies are observed out of 15 (so K = 9
    improvements between them; the paper's column K counts the 10 observed policies).
    """
    if name not in EXTENDED_LEARNERS:
        raise ValueError(f"name must be one of {sorted(EXTENDED_LEARNERS)}; got {name!r}")
    K = EXTENDED_LEARNERS[name] if K is None else K
    if name in KL_LEARNERS:
        return kl_soft_policy_iteration(mdp, alpha, KL_LEARNERS[name], K)
    if name == "SPI":
        return soft_policy_iteration(mdp, alpha, K)
    if name == "SVI":
        return soft_value_iteration(mdp, alpha, K)
    if name == "Q-learning":
        return q_learning(mdp, alpha, K, rng)
    return random_improvements(mdp, alpha, rng, n_policies=15, n_observed=K)


@dataclass(frozen=True)
class RunResult:
    """Scores of one run: the learner's last observed policy and the observer."""

    learner: str
    seed: int
    learner_J: float
    learner_ret: float
    learner_ent: float
    observer_J: float
    observer_ret: float
    observer_ent: float


def observed_run(
    name: str, seed: int, n_pairs: int = 1000, K: int | None = None, mdp: TabularMDP | None = None
) -> tuple[list[NDArray[np.float64]], list[Trajectory]]:
    """The learner's observed policies and the observer's trajectories of one run (see the module's seeds)."""
    if name not in EXTENDED_LEARNERS:
        raise ValueError(f"name must be one of {sorted(EXTENDED_LEARNERS)}; got {name!r}")
    mdp = make_gridworld() if mdp is None else mdp
    learner_ss, data_ss = np.random.SeedSequence([int(seed), list(EXTENDED_LEARNERS).index(name)]).spawn(2)
    policies = learner_policies(name, mdp, np.random.default_rng(learner_ss), K=K)
    return policies, sample_trajectories(mdp, policies, n_pairs, np.random.default_rng(data_ss))


def run_once(
    name: str,
    seed: int,
    n_pairs: int = 1000,
    alpha_model: float = ALPHA_MODEL,
    K: int | None = None,
    mdp: TabularMDP | None = None,
    **options: Any,
) -> RunResult:
    """One run of Table 2 for learner ``name``; ``options`` go to :func:`~lfl_lib.tabular_lfl.recover_reward`."""
    mdp = make_gridworld() if mdp is None else mdp
    policies, trajs = observed_run(name, seed, n_pairs, K, mdp)
    r_hat = recover_reward(trajs, mdp.n_states, mdp.n_actions, mdp.gamma, alpha_model, **options)
    obs = observer_score(mdp, r_hat, ALPHA)
    last = policies[-1]
    return RunResult(
        name,
        int(seed),
        score(mdp, last, ALPHA),
        expected_return(mdp, last),
        discounted_entropy(mdp, last, ALPHA),
        obs.J,
        obs.ret,
        obs.entropy,
    )


def run_many(names: Sequence[str], seeds: Sequence[int], progress: bool = False, **kwargs: Any) -> list[RunResult]:
    """:func:`run_once` for every learner and seed (learner-major order)."""
    jobs = [(n, s) for n in names for s in seeds]
    if progress:
        from tqdm import tqdm

        jobs = tqdm(jobs, desc="runs", file=sys.stderr)
    mdp = make_gridworld()
    return [run_once(n, s, mdp=mdp, **kwargs) for n, s in jobs]


def summarize(results: Sequence[RunResult]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation (ddof 1; NaN for a single run) of every score, per learner."""
    out: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(r.learner for r in results):
        rows = [r for r in results if r.learner == name]
        d: dict[str, float] = {"runs": len(rows)}
        for key in ("learner_J", "learner_ret", "learner_ent", "observer_J", "observer_ret", "observer_ent"):
            vals = np.array([getattr(r, key) for r in rows])
            d[key] = float(vals.mean())
            d[key + "_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
        out[name] = d
    return out


# ----------------------------------------------------------------------------- command line


#: The modules a Table 2 computation runs; provenance records whether any differs from the commit.
PIPELINE_FILES = (
    *(
        f"lfl_lib/{m}.py"
        for m in (
            "_validate",
            "mdp",
            "gridworld",
            "improvement",
            "inversion",
            "learners",
            "trajectories",
            "tabular_lfl",
        )
    ),
    *(f"lfl_lib/experiments/{m}.py" for m in ("table2", "table2_study", "table2_extended")),
)


def _results_json(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    return [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(r).items()} for r in results]


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="lfl table2", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["table"])
    parser.add_argument("--runs", type=int, default=100, help="number of seeds")
    parser.add_argument("--out", type=Path, default=Path("book/data/tabular"))
    args = parser.parse_args(argv)
    start = time.time()
    seeds = list(REPORTED_SEEDS)[: args.runs]
    results = run_many(list(LEARNERS), seeds, progress=True)
    data = {"seeds": [seeds[0], seeds[-1]], "summary": summarize(results), "runs": _results_json(results)}
    name = f"table2_{args.runs}runs.json"
    data["provenance"] = provenance("lfl table2 " + shlex.join(argv), time.time() - start, PIPELINE_FILES)
    write_json(data, args.out / name, sort_keys=False, mkdir=True)
    print(f"wrote {args.out / name} in {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()
