"""The reward benchmark: does a learned reward rank its learner's future? (no RL)

For a reward learned from the observed window of a learner log
(:mod:`lfl_lib.experiments.learner_logs`), score the reward's return, summed over the stored
evaluation episodes of every checkpoint (10 per protocol, no new rollouts), against the true
return:

- ``spearman_unseen``: Spearman rho between learned and true mean return over the **unseen**
  checkpoints (after the window); ``spearman_all`` over all checkpoints;
- ``share_above_last``: the share of unseen checkpoints whose learned return is above the last
  observed checkpoint's (``true_share_above_last``: the same with the true return);
- ``heldout_corr``: Pearson correlation of learned and true return per evaluation episode,
  across all checkpoints (the measure of SSRR and D-REX);
- ``diverse_corr``: the same over a set off the learner's path: noise-injected versions of
  three observed policies (with probability epsilon a uniform random action, as D-REX builds
  them) and the stored episodes of other seeds' checkpoints.

Each is computed on the mean-action episodes and on the sampled ones (the verdict is read on
mean actions: with sampled actions a log-density reward ranks later checkpoints higher merely
because their noise narrows).

A reward method reads only the observed window's rollouts (and, for behaviour cloning, nothing
else); the checkpoints after the window are unseen and only scored against.

``lfl reward-bench --rewards trex lfl bc true --envs Reacher-v5 --seeds 0 1`` (or ``python -m lfl_lib.experiments.reward_bench ...``)
writes one small JSON per (reward, env, seed) under ``book/data/reward_bench/`` and skips
those that exist (resumable). ``--grid`` runs the same benchmark on the tabular grid world,
where every return is exact.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence, cast

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray
from tqdm import tqdm

from ..deep_lfl import DeepLfLConfig, RewardModel, fit_gaussian_policies, recover_reward
from .._io import git_commit, versions, write_json, write_npz
from ..data import Rollout
from ..categorical import CategoricalActor
from ..nets import GaussianActor, PolicySnapshot
from .. import _safe_io
from ..trex import TrexConfig, TrexReward, fit_trex, split_episodes
from .learner_logs import extended_updates, load_checkpoint, load_trajectories
from .study import DEFAULT_WINDOWS

__all__ = ["REWARDS", "METRICS", "NOISE_LEVELS", "NOISE_EPISODES", "NOISE_SEED", "OTHER_SEED_UPDATES", "BC_STEPS",
           "spearman", "pearson", "ranking_metrics", "episode_returns", "fit_named_reward", "reward_from_spec",
           "noisy_episodes", "diverse_noise", "other_seed_episodes", "log_complete", "complete_seeds", "bench_run",
           "rescore", "grid_bench", "bench_table", "main"]

Array = NDArray[np.float64]
RewardFn = Callable[[Array, Array], Array]

#: Noise levels (probability of a uniform random action) of the diverse set, as in D-REX.
NOISE_LEVELS: tuple[float, ...] = (0.05, 0.25, 0.5, 1.0)
#: Episodes per (checkpoint, noise level) of the diverse set.
NOISE_EPISODES = 5
#: Seed of the diverse set's episodes (the learner logs' evaluation uses 1_000_000).
NOISE_SEED = 2_000_000
#: How many updates of another seed's log enter the diverse set (evenly spaced).
OTHER_SEED_UPDATES = 5

DEFAULT_OUT = Path("book/data/reward_bench")
DEFAULT_RUNS = Path("runs/learner_logs")
DEFAULT_CACHE = Path("runs/reward_bench")


# ------------------------------------------------------------------ rewards


def _named(name: str) -> tuple[str, dict[str, Any]]:
    """Split a reward name into its method and settings, e.g. ``trex-L10`` -> ("trex", {"snippet": 10})."""
    base, _, opt = name.partition("-")
    if base == "lfl" and opt == "state":
        return "lfl-state", {}
    settings: dict[str, Any] = {}
    if base == "trex" and opt:
        for part in opt.split("-"):
            if part.startswith("L") and part[1:].isdigit():
                settings["snippet"] = int(part[1:])
            elif part == "next":
                settings["next_state"] = True
            elif part.startswith("beta") and part[4:]:
                settings["beta"] = float(part[4:])
            else:
                raise ValueError(f"unknown T-REX setting {part!r} in reward {name!r}")
        return "trex", settings
    if opt:
        raise ValueError(f"unknown reward {name!r}")
    return base, settings


#: The rewards: ``true`` (the ceiling), ``lfl`` (Algorithm 1, default configuration), ``lfl-state``
#: (Algorithm 1 with a state term), ``trex`` (time order; variants ``trex-L10``, ``trex-next``,
#: ``trex-beta0.1``), ``bc`` (ln pi_K, a behaviour clone of the last observed rollout).
REWARDS: tuple[str, ...] = ("true", "lfl", "lfl-state", "trex", "bc")


#: Adam steps of the behaviour clone ln pi_K (those of Algorithm 1's reward initialisation).
BC_STEPS = 3000


def _bc_reward(last: Rollout, steps: int | None = None, lr: float = 1e-3, seed: int = 0) -> RewardModel:
    """:math:`\\ln \\hat\\pi_K(a|s)`: maximum likelihood (no entropy bonus) on the last observed rollout.

    The same fit as Algorithm 1's reward initialisation (stage 3 of :func:`lfl_lib.deep_lfl.recover_reward`):
    a Gaussian clone for continuous actions, a categorical one
    (:class:`~lfl_lib.categorical.CategoricalActor`) for discrete actions (``last.n_actions``).
    """
    s = np.concatenate([last.observations, last.next_observations])
    torch.manual_seed(seed)
    reward = RewardModel(s.shape[1], last.act_dim, s.mean(0), s.std(0), n_actions=last.n_actions)
    S = torch.as_tensor(last.observations, dtype=torch.float32)
    A = torch.as_tensor(last.actions, dtype=torch.float32 if last.n_actions is None else torch.long)
    with torch.no_grad():
        NS = reward.norm(S)
    fit_gaussian_policies([reward.policy], [NS], [A], BC_STEPS if steps is None else steps, lr, 0.0)
    reward.requires_grad_(False)
    return reward


def _model_spec(reward: RewardModel) -> dict[str, Any]:
    policy = reward.policy
    if isinstance(policy, CategoricalActor):  # discrete actions
        layers, act_dim = policy.logits, 1
    else:
        layers, act_dim = policy.mean, int(policy.log_std.numel())
    hidden = [m.out_features for m in layers if isinstance(m, torch.nn.Linear)][:-1]
    spec = {"kind": "reward_model", "obs_dim": int(reward.norm.mean.numel()), "act_dim": act_dim,
            "hidden": hidden, "state_term": reward.state_term,
            "state_dict": {k: v.detach().clone() for k, v in reward.state_dict().items()}}
    if reward.n_actions is not None:
        spec["n_actions"] = reward.n_actions
    return spec


def fit_named_reward(name: str, rollouts: Sequence[Rollout], seed: int = 0
                     ) -> tuple[RewardFn | None, dict[str, Any], dict[str, Any]]:
    """Fit reward ``name`` (see :data:`REWARDS`) on the observed window's rollouts, in time order.

    Continuous or discrete actions (``Rollout.n_actions``): ``bc`` and the prior of ``trex-beta*``
    clone :math:`\\pi_K` as a Gaussian or a categorical policy, ``lfl`` fits Algorithm 1's
    Gaussian or categorical policies; T-REX's network reads states only.

    Returns ``(reward_fn, info, spec)``: ``reward_fn(obs, actions)`` on numpy batches (``None``
    for ``true``: its return is the stored true return), the fit's diagnostics, and a dict of
    plain values and tensors from which :func:`reward_from_spec` rebuilds the reward.
    """
    method, settings = _named(name)
    if method == "true":
        return None, {}, {"kind": "true"}
    if method in ("lfl", "lfl-state"):
        cfg = DeepLfLConfig() if method == "lfl" else DeepLfLConfig(reward_form="state-term")
        reward, info = recover_reward(list(rollouts), cfg, seed=seed)
        return reward.reward_fn, {"config": cfg.to_dict(), **info}, _model_spec(reward)
    if method == "bc":
        bc = _bc_reward(rollouts[-1], seed=seed)
        return bc.reward_fn, {}, _model_spec(bc)
    if method == "trex":
        beta = float(settings.pop("beta", 0.0))
        tcfg = TrexConfig(**settings)
        eps = [split_episodes(r.observations, r.next_observations, cast(Any, r.terminations) | r.truncations) for r in rollouts]
        trex, info = fit_trex(eps, tcfg, seed=seed)
        spec: dict[str, Any] = {"kind": "trex", "obs_dim": trex.obs_dim, "config": tcfg.to_dict(), "beta": beta,
                                "state_dict": {k: v.detach().clone() for k, v in trex.state_dict().items()}, "prior": None}
        if beta > 0:
            bc = _bc_reward(rollouts[-1], seed=seed)
            trex.set_prior(bc.reward_fn, beta)
            spec["prior"] = _model_spec(bc)
        fn = functools.partial(_trex_fn, trex)
        return fn, {"config": {**tcfg.to_dict(), "beta": beta}, **info}, spec
    raise ValueError(f"reward must be one of {REWARDS} (or a T-REX variant); got {name!r}")


def reward_from_spec(spec: dict[str, Any]) -> RewardFn | None:
    """The ``reward_fn`` of a spec returned by :func:`fit_named_reward` (None for the true reward)."""
    kind = spec.get("kind")
    if kind == "true":
        return None
    if kind == "reward_model":
        d = spec["obs_dim"]
        m = RewardModel(d, spec["act_dim"], np.zeros(d), np.ones(d), tuple(spec["hidden"]), spec["state_term"],
                        spec.get("n_actions"))
        m.load_state_dict(spec["state_dict"])
        m.requires_grad_(False)
        return m.reward_fn
    if kind == "trex":
        cfg = TrexConfig(**{**spec["config"], "hidden": tuple(spec["config"]["hidden"])})
        t = TrexReward(spec["obs_dim"], np.zeros(spec["obs_dim"]), np.ones(spec["obs_dim"]), cfg)
        t.load_state_dict(spec["state_dict"])
        t.requires_grad_(False)
        if spec["beta"] > 0:
            t.set_prior(reward_from_spec(spec["prior"]), spec["beta"])
        return functools.partial(_trex_fn, t)
    raise ValueError(f"spec must be a reward spec of fit_named_reward; got kind {kind!r}")


def _trex_fn(trex: Any, obs: Array, act: Array, next_obs: Array | None = None) -> Array:
    return trex.reward_fn(obs, act, next_obs)


# ------------------------------------------------------------------ metrics


def _ranks(x: Array) -> Array:
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    r[order] = np.arange(len(x), dtype=np.float64)
    for v in np.unique(x):  # average ranks of ties
        tie = x == v
        if tie.sum() > 1:
            r[tie] = r[tie].mean()
    return r


def pearson(x: Array, y: Array) -> float:
    """Pearson correlation; NaN when either side is constant or has fewer than 2 points."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-d of the same length; got {x.shape} and {y.shape}")
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def spearman(x: Array, y: Array) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant."""
    return pearson(_ranks(x), _ranks(y))


def ranking_metrics(learned: Array, true: Array, updates: Sequence[int], window: Sequence[int]) -> dict[str, float]:
    """The benchmark's checkpoint metrics from mean returns per update.

    Parameters
    ----------
    learned, true : numpy.ndarray
        Of shape (n,).
        Mean learned and true return of each update in ``updates``.
    updates : sequence of int
        The checkpoints, in order; those after ``max(window)`` are unseen.
    window : sequence of int
        The observed updates.
    """
    learned = np.asarray(learned, np.float64)
    true = np.asarray(true, np.float64)
    u = np.asarray(updates)
    if learned.shape != true.shape or learned.shape != u.shape:
        raise ValueError("learned, true and updates must have the same length")
    last = max(window)
    if last not in set(u.tolist()):
        raise ValueError(f"updates must include the last observed update {last}")
    unseen = u > last
    i_last = int(np.flatnonzero(u == last)[0])
    return {
        "spearman_unseen": spearman(learned[unseen], true[unseen]),
        "spearman_all": spearman(learned, true),
        "share_above_last": float(np.mean(learned[unseen] > learned[i_last])) if unseen.any() else float("nan"),
        "true_share_above_last": float(np.mean(true[unseen] > true[i_last])) if unseen.any() else float("nan"),
    }


def episode_returns(reward_fn: RewardFn, traj: dict[str, Array]) -> Array:
    """The learned reward summed over each stored episode (``observations[t, i]`` valid for t < ``lengths[i]``)."""
    obs, act, lengths = traj["observations"], traj["actions"], np.asarray(traj["lengths"])
    T, n = obs.shape[:2]
    valid = np.arange(T)[:, None] < lengths[None, :]
    r = np.asarray(reward_fn(obs.reshape(T * n, -1).astype(np.float64), act.reshape(T * n, -1).astype(np.float64)),
                   np.float64).reshape(T, n)
    return np.where(valid, r, 0.0).sum(0)


# ------------------------------------------------------------------ the diverse set


def noisy_episodes(env_id: str, policy: PolicySnapshot, epsilon: float, n_episodes: int, seed: int,
                   stochastic: bool) -> dict[str, Array]:
    """Episodes of ``policy`` in which each action is, with probability ``epsilon``, uniform in the action box.

    The other actions are the mean action (or, with ``stochastic``, a sample of the policy's
    Gaussian), as in :func:`lfl_lib.ppo.evaluate_episodes`; episode i is reset with seed
    ``seed + i``. Returns the arrays of :func:`lfl_lib.experiments.learner_logs.load_trajectories`.
    """
    if not 0.0 <= float(epsilon) <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1]; got {epsilon!r}")
    envs = gym.vector.SyncVectorEnv([functools.partial(gym.make, env_id) for _ in range(n_episodes)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    space = cast(Any, envs.single_action_space)  # a Box
    low, high = space.low, space.high
    sigma = cast(GaussianActor, policy.actor()).log_std.detach().exp().numpy().astype(np.float64)
    rng = np.random.default_rng(seed)
    returns, lengths = np.zeros(n_episodes), np.zeros(n_episodes, np.int64)
    seen_o, seen_a = [], []
    try:
        obs, _ = envs.reset(seed=seed)
        active = np.ones(n_episodes, bool)
        while active.any():
            act = policy.mean_action(np.asarray(obs, np.float64))
            if stochastic:
                act = act + sigma * rng.standard_normal(act.shape)
            rand = rng.random(n_episodes) < epsilon
            act = np.where(rand[:, None], rng.uniform(low, high, act.shape), act)
            seen_o.append(np.asarray(obs, np.float32).copy())
            seen_a.append(np.asarray(act, np.float32))
            obs, r, term, trunc, _ = envs.step(np.clip(act, low, high))
            returns[active] += r[active]
            lengths[active] += 1
            active &= ~(term | trunc)
    finally:
        envs.close()
    out: dict[str, Any] = {"observations": np.stack(seen_o), "actions": np.stack(seen_a), "lengths": lengths,
                           "returns": returns}
    return out


def _noise_checkpoints(window: Sequence[int]) -> list[int]:
    w = sorted(window)
    return sorted({w[0], w[len(w) // 2], w[-1]})


def diverse_noise(env_id: str, run_dir: Path, window: Sequence[int], protocol: str, cache: Path,
                  ) -> list[dict[str, Any]]:
    """The noise-injected part of the diverse set (cached in ``cache``): a list of trajectory dicts with labels."""
    out = []
    for u in _noise_checkpoints(window):
        _, pol = load_checkpoint(run_dir, u)
        for j, eps in enumerate(NOISE_LEVELS):
            f = cache / f"noise_u{u:03d}_eps{eps:g}_{protocol}.npz"
            if f.exists():
                with np.load(f) as z:
                    tr = {k: z[k] for k in z.files}
            else:
                tr = noisy_episodes(env_id, pol, eps, NOISE_EPISODES, NOISE_SEED + 100 * j + u, protocol == "sampled")
                cache.mkdir(parents=True, exist_ok=True)
                write_npz(tr, f, compressed=True)
            out.append({"source": f"noise u{u} eps{eps:g}", **tr})
    return out


def log_complete(run_dir: Path, env_id: str) -> bool:
    """Has the learner log in ``run_dir`` stored the evaluation episodes of its last update?"""
    n = extended_updates(DEFAULT_WINDOWS[env_id], 1.5)
    return all((run_dir / "trajectories" / f"update_{n:03d}_{p}.npz").exists() for p in ("mean", "sampled"))


def other_seed_episodes(env_id: str, seed: int, runs: Path, protocol: str) -> list[dict[str, Any]]:
    """Stored episodes of other seeds' complete logs of ``env_id`` at :data:`OTHER_SEED_UPDATES` evenly spaced updates."""
    n = extended_updates(DEFAULT_WINDOWS[env_id], 1.5)
    ups = sorted({int(round(x)) for x in np.linspace(1, n, OTHER_SEED_UPDATES)})
    out = []
    for d in sorted(runs.glob(f"{env_id}_seed*")):
        other = int(d.name.rsplit("seed", 1)[1])
        if other == seed or not log_complete(d, env_id):
            continue
        for u in ups:
            out.append({"source": f"seed{other} u{u}", **load_trajectories(d, u, protocol)})
    return out


