"""The extended Table 2 of the book's chapter "What kind of learner?".

Six learners (the four of Table 2 and KL-regularized SPI learners with
:math:`\\lambda` = 1 and 3, :data:`lfl_lib.experiments.table2.EXTENDED_LEARNERS`), each observed twice
on the same trajectories: under the paper's model (SPI, :math:`\\alpha_m = 0.7`) and under
the model that ``learner_model="auto"`` selects (:func:`lfl_lib.tabular_lfl.select_learner_model`).
A run's seeds are those of :mod:`lfl_lib.experiments.table2`, so the first four learners draw the same
policies and trajectories as in Table 2.

Command line (results with provenance under ``book/data/tabular/``; resumes from its
checkpoint file if interrupted)::

    lfl table2-extended table --runs 100
    lfl table2-extended table --runs 10 --first-seed 1000      # held-out seeds
    lfl table2-extended criteria --runs 10 --first-seed 1000   # the choice of "auto"'s criterion

:func:`criterion_study` is the study behind the choices of ``"auto"`` (criterion and
candidates), run on the held-out seeds 1000-1009 only: for every candidate model (SPI, KL
with each :math:`\\lambda` of the grid, SVI) the observer's score and the held-out
log-likelihood under both kinds of prediction of
:func:`lfl_lib.tabular_lfl.predict_next_policies`.
"""

from __future__ import annotations

import argparse
import shlex
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence, cast

import numpy as np

from .._io import provenance, write_json
from ..gridworld import ALPHA, ALPHA_MODEL, make_gridworld
from ..mdp import TabularMDP, score
from ..tabular_lfl import (
    ModelSelection,
    KL_RATIO_GRID,
    _difference_se,
    _split_halves,
    fit_lfl,
    observer_score,
    predict_next_policies,
)
from ..trajectories import Trajectory, pair_counts
from .table2 import PIPELINE_FILES, EXTENDED_LEARNERS, observed_run

__all__ = ["extended_run", "extended_table", "summarize_extended", "criterion_study"]


def extended_run(
    name: str, seed: int, mdp: TabularMDP | None = None, alpha_model: float = ALPHA_MODEL
) -> dict[str, Any]:
    """One run: the learner's score, the paper-model observer, and the ``"auto"`` observer with its choice."""
    mdp = make_gridworld() if mdp is None else mdp
    policies, trajs = observed_run(name, seed, mdp=mdp)
    S, A, g = mdp.n_states, mdp.n_actions, mdp.gamma
    paper = fit_lfl(trajs, S, A, g, alpha_model)
    auto = fit_lfl(trajs, S, A, g, alpha_model, learner_model="auto")
    return {
        "learner": name,
        "seed": int(seed),
        "learner_J": round(score(mdp, policies[-1], ALPHA), 6),
        "paper_J": round(observer_score(mdp, paper.r, ALPHA).J, 6),
        "auto_J": round(observer_score(mdp, auto.r, ALPHA).J, 6),
        "auto_model": auto.learner_model,
        "auto_kl_weight": round(auto.kl_weight, 6),
        "auto_loglik": {k: round(v, 6) for k, v in cast(ModelSelection, auto.selection).log_likelihood.items()},
    }


