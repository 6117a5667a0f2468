"""Throughput of lfl_lib's PPO at the paper's settings, against raw stepping and SB3.

    python benchmarks/bench_ppo.py [--env HalfCheetah-v5] [--rounds 3] [--out book/data/bench/ppo_bench.json]

Measures, with one torch thread:
  raw      steps/s of gymnasium's SyncVectorEnv (32 envs) with random actions, no policy;
  rollout  steps/s of our rollout collection (policy + wrappers + bookkeeping), and its
           ratio to raw (target: >= 0.8);
  ours     steps/s of whole PPO updates (rollout + 10 epochs x 32 minibatches);
  sb3      the same for Stable-Baselines3's PPO with the same settings, when installed,
           and the ratio ours / sb3 (target: >= 1.2).

The machine may be shared, so the measurements are interleaved: each round measures raw
stepping (32 x 2048 steps), one update of ours and one update of SB3, one after the other,
and records the wall time, the process's CPU time and the load average around each. The
headline ratios use the best round of each measurement (the least disturbed, as timeit
does); the per-round ratios are kept beside them. Everything goes to a JSON file (written
atomically) with its provenance, which the book reads.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from lfl_lib._io import write_json
from lfl_lib.ppo import PPO, PPOConfig

REPO = Path(__file__).resolve().parent.parent
TARGETS = {"rollout_over_raw": 0.8, "ours_over_sb3": 1.2}


def _timed(fn: Callable[[], Any]) -> dict[str, float]:
    """Run ``fn`` and return its wall and CPU seconds and the 1-minute load average before and after."""
    load0 = os.getloadavg()[0]
    w, c = time.perf_counter(), time.process_time()
    extra = fn()
    out = {
        "wall_s": time.perf_counter() - w,
        "cpu_s": time.process_time() - c,
        "load_before": round(load0, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }
    if isinstance(extra, dict):
        out.update(extra)
    return out


class Raw:
    """Random actions through a bare SyncVectorEnv (no wrapper, no policy)."""

    def __init__(self, env_id: str, n_envs: int, n_steps: int) -> None:
        self.envs = SyncVectorEnv(
            [functools.partial(gym.make, env_id) for _ in range(n_envs)], autoreset_mode=AutoresetMode.SAME_STEP
        )
        self.envs.reset(seed=0)
        rng = np.random.default_rng(0)
        self.acts = rng.uniform(-1, 1, (n_steps, n_envs, self.envs.single_action_space.shape[0]))

    def run(self) -> None:
        for a in self.acts:
            self.envs.step(a)


class Ours:
    """lfl_lib's PPO: one update per call; reports the rollout's share."""

    def __init__(self, env_id: str, cfg: PPOConfig) -> None:
        self.ppo = PPO(env_id, cfg, seed=0)
        collect = self.ppo._collect_rollout
        self.rollout_cpu = 0.0

        def timed_collect() -> Any:  # the rollout's CPU time (train_update reports wall times)
            c = time.process_time()
            out = collect()
            self.rollout_cpu = time.process_time() - c
            return out

        self.ppo._collect_rollout = timed_collect  # type: ignore[method-assign]

    def run(self) -> dict[str, float]:
        st = self.ppo.train_update()
        return {"rollout_wall_s": st["rollout_s"], "update_wall_s": st["update_s"], "rollout_cpu_s": self.rollout_cpu}


class Sb3:
    """Stable-Baselines3's PPO with the same settings: one update (n_envs x n_steps steps) per call."""

    def __init__(self, env_id: str, cfg: PPOConfig) -> None:
        from stable_baselines3 import PPO as SB3PPO
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import VecNormalize

        self.n = cfg.n_envs * cfg.n_steps
        self.venv = VecNormalize(make_vec_env(env_id, n_envs=cfg.n_envs, seed=0), gamma=cfg.gamma)
        self.model = SB3PPO(
            "MlpPolicy",
            self.venv,
            n_steps=cfg.n_steps,
            batch_size=self.n // cfg.n_minibatches,
            n_epochs=cfg.n_epochs,
            learning_rate=lambda f: cfg.lr * f,
            clip_range=lambda f: cfg.clip_coef * f,
            gamma=cfg.gamma,
            gae_lambda=cfg.gae_lambda,
            ent_coef=cfg.ent_coef,
            vf_coef=cfg.vf_coef,
            max_grad_norm=cfg.max_grad_norm,
            seed=0,
            device="cpu",
            verbose=0,
            policy_kwargs=dict(
                net_arch=dict(pi=list(cfg.hidden), vf=list(cfg.hidden)),
                activation_fn=torch.nn.Tanh,
                optimizer_kwargs=dict(eps=cfg.adam_eps),
            ),
        )
        self.first = True

    def run(self) -> None:
        self.model.learn(total_timesteps=self.n, reset_num_timesteps=self.first)
        self.first = False


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> dict[str, str]:
    import mujoco

    v = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "gymnasium": gym.__version__,
        "mujoco": mujoco.__version__,
    }
    try:
        import stable_baselines3

        v["stable_baselines3"] = stable_baselines3.__version__
    except ImportError:
        pass
    return v


