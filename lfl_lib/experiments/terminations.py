"""Where episodes end: the absorbing-state diagnosis of chapter 6 (Section 6.2 of the paper).

The paper explains LfL's failure on Hopper by absorbing states: the robot falls, the
episode *terminates*, and a recovered reward that is negative on average makes ending the
episode early attractive. This module measures the two quantities that explanation is
about, from the run folder of a finished :mod:`lfl_lib.experiments.study` run:

- how episodes end under the first and the last observed learner policy and under the final observer
  (mean length, share of episodes that terminate rather than reach the time limit), with
  the evaluation protocol of the study (deterministic mean action, reset seeds
  ``eval_seed + i``), and again with actions sampled from each policy's Gaussian, as PPO
  acts while it trains (the ``stochastic`` entry);
- the recovered reward :math:`r_\\phi(s, a)` on the transitions of the last observed
  rollout: its mean, and the discounted sum :math:`r/(1-\\gamma)` that an agent would
  forgo by terminating, if the reward stayed at that mean;
- for an observer started from a behaviour clone, what its running observation statistics
  do to that start (``start_drift``): the clone's weights read through the observer's final
  statistics, scored and compared with the clone by KL; and the clone with sampled actions;
- along every evaluation, with mean and with sampled actions, the recovered reward per step
  (``recovered_reward_per_step``; with sampled actions, what the observer's PPO is paid), set
  beside the true return, so that a reader sees whether PPO climbed :math:`r_\\phi` while the
  true return fell, and (mean actions) whether its mean policy did.

``lfl terminations RUN_DIR [RUN_DIR ...] --out FILE`` writes one JSON
file (atomically) with one record per run folder, the command, the git commit and the
wall time. With ``--merge`` the records of an existing ``FILE`` are kept, except those of
the run folders given again, which are replaced; the earlier commands are kept under
``earlier`` (each with its git commit, wall time and run folders), so that a file can grow
as runs finish, without the run folders of earlier runs.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from numpy.typing import NDArray

from ..deep_lfl import RewardModel
from ..observer_ppo import ObserverPPO
from ..ppo import PolicySnapshot, Rollout, evaluate_episodes
from .._io import git_commit, read_json, write_json
from .._safe_io import load_checkpoint
from ..deep_lfl import ESTIMATORS
from .study import OBSERVER_INITS, StudyConfig, make_config

__all__ = ["termination_report", "main"]


def _summary(ends: dict[str, Any]) -> dict[str, Any]:
    out = {
        "mean_return": float(np.mean(ends["returns"])),
        "mean_length": float(np.mean(ends["lengths"])),
        "share_terminated": float(np.mean(ends["terminated"])),
        **ends,
    }
    if "reward_fn_returns" in ends:  # r_phi per step over all the episodes' steps
        out["recovered_reward_per_step"] = float(np.sum(ends["reward_fn_returns"]) / np.sum(ends["lengths"]))
    return out


def _reward_stats(reward: RewardModel, rollout: Rollout, gamma: float) -> dict[str, float | int | None]:
    r: NDArray[np.float64] = reward.reward_fn(rollout.observations, rollout.actions)
    term = rollout.terminations.astype(bool)
    return {
        "mean": float(r.mean()),
        "share_negative": float(np.mean(r < 0)),
        "mean_at_terminations": float(r[term].mean()) if term.any() else None,
        "n_terminations": int(term.sum()),
        "discounted_forever_at_mean": float(r.mean() / (1.0 - gamma)),
    }


def _stored_config(rdir: Path) -> StudyConfig:
    """The StudyConfig of a run folder: the candidate of the study that its ``config.json`` holds."""
    if not (rdir / "config.json").exists():
        raise ValueError(f"run_dir {rdir} is not a run folder (no config.json)")
    stored = read_json(rdir / "config.json", "run configuration")
    configs = []
    anchor = stored.get("observer_anchor", "none")
    for name in ESTIMATORS:
        for init in OBSERVER_INITS:
            for kl in ((0.0,) if name == "released-code" else (0.0, None)):  # the study's candidates
                if anchor != "none" and kl == 0.0:
                    continue  # an anchor takes its weight from the KL model
                for terminal in ("absorbing", "bootstrap"):
                    configs.append(make_config(stored["env_id"], stored["seed"], stored["preset"], stored["window"],
                                               stored["learner_updates"], name, init, kl, terminal,
                                               int(stored.get("critic_warmup", 0)), anchor,
                                               stored.get("observer_obs_stats", "running"),
                                               stored.get("observer_soft", "none")))
    matching = [c for c in configs if c.to_dict() == stored]
    if not matching:
        raise ValueError(f"run_dir {rdir} holds a configuration that make_config does not produce")
    return matching[0]


def _finished_run(rdir: Path, cfg: StudyConfig) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The checkpoints of a finished run: last and first observed updates, the recovery, the observer."""
    needed = [rdir / "observed" / f"update_{cfg.window[-1]:03d}.pt", rdir / "recovery.pt", rdir / "observer.pt",
              rdir / "observed" / f"update_{cfg.window[0]:03d}.pt"]
    missing = [str(p.relative_to(rdir)) for p in needed if not p.exists()]
    if missing:
        raise ValueError(f"run_dir {rdir} holds no finished run (missing {', '.join(missing)})")
    last = load_checkpoint(needed[0], ["update", "rollout", "policy"])
    lfl = load_checkpoint(needed[1], ["lfl"])["lfl"]
    if "reward" not in lfl:
        raise ValueError(f"run_dir {rdir}: the recovery has not finished (no reward in recovery.pt)")
    saved = load_checkpoint(needed[2], ["ppo", "returns"])
    if saved["ppo"]["update"] != cfg.observer_updates:
        raise ValueError(f"run_dir {rdir}: the observer has not finished ({saved['ppo']['update']} updates)")
    first = load_checkpoint(needed[3], ["update", "rollout", "policy"])
    return last, lfl, saved, first