# ------------------------------------------------------------------ one benchmark run


def _json(obj: Any, path: Path) -> None:
    write_json(obj, path, mkdir=True)


def _r(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 6)


def bench_run(reward: str, env_id: str, seed: int, runs: str | Path = DEFAULT_RUNS, out: str | Path = DEFAULT_OUT,
              cache: str | Path = DEFAULT_CACHE, fit_seed: int = 0, command: str = "") -> Path:
    """Benchmark reward ``reward`` on the learner log of (``env_id``, ``seed``); write and return its JSON.

    The fitted reward is kept in ``cache`` (``<ENV>_seed<N>/reward_<name>.pt``), so that
    :func:`rescore` can score it again when more seeds' logs (the diverse set) are complete.
    """
    if env_id not in DEFAULT_WINDOWS:
        raise ValueError(f"env_id must be one of {sorted(DEFAULT_WINDOWS)}; got {env_id!r}")
    _named(reward)  # validates the name
    t0 = time.perf_counter()
    run_dir = Path(runs) / f"{env_id}_seed{seed}"
    if not log_complete(run_dir, env_id):
        raise ValueError(f"the learner log {run_dir} is not complete")
    window = list(DEFAULT_WINDOWS[env_id])
    # the method reads the observed window's rollouts only
    rollouts = [load_checkpoint(run_dir, u)[0] for u in window]
    fn, info, spec = fit_named_reward(reward, rollouts, seed=fit_seed)
    cdir = Path(cache) / f"{env_id}_seed{seed}"
    cdir.mkdir(parents=True, exist_ok=True)
    _safe_io.save(spec, cdir / f"reward_{reward}.pt")
    t_fit = time.perf_counter() - t0
    result = {"reward": reward, "env_id": env_id, "seed": seed, "fit_seed": fit_seed,
              "fit_info": dict(info), "fit_time_s": round(t_fit, 1)}
    result.update(_score(fn, env_id, seed, Path(runs), Path(cache)))
    result.update({"wall_time_s": round(time.perf_counter() - t0, 1), "command": command,
                   "git_commit": git_commit(), "versions": versions()})
    path = Path(out) / reward / f"{env_id}_seed{seed}.json"
    _json(result, path)
    return path