def summarize_extended(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per learner: mean and sample standard deviation (ddof 1) of the three scores, and how often each model was chosen."""
    out: dict[str, Any] = {}
    for name in dict.fromkeys(r["learner"] for r in runs):
        rows = [r for r in runs if r["learner"] == name]
        d: dict[str, Any] = {"runs": len(rows)}
        for key in ("learner_J", "paper_J", "auto_J"):
            v = np.array([r[key] for r in rows])
            d[key] = float(v.mean())
            d[key + "_std"] = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
        d["chosen"] = {m: sum(r["auto_model"] == m for r in rows) for m in ("spi", "kl", "svi")}
        out[name] = d
    return out


def extended_table(seeds: Sequence[int], checkpoint: Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Every learner of :data:`lfl_lib.experiments.table2.EXTENDED_LEARNERS` on ``seeds``; resumes from ``checkpoint`` (a JSON list of runs)."""
    done: list[dict[str, Any]] = []
    if checkpoint is not None and checkpoint.exists():
        done = json.loads(checkpoint.read_text())
    have = {(r["learner"], r["seed"]) for r in done}
    jobs = [(n, s) for n in EXTENDED_LEARNERS for s in seeds if (n, s) not in have]
    mdp = make_gridworld()
    it = jobs
    if progress:
        from tqdm import tqdm

        it = tqdm(jobs, desc="extended runs", file=sys.stderr)
    for i, (n, s) in enumerate(it):
        done.append(extended_run(n, s, mdp))
        if checkpoint is not None and (i % 10 == 9 or i == len(jobs) - 1):
            write_json(done, checkpoint, sort_keys=False, mkdir=True)
    order = {n: i for i, n in enumerate(EXTENDED_LEARNERS)}
    done.sort(key=lambda r: (order[r["learner"]], r["seed"]))
    done = [r for r in done if r["seed"] in set(seeds)]
    return {
        "seeds": [min(seeds), max(seeds)],
        "learners": EXTENDED_LEARNERS,
        "alpha_model": ALPHA_MODEL,
        "summary": summarize_extended(done),
        "runs": done,
    }


def criterion_study(seeds: Sequence[int], alpha_model: float = ALPHA_MODEL, progress: bool = True) -> dict[str, Any]:
    """Observer scores and held-out log-likelihoods of every candidate model, per run (held-out seeds only).

    ``forward_se`` holds, per candidate, the standard error of its mean per-pair forward
    log-likelihood difference from SPI (the margin unit of ``learner_model="auto"``).
    """
    if any(s < 1000 for s in seeds):
        raise ValueError("seeds must be held-out seeds (1000 and up): this study makes choices")
    mdp = make_gridworld()
    S, A, g = mdp.n_states, mdp.n_actions, mdp.gamma
    cands = [("spi", 0.0)] + [("kl", rho * alpha_model) for rho in KL_RATIO_GRID[1:]] + [("svi", 0.0)]
    jobs = [(n, s) for n in EXTENDED_LEARNERS for s in seeds]
    if progress:
        from tqdm import tqdm

        jobs = tqdm(jobs, desc="criterion study", file=sys.stderr)
    rows = []
    for name, seed in jobs:
        _, trajs = observed_run(name, seed, mdp=mdp)
        halves = cast(tuple[list[Trajectory], list[Trajectory]], _split_halves(trajs))
        row: dict[str, Any] = {
            "learner": name,
            "seed": int(seed),
            "J": {},
            "forward": {},
            "equation": {},
            "forward_se": {},
        }
        fwd_logp: dict[str, list[np.ndarray]] = {}
        all_counts: list[np.ndarray] = []
        for model, lam in cands:
            key = model if model != "kl" else f"kl:{lam:g}"
            kw: dict[str, Any] = {"learner_model": model, "kl_weight": lam if model == "kl" else None}
            row["J"][key] = round(observer_score(mdp, fit_lfl(trajs, S, A, g, alpha_model, **kw).r, ALPHA).J, 6)
            ll = {"forward": 0.0, "equation": 0.0}
            n = 0
            for fit_half, test_half in (halves, halves[::-1]):
                counts = [pair_counts(tr, S, A) for tr in test_half[1:]]
                n += int(sum(c.sum() for c in counts))
                if model == "spi":
                    all_counts += counts
                res = fit_lfl(fit_half, S, A, g, alpha_model, **kw)
                for kind in ll:
                    logp = [np.log(p) for p in predict_next_policies(res, g, alpha_model, kind)]
                    ll[kind] += float(sum((c * lp).sum() for c, lp in zip(counts, logp)))
                    if kind == "forward":
                        fwd_logp.setdefault(key, []).extend(logp)
            for kind in ll:
                row[kind][key] = round(ll[kind] / n, 6)
        for key in row["J"]:
            row["forward_se"][key] = round(_difference_se(all_counts, fwd_logp[key], fwd_logp["spi"]), 6)
        rows.append(row)
    return {
        "seeds": [min(seeds), max(seeds)],
        "alpha_model": alpha_model,
        "kl_ratio_grid": list(KL_RATIO_GRID),
        "runs": rows,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``table`` (resumable) or ``criteria``, written as JSON with provenance."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="lfl table2-extended", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["table", "criteria"])
    parser.add_argument("--runs", type=int, default=100, help="number of seeds")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed (1000 and up: held out)")
    parser.add_argument("--out", type=Path, default=Path("book/data/tabular"))
    args = parser.parse_args(argv)
    start = time.time()
    seeds = list(range(args.first_seed, args.first_seed + args.runs))
    ckpt = None
    if args.what == "table":
        name = f"table2_extended_{args.runs}runs" + (f"_from{args.first_seed}" if args.first_seed else "") + ".json"
        ckpt = args.out / (name + ".checkpoint")
        data = extended_table(seeds, checkpoint=ckpt)
    else:
        data = criterion_study(seeds)
        name = f"criterion_study_{args.runs}runs_from{args.first_seed}.json"
    data["provenance"] = provenance("lfl table2-extended " + shlex.join(argv), time.time() - start, PIPELINE_FILES)
    write_json(data, args.out / name, sort_keys=False, mkdir=True)
    if ckpt is not None:
        ckpt.unlink(missing_ok=True)
    print(f"wrote {args.out / name} in {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()
