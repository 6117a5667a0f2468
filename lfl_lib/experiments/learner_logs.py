"""Learner logs that reach past the observed window (the reward benchmark's data).

``lfl learner-logs --env Hopper-v5 --seed 0`` trains the study's
PPO learner (the same configuration, seed and decay horizon as the study's, so its updates
inside the observed window are the study's bitwise) for ``ceil(extend * max(window))``
updates, and keeps *every* update: the rollout of environment 0 and the policy that
collected it (in the run folder, not committed), and the policy's true returns under the
``mean-return`` and ``sampled-return`` protocols (committed: one small JSON per run).

The updates after the window are **unseen**: no reward method reads them; only the reward
benchmark (:mod:`lfl_lib.experiments.reward_bench`) scores against them.

Resumable: the learner checkpoints after every update (the physics of every environment
included), the evaluation after every policy; the same command again goes on where it
stopped. The results file is written once, at the end, atomically.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from .. import _safe_io
from ..ppo import PAPER_CODE_QUEUE, PPO, PolicySnapshot, Rollout, evaluate_episodes
from .._io import git_commit, versions, write_json, write_npz
from .study import DEFAULT_WINDOWS, make_config

__all__ = ["extended_updates", "run_learner_log", "load_checkpoint", "load_trajectories", "main"]

#: Where the committed results go, and where the run folders go, by default.
DEFAULT_OUT = Path("book/data/learner_logs")
DEFAULT_RUNS = Path("runs/learner_logs")


def extended_updates(window: Sequence[int], extend: float) -> int:
    """Updates of the extended learner: ``ceil(extend * max(window))``; ``extend`` >= 1."""
    if not (isinstance(extend, (int, float)) and math.isfinite(extend) and extend >= 1.0):
        raise ValueError(f"extend must be a number >= 1; got {extend!r}")
    return int(math.ceil(extend * max(window)))


def load_checkpoint(run_dir: str | Path, update: int) -> tuple[Rollout, PolicySnapshot]:
    """The rollout of environment 0 at ``update`` and the policy that collected it."""
    item = _safe_io.load(Path(run_dir) / "checkpoints" / f"update_{update:03d}.pt")
    return Rollout(**item["rollout"]), PolicySnapshot.from_dict(item["policy"])


def _train(
    env_id: str, seed: int, n_updates: int, run_dir: Path, progress: bool
) -> tuple[float, dict[int, list[float]]]:
    """Train (or resume) the learner to ``n_updates``; return the time spent and the paper-code values.

    The paper-code values of update u are the released code's score queue at the end of u's
    rollout (``paper-code`` protocol of :mod:`lfl_lib.experiments.study`); a learner resumed from a
    checkpoint written before they were recorded has none for its earlier updates.
    """
    cfg = make_config(env_id, seed, "paper", learner_updates=n_updates)
    ck_dir = run_dir / "checkpoints"
    ck_dir.mkdir(parents=True, exist_ok=True)

    def hook(update: int, rollout: Rollout, policy: PolicySnapshot) -> None:
        _safe_io.save(
            {"update": update, "rollout": rollout.to_arrays(), "policy": policy.to_dict()},
            ck_dir / f"update_{update:03d}.pt",
        )

    # exactly the study's learner (lfl_lib.experiments.study._learner): same configuration, seed and tap
    ppo = PPO(env_id, cfg.learner_ppo, seed=seed, hook=hook)
    ppo.tap.capture_reward_terms(PAPER_CODE_QUEUE)
    ck = run_dir / "learner.pt"
    paper_code: dict[int, list[float]] = {}
    if ck.exists():
        saved = _safe_io.load(ck)
        ppo.load_state_dict(saved["ppo"])
        paper_code = {int(k): list(v) for k, v in saved.get("paper_code", {}).items()}
    t0 = time.perf_counter()
    bar = tqdm(total=n_updates, initial=ppo.update, desc=f"{env_id} s{seed} learner", disable=not progress)
    while ppo.update < n_updates:
        stats = ppo.train_update()
        paper_code[ppo.update] = [float(x) for x in ppo.tap.reward_terms or ()]
        _safe_io.save({"ppo": ppo.state_dict(), "paper_code": paper_code}, ck)
        bar.set_postfix(ret=f"{stats['train_return']:.1f}")
        bar.update(1)
    bar.close()
    ppo.close()
    return time.perf_counter() - t0, paper_code


def _save_trajectories(path: Path, seen: list[tuple[np.ndarray, np.ndarray]], ends: dict[str, Any]) -> None:
    """The evaluation episodes' states and actions (before clipping), padded to the longest.

    ``observations[t, i]`` and ``actions[t, i]`` are step t of episode i, valid for
    ``t < lengths[i]``; ``terminated[i]`` tells whether episode i ended by termination.
    """
    obs = np.stack([o for o, _ in seen])
    act = np.stack([a for _, a in seen])
    arrays = {
        "observations": obs,
        "actions": act,
        "lengths": np.asarray(ends["lengths"], np.int64),
        "terminated": np.asarray(ends["terminated"], bool),
        "returns": np.asarray(ends["returns"]),
    }
    write_npz(arrays, path, compressed=True)


def load_trajectories(run_dir: str | Path, update: int, protocol: str = "mean") -> dict[str, np.ndarray]:
    """The stored evaluation episodes of ``update`` (``protocol`` "mean" or "sampled")."""
    if protocol not in ("mean", "sampled"):
        raise ValueError(f"protocol must be 'mean' or 'sampled'; got {protocol!r}")
    with np.load(Path(run_dir) / "trajectories" / f"update_{update:03d}_{protocol}.npz") as z:
        return {k: z[k] for k in z.files}


def _evaluate(
    env_id: str, n_updates: int, run_dir: Path, episodes: int, eval_seed: int, progress: bool
) -> dict[str, Any]:
    path = run_dir / "eval.json"
    traj_dir = run_dir / "trajectories"
    traj_dir.mkdir(exist_ok=True)
    ev: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    bar = tqdm(total=n_updates, initial=len(ev), desc=f"{env_id} eval", disable=not progress)
    for u in range(1, n_updates + 1):
        if str(u) in ev:
            continue
        _, pol = load_checkpoint(run_dir, u)
        rec: dict[str, Any] = {}
        for name, stochastic in (("mean", False), ("sampled", True)):
            seen: list[tuple[np.ndarray, np.ndarray]] = []

            def record(obs: np.ndarray, act: np.ndarray, seen: list = seen) -> np.ndarray:
                seen.append((np.asarray(obs, np.float32).copy(), np.asarray(act, np.float32).copy()))
                return np.zeros(len(obs))

            ends = evaluate_episodes(env_id, pol, episodes, eval_seed, stochastic=stochastic, reward_fn=record)
            _save_trajectories(traj_dir / f"update_{u:03d}_{name}.npz", seen, ends)
            rec[name] = [float(x) for x in ends["returns"]]
            rec[name + "_lengths"] = [int(x) for x in ends["lengths"]]
        rec["sigma"] = [round(float(x), 4) for x in pol.actor_state["log_std"].exp()]
        ev[str(u)] = rec
        write_json(ev, path)
        bar.update(1)
    bar.close()
    return ev


def _study_match(env_id: str, seed: int, window: Sequence[int], ev: dict[str, Any]) -> bool | None:
    """Do the window's mean-action returns equal the committed study's, bit for bit (None: no file)?"""
    f = Path("book") / "data" / "mujoco_scores" / "paper" / f"{env_id}_seed{seed}.json"
    if not f.exists():
        return None
    study = json.loads(f.read_text())["learner"]["returns"]
    return all(study[i] == ev[str(u)]["mean"] for i, u in enumerate(window))


def run_learner_log(
    env_id: str,
    seed: int,
    extend: float = 1.5,
    episodes: int = 10,
    eval_seed: int = 1_000_000,
    run_dir: str | Path | None = None,
    out: str | Path = DEFAULT_OUT,
    progress: bool = True,
    command: str = "",
) -> Path:
    """Train, keep and evaluate every update of an extended learner; return the results file."""
    if env_id not in DEFAULT_WINDOWS:
        raise ValueError(f"env must be one of {', '.join(DEFAULT_WINDOWS)}; got {env_id!r}")
    window = DEFAULT_WINDOWS[env_id]
    n_updates = extended_updates(window, extend)
    rdir = Path(run_dir) if run_dir is not None else DEFAULT_RUNS / f"{env_id}_seed{seed}"
    rdir.mkdir(parents=True, exist_ok=True)
    times_path = rdir / "times.json"
    times: dict[str, float] = json.loads(times_path.read_text()) if times_path.exists() else {}
    spent, paper_code = _train(env_id, seed, n_updates, rdir, progress)
    times["learner"] = times.get("learner", 0.0) + spent
    write_json(times, times_path)
    t0 = time.perf_counter()
    ev = _evaluate(env_id, n_updates, rdir, episodes, eval_seed, progress)
    times["eval"] = times.get("eval", 0.0) + time.perf_counter() - t0
    write_json(times, times_path)
    updates = list(range(1, n_updates + 1))
    result = {
        "env_id": env_id,
        "seed": seed,
        "window": list(window),
        "updates": updates,
        "unseen": [u for u in updates if u > max(window)],
        "extend": extend,
        "eval_episodes": episodes,
        "eval_seed": eval_seed,
        "mean_return": [float(np.mean(ev[str(u)]["mean"])) for u in updates],
        "sampled_return": [float(np.mean(ev[str(u)]["sampled"])) for u in updates],
        "returns": {str(u): ev[str(u)] for u in updates},
        # the released code's score queue at the end of each update's rollout (None: not recorded)
        "paper_code": {str(u): paper_code[u] for u in updates} if all(u in paper_code for u in updates) else None,
        "window_matches_study": _study_match(env_id, seed, window, ev),
        "command": command,
        "git_commit": git_commit(),
        "versions": versions(),
        "stage_time_s": {k: round(v, 1) for k, v in times.items()},
    }
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{env_id}_seed{seed}.json"
    write_json(result, path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lfl learner-logs", description=__doc__.split("\n\n")[0])
    p.add_argument("--env", required=True, choices=sorted(DEFAULT_WINDOWS))
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--extend", type=float, default=1.5, help="train to ceil(EXTEND * last observed update) (1.5)")
    p.add_argument("--episodes", type=int, default=10, help="evaluation episodes per protocol (10)")
    p.add_argument("--run-dir", default=None, help=f"checkpoints (default {DEFAULT_RUNS}/ENV_seedN)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"results folder ({DEFAULT_OUT})")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    cmd = "lfl learner-logs " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    path = run_learner_log(
        a.env, a.seed, a.extend, a.episodes, run_dir=a.run_dir, out=a.out, progress=not a.no_progress, command=cmd
    )
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