def _score(fn: RewardFn | None, env_id: str, seed: int, runs: Path, cache: Path) -> dict[str, Any]:
    run_dir = runs / f"{env_id}_seed{seed}"
    window = list(DEFAULT_WINDOWS[env_id])
    n = extended_updates(window, 1.5)
    updates = list(range(1, n + 1))

    def learned(tr: dict[str, Array]) -> Array:
        return np.asarray(tr["returns"], np.float64) if fn is None else episode_returns(fn, tr)

    def corr(parts: list[dict[str, Any]], prefix: str, m: dict[str, Any]) -> None:
        if not parts:
            m[prefix + "_corr"] = m[prefix + "_spearman"] = float("nan")
            m[prefix + "_episodes"] = 0
            return
        dL = np.concatenate([learned(d) for d in parts])
        dT = np.concatenate([np.asarray(d["returns"]) for d in parts])
        m[prefix + "_corr"], m[prefix + "_spearman"], m[prefix + "_episodes"] = pearson(dL, dT), spearman(dL, dT), len(dL)

    metrics: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    others: list[str] = []
    for protocol in ("mean", "sampled"):
        L, T, eL, eT = [], [], [], []
        for u in updates:
            tr = load_trajectories(run_dir, u, protocol)
            lr, tr_ = learned(tr), np.asarray(tr["returns"], np.float64)
            L.append(lr.mean())
            T.append(tr_.mean())
            eL.append(lr)
            eT.append(tr_)
        m: dict[str, Any] = ranking_metrics(np.array(L), np.array(T), updates, window)
        m["heldout_corr"] = pearson(np.concatenate(eL), np.concatenate(eT))
        noise = diverse_noise(env_id, run_dir, window, protocol, cache / f"{env_id}_seed{seed}")
        other = other_seed_episodes(env_id, seed, runs, protocol)
        corr(noise + other, "diverse", m)
        corr(noise, "noise", m)
        corr(other, "other_seeds", m)
        metrics[protocol] = {k: (_r(v) if isinstance(v, float) else int(v)) for k, v in m.items()}
        curves[protocol] = {"learned": [round(float(x), 4) for x in L], "true": [round(float(x), 4) for x in T]}
        others = sorted({d["source"].split(" ")[0] for d in other})
    return {"window": window, "updates": updates, "unseen": [u for u in updates if u > max(window)],
            "metrics": metrics, "returns": curves,
            "diverse": {"noise_levels": list(NOISE_LEVELS), "noise_checkpoints": _noise_checkpoints(window),
                        "noise_episodes": NOISE_EPISODES, "other_seeds": others,
                        "other_seed_updates": OTHER_SEED_UPDATES}}