def termination_report(run_dir: str | Path) -> dict[str, Any]:
    """Episode ends of the first and last observed learner policies and of the final observer of one run.

    Parameters
    ----------
    run_dir : path
        The run folder of a finished study run (its ``config.json``, ``observed/``,
        ``recovery.pt`` and ``observer.pt``).

    Raises
    ------
    ValueError
        If the folder is not a finished run folder or a checkpoint is corrupt.
    """
    rdir = Path(run_dir)
    cfg = _stored_config(rdir)
    last, lfl, saved, first = _finished_run(rdir, cfg)

    rollout = Rollout(**last["rollout"])
    start = _start_drift(cfg, rollout, lfl, saved) if cfg.observer_init == "clone" else None
    obs_dim, act_dim = rollout.observations.shape[1], rollout.actions.shape[1]
    reward = RewardModel(obs_dim, act_dim, np.zeros(obs_dim), np.ones(obs_dim), cfg.lfl.hidden)
    reward.load_state_dict(lfl["reward"])
    observer = ObserverPPO(cfg.env_id, cfg.observer_ppo, seed=cfg.seed + cfg.observer_seed_offset)
    try:
        observer.load_state_dict(saved["ppo"])
        observer_policy = observer.snapshot()
    finally:
        observer.close()
    learner_policy = PolicySnapshot.from_dict(last["policy"])
    first_policy = PolicySnapshot.from_dict(first["policy"])
    policies = {"learner_first": first_policy, "learner_last": learner_policy, "observer_final": observer_policy}
    ends = {who: _summary(evaluate_episodes(cfg.env_id, pol, cfg.eval_episodes, cfg.eval_seed,
                                            reward_fn=reward.reward_fn))
            for who, pol in policies.items()}
    sampled = {who: _summary(evaluate_episodes(cfg.env_id, pol, cfg.eval_episodes, cfg.eval_seed, stochastic=True,
                                               reward_fn=reward.reward_fn))
               for who, pol in policies.items()}
    return {
        "env_id": cfg.env_id,
        "seed": cfg.seed,
        "estimator": cfg.estimator,
        "kl_weight": cfg.lfl.kl_weight,
        "terminal": cfg.lfl.terminal,
        "observer_init": cfg.observer_init,
        "critic_warmup": cfg.critic_warmup,
        "observer_anchor": cfg.observer_anchor,
        "observer_obs_stats": cfg.observer_obs_stats,
        **({} if cfg.observer_soft == "none" else {"observer_soft": cfg.observer_soft}),
        "run_dir": _relative(rdir),
        "observed_updates": [cfg.window[0], cfg.window[-1]],
        **ends,
        "stochastic": sampled,
        "recovered_reward_on_last_rollout": _reward_stats(reward, rollout, cfg.lfl.gamma),
        **({} if start is None else {"start_drift": start}),
    }


def _kl(p: PolicySnapshot, q: PolicySnapshot, states: NDArray[np.float64]) -> float:
    """Mean over ``states`` of KL(p(.|s) || q(.|s)), each policy reading raw states its own way."""
    with torch.no_grad():
        dp, dq = p.actor().dist(p.normalize(states)), q.actor().dist(q.normalize(states))
        return float(torch.distributions.kl_divergence(dp, dq).sum(-1).mean())


