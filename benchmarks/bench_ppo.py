"""Throughput of lfl_lib's PPO at the paper's settings, against raw stepping and SB3.

    python benchmarks/bench_ppo.py [--env HalfCheetah-v5] [--updates 2]

Prints, for one torch thread:
  raw      steps/s of gymnasium's SyncVectorEnv (32 envs) with random actions, no policy;
  rollout  steps/s of our rollout collection (policy + wrappers + bookkeeping), and its
           ratio to raw (target: >= 0.8);
  ours     steps/s of whole PPO updates (rollout + 10 epochs x 32 minibatches);
  sb3      the same for Stable-Baselines3's PPO with the same settings, when installed,
           and the ratio ours / sb3 (target: >= 1).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import platform
import time

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from lfl_lib.ppo import PPO, PPOConfig


def raw_steps_per_s(env_id: str, n_envs: int, n_steps: int) -> float:
    envs = SyncVectorEnv([functools.partial(gym.make, env_id) for _ in range(n_envs)],
                         autoreset_mode=AutoresetMode.SAME_STEP)
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1, 1, (n_steps, n_envs, envs.single_action_space.shape[0]))
    t = time.perf_counter()
    for a in acts:
        envs.step(a)
    dt = time.perf_counter() - t
    envs.close()
    return n_envs * n_steps / dt


def ours(env_id: str, cfg: PPOConfig, updates: int) -> tuple[float, float]:
    ppo = PPO(env_id, cfg, seed=0)
    roll, total = 0.0, 0.0
    for _ in range(updates):
        st = ppo.train_update()
        roll += st["rollout_s"]
        total += st["update_s"]
    ppo.close()
    n = updates * cfg.n_envs * cfg.n_steps
    return n / roll, n / total


def sb3(env_id: str, cfg: PPOConfig, updates: int) -> float | None:
    try:
        from stable_baselines3 import PPO as SB3PPO
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import VecNormalize
    except ImportError:
        return None
    venv = VecNormalize(make_vec_env(env_id, n_envs=cfg.n_envs, seed=0), gamma=cfg.gamma)
    model = SB3PPO(
        "MlpPolicy", venv, n_steps=cfg.n_steps, batch_size=cfg.n_envs * cfg.n_steps // cfg.n_minibatches,
        n_epochs=cfg.n_epochs, learning_rate=lambda f: cfg.lr * f, clip_range=lambda f: cfg.clip_coef * f,
        gamma=cfg.gamma, gae_lambda=cfg.gae_lambda, ent_coef=cfg.ent_coef, vf_coef=cfg.vf_coef,
        max_grad_norm=cfg.max_grad_norm, seed=0, device="cpu", verbose=0,
        policy_kwargs=dict(net_arch=dict(pi=list(cfg.hidden), vf=list(cfg.hidden)), activation_fn=torch.nn.Tanh,
                           optimizer_kwargs=dict(eps=cfg.adam_eps)),
    )
    n = updates * cfg.n_envs * cfg.n_steps
    t = time.perf_counter()
    model.learn(total_timesteps=n)
    dt = time.perf_counter() - t
    venv.close()
    return n / dt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--updates", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = PPOConfig()
    print(f"bench_ppo  {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC  "
          f"{platform.node()}  {platform.processor() or platform.machine()}  torch {torch.__version__}  "
          f"gymnasium {gym.__version__}  1 torch thread")
    print(f"env {args.env}, {cfg.n_envs} envs x {cfg.n_steps} steps, {cfg.n_epochs} epochs x "
          f"{cfg.n_minibatches} minibatches, {args.updates} updates")
    raw = raw_steps_per_s(args.env, cfg.n_envs, 2048)
    print(f"raw      {raw:8.0f} steps/s  (SyncVectorEnv, random actions)")
    roll, full = ours(args.env, cfg, args.updates)
    print(f"rollout  {roll:8.0f} steps/s  ratio to raw {roll / raw:.2f}  (target >= 0.80)")
    print(f"ours     {full:8.0f} steps/s  (whole PPO updates)")
    s = sb3(args.env, cfg, args.updates)
    if s is None:
        print("sb3      not installed (pip install -c constraints.txt '.[bench]')")
    else:
        print(f"sb3      {s:8.0f} steps/s  ratio ours/sb3 {full / s:.2f}  (target >= 1)")


if __name__ == "__main__":
    main()