def complete_seeds(env_id: str, runs: str | Path = DEFAULT_RUNS) -> list[int]:
    """Seeds of ``env_id`` whose learner logs in ``runs`` are complete."""
    return sorted(int(d.name.rsplit("seed", 1)[1]) for d in Path(runs).glob(f"{env_id}_seed*") if log_complete(d, env_id))


def rescore(path: str | Path, runs: str | Path = DEFAULT_RUNS, cache: str | Path = DEFAULT_CACHE,
            command: str = "") -> bool:
    """Score a benchmark file's cached reward again if more other seeds' logs are complete now; True if rewritten.

    The fit (and its diagnostics and time) stays; the metrics, the diverse set and the
    provenance (``rescore_command``, ``rescore_git_commit``) are updated.
    """
    path = Path(path)
    d = json.loads(path.read_text())
    want = [f"seed{s}" for s in complete_seeds(d["env_id"], runs) if s != d["seed"]]
    if want == d["diverse"]["other_seeds"]:
        return False
    spec = _safe_io.load(Path(cache) / f"{d['env_id']}_seed{d['seed']}" / f"reward_{d['reward']}.pt")
    d.update(_score(reward_from_spec(spec), d["env_id"], d["seed"], Path(runs), Path(cache)))
    d.update({"rescore_command": command, "rescore_git_commit": git_commit()})
    _json(d, path)
    return True


