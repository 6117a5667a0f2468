"""Does the minibatch recovery keep chapter 6's estimator quality? Full batch against minibatches, same data.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_minibatch_quality.py \\
        [--runs runs/learner_logs] [--env Hopper-v5] [--log-seed 100] [--minibatch 512] [--seeds 0 1] \\
        [--out book/data/bench_minibatch_quality.json]

The study's rollouts hold 2,048 transitions per policy, below ``DeepLfLConfig.minibatch``
(4096), so chapter 6 recovers with full-batch Adam steps. Here the same observed window of one
learner log (:data:`lfl_lib.experiments.study.DEFAULT_WINDOWS`) is recovered twice per seed:
with the default (full batch) and with ``minibatch`` set below the rollouts' size, which turns
on the minibatch path that logs of any size take (every Adam step of the four stages on
``minibatch`` transitions per policy). Two estimators: ``paper`` (the defaults) and chapter 6's
chosen one (``fix`` with the KL weight fitted and bootstrapped terminations). Per recovery:

- ``transition_corr``: Pearson correlation of :math:`r_\\phi(s, a)` with the true reward on
  held-out transitions (the rollouts of updates outside the window); the true reward of each
  transition is recomputed by setting the MuJoCo state from the observation and stepping the
  action, and only transitions whose replayed next observation matches the stored one
  (max abs difference below 1e-6) are kept;
- ``episode_corr_mean``, ``episode_corr_sampled``: Pearson correlation of learned and true
  return per stored evaluation episode over all of the log's checkpoints (the reward benchmark's
  ``heldout_corr``), mean-action and sampled episodes;
- ``mu_rmse_last_observed``, ``mu_rmse_final``: root mean square difference between
  :math:`\\mu_\\phi(s)` and the mean action of the last observed policy, and of the learner's
  final policy, on the held-out states;
- ``cpu_s``: the recovery's CPU time (one thread).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _machine import machine


def _true_rewards(env_id: str, obs: np.ndarray, act: np.ndarray, nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The true reward of each transition by replaying it in MuJoCo; and where the replay matches the log."""
    import gymnasium as gym

    env = gym.make(env_id)
    env.reset(seed=0)
    u: Any = env.unwrapped
    nq = u.model.nq
    r = np.zeros(len(obs))
    ok = np.zeros(len(obs), bool)
    for i, (s, a, s2) in enumerate(zip(obs, act, nxt)):
        u.set_state(np.r_[0.0, s[: nq - 1]], s[nq - 1 :])  # the x position is not observed; the reward does not read it
        o, r[i], *_ = u.step(a)
        ok[i] = np.abs(o - s2).max() < 1e-6
    env.close()
    return r, ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, default=Path("runs/learner_logs"))
    p.add_argument("--env", default="Hopper-v5")
    p.add_argument("--log-seed", type=int, default=100)
    p.add_argument("--minibatch", type=int, default=512)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--heldout-updates", type=int, nargs="+", default=[5, 35, 40, 45])
    p.add_argument("--out", type=Path, default=Path("book/data/bench_minibatch_quality.json"))
    args = p.parse_args()

    import torch

    import lfl_lib  # noqa: F401  (pins the BLAS code path before torch runs)
    from lfl_lib._io import git_commit, versions, write_json
    from lfl_lib.deep_lfl import DeepLfLConfig, recover_reward
    from lfl_lib.experiments.learner_logs import extended_updates, load_checkpoint, load_trajectories
    from lfl_lib.experiments.reward_bench import episode_returns, pearson
    from lfl_lib.experiments.study import DEFAULT_WINDOWS, config_from_options

    torch.set_num_threads(1)
    commit = git_commit()  # the code that runs (taken before the recoveries, not when the file is written)
    run_dir = args.runs / f"{args.env}_seed{args.log_seed}"
    window = list(DEFAULT_WINDOWS[args.env])
    rollouts = [load_checkpoint(run_dir, u)[0] for u in window]
    size = min(len(r) for r in rollouts)
    if args.minibatch >= size:
        raise ValueError(f"--minibatch must be below the rollouts' size {size} to turn the minibatch path on")
    held = [load_checkpoint(run_dir, u)[0] for u in args.heldout_updates]
    hs = np.concatenate([r.observations for r in held])
    ha = np.concatenate([r.actions for r in held])
    hn = np.concatenate([r.next_observations for r in held])
    true_r, ok = _true_rewards(args.env, hs, ha, hn)
    n_updates = extended_updates(window, 1.5)
    last_pol = load_checkpoint(run_dir, window[-1])[1]
    final_pol = load_checkpoint(run_dir, n_updates)[1]
    mu_last, mu_final = last_pol.mean_action(hs), final_pol.mean_action(hs)
    evals = {
        prot: [load_trajectories(run_dir, u, prot) for u in range(1, n_updates + 1)] for prot in ("mean", "sampled")
    }

    chapter6 = config_from_options(
        args.env, args.log_seed, "paper", "fix", [("kl-weight", "fit"), ("terminal", "bootstrap")]
    ).lfl
    estimators = {"paper": DeepLfLConfig(), "fix_kl-fit_terminal-bootstrap": chapter6}
    rows = []
    for name, cfg in estimators.items():
        for seed in args.seeds:
            for path, c in (
                ("full batch", cfg),
                (f"minibatch {args.minibatch}", dataclasses.replace(cfg, minibatch=args.minibatch)),
            ):
                c0 = time.process_time()
                reward, info = recover_reward(rollouts, c, seed=seed)
                cpu = time.process_time() - c0
                r_hat = reward.reward_fn(hs, ha)
                with torch.no_grad():
                    mu = reward.policy.mean(reward.norm(torch.as_tensor(hs, dtype=torch.float32))).double().numpy()  # type: ignore[operator]
                ep = {}
                for prot, trajs in evals.items():
                    L = np.concatenate([episode_returns(reward.reward_fn, t) for t in trajs])
                    T = np.concatenate([np.asarray(t["returns"], np.float64) for t in trajs])
                    ep[prot] = pearson(L, T)
                row = {
                    "estimator": name,
                    "path": path,
                    "seed": seed,
                    "cpu_s": round(cpu, 1),
                    "transition_corr": round(pearson(r_hat[ok], true_r[ok]), 4),
                    "episode_corr_mean": round(ep["mean"], 4),
                    "episode_corr_sampled": round(ep["sampled"], 4),
                    "mu_rmse_last_observed": round(float(np.sqrt(np.mean((mu - mu_last) ** 2))), 4),
                    "mu_rmse_final": round(float(np.sqrt(np.mean((mu - mu_final) ** 2))), 4),
                    "losses": {k: float(v) for k, v in info.items()},
                }
                rows.append(row)
                print(" ".join(f"{k}={v}" for k, v in row.items() if k != "losses"), flush=True)
    result = {
        "command": "python " + " ".join(sys.argv),
        "env_id": args.env,
        "log_seed": args.log_seed,
        "window": window,
        "transitions_per_policy": size,
        "minibatch": args.minibatch,
        "heldout_updates": args.heldout_updates,
        "heldout_transitions": int(len(hs)),
        "heldout_transitions_replayed_exactly": int(ok.sum()),
        "estimators": {k: dataclasses.asdict(v) for k, v in estimators.items()},
        "threads": 1,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "git_commit": commit,
        "versions": versions(),
        "rows": rows,
    }
    write_json(result, args.out, sort_keys=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