def _summary(rounds: list[dict[str, Any]], steps: int) -> dict[str, Any]:
    """Steps/s of the best round of each measurement, wall and CPU, and the ratios."""
    out: dict[str, Any] = {}
    for clock in ("wall", "cpu"):
        best: dict[str, float] = {}
        raw = [r["raw"][f"{clock}_s"] for r in rounds]
        best["raw"] = steps / min(raw)
        best["rollout"] = steps / min(r["ours"][f"rollout_{clock}_s"] for r in rounds)
        best["ours"] = steps / min(r["ours"]["update_wall_s" if clock == "wall" else "cpu_s"] for r in rounds)
        if all("sb3" in r for r in rounds):
            best["sb3"] = steps / min(r["sb3"][f"{clock}_s"] for r in rounds)
        ratios = {"rollout_over_raw": best["rollout"] / best["raw"]}
        if "sb3" in best:
            ratios["ours_over_sb3"] = best["ours"] / best["sb3"]
        out[clock] = {
            "steps_per_s": {k: round(v, 1) for k, v in best.items()},
            "ratios": {k: round(v, 3) for k, v in ratios.items()},
        }
    per_round = []
    for r in rounds:
        pr = {"rollout_over_raw": round(r["raw"]["wall_s"] / r["ours"]["rollout_wall_s"], 3)}
        if "sb3" in r:
            pr["ours_over_sb3"] = round(r["sb3"]["wall_s"] / r["ours"]["update_wall_s"], 3)
        per_round.append(pr)
    out["per_round_wall_ratios"] = per_round
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (one update of each PPO per round)")
    p.add_argument("--no-sb3", action="store_true", help="skip Stable-Baselines3")
    p.add_argument(
        "--out",
        default=str(REPO / "book" / "data" / "bench" / "ppo_bench.json"),
        help="JSON file to write ('-' for none)",
    )
    args = p.parse_args(argv)
    if args.rounds < 1:
        print("error: rounds must be >= 1", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    cfg = PPOConfig()
    steps = cfg.n_envs * cfg.n_steps
    started, t_start = datetime.datetime.now(datetime.timezone.utc), time.perf_counter()
    print(
        f"bench_ppo  {started:%Y-%m-%d %H:%M} UTC  {_cpu_model()}  torch {torch.__version__}  "
        f"gymnasium {gym.__version__}  1 torch thread  load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"env {args.env}, {cfg.n_envs} envs x {cfg.n_steps} steps, {cfg.n_epochs} epochs x "
        f"{cfg.n_minibatches} minibatches; {args.rounds} interleaved rounds of one update each"
    )
    raw, ours = Raw(args.env, cfg.n_envs, cfg.n_steps), Ours(args.env, cfg)
    sb3: Sb3 | None = None
    if not args.no_sb3:
        try:
            sb3 = Sb3(args.env, cfg)
        except ImportError:
            print("sb3: not installed (pip install -c constraints.txt '.[bench]')")
    rounds = []
    for i in range(args.rounds):
        r = {"raw": _timed(raw.run), "ours": _timed(ours.run)}
        if sb3 is not None:
            r["sb3"] = _timed(sb3.run)
        rounds.append(r)
        line = (
            f"round {i + 1}: raw {steps / r['raw']['wall_s']:6.0f}  rollout {steps / r['ours']['rollout_wall_s']:6.0f}"
            f"  ours {steps / r['ours']['update_wall_s']:6.0f}"
        )
        if sb3 is not None:
            line += f"  sb3 {steps / r['sb3']['wall_s']:6.0f}"
        print(line + f" steps/s (wall)  load {r['raw']['load_before']:.2f}")
    summ = _summary(rounds, steps)
    w = summ["wall"]
    print(f"best of {args.rounds}, wall clock:")
    print(f"raw      {w['steps_per_s']['raw']:8.0f} steps/s  (SyncVectorEnv, random actions)")
    print(
        f"rollout  {w['steps_per_s']['rollout']:8.0f} steps/s  ratio to raw {w['ratios']['rollout_over_raw']:.2f}"
        f"  (target >= {TARGETS['rollout_over_raw']:.2f})"
    )
    print(f"ours     {w['steps_per_s']['ours']:8.0f} steps/s  (whole PPO updates)")
    if "sb3" in w["steps_per_s"]:
        print(
            f"sb3      {w['steps_per_s']['sb3']:8.0f} steps/s  ratio ours/sb3 {w['ratios']['ours_over_sb3']:.2f}"
            f"  (target >= {TARGETS['ours_over_sb3']:.2f})"
        )
    c = summ["cpu"]["ratios"]
    print(
        f"CPU time instead of wall clock: rollout/raw {c['rollout_over_raw']:.2f}"
        + (f", ours/sb3 {c['ours_over_sb3']:.2f}" if "ours_over_sb3" in c else "")
    )
    loads = [x[k] for r in rounds for x in r.values() for k in ("load_before", "load_after")]
    res = {
        "benchmark": "PPO throughput at the paper's settings: raw stepping, our rollout, our PPO, SB3's PPO",
        "env_id": args.env,
        "config": cfg.to_dict(),
        "steps_per_update": steps,
        "rounds": rounds,
        "summary": summ,
        "targets": TARGETS,
        "met": {k: summ["wall"]["ratios"].get(k, float("-inf")) >= v for k, v in TARGETS.items()},
        "load_average": {"min": min(loads), "max": max(loads), "mean": round(float(np.mean(loads)), 2)},
        "provenance": {
            "command": "python benchmarks/bench_ppo.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "date_utc": started.strftime("%Y-%m-%d %H:%M"),
            "wall_time_s": round(time.perf_counter() - t_start, 1),
            "git_commit": _git("rev-parse", "HEAD"),
            "lfl_lib_modified_since_commit": bool(_git("status", "--porcelain", "lfl_lib", "benchmarks")),
            "cpu": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "versions": _versions(),
        },
    }
    ours.ppo.close()
    if args.out != "-":
        write_json(res, args.out, mkdir=True)
        print(f"written to {Path(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