# ------------------------------------------------------------------ the grid world, exact


def grid_bench(learner: str, seed: int, reward: str, n_pairs: int = 1000, extend: float = 1.5,
               episodes: int = 10, horizon: int = 60) -> dict[str, Any]:
    """The benchmark on the grid world with a tabular learner; every learned return is exact.

    The learner (:func:`lfl_lib.experiments.table2.learner_policies` with its Table 2 K, extended to
    ``ceil(extend * K)`` improvements) is observed through 1000 sampled pairs per observed
    policy (as in Table 2); ``reward`` is ``true``, ``lfl`` (:func:`lfl_lib.tabular_lfl.recover_reward`,
    SPI model, alpha_model 0.7), ``bc`` (ln of a behaviour clone of the last observed
    trajectory) or ``exact`` (Theorem 2's reward of the last observed improvement computed
    from the exact policies with the true alpha: a shaping of the true reward for the SPI
    learner, so its rankings must be exact). A policy's return is its expected discounted
    return from the start state (exact), and per "episode" the discounted return of a sampled
    ``horizon``-step trajectory. The diverse set: mixtures :math:`(1-\\epsilon)\\pi + \\epsilon U`
    of three observed policies at :data:`NOISE_LEVELS`, and the policies of other seeds'
    learners (seeds ``seed + 1..3``).
    """
    from ..baselines import behaviour_cloning
    from ..gridworld import make_gridworld
    from ..inversion import invert_soft_improvement
    from ..learners import random_improvements
    from ..mdp import TabularMDP, expected_return
    from .table2 import ALPHA, ALPHA_MODEL, EXTENDED_LEARNERS, learner_policies
    from ..tabular_lfl import recover_reward as tabular_recover
    from ..trajectories import sample_trajectories

    mdp = make_gridworld()
    K = EXTENDED_LEARNERS[learner]

    def policies_of(s: int) -> tuple[list[Array], int]:
        ss = np.random.SeedSequence([int(s), list(EXTENDED_LEARNERS).index(learner)]).spawn(2)
        rng = np.random.default_rng(ss[0])
        if learner == "random":  # 10 of 15 observed in Table 2: the other 5 are the unseen ones
            return random_improvements(mdp, ALPHA, rng, n_policies=15, n_observed=15), K
        return learner_policies(learner, mdp, rng, K=int(math.ceil(extend * K))), K + 1

    pols, n_obs = policies_of(seed)
    window = list(range(1, n_obs + 1))
    updates = list(range(1, len(pols) + 1))
    data_rng = np.random.default_rng(np.random.SeedSequence([int(seed), 99]))
    trajs = sample_trajectories(mdp, pols[:n_obs], n_pairs, data_rng)
    if reward == "true":
        r_hat = mdp.r
    elif reward == "lfl":
        r_hat = tabular_recover(trajs, mdp.n_states, mdp.n_actions, mdp.gamma, ALPHA_MODEL)
    elif reward == "bc":
        r_hat = np.log(behaviour_cloning(trajs[-1], mdp.n_states, mdp.n_actions))
    elif reward == "exact":
        r_hat = invert_soft_improvement(mdp, pols[n_obs - 2], pols[n_obs - 1], ALPHA)
    else:
        raise ValueError(f"reward must be 'true', 'lfl', 'bc' or 'exact'; got {reward!r}")
    learned_mdp = TabularMDP(mdp.P, r_hat, mdp.gamma, mdp.start)
    L = np.array([expected_return(learned_mdp, p) for p in pols])
    T = np.array([expected_return(mdp, p) for p in pols])
    m = ranking_metrics(L, T, updates, window)
    m["heldout_corr"] = _grid_episode_corr(mdp, pols, r_hat, seed, episodes, horizon)
    U = np.full_like(pols[0], 1.0 / mdp.n_actions)
    div = [(1 - e) * pols[i] + e * U for i in sorted({0, n_obs // 2, n_obs - 1}) for e in NOISE_LEVELS]
    for other in range(seed + 1, seed + 4):
        div += policies_of(other)[0]
    dL = np.array([expected_return(learned_mdp, p) for p in div])
    dT = np.array([expected_return(mdp, p) for p in div])
    m["diverse_corr"] = pearson(dL, dT)
    m["diverse_spearman"] = spearman(dL, dT)
    return {"learner": learner, "seed": seed, "reward": reward, "window": window, "updates": updates,
            "metrics": {k: _r(v) for k, v in m.items()},
            "returns": {"learned": [round(float(x), 6) for x in L], "true": [round(float(x), 6) for x in T]}}


def _grid_episode_corr(mdp: Any, pols: Sequence[Array], r_hat: Array, seed: int, episodes: int, horizon: int) -> float:
    """Pearson correlation of learned and true discounted returns of sampled ``horizon``-step episodes."""
    from ..trajectories import sample_trajectory

    ep_rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7]))
    disc = mdp.gamma ** np.arange(horizon)
    eL, eT = [], []
    for p in pols:
        for _ in range(episodes):
            tr = sample_trajectory(mdp, p, horizon, ep_rng)
            s, a = tr.states[:-1], tr.actions
            eL.append(float(disc @ r_hat[s, a]))
            eT.append(float(disc @ mdp.r[s, a]))
    return pearson(np.array(eL), np.array(eT))