def _start_drift(cfg: Any, rollout: Rollout, lfl: dict[str, Any], saved: dict[str, Any]) -> dict[str, Any]:
    """What the observer's running observation statistics do to its start (chapter 6).

    Rebuilds the behaviour clone exactly as the run made it (checked: its evaluation equals
    the start's stored one), then reads the clone's *weights* through the observer's final
    observation statistics: the policy the observer would act with had PPO never changed a
    weight. Returns that policy's mean-action episodes (the study's protocol), its KL from
    the clone, and the final observer's KL from the clone, both averaged over the states of
    the last observed rollout.
    """
    from .study import clone_start

    obs_dim, act_dim = rollout.observations.shape[1], rollout.actions.shape[1]
    reward = RewardModel(obs_dim, act_dim, np.zeros(obs_dim), np.ones(obs_dim), cfg.lfl.hidden)
    reward.load_state_dict(lfl["reward"])
    torch.manual_seed(cfg.seed + cfg.observer_seed_offset)
    ppo = ObserverPPO(cfg.env_id, cfg.observer_ppo, seed=cfg.seed + cfg.observer_seed_offset,
                      reward_fn=reward.reward_fn)
    try:
        clone_start(cfg, ppo, rollout)
        clone = ppo.snapshot()
        ppo.load_state_dict(saved["ppo"])
        final = ppo.snapshot()
    finally:
        ppo.close()
    moved = PolicySnapshot(clone.actor_state, final.obs_mean, final.obs_var, clone.hidden)
    again = evaluate_episodes(cfg.env_id, clone, cfg.eval_episodes, cfg.eval_seed, reward_fn=reward.reward_fn)
    return {
        "clone_reproduced": bool(np.array_equal(np.asarray(again["returns"]), np.asarray(saved["returns"][0]))),
        "clone_returns": [float(x) for x in again["returns"]],
        "clone_recovered_reward_per_step": float(np.sum(again["reward_fn_returns"]) / np.sum(again["lengths"])),
        # the clone with sampled actions, and the recovered reward it is paid along those episodes
        "clone_stochastic": _summary(evaluate_episodes(cfg.env_id, clone, cfg.eval_episodes, cfg.eval_seed,
                                                       stochastic=True, reward_fn=reward.reward_fn)),
        "clone_weights_final_stats": _summary(evaluate_episodes(cfg.env_id, moved, cfg.eval_episodes, cfg.eval_seed)),
        "kl_clone_weights_final_stats": _kl(moved, clone, rollout.observations),
        "kl_final_observer": _kl(final, clone, rollout.observations),
    }


PROTOCOL = "deterministic mean action clipped to the action box; episode i reset with eval_seed + i"


def _earlier_records(out: Path, run_dirs: Sequence[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The records of an existing ``--out`` file that ``run_dirs`` do not replace, and its commands.

    Raises ``ValueError`` when ``out`` exists but is not a file this module wrote.
    """
    if not out.exists():
        return [], []
    try:
        old = json.loads(out.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"--merge: {out} is not JSON ({exc})") from None
    if not isinstance(old, dict) or not isinstance(old.get("runs"), list) or old.get("protocol") != PROTOCOL:
        raise ValueError(f"--merge: {out} is not a file of lfl terminations (no runs of its protocol)")
    again = {_relative(Path(d)) for d in run_dirs}
    kept = [r for r in old["runs"] if r.get("run_dir") not in again]
    header = {k: old[k] for k in ("command", "git_commit", "wall_time_s") if k in old}
    header["run_dirs"] = [r.get("run_dir") for r in old["runs"]]
    return kept, [*old.get("earlier", []), header]


def _relative(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p.resolve())


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status (2 on bad input)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="lfl terminations", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dirs", nargs="+", help="run folders of finished study runs")
    p.add_argument("--out", required=True, help="JSON file to write (atomically)")
    p.add_argument("--merge", action="store_true",
                   help="keep the records of an existing --out file (those of the run folders given are replaced)")
    args = p.parse_args(args_list)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    out = Path(args.out)
    try:
        kept, earlier = _earlier_records(out, args.run_dirs) if args.merge else ([], [])
        runs = [termination_report(d) for d in args.run_dirs]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "command": "lfl terminations " + " ".join(shlex.quote(a) for a in args_list),
        "git_commit": git_commit(),
        "wall_time_s": round(time.perf_counter() - t0, 1),
        "protocol": PROTOCOL,
        "runs": kept + runs,
    }
    if earlier:
        data["earlier"] = earlier
    write_json(data, out)
    for r in runs:
        lo, la = r["observer_final"], r["learner_last"]
        print(f"{r['env_id']} seed {r['seed']} ({r['estimator']}, terminal {r['terminal']}): learner length {la['mean_length']:.0f} "
              f"({la['share_terminated']:.0%} terminated), observer length {lo['mean_length']:.0f} "
              f"({lo['share_terminated']:.0%} terminated), mean r_phi {r['recovered_reward_on_last_rollout']['mean']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
