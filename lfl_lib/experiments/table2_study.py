"""Studies behind chapter 5: estimator choices on held-out seeds, and ablations.

Command line (results with provenance under ``book/data/tabular/``)::

    lfl table2-study study --runs 20       # estimator choices on held-out seeds
    lfl table2-study ablations --runs 10   # trajectory length, alpha_model, K

This module imports :mod:`lfl_lib.experiments.table2` (its runs, seeds and provenance); the
Table 2 module does not import this one.

- :func:`study` scores every estimator of :data:`CANDIDATES` on the seeds of
  :data:`lfl_lib.experiments.table2.HELD_OUT_SEEDS`, which the reported tables never use; the
  estimator chosen from it is the default of :func:`lfl_lib.tabular_lfl.recover_reward`.
- :func:`ablations` varies one setting of Table 2 at a time (trajectory length,
  :math:`\\alpha_m`, number of observed improvements K) on the reported seeds, with the
  default estimator.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._io import provenance, write_json
from ..gridworld import ALPHA, make_gridworld
from ..learners import soft_policy_iteration
from ..tabular_lfl import consistency_fit, observer_score, targets
from .table2 import PIPELINE_FILES, HELD_OUT_SEEDS, LEARNERS, REPORTED_SEEDS, observed_run, run_many, summarize
from ..mdp import score

__all__ = ["PAPER_RECIPE", "CANDIDATES", "study", "ablations", "exact_policy_observer", "best_learner_scores"]

#: The grid-world recipe of the authors' released code, where the paper is silent or differs:
#: policies by 10 full-batch Adam steps (rate 0.5) on the likelihood with an entropy bonus
#: lambda = 0.01, every pair in Eq. (5), and Eq. (5) by 200 full-batch Adam steps at rate 1
#: from zero.
PAPER_RECIPE: dict[str, Any] = {
    "policy_estimator": "entropy_ml_adam",
    "entropy_bonus": 0.01,
    "policy_steps": 10,
    "policy_lr": 0.5,
    "weights": "all",
    "solver": "adam",
    "n_steps": 200,
    "lr": 1.0,
}

#: Estimators compared on held-out seeds: name -> options of recover_reward.
CANDIDATES: dict[str, dict[str, Any]] = {
    # The paper's tabular policy estimate as the authors' code runs it: 10 Adam steps (rate 0.5)
    # of the entropy-regularized likelihood with lambda = 0.01, every pair in the loss, exact solve.
    "adam10-all": {"policy_estimator": "entropy_ml_adam", "entropy_bonus": 0.01, "weights": "all"},
    # The whole released recipe, Eq. (5) by 200 Adam steps at rate 1 included.
    "paper-recipe": PAPER_RECIPE,
    # Count-based estimates with a Dirichlet prior, only the visited states in the loss,
    # pairs outside the loss pessimistic.
    "dirichlet-states": {
        "policy_estimator": "dirichlet",
        "policy_prior": 0.5,
        "policy_prior_mean": "previous",
        "weights": "states",
    },
    # The same with a floor of 10 on every state's weight (so the unvisited states enter too).
    "dirichlet-states+10": {
        "policy_estimator": "dirichlet",
        "policy_prior": 0.5,
        "policy_prior_mean": "previous",
        "weights": "states",
        "weight_floor": 10.0,
    },
    "dirichlet-pairs": {
        "policy_estimator": "dirichlet",
        "policy_prior": 0.5,
        "policy_prior_mean": "previous",
        "weights": "pairs",
    },
    # The paper's entropy-regularized likelihood maximised exactly, for several lambda.
    **{
        f"entml{lam}-{w}": {"policy_estimator": "entropy_ml", "entropy_bonus": lam, "weights": w}
        for lam in (0.1, 0.2, 0.3, 0.4, 0.5, 0.7)
        for w in ("all", "states")
    },
}


def _progress(items, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, file=sys.stderr)


def study(runs: int = 20) -> dict[str, Any]:
    """Every candidate estimator on ``runs`` held-out seeds, for the four learners."""
    seeds = list(HELD_OUT_SEEDS)[:runs]
    out: dict[str, Any] = {"seeds": [seeds[0], seeds[-1]], "candidates": CANDIDATES, "summary": {}}
    for name in _progress(list(CANDIDATES), "estimators"):
        out["summary"][name] = summarize(run_many(list(LEARNERS), seeds, **CANDIDATES[name]))
    return out


def exact_policy_observer(alpha_model: float, K: int = 3) -> float:
    """Observer score from the exact SPI policies (the infinite-data limit), every pair weighted equally."""
    mdp = make_gridworld()
    pols = soft_policy_iteration(mdp, ALPHA, K)
    tk = targets(pols, mdp.P, mdp.gamma, alpha_model)
    r, _ = consistency_fit(tk, np.full(tk.shape, 1.0 / tk[0].size), mdp.P, mdp.gamma)
    return observer_score(mdp, r, ALPHA).J


def ablations(runs: int = 10) -> dict[str, Any]:
    """Observer and learner scores against trajectory length, alpha_model and K (reported seeds)."""
    seeds = list(REPORTED_SEEDS)[:runs]
    out: dict[str, Any] = {"seeds": [seeds[0], seeds[-1]]}
    lengths = [100, 300, 1000, 3000, 10000]
    out["n_pairs"] = {
        "values": lengths,
        "summary": {
            str(n): summarize(run_many(list(LEARNERS), seeds, n_pairs=n)) for n in _progress(lengths, "length")
        },
    }
    alphas = [0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0]
    out["alpha_model"] = {
        "values": alphas,
        "summary": {
            str(a): summarize(run_many(list(LEARNERS), seeds, alpha_model=a)) for a in _progress(alphas, "alpha_model")
        },
        "exact_spi": {str(a): exact_policy_observer(a) for a in alphas},
    }
    ks = {
        "SPI": [1, 2, 3, 4, 6, 8],
        "SVI": [2, 5, 10, 20, 40],
        "Q-learning": [10, 25, 50, 100],
        "random": [2, 4, 6, 8, 10, 12, 15],
    }
    out["K"] = {
        "values": ks,
        "summary": {
            name: {str(k): summarize(run_many([name], seeds, K=k))[name] for k in ks[name]}
            for name in _progress(list(ks), "K")
        },
    }
    return out


def best_learner_scores(name: str, seeds: Sequence[int]) -> list[tuple[float, float]]:
    """(J of the best observed policy, J of the last) of learner ``name`` for each seed.

    The paper's Table 2 caption scores a learner by its *best* policy; the authors' code and
    :func:`lfl_lib.experiments.table2.run_once` by its last. The policies are those of
    :func:`lfl_lib.experiments.table2.observed_run`.
    """
    mdp = make_gridworld()
    out = []
    for seed in seeds:
        pols, _ = observed_run(name, seed, mdp=mdp)
        Js = [score(mdp, p, ALPHA) for p in pols]
        out.append((max(Js), Js[-1]))
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``study`` or ``ablations``, written as JSON with provenance."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="lfl table2-study", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["study", "ablations"])
    parser.add_argument("--runs", type=int, default=None, help="number of seeds (study: 20, ablations: 10)")
    parser.add_argument("--out", type=Path, default=Path("book/data/tabular"))
    args = parser.parse_args(argv)
    start = time.time()
    if args.what == "study":
        data, name = study(args.runs or 20), "estimator_study.json"
    else:
        data, name = ablations(args.runs or 10), "ablations.json"
    data["provenance"] = provenance("lfl table2-study " + shlex.join(argv), time.time() - start, PIPELINE_FILES)
    write_json(data, args.out / name, sort_keys=False, mkdir=True)
    print(f"wrote {args.out / name} in {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()