# ------------------------------------------------------------------ the table


#: The columns of :func:`bench_table`.
METRICS: tuple[str, ...] = ("spearman_unseen", "spearman_all", "share_above_last", "heldout_corr", "diverse_corr")


def bench_table(folder: str | Path = DEFAULT_OUT, protocol: str = "mean") -> list[dict[str, Any]]:
    """Rows (reward, env, seed, the :data:`METRICS`) of the committed MuJoCo benchmark files in ``folder``.

    Sorted by env, reward, seed; a metric that is undefined (a constant side) is None.
    """
    if protocol not in ("mean", "sampled"):
        raise ValueError(f"protocol must be 'mean' or 'sampled'; got {protocol!r}")
    rows = []
    for f in sorted(Path(folder).glob("*/*_seed*.json")):
        d = json.loads(f.read_text())
        m = d["metrics"][protocol]
        rows.append({"reward": d["reward"], "env": d["env_id"], "seed": d["seed"], **{k: m.get(k) for k in METRICS}})
    rows.sort(key=lambda r: (r["env"], r["reward"], r["seed"]))
    return rows


def _jobs_table(rows: list[dict[str, Any]]) -> str:
    head = "reward env seed " + " ".join(METRICS)
    lines = [head]
    for r in rows:
        vals = " ".join("  nan" if r[k] is None else f"{r[k]:+.2f}" for k in METRICS)
        lines.append(f"{r['reward']} {r['env']} {r['seed']} {vals}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lfl reward-bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--rewards", nargs="+", default=list(REWARDS))
    p.add_argument("--envs", nargs="+", default=sorted(DEFAULT_WINDOWS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--runs", default=str(DEFAULT_RUNS), help=f"learner log folders ({DEFAULT_RUNS})")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"results folder ({DEFAULT_OUT})")
    p.add_argument("--cache", default=str(DEFAULT_CACHE), help=f"diverse-set episodes ({DEFAULT_CACHE})")
    p.add_argument("--grid", action="store_true", help="the tabular grid-world benchmark instead")
    p.add_argument("--table", action="store_true", help="print the table of the results folder and stop")
    p.add_argument("--rescore", action="store_true",
                   help="score the existing files again where more seeds' logs (the diverse set) are complete")
    a = p.parse_args(argv)
    cmd = "python -m lfl_lib.experiments.reward_bench " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    out = Path(a.out)
    if a.table:
        for prot in ("mean", "sampled"):
            print(prot)
            print(_jobs_table(bench_table(out, prot)))
        return 0
    if a.grid:
        t0 = time.perf_counter()
        rows = [grid_bench(name, s, r) for name in ("SPI", "SVI", "Q-learning", "random") for s in a.seeds
                for r in ("true", "exact", "lfl", "bc")]
        _json({"rows": rows, "command": cmd, "git_commit": git_commit(), "versions": versions(),
               "wall_time_s": round(time.perf_counter() - t0, 1)}, out / "grid.json")
        print(out / "grid.json")
        return 0
    if a.rescore:
        for f in sorted(out.glob("*/*_seed*.json")):
            if rescore(f, a.runs, a.cache, cmd):
                print("rescored", f)
        return 0
    jobs = [(r, e, s) for e in a.envs for s in a.seeds for r in a.rewards]
    bar = tqdm(jobs, desc="reward bench")
    for r, e, s in bar:
        path = out / r / f"{e}_seed{s}.json"
        if path.exists():
            continue
        if not log_complete(Path(a.runs) / f"{e}_seed{s}", e):
            bar.write(f"skip {r} {e} seed {s}: learner log not complete")
            continue
        bar.set_postfix_str(f"{r} {e} s{s}")
        bench_run(r, e, s, a.runs, out, a.cache, command=cmd)
        m = json.loads(path.read_text())["metrics"]
        bar.write(f"{r} {e} s{s}: " + " ".join(f"{k}={m['mean'][k]}" for k in METRICS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
