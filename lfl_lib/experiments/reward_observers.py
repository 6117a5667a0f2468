"""Observers of the benchmark's rewards: PPO on a learned reward, from the clone of the last observed policy.

For a reward of :mod:`lfl_lib.experiments.reward_bench` (T-REX, behaviour cloning, Algorithm 1
with a state term), learned from the observed window of a learner log
(:mod:`lfl_lib.experiments.learner_logs`), train the observer of chapter 6's pipeline
(:func:`lfl_lib.observer.train_observer`): a behaviour clone of the last observed rollout as the
start (the same clone as chapter 6's study: its steps, its fit, its held-out transitions), the
observation statistics frozen at the clone's, then PPO at the paper's settings on the learned
reward for 30 updates. There is no KL anchor: these rewards come without a learner model, whose
fitted :math:`\\lambda` chapter 6's anchor needs.

Two settings of the observer's PPO (``--terminal``):

- ``"absorbing"``: the paper's PPO, where a termination ends the return;
- ``"bootstrap"``: a termination is an ordinary state (the critic's value is bootstrapped through
  it), as in chapter 6's final pipeline. A reward learned from snippets of equal length is
  defined only up to a constant per step; with absorbing terminations that constant decides
  whether the observer wants its episodes long or short, and with bootstrapped ones it does not.

Scores, as in chapter 6: ``mean-return`` (10 episodes with the mean action) and
``sampled-return`` (the same episodes with sampled actions), after the start and after every
update, each normalized on the learner log's own scores (0 = the first observed checkpoint,
1 = the last observed one).

``lfl reward-observers --rewards trex --envs Hopper-v5 --seeds 100 101 102`` (or ``python -m
lfl_lib.experiments.reward_observers ...``) writes one JSON per (reward, setting, env, seed)
under ``book/data/reward_observers/`` and skips those that exist; a run stopped midway resumes
from its checkpoint in ``runs/reward_observers/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import _safe_io
from .._io import git_commit, read_json, versions, write_json
from ..nets import PolicySnapshot
from ..observer import train_observer
from ..ppo import evaluate_episodes
from .learner_logs import DEFAULT_OUT as LOG_OUT
from .learner_logs import load_checkpoint
from .reward_bench import DEFAULT_CACHE, DEFAULT_RUNS, fit_named_reward, reward_from_spec
from .study import DEFAULT_WINDOWS, bc_held_out, make_config, normalize_scores

__all__ = [
    "OBSERVED_REWARDS",
    "TERMINALS",
    "DEFAULT_OUT",
    "observer_path",
    "run_reward_observer",
    "observer_table",
    "main",
]

#: Rewards an observer can be trained on (names of :data:`lfl_lib.experiments.reward_bench.REWARDS`).
OBSERVED_REWARDS: tuple[str, ...] = ("trex", "bc", "lfl-state")
#: How the observer's PPO treats a termination (see the module docstring).
TERMINALS: tuple[str, ...] = ("absorbing", "bootstrap")
DEFAULT_OUT = Path("book/data/reward_observers")
DEFAULT_CK = Path("runs/reward_observers")


def observer_path(out: str | Path, reward: str, terminal: str, env_id: str, seed: int) -> Path:
    """Where the results of one observer run live: ``OUT/<reward>_<terminal>/<ENV>_seed<N>.json``."""
    return Path(out) / f"{reward}_{terminal}" / f"{env_id}_seed{seed}.json"


def _check(reward: str, terminal: str, env_id: str, seed: int, updates: int) -> None:
    if reward not in OBSERVED_REWARDS:
        raise ValueError(f"reward must be one of {OBSERVED_REWARDS}; got {reward!r}")
    if terminal not in TERMINALS:
        raise ValueError(f"terminal must be one of {TERMINALS}; got {terminal!r}")
    if env_id not in DEFAULT_WINDOWS:
        raise ValueError(f"env_id must be one of {sorted(DEFAULT_WINDOWS)}; got {env_id!r}")
    if not (isinstance(seed, int) and seed >= 0):
        raise ValueError(f"seed must be an int >= 0; got {seed!r}")
    if not (isinstance(updates, int) and updates >= 1):
        raise ValueError(f"updates must be an int >= 1; got {updates!r}")


def _reward_fn(reward: str, env_id: str, seed: int, runs: Path, cache: Path, window: list[int]) -> Any:
    """The learned reward: the benchmark's cached fit when there is one, else a fit on the window."""
    path = cache / f"{env_id}_seed{seed}" / f"reward_{reward}.pt"
    if path.exists():
        spec = _safe_io.load(path)
    else:
        rollouts = [load_checkpoint(runs / f"{env_id}_seed{seed}", u)[0] for u in window]
        _, _, spec = fit_named_reward(reward, rollouts, seed=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        _safe_io.save(spec, path)
    return reward_from_spec(spec)


def _learner_scores(env_id: str, seed: int, logs: Path, window: list[int]) -> dict[str, list[float]]:
    """The learner log's mean scores of the first and last observed checkpoints, per protocol.

    ``paper-code`` is there only when the log recorded the released code's queue of its rollouts.
    """
    log = read_json(logs / f"{env_id}_seed{seed}.json", "learner log")
    ups = list(log["updates"])
    first, last = ups.index(window[0]), ups.index(window[-1])
    scores = {
        "mean-return": [log["mean_return"][first], log["mean_return"][last]],
        "sampled-return": [log["sampled_return"][first], log["sampled_return"][last]],
    }
    if log.get("paper_code"):
        scores["paper-code"] = [float(np.mean(log["paper_code"][str(u)])) for u in (window[0], window[-1])]
    return scores


def run_reward_observer(
    reward: str,
    env_id: str,
    seed: int,
    terminal: str = "absorbing",
    updates: int = 30,
    runs: str | Path = DEFAULT_RUNS,
    cache: str | Path = DEFAULT_CACHE,
    logs: str | Path = LOG_OUT,
    out: str | Path = DEFAULT_OUT,
    ck_dir: str | Path = DEFAULT_CK,
    progress: bool = True,
    command: str = "",
) -> Path:
    """Train and score the observer of ``reward`` on the learner log of (``env_id``, ``seed``); return its JSON.

    The learner log's observed window (:data:`lfl_lib.experiments.study.DEFAULT_WINDOWS`) is all
    the method reads; the learner's scores normalize the observer's. The observer's own seed,
    its clone and its evaluation episodes are those of chapter 6's study run of the same seed.
    """
    _check(reward, terminal, env_id, seed, updates)
    t0 = time.perf_counter()
    runs, cache = Path(runs), Path(cache)
    window = list(DEFAULT_WINDOWS[env_id])
    cfg = make_config(env_id, seed, "paper", estimator="fix", terminal=terminal, observer_obs_stats="frozen")
    last = load_checkpoint(runs / f"{env_id}_seed{seed}", window[-1])[0]
    fn = _reward_fn(reward, env_id, seed, runs, cache, window)
    learner = _learner_scores(env_id, seed, Path(logs), window)
    ppo_cfg = dataclasses.replace(cfg.observer_ppo, anneal_updates=updates)

    def sampled(pol: PolicySnapshot) -> list[float]:
        ends = evaluate_episodes(env_id, pol, cfg.eval_episodes, cfg.eval_seed, stochastic=True)
        return [float(x) for x in ends["returns"]]

    ck = Path(ck_dir) / f"{reward}_{terminal}" / f"{env_id}_seed{seed}_u{updates}.pt"
    ck.parent.mkdir(parents=True, exist_ok=True)
    res = train_observer(
        env_id,
        fn,
        start=last,
        updates=updates,
        ppo_config=ppo_cfg,
        bc_steps=cfg.bc_steps,
        bc_config=cfg.lfl,
        bc_held_out=bc_held_out(cfg, last),
        seed=cfg.seed + cfg.observer_seed_offset,
        eval_episodes=cfg.eval_episodes,
        eval_seed=cfg.eval_seed,
        checkpoint=ck,
        progress=progress,
        freeze_obs_stats=True,
        scores={"sampled": sampled},
        paper_code="paper-code" in learner,
        desc=f"{reward} {env_id} s{seed}",
    )
    rec = res.record
    mean = [float(np.mean(r)) for r in rec["returns"]]
    samp = [float(np.mean(r)) for r in rec["sampled"]]
    raw = {"mean-return": mean, "sampled-return": samp}
    returns = {"mean-return": rec["returns"], "sampled-return": rec["sampled"]}
    if "paper-code" in learner:
        # entry k: the queue at the end of the rollout collected by the policy after k updates (k < updates)
        raw["paper-code"] = [float(np.mean(q)) for q in rec["paper_code"]]
        returns["paper-code"] = rec["paper_code"]
    norm = {k: [float(x) for x in normalize_scores(np.array(v), *learner[k])] for k, v in raw.items()}
    result = {
        "reward": reward,
        "terminal": terminal,
        "env_id": env_id,
        "seed": seed,
        "window": window,
        "updates": updates,
        "learner_first_last": learner,
        "returns": returns,
        "scores": raw,
        "normalized": norm,
        "final_normalized": {k: v[-1] for k, v in norm.items()},
        "start_normalized": {k: v[0] for k, v in norm.items()},
        "observer": {
            "ppo": ppo_cfg.to_dict(),
            "bc_steps": cfg.bc_steps,
            "seed": cfg.seed + cfg.observer_seed_offset,
            "eval_episodes": cfg.eval_episodes,
            "eval_seed": cfg.eval_seed,
        },
        "wall_time_s": round(time.perf_counter() - t0, 1),
        "command": command,
        "git_commit": git_commit(),
        "versions": versions(),
    }
    path = observer_path(out, reward, terminal, env_id, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(result, path)
    return path


def observer_table(folder: str | Path = DEFAULT_OUT, protocol: str = "mean-return") -> list[dict[str, Any]]:
    """One row per observer file that holds ``protocol``: reward, setting, env, seed, start and final normalized scores.

    ``paper-code`` is held only by runs whose learner log recorded the released code's queue.
    """
    rows = []
    for f in sorted(Path(folder).glob("*/*_seed*.json")):
        d = json.loads(f.read_text())
        if protocol not in d["final_normalized"]:
            continue
        rows.append(
            {
                "reward": d["reward"],
                "terminal": d["terminal"],
                "env_id": d["env_id"],
                "seed": d["seed"],
                "start": d["start_normalized"][protocol],
                "final": d["final_normalized"][protocol],
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lfl reward-observers", description=__doc__.split("\n\n")[0])
    p.add_argument("--rewards", nargs="+", default=["trex"], choices=OBSERVED_REWARDS)
    p.add_argument("--terminal", nargs="+", default=["absorbing"], choices=TERMINALS)
    p.add_argument("--envs", nargs="+", default=sorted(DEFAULT_WINDOWS), choices=sorted(DEFAULT_WINDOWS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--updates", type=int, default=30, help="PPO updates of the observer (30, the paper's)")
    p.add_argument("--runs", default=str(DEFAULT_RUNS), help=f"learner log folders ({DEFAULT_RUNS})")
    p.add_argument("--logs", default=str(LOG_OUT), help=f"learner log results ({LOG_OUT})")
    p.add_argument("--cache", default=str(DEFAULT_CACHE), help=f"fitted rewards ({DEFAULT_CACHE})")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"results folder ({DEFAULT_OUT})")
    p.add_argument("--ck-dir", default=str(DEFAULT_CK), help=f"resumable observer checkpoints ({DEFAULT_CK})")
    p.add_argument("--table", action="store_true", help="print the results folder's table and stop")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    if a.table:
        for row in observer_table(a.out):
            print(" ".join(f"{v:+.3f}" if isinstance(v, float) else str(v) for v in row.values()))
        return 0
    cmd = "lfl reward-observers " + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    for e in a.envs:
        for s in a.seeds:
            for r in a.rewards:
                for t in a.terminal:
                    if observer_path(a.out, r, t, e, s).exists():
                        continue
                    if not (Path(a.logs) / f"{e}_seed{s}.json").exists():
                        print(f"skip {r} {t} {e} seed {s}: no learner log", file=sys.stderr)
                        continue
                    path = run_reward_observer(
                        r,
                        e,
                        s,
                        t,
                        a.updates,
                        a.runs,
                        a.cache,
                        a.logs,
                        a.out,
                        a.ck_dir,
                        progress=not a.no_progress,
                        command=cmd,
                    )
                    d = json.loads(path.read_text())
                    print(
                        f"{r} {t} {e} s{s}: start {d['start_normalized']['mean-return']:+.3f} "
                        f"final {d['final_normalized']['mean-return']:+.3f} (mean-return)",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
