"""Bitwise fingerprint of lfl_lib's PPO: run a few seeded updates and hash everything.

    python benchmarks/ppo_fingerprint.py --out FILE [--paper]
    python benchmarks/ppo_fingerprint.py --compare A.json B.json

A change to the rollout code that is meant to be an optimisation only must leave every
learner bitwise identical: same random draws, same float operations in the same order.
This script runs short seeded PPO trainings and records a SHA-256 of every quantity that
a learner produces (network parameters, optimizer state, random generator state, the
observed rollout of environment 0 and its policy snapshot, normalization statistics,
episode returns, the losses of each update); ``--compare`` reports which differ.

Cases: HalfCheetah (no episode ends), Hopper (terminations), Reacher (time-limit
truncations every 50 steps), Hopper with a reward function in place of the
environment's (the observer's path), and a checkpoint round trip in the middle of a
run; with ``--paper``, one update at the paper's settings (32 x 2048) on HalfCheetah.
Hashes are of one machine's floats: compare files written on the same machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from typing import Any

import numpy as np
import torch

from lfl_lib.ppo import PPO, PPOConfig, Rollout, PolicySnapshot, _env_state

SMALL = PPOConfig(n_envs=4, n_steps=256, n_epochs=2, n_minibatches=4, anneal_updates=10)


def _h(x: Any) -> str:
    """SHA-256 of nested arrays/tensors/dicts/lists/scalars, exact bytes and dtypes."""
    m = hashlib.sha256()

    def feed(v: Any) -> None:
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu().numpy()
        if isinstance(v, np.ndarray):
            m.update(f"{v.dtype}{v.shape}".encode())
            m.update(np.ascontiguousarray(v).tobytes())
        elif isinstance(v, dict):
            for k in sorted(v, key=str):
                m.update(str(k).encode())
                feed(v[k])
        elif isinstance(v, (list, tuple)):
            m.update(f"[{len(v)}".encode())
            for e in v:
                feed(e)
        elif isinstance(v, bytes):
            m.update(v)
        else:
            m.update(repr(v).encode())

    feed(x)
    return m.hexdigest()[:16]


def _reward_fn(obs: np.ndarray, act: np.ndarray) -> np.ndarray:
    return np.tanh(obs[:, 0]) - 0.1 * (act**2).sum(-1)


def run_case(
    env_id: str, cfg: PPOConfig, updates: int, seed: int = 0, reward_fn: Any = None, resume_at: int | None = None
) -> dict[str, str]:
    out: dict[str, str] = {}
    seen: list[Any] = []

    def hook(update: int, rollout: Rollout, policy: PolicySnapshot) -> None:
        seen.append((update, rollout.to_arrays(), policy.to_dict()))

    ppo = PPO(env_id, cfg, seed=seed, reward_fn=reward_fn, hook=hook)
    stats = []
    for u in range(updates):
        if resume_at is not None and u == resume_at:
            state = ppo.state_dict()
            ppo.close()
            ppo = PPO(env_id, cfg, seed=seed, reward_fn=reward_fn, hook=hook)
            ppo.load_state_dict(state)
        s = ppo.train_update()
        stats.append({k: v for k, v in s.items() if not k.endswith("_s")})
    out["stats"] = _h(stats)
    out["observed"] = _h(seen)
    out["actor"] = _h(ppo.actor.state_dict())
    out["critic"] = _h(ppo.critic.state_dict())
    out["opt"] = _h(ppo.opt.state_dict()["state"])
    out["gen"] = _h(ppo.gen.get_state())
    out["obs"] = _h(ppo._obs)
    st = _env_state(ppo.envs)
    st.pop("subs")  # pickled MjData: compared through env_obs below
    out["env_state"] = _h(st)
    out["episode_returns"] = _h(ppo.tap.episode_returns)
    out["n_episodes"] = str(len(ppo.tap.episode_returns))
    ppo.close()
    return out


def fingerprint(paper: bool) -> dict[str, Any]:
    torch.set_num_threads(1)
    cases = {
        "halfcheetah": lambda: run_case("HalfCheetah-v5", SMALL, 3),
        "hopper_terminations": lambda: run_case("Hopper-v5", SMALL, 3, seed=1),
        "reacher_truncations": lambda: run_case("Reacher-v5", SMALL, 3, seed=2),
        "hopper_reward_fn": lambda: run_case("Hopper-v5", SMALL, 3, seed=3, reward_fn=_reward_fn),
        "reacher_resume": lambda: run_case("Reacher-v5", SMALL, 3, seed=4, resume_at=2),
    }
    if paper:
        cases["halfcheetah_paper"] = lambda: run_case("HalfCheetah-v5", PPOConfig(), 1)
    res = {}
    for name, fn in cases.items():
        res[name] = fn()
        print(name, res[name]["actor"], res[name]["observed"], "episodes", res[name]["n_episodes"], flush=True)
    return res


def compare(a: dict[str, Any], b: dict[str, Any]) -> int:
    bad = 0
    for case in sorted(set(a) | set(b)):
        if case not in a or case not in b:
            print(f"{case}: only in one file")
            continue
        diff = [k for k in sorted(set(a[case]) | set(b[case])) if a[case].get(k) != b[case].get(k)]
        bad += bool(diff)
        print(f"{case}: {'identical' if not diff else 'DIFFERS in ' + ', '.join(diff)}")
    return 1 if bad else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out")
    p.add_argument("--paper", action="store_true", help="also one update at the paper's settings")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"))
    args = p.parse_args()
    if args.compare:
        a, b = (json.load(open(f)) for f in args.compare)
        return compare(a, b)
    res = fingerprint(args.paper)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
