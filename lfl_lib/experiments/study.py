"""The MuJoCo study of Section 6.2 as one resumable command line.

``lfl study --env ENV_ID --seed N --preset {paper,smoke}`` runs

1. **learner**: PPO (:mod:`lfl_lib.ppo`) on the true reward; the rollout of one of its
   environments (and the policy that collected it) is kept at each observed update;
2. **learner evaluation**: each observed policy is scored on the true reward;
3. **recovery**: Algorithm 1 (:mod:`lfl_lib.deep_lfl`) on the observed rollouts only;
4. **observer**: a PPO agent initialised by behaviour cloning of the last observed
   rollout, trained on the recovered reward, scored on the true reward after each update;
5. **results**: one JSON file per (environment, seed), written atomically.

Every stage shows a progress bar and checkpoints (after every PPO update, and after each
stage) into a run folder; the same command started again resumes where it stopped. A
checkpoint of a PPO update holds the physics of every environment, so a resumed run
gives the same numbers as an uninterrupted one.

``--estimator fix`` replaces the paper's settings of Algorithm 1's maximum-likelihood fits
(and of the observer's behaviour cloning) by the fix that chapter 6 tests: the log-std set
exactly instead of by Adam, and 20 % of each rollout held out for early stopping;
``--learner-from RUN_DIR`` takes the learner of an earlier run with the same learner instead
of training it again.

``--estimator released-code`` computes what the authors' released code computes: the
policy fits chained on one network, so that every fit equals the last
(:func:`lfl_lib.deep_lfl.fit_chained_policy`), 3000 steps per rollout on minibatches of
100 pairs; the observer starts from that last fitted policy and is trained on the reward
network's log-probability alone, without reward normalization. It is there to show what
produced the paper's numbers, not as a method.

Scoring protocols (:data:`PROTOCOLS`); every results file holds all three under
``scores[PROTOCOL]``, for every observed learner policy and every observer policy:

- ``"mean-return"``: 10 episodes with the deterministic mean action, episode i started
  from the reset with seed ``eval_seed + i``; the mean undiscounted true return;
- ``"sampled-return"``: the same episodes with actions sampled from the policy's Gaussian
  (noise from ``numpy.random.default_rng(eval_seed)``);
- ``"paper-code"``: the released code's score, taken from the training rollouts
  themselves: the mean of the last 10 values of a queue that receives, after every step
  and for each environment in turn, the sum of the step's info entries whose key contains
  "reward" (control cost on the sampled, unclipped action); with 32 environments, the
  instantaneous reward of environments 22-31 at the last step of the update
  (:meth:`lfl_lib.ppo.RolloutTap.capture_reward_terms`). Under gymnasium v5 these entries
  sum to the step's reward on all four tasks (gym v2's Hopper reported none: 0).

Scores are normalized as in the paper: 0 = the first observed learner policy, 1 = the
last observed one, separately under each protocol.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray
from tqdm import tqdm

from .. import _safe_io
from .._io import git_commit, read_json, versions, write_bytes, write_json
from .._safe_io import load_checkpoint
from .._validate import check_positive_int
from ..deep_lfl import ESTIMATORS, DeepLfLConfig, RewardModel, holdout_mask, holdout_seed
from ..observer import behaviour_clone, train_observer
from ..recovery import recover_with_checkpoints
from ..ppo import (PAPER_CODE_QUEUE, PPO, PPOConfig, PolicySnapshot, Rollout, check_env_id, evaluate_episodes,
                  evaluate_policy)

__all__ = [
    "DEFAULT_WINDOWS", "OBSERVER_ANCHORS", "OBSERVER_INITS", "OBSERVER_OBS_STATS", "PROTOCOLS", "StudyConfig", "learner_rises", "make_config",
    "parse_window", "run_study", "select_candidate", "HELD_OUT_ENV", "HELD_OUT_SEEDS", "HELD_OUT_CANDIDATES",
    "held_out_runs", "held_out_choice", "variant_name", "normalize_scores", "protocol_scores", "main", "bc_held_out", "clone_start", "RUN_OPTIONS", "config_from_options",
    "summary", "results_git_commits",
]

#: Observed learner updates per environment (Section 6.3 of the paper).
DEFAULT_WINDOWS: dict[str, tuple[int, ...]] = {
    "Reacher-v5": tuple(range(10, 21)),
    "HalfCheetah-v5": tuple(range(30, 41)),
    "Hopper-v5": (10, 15, 20, 25, 30),
    "Ant-v5": (10, 15, 20, 25, 30),
}
SMOKE_WINDOW = (2, 3, 4)

#: How the observer's actor starts (see :class:`StudyConfig`).
OBSERVER_INITS: tuple[str, ...] = ("clone", "last-fit", "reward-policy")
#: The observer's anchors (:class:`StudyConfig` ``observer_anchor``).
OBSERVER_ANCHORS: tuple[str, ...] = ("none", "kl")
#: The observer's observation statistics after its start (:class:`StudyConfig` ``observer_obs_stats``).
OBSERVER_OBS_STATS: tuple[str, ...] = ("running", "frozen")
#: The observer's objective (:class:`StudyConfig` ``observer_soft``).
OBSERVER_SOFT: tuple[str, ...] = ("none", "model")

#: The scoring protocols of every results file (see the module docstring).
PROTOCOLS: tuple[str, ...] = ("paper-code", "sampled-return", "mean-return")


@dataclass(frozen=True)
class StudyConfig:
    """Everything that determines a run's numbers (stored with its results).

    Attributes
    ----------
    env_id, seed, preset : str, int, str
    window : tuple of int
        Observed learner updates (1-based; update u's rollout is collected by the policy
        obtained after u - 1 optimisation phases).
    learner_updates : int
        PPO updates the learner makes (at least ``max(window)``).
    observer_updates : int
        PPO updates of the observer on the recovered reward (30).
    learner_ppo, observer_ppo : PPOConfig
        Same hyperparameters; the observer's decay runs over its own updates.
    lfl : DeepLfLConfig
    bc_steps : int
        Adam steps of the observer's behaviour cloning of the last observed rollout.
    eval_episodes, eval_seed : int
        Evaluation protocol (see the module docstring).
    observer_init : {"clone", "last-fit", "reward-policy"}
        The observer's actor before its first update: a behaviour clone of the last observed
        rollout (the paper), the last policy of Algorithm 1's stage 1 (the released code), or
        the recovered reward's own Gaussian :math:`\\pi_\\phi` (mean :math:`\\mu_\\phi`, its sigma), a
        candidate of chapter 6 (run on its held-out seeds).
    critic_warmup : int
        Rounds of :meth:`~lfl_lib.observer_ppo.ObserverPPO.train_critic` (a rollout with the actor frozen, the
        critic alone trained on :math:`r_\\phi`) between the observer's start and its first PPO
        update; 0 (the paper) for none. A candidate of chapter 6, built on this reading: with
        a critic that still outputs about 0, a reward whose level is negative makes the states
        just before a fall look best to the first update. Chapter 6 measures that the warm-up
        does not keep that update from going wrong on Hopper, so this is not the main cause.
    observer_anchor : {"none", "kl"}
        ``"kl"``: the observer's PPO is anchored to its start policy :math:`\\pi_0` by a KL
        penalty (:meth:`~lfl_lib.observer_ppo.ObserverPPO.set_anchor`) whose weight is the KL-regularized
        learner model's :math:`\\lambda` (the fitted one with ``kl_weight=None``): the observer
        then solves the MDP of :math:`r_\\phi - \\lambda\\,\\mathrm{KL}(\\pi\\,\\|\\,\\pi_0)`, the
        fixed point of the learner model's own step from the last observed policy. A
        candidate of chapter 6; ``"none"`` (the paper) for no anchor.
    observer_obs_stats : {"running", "frozen"}
        ``"running"`` (the paper's PPO): the observer's observation normalization keeps
        updating on its own rollouts after its start. ``"frozen"``: it stays at the statistics
        its start was fitted under (:meth:`~lfl_lib.ppo.PPO.freeze_obs_stats`), so that the
        start is the same policy on raw states throughout. A candidate of chapter 6, after the
        diagnosis that the running statistics alone move the clone far from itself.
    observer_soft : {"none", "model"}
        ``"none"`` (the paper): the observer's PPO maximises the plain return of
        :math:`r_\\phi`. ``"model"``: the soft return of :math:`r_\\phi` with entropy weight the
        learner model's :math:`\\alpha` (``lfl.alpha_model``; :meth:`~lfl_lib.observer_ppo.ObserverPPO.set_soft`),
        the objective whose optimum is the fixed point of the learner model that recovered
        :math:`r_\\phi` (soft policy improvement, or its KL-regularized step). Without it a
        log-probability reward pays the observer for narrowing its action noise. A candidate
        of chapter 6.
    """

    env_id: str
    seed: int
    preset: str
    window: tuple[int, ...]
    learner_updates: int
    observer_updates: int
    learner_ppo: PPOConfig
    observer_ppo: PPOConfig
    lfl: DeepLfLConfig
    bc_steps: int = 3000
    eval_episodes: int = 10
    eval_seed: int = 1_000_000
    observer_seed_offset: int = 10_000
    observer_init: str = "clone"
    critic_warmup: int = 0
    observer_anchor: str = "none"
    observer_obs_stats: str = "running"
    observer_soft: str = "none"

    @property
    def estimator(self) -> str:
        """The name in :data:`~lfl_lib.deep_lfl.ESTIMATORS` of the fits that the run uses ("custom" for none)."""
        for name, settings in ESTIMATORS.items():
            if all(getattr(self.lfl, k) == v for k, v in settings.items()):
                return name
        return "custom"

    def to_dict(self) -> dict[str, Any]:
        return {
            "env_id": self.env_id,
            "seed": self.seed,
            "preset": self.preset,
            "window": list(self.window),
            "learner_updates": self.learner_updates,
            "observer_updates": self.observer_updates,
            "learner_ppo": self.learner_ppo.to_dict(),
            "observer_ppo": self.observer_ppo.to_dict(),
            "lfl": self.lfl.to_dict(),
            "bc_steps": self.bc_steps,
            "eval_episodes": self.eval_episodes,
            "eval_seed": self.eval_seed,
            "observer_seed_offset": self.observer_seed_offset,
            # left out at the paper's value, so that older configurations still match
            **({} if self.observer_init == "clone" else {"observer_init": self.observer_init}),
            **({} if self.critic_warmup == 0 else {"critic_warmup": self.critic_warmup}),
            **({} if self.observer_anchor == "none" else {"observer_anchor": self.observer_anchor}),
            **({} if self.observer_obs_stats == "running" else {"observer_obs_stats": self.observer_obs_stats}),
            **({} if self.observer_soft == "none" else {"observer_soft": self.observer_soft}),
        }


def parse_window(text: str) -> tuple[int, ...]:
    """Parse ``"10..20"`` (inclusive range), ``"10..30:5"`` (with a step) or ``"10,15,20"``."""
    try:
        if ".." in text:
            rng, _, step = text.partition(":")
            lo, hi = (int(x) for x in rng.split(".."))
            if step and int(step) < 1:
                raise ValueError("step")
            win = tuple(range(lo, hi + 1, int(step) if step else 1))
        else:
            win = tuple(int(x) for x in text.split(","))
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"window must look like '10..20', '10..30:5' or '10,15,20'; got {text!r}") from exc
    if len(win) < 2 or any(b <= a for a, b in zip(win[:-1], win[1:])):
        raise ValueError(f"window must give at least 2 strictly increasing updates "
                         f"(e.g. '10..20', '10..30:5', '10,15,20'); got {text!r} = {list(win)}")
    return win


def _check_window(window: Any) -> tuple[int, ...]:
    """``window`` as a tuple of at least 2 strictly increasing integers (a ValueError otherwise)."""
    if isinstance(window, str):
        return parse_window(window)
    try:
        win = tuple(window)
    except TypeError as exc:
        raise ValueError(f"window must be a sequence of update numbers; got {window!r}") from exc
    if any(isinstance(w, bool) or not isinstance(w, (int, np.integer)) for w in win):
        raise ValueError(f"window must hold integers; got {list(win)}")
    if len(win) < 2 or any(b <= a for a, b in zip(win[:-1], win[1:])):
        raise ValueError(f"window must hold at least 2 strictly increasing updates; got {list(win)}")
    return win


def _preset(preset: str, env_id: str, window: Sequence[int] | None,
            learner_updates: int | None) -> tuple[tuple[int, ...], int, PPOConfig, PPOConfig, DeepLfLConfig, int, int]:
    """The sizes of a preset: (window, learner updates, learner PPO, observer PPO, Algorithm 1, observer updates, BC steps)."""
    if preset == "paper":
        win = _check_window(window) if window is not None else DEFAULT_WINDOWS.get(env_id)
        if win is None:
            raise ValueError(f"window is required for {env_id!r} (defaults exist for {', '.join(DEFAULT_WINDOWS)})")
        n_learn = learner_updates if learner_updates is not None else max(win)
        # the paper does not give the learner's decay horizon: ours is 100 updates (6.6M steps)
        learner = PPOConfig(anneal_updates=100)
        observer = PPOConfig(anneal_updates=30)
        lfl = DeepLfLConfig()
        n_obs, bc = 30, 3000
    elif preset == "smoke":
        win = _check_window(window) if window is not None else SMOKE_WINDOW
        n_learn = learner_updates if learner_updates is not None else max(win)
        learner = PPOConfig(n_envs=4, n_steps=256, n_epochs=4, n_minibatches=4, anneal_updates=10)
        observer = PPOConfig(n_envs=4, n_steps=256, n_epochs=4, n_minibatches=4, anneal_updates=3)
        lfl = DeepLfLConfig(policy_steps=100, kl_steps=20, reward_init_steps=100, consistency_steps=50)
        n_obs, bc = 3, 100
    else:
        raise ValueError(f"preset must be 'paper' or 'smoke'; got {preset!r}")
    return win, n_learn, learner, observer, lfl, n_obs, bc


def _check_options(estimator: str, kl_weight: float | None, terminal: str, observer_anchor: str,
                   observer_obs_stats: str, observer_soft: str) -> None:
    """The option checks of :func:`make_config` (each error names its option)."""
    if kl_weight != 0.0 and estimator == "released-code":
        raise ValueError("kl_weight must be 0 with estimator 'released-code' (its chained fits are all equal, "
                         f"so the KL term is 0); got {kl_weight!r}")
    if terminal not in ("absorbing", "bootstrap"):
        raise ValueError(f"terminal must be 'absorbing' or 'bootstrap'; got {terminal!r}")
    if observer_anchor not in OBSERVER_ANCHORS:
        raise ValueError(f"observer_anchor must be one of {', '.join(map(repr, OBSERVER_ANCHORS))}; "
                         f"got {observer_anchor!r}")
    if observer_obs_stats not in OBSERVER_OBS_STATS:
        raise ValueError(f"observer_obs_stats must be one of {', '.join(map(repr, OBSERVER_OBS_STATS))}; "
                         f"got {observer_obs_stats!r}")
    if observer_soft not in OBSERVER_SOFT:
        raise ValueError(f"observer_soft must be one of {', '.join(map(repr, OBSERVER_SOFT))}; got {observer_soft!r}")
    if observer_anchor == "kl" and kl_weight == 0.0:
        raise ValueError("observer_anchor 'kl' takes its weight from the KL-regularized learner model: "
                         "kl_weight must be 'fit' (None) or a number > 0; got 0")


def make_config(
    env_id: str, seed: int = 0, preset: str = "paper", window: Sequence[int] | None = None,
    learner_updates: int | None = None, estimator: str = "paper", observer_init: str | None = None,
    kl_weight: float | None = 0.0, terminal: str = "absorbing", critic_warmup: int = 0,
    observer_anchor: str = "none", observer_obs_stats: str = "running", observer_soft: str = "none",
) -> StudyConfig:
    """The configuration of a run; raises ValueError on an unknown env id, preset, estimator or bad window.

    ``estimator`` (a key of :data:`~lfl_lib.deep_lfl.ESTIMATORS`) changes only Algorithm 1's fits and the
    observer's start (and, for ``"released-code"``, the observer's reward normalization);
    the learner of a run is the same under every estimator. ``observer_init`` (a name in
    :data:`OBSERVER_INITS`) overrides the estimator's start of the observer. ``kl_weight``
    is :class:`~lfl_lib.deep_lfl.DeepLfLConfig`'s: 0 the paper's SPI model, a value
    :math:`\\lambda > 0` the KL-regularized learner model, None :math:`\\lambda` fitted with the
    reward (a candidate of chapter 6; not with ``"released-code"``, whose fits make the KL
    term vanish). ``terminal``: ``"absorbing"`` (the paper's reading) or ``"bootstrap"``,
    where a termination is an ordinary state both in Eq. (5)
    (:class:`~lfl_lib.deep_lfl.DeepLfLConfig` ``terminal``) and in the observer's PPO
    (:class:`~lfl_lib.ppo.PPOConfig` ``bootstrap_terminations``), so that the observer no
    longer depends on the recovered reward's level (a candidate of chapter 6).
    ``critic_warmup``: rounds of critic-only training before the observer's first PPO update
    (:class:`StudyConfig`; a candidate of chapter 6). ``observer_anchor``: ``"none"`` or
    ``"kl"`` (:class:`StudyConfig`; needs the KL-regularized model, ``kl_weight`` not 0, whose
    :math:`\\lambda` is the anchor's weight). ``observer_obs_stats``: ``"running"`` or ``"frozen"``
    (:class:`StudyConfig`). ``observer_soft``: ``"none"`` or ``"model"`` (:class:`StudyConfig`).
    The learner is unchanged.
    """
    check_env_id(env_id)
    if "mujoco" not in str(gym.spec(env_id).entry_point):
        # the checkpoints store MuJoCo's physics state: other environments cannot resume exactly
        raise ValueError(f"env must be a MuJoCo environment (e.g. {', '.join(DEFAULT_WINDOWS)}); got {env_id!r}. "
                         "For another Box environment, use lfl_lib.ppo.PPO and `python -m lfl_lib recover/observe`")
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(map(repr, ESTIMATORS))}; got {estimator!r}")
    if observer_init is not None and observer_init not in OBSERVER_INITS:
        raise ValueError(f"observer_init must be one of {', '.join(map(repr, OBSERVER_INITS))}; got {observer_init!r}")
    seed = check_positive_int(seed, "seed", minimum=0)
    critic_warmup = check_positive_int(critic_warmup, "critic_warmup", minimum=0)
    win, n_learn, learner, observer, lfl, n_obs, bc = _preset(preset, env_id, window, learner_updates)
    n_learn = check_positive_int(n_learn, "learner_updates")
    if len(win) < 2 or any(b <= a for a, b in zip(win[:-1], win[1:])):
        raise ValueError(f"window must hold at least 2 strictly increasing updates; got {list(win)}")
    if win[0] < 1 or win[-1] > n_learn:
        raise ValueError(
            f"window must lie within the learner's updates 1..{n_learn}; got {win[0]}..{win[-1]}"
        )
    _check_options(estimator, kl_weight, terminal, observer_anchor, observer_obs_stats, observer_soft)
    lfl = DeepLfLConfig(**{**lfl.to_dict(), **ESTIMATORS[estimator], "kl_weight": kl_weight, "terminal": terminal})
    if terminal == "bootstrap":
        observer = PPOConfig(**{**observer.to_dict(), "bootstrap_terminations": True})
    init = "clone"
    if estimator == "released-code":
        # the released code: 3000 steps per chained fit; observer from the last fit, raw reward
        if preset == "paper":
            lfl = DeepLfLConfig(**{**lfl.to_dict(), "policy_steps": 3000})
        observer = PPOConfig(**{**observer.to_dict(), "norm_reward": False})
        init = "last-fit"
    init = observer_init if observer_init is not None else init
    return StudyConfig(env_id, seed, preset, tuple(int(w) for w in win), n_learn, n_obs, learner, observer, lfl, bc,
                       observer_init=init, critic_warmup=critic_warmup, observer_anchor=observer_anchor,
                       observer_obs_stats=observer_obs_stats, observer_soft=observer_soft)


def protocol_scores(results: dict[str, Any], protocol: str) -> dict[str, Any]:
    """The scores of a results file under ``protocol`` (a name in :data:`PROTOCOLS`).

    Files written before the protocols existed hold the ``"mean-return"`` scores alone (in
    their ``learner`` and ``observer`` entries); they are returned in the same layout.

    Raises
    ------
    ValueError
        If ``protocol`` is not in :data:`PROTOCOLS`, or the file does not hold it.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(map(repr, PROTOCOLS))}; got {protocol!r}")
    if "scores" in results:
        return results["scores"][protocol]
    if protocol != "mean-return":
        raise ValueError(f"protocol {protocol!r}: this results file predates the scoring protocols "
                         "(it holds 'mean-return' only); rerun it")
    return {
        "learner_returns": results["learner"]["returns"],
        "learner_score": results["learner"]["score"],
        "learner_normalized": results["learner"]["normalized"],
        "observer_returns": results["observer"]["returns"],
        "observer_score": results["observer"]["score"],
        "observer_normalized": results["observer"]["normalized"],
        "final_observer_normalized": results["final_observer_normalized"],
    }


def learner_rises(results: dict[str, Any], protocol: str) -> bool:
    """True when the last observed learner policy scores above the first under ``protocol``.

    The paper's normalization (0 = first, 1 = last) reads "above 1" as "better than the
    learner" only then; chapter 6 leaves a run out of a protocol's mean otherwise.
    """
    score = protocol_scores(results, protocol)["learner_score"]
    return bool(score[-1] > score[0])


def select_candidate(
    candidates: Mapping[str, Sequence[dict[str, Any]]],
    protocols: Sequence[str] = ("mean-return", "sampled-return"), tie: float = 0.01,
) -> tuple[str, dict[str, dict[str, Any]]]:
    """The held-out choice of chapter 6 (``book/data/mujoco_heldout/README.md``), made before the runs.

    For each candidate, the mean final normalized observer score over its runs under each
    of ``protocols`` (a run whose learner did not rise under a protocol is left out of
    that protocol's mean); its criterion is the smallest of these means, and the candidate
    with the largest criterion is chosen, a tie (within ``tie``) going to the candidate
    listed first.

    Parameters
    ----------
    candidates : dict
        Candidate name -> its results dicts (one per held-out seed), in order of preference.
    protocols : sequence of str
        Names in :data:`PROTOCOLS`.
    tie : float
        Criterion values closer than this count as equal.

    Returns
    -------
    chosen : str
    table : dict
        Per candidate: ``means`` (protocol -> mean or None), ``n`` (protocol -> runs kept)
        and ``criterion`` (None when a protocol kept no run: such a candidate cannot win).

    Raises
    ------
    ValueError
        If there is no candidate, a candidate has no run, a protocol is unknown, or no
        candidate has a criterion.
    """
    if not candidates:
        raise ValueError("candidates must hold at least one candidate; got none")
    for p in protocols:
        if p not in PROTOCOLS:
            raise ValueError(f"protocols must be names in {', '.join(map(repr, PROTOCOLS))}; got {p!r}")
    table: dict[str, dict[str, Any]] = {}
    for name, runs in candidates.items():
        if not runs:
            raise ValueError(f"candidates[{name!r}] must hold at least one results dict; got none")
        means: dict[str, float | None] = {}
        n: dict[str, int] = {}
        for p in protocols:
            kept = [protocol_scores(r, p)["final_observer_normalized"] for r in runs if learner_rises(r, p)]
            n[p] = len(kept)
            means[p] = float(np.mean(kept)) if kept else None
        crit = None if any(v is None for v in means.values()) else min(means.values())  # type: ignore[type-var]
        table[name] = {"means": means, "n": n, "criterion": crit}
    scored = [(name, row["criterion"]) for name, row in table.items() if row["criterion"] is not None]
    if not scored:
        raise ValueError("no candidate has a run whose learner rose under every protocol: nothing to choose")
    best = max(c for _, c in scored)
    chosen = next(name for name, c in scored if c >= best - tie)
    return chosen, table



#: The environment of chapter 6's held-out protocol (``book/data/mujoco_heldout/README.md``).
HELD_OUT_ENV: str = "Hopper-v5"
#: The held-out seeds (never reported).
HELD_OUT_SEEDS: tuple[int, ...] = (100, 101, 102)
#: The candidates' results folders, in the README's order (a tie goes to the first).
HELD_OUT_CANDIDATES: tuple[str, ...] = (
    "paper", "paper_obs-reward-policy", "paper_kl-fit", "paper_kl-fit_terminal-bootstrap",
    "paper_kl-fit_terminal-bootstrap_warmup-6", "paper_kl-fit_terminal-bootstrap_anchor-kl",
    "paper_kl-fit_terminal-bootstrap_frozen-stats", "fix_kl-fit_terminal-bootstrap_frozen-stats",
    "fix_kl-fit_terminal-bootstrap_frozen-stats_soft", "fix_kl-fit_terminal-bootstrap_anchor-kl_frozen-stats",
)


def held_out_runs(folder: str | Path) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """The held-out results under ``folder``: (candidate -> its results dicts, missing runs).

    Each candidate's list holds the seeds of :data:`HELD_OUT_SEEDS` whose file exists, in
    that order; ``missing`` names the others as ``"CANDIDATE seed S"``.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"folder must be the held-out results folder (e.g. book/data/mujoco_heldout); "
                         f"{root} is not a directory")
    runs: dict[str, list[dict[str, Any]]] = {}
    missing: list[str] = []
    for cand in HELD_OUT_CANDIDATES:
        runs[cand] = []
        for seed in HELD_OUT_SEEDS:
            path = root / cand / f"{HELD_OUT_ENV}_seed{seed}.json"
            if path.exists():
                runs[cand].append(read_json(path, "held-out results file"))
            else:
                missing.append(f"{cand} seed {seed}")
    return runs, missing


def held_out_choice(folder: str | Path) -> tuple[str, dict[str, dict[str, Any]]]:
    """Chapter 6's choice: :func:`select_candidate` on every run of :func:`held_out_runs`.

    Raises
    ------
    ValueError
        If a held-out run is missing (the choice is made on all of them or not at all).
    """
    runs, missing = held_out_runs(folder)
    if missing:
        raise ValueError(f"no choice yet: held-out runs missing under {folder}: {', '.join(missing)}")
    return select_candidate(runs)

def variant_name(cfg: StudyConfig) -> str:
    """The name of a run's estimator and observer: the estimator, then each option off its default.

    The options, in this order: ``_obs-INIT`` (an observer start other than the estimator's),
    ``_kl-fit`` or ``_kl-LAMBDA`` (the KL-regularized learner model), ``_terminal-bootstrap``,
    ``_warmup-N`` (N rounds of critic warm-up), ``_anchor-kl`` (the observer's KL anchor),
    ``_frozen-stats`` (the observer's observation statistics frozen at its start) and ``_soft``
    (the observer's soft return at the model's alpha).
    So ``"paper"``, ``"released-code"`` or ``"paper_kl-fit_terminal-bootstrap"``: the results
    folders of chapter 6 (:data:`HELD_OUT_CANDIDATES`) and the suffix of :func:`run_study`'s
    default folders.
    """
    if not isinstance(cfg, StudyConfig):
        raise ValueError(f"cfg must be a StudyConfig (from make_config); got {type(cfg).__name__}")
    name = cfg.estimator
    default_init = make_config(cfg.env_id, cfg.seed, cfg.preset, cfg.window, cfg.learner_updates,
                               cfg.estimator).observer_init
    if cfg.observer_init != default_init:
        name += f"_obs-{cfg.observer_init}"
    if cfg.lfl.kl_weight != 0.0:
        name += "_kl-fit" if cfg.lfl.kl_weight is None else f"_kl-{cfg.lfl.kl_weight:g}"
    if cfg.lfl.terminal != "absorbing":
        name += f"_terminal-{cfg.lfl.terminal}"
    if cfg.critic_warmup:
        name += f"_warmup-{cfg.critic_warmup}"
    if cfg.observer_anchor != "none":
        name += f"_anchor-{cfg.observer_anchor}"
    if cfg.observer_obs_stats != "running":
        name += f"_{cfg.observer_obs_stats}-stats"
    if cfg.observer_soft == "model":
        name += "_soft"
    return name


def normalize_scores(scores: Any, first: float, last: float) -> Any:
    """The paper's normalization: 0 = first observed learner policy, 1 = last observed."""
    if last == first:
        raise ValueError("the first and last observed learner scores are equal: normalization undefined")
    return (np.asarray(scores, dtype=np.float64) - first) / (last - first)


# ------------------------------------------------------------------ files


def _atomic_torch(obj: Any, path: Path) -> None:
    # numpy arrays stored as tagged tensors: the file loads under torch.load's weights_only=True
    _safe_io.save(obj, path)


def _diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


@dataclass
class _Run:
    cfg: StudyConfig
    run_dir: Path
    results: Path
    progress: bool
    timings: dict[str, float] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        return self.run_dir / name

    def bar(self, total: int, desc: str, initial: int = 0) -> tqdm:
        return tqdm(total=total, initial=initial, desc=f"{self.cfg.env_id} s{self.cfg.seed} {desc}",
                    disable=not self.progress, leave=True, dynamic_ncols=True)

    def add_time(self, stage: str, t0: float) -> float:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - t0
        write_json(self.timings, self.path("timings.json"))
        return now


def _prepare(cfg: StudyConfig, run_dir: Path, results: Path) -> tuple[bool, dict[str, float]]:
    """All checks before anything is written. Returns (already complete, stored timings)."""
    want = cfg.to_dict()
    if results.exists():
        old = read_json(results, "results file")
        if old.get("config") != want:
            raise ValueError(
                f"results file {results} holds another configuration "
                f"(differs in: {', '.join(_diff(old.get('config', {}), want))}); "
                "choose another --out or remove that file"
            )
        if "scores" not in old:
            raise ValueError(f"results file {results} predates the scoring protocols (no 'scores'); "
                             "move it away to rerun this configuration")
        return True, {}
    conf = run_dir / "config.json"
    timings: dict[str, float] = {}
    if conf.exists():
        old = read_json(conf, "run configuration")
        if old != want:
            raise ValueError(
                f"run folder {run_dir} holds another configuration (differs in: {', '.join(_diff(old, want))}); "
                "choose another --run-dir or remove that folder"
            )
        if (run_dir / "timings.json").exists():
            timings = read_json(run_dir / "timings.json", "timings file")
    return False, timings


# ------------------------------------------------------------------ a learner shared by two runs

#: Configuration keys that determine the learner stage and its evaluation.
LEARNER_KEYS = ("env_id", "seed", "window", "learner_updates", "learner_ppo", "eval_episodes", "eval_seed")


def _check_learner_source(cfg: StudyConfig, source: Path, rdir: Path) -> Path:
    """Check, before anything is written, that ``source`` holds a finished learner of ``cfg``."""
    if source.resolve() == rdir.resolve():
        raise ValueError(f"learner_from must be another run folder than the run's own ({rdir})")
    conf = source / "config.json"
    if not conf.exists():
        raise ValueError(f"learner_from: {source} is not a run folder (no config.json)")
    theirs, ours = read_json(conf, "run configuration"), cfg.to_dict()
    differ = [k for k in LEARNER_KEYS if theirs.get(k) != ours[k]]
    if differ:
        raise ValueError(f"learner_from: {source} ran another learner (differs in: {', '.join(differ)})")
    missing = [p for p in ["learner.pt", *(f"observed/update_{u:03d}.pt" for u in cfg.window)]
               if not (source / p).exists()]
    if missing:
        raise ValueError(f"learner_from: {source} has no finished learner (missing {', '.join(missing[:3])})")
    load_checkpoint(source / "learner.pt", ["ppo"])  # a corrupt checkpoint is refused before anything is copied
    return source


def _copy_learner(source: Path, run: _Run) -> None:
    """Copy the learner's checkpoint, observed rollouts, evaluation and times into ``run``."""
    obs_dir = run.path("observed")
    obs_dir.mkdir(exist_ok=True)
    for u in run.cfg.window:
        name = f"update_{u:03d}.pt"
        write_bytes((source / "observed" / name).read_bytes(), obs_dir / name)
    if (source / "learner_eval.json").exists():
        write_bytes((source / "learner_eval.json").read_bytes(), run.path("learner_eval.json"))
    theirs = read_json(source / "timings.json", "timings file") if (source / "timings.json").exists() else {}
    for stage in ("learner", "learner_eval"):
        if stage in theirs:
            run.timings[stage] = float(theirs[stage])
    write_json(run.timings, run.path("timings.json"))
    write_json({"learner_from": str(source)}, run.path("learner_from.json"))
    # the learner checkpoint last: its presence means the copy is complete
    write_bytes((source / "learner.pt").read_bytes(), run.path("learner.pt"))


def _learner_from_note(rdir: Path) -> str | None:
    """The folder the learner was copied from (a path relative to the repository), or None."""
    note = rdir / "learner_from.json"
    if not note.exists():
        return None
    src = Path(read_json(note, "learner source")["learner_from"]).resolve()
    try:
        return str(src.relative_to(Path.cwd()))
    except ValueError:
        return str(src)


# ------------------------------------------------------------------ stages


def _learner(run: _Run) -> None:
    cfg = run.cfg
    obs_dir = run.path("observed")
    obs_dir.mkdir(exist_ok=True)
    window = set(cfg.window)

    def hook(update: int, rollout: Rollout, policy: PolicySnapshot) -> None:
        if update in window:
            _atomic_torch({"update": update, "rollout": rollout.to_arrays(), "policy": policy.to_dict()},
                          obs_dir / f"update_{update:03d}.pt")

    ppo = PPO(cfg.env_id, cfg.learner_ppo, seed=cfg.seed, hook=hook)
    ppo.tap.capture_reward_terms(PAPER_CODE_QUEUE)
    ck = run.path("learner.pt")
    paper_code: dict[int, list[float]] = {}
    if ck.exists():
        saved = load_checkpoint(ck, ["ppo"])
        try:
            ppo.load_state_dict(saved["ppo"])
        except (KeyError, TypeError, RuntimeError) as exc:
            raise ValueError(f"checkpoint {ck} is corrupt ({type(exc).__name__}); delete it to redo the learner") from exc
        paper_code = {int(k): v for k, v in saved.get("paper_code", {}).items()}
    bar = run.bar(cfg.learner_updates, "learner", ppo.update)
    t0 = time.perf_counter()
    while ppo.update < cfg.learner_updates:
        stats = ppo.train_update()
        if ppo.update in window:  # the released code's score of this update's rollout
            paper_code[ppo.update] = [float(x) for x in ppo.tap.reward_terms or ()]
        _atomic_torch({"ppo": ppo.state_dict(), "paper_code": paper_code}, ck)
        t0 = run.add_time("learner", t0)
        bar.set_postfix(ret=f"{stats['train_return']:.1f}")
        bar.update(1)
    bar.close()
    ppo.close()
    missing = [u for u in cfg.window if not (obs_dir / f"update_{u:03d}.pt").exists()]
    if missing:
        raise ValueError(f"observed rollouts for updates {missing} are missing from {obs_dir}; delete {ck} to redo the learner")
    if any(u not in paper_code for u in cfg.window):
        raise ValueError(f"checkpoint {ck} holds no paper-code scores (written before the scoring protocols); "
                         "delete it to redo the learner")


def _learner_paper_code(run: _Run) -> list[list[float]]:
    """The paper-code values (the queue at the end of the rollout) of each observed update."""
    saved = load_checkpoint(run.path("learner.pt"), ["ppo"]).get("paper_code", {})
    return [list(saved[u]) for u in run.cfg.window]


def _observed(run: _Run) -> list[dict[str, Any]]:
    return [load_checkpoint(run.path("observed") / f"update_{u:03d}.pt", ["update", "rollout", "policy"]) for u in run.cfg.window]


def _sampled_returns(cfg: StudyConfig, policy: PolicySnapshot) -> list[float]:
    """The ``sampled-return`` protocol: the evaluation episodes with sampled actions."""
    ends = evaluate_episodes(cfg.env_id, policy, cfg.eval_episodes, cfg.eval_seed, stochastic=True)
    return [float(x) for x in ends["returns"]]


def _sigma(policy: PolicySnapshot) -> list[float]:
    return [round(float(x), 4) for x in policy.actor_state["log_std"].exp()]


def _learner_eval(run: _Run, observed: list[dict[str, Any]]) -> tuple[list[list[float]], list[list[float]]]:
    """Mean-action and sampled-action returns of each observed learner policy (resumable)."""
    cfg = run.cfg
    path = run.path("learner_eval.json")
    stored = read_json(path, "learner evaluation") if path.exists() else {}
    done: list[list[float]] = stored.get("returns", [])
    sampled: list[list[float]] = stored.get("sampled", [])
    bar = run.bar(len(observed), "learner eval", min(len(done), len(sampled)))
    t0 = time.perf_counter()
    for i, item in enumerate(observed):
        if i < len(done) and i < len(sampled):
            continue
        pol = PolicySnapshot.from_dict(item["policy"])
        if i >= len(done):
            done.append([float(x) for x in evaluate_policy(cfg.env_id, pol, cfg.eval_episodes, cfg.eval_seed)])
        sampled.append(_sampled_returns(cfg, pol))
        write_json({"returns": done, "sampled": sampled}, path)
        t0 = run.add_time("learner_eval", t0)
        bar.update(1)
    bar.close()
    return done, sampled


def _recovery(run: _Run, observed: list[dict[str, Any]]) -> tuple[RewardModel, dict[str, Any]]:
    cfg = run.cfg
    rollouts = [Rollout(**item["rollout"]) for item in observed]
    t0 = [time.perf_counter()]

    def timed() -> None:
        t0[0] = run.add_time("recovery", t0[0])

    rec = recover_with_checkpoints(rollouts, cfg.lfl, run.path("recovery.pt"), seed=cfg.seed, progress=run.progress,
                                   desc=f"{cfg.env_id} s{cfg.seed} recovery", after_checkpoint=timed)
    return rec.reward, rec.losses


def bc_held_out(cfg: StudyConfig, last: Rollout) -> NDArray[np.bool_]:
    """The transitions of the last rollout kept out of the observer's behaviour cloning: stage 3's of the recovery."""
    return holdout_mask(len(last.actions), cfg.lfl.holdout, holdout_seed(cfg.seed, len(cfg.window) - 1))


def clone_start(cfg: StudyConfig, ppo: PPO, last: Rollout) -> None:
    """The observer's start (the paper's): a behaviour clone of the last observed rollout.

    :func:`lfl_lib.observer.behaviour_clone` with the run's settings; used by
    :mod:`lfl_lib.experiments.terminations` to rebuild the start of a finished run.
    """
    behaviour_clone(ppo, last, cfg.bc_steps, cfg.lfl, bc_held_out(cfg, last))


def _observer_start(run: _Run, reward: RewardModel, observed: list[dict[str, Any]]) -> dict[str, Any]:
    """The start options of :func:`lfl_lib.observer.train_observer` for ``cfg.observer_init``.

    ``"clone"`` (the paper's): a behaviour clone of the last observed rollout, its held-out
    transitions those of stage 3 of the recovery. ``"last-fit"`` (the released code) and
    ``"reward-policy"`` (pi_phi itself): that Gaussian of Algorithm 1, with the observation
    statistics its networks used (the mean and standard deviation of all observed states),
    so that the actor acts exactly as that Gaussian.
    """
    cfg = run.cfg
    if cfg.observer_init == "clone":
        last = Rollout(**observed[-1]["rollout"])
        return {"start": last, "bc_held_out": bc_held_out(cfg, last)}
    if cfg.observer_init == "last-fit":
        actor_state = load_checkpoint(run.path("recovery.pt"), ["lfl"])["lfl"]["policies"][-1]
    else:
        actor_state = reward.policy.state_dict()
    std = reward.norm.std.numpy().astype(np.float64)
    start = PolicySnapshot(actor_state, reward.norm.mean.numpy().astype(np.float64), std ** 2 - 1e-8 * (std > 1e-3))
    return {"start": start, "start_count": sum(2 * len(o["rollout"]["actions"]) for o in observed)}


def _observer(run: _Run, reward: RewardModel, observed: list[dict[str, Any]],
              kl_weight: float | None = None) -> dict[str, list[Any]]:
    """Train the observer (:func:`lfl_lib.observer.train_observer` with the run's options).

    Returns its ``returns``, ``sampled`` returns, ``paper_code`` values and ``sigma``. With
    ``cfg.observer_anchor == "kl"``, ``kl_weight`` is the KL model's fitted lambda (the
    anchor's weight when ``cfg.lfl.kl_weight`` is None) and the record gains ``anchor_kl``,
    the mean of ln pi - ln pi_0 over each update's rollout.
    """
    cfg = run.cfg
    ck = run.path("observer.pt")
    weight = None
    if cfg.observer_anchor == "kl":
        weight = cfg.lfl.kl_weight if cfg.lfl.kl_weight is not None else kl_weight
        if weight is None:
            raise ValueError("observer_anchor 'kl' needs the fitted kl_weight of the recovery")
    start = {} if ck.exists() else _observer_start(run, reward, observed)
    t0 = [time.perf_counter()]

    def timed() -> None:
        t0[0] = run.add_time("observer", t0[0])

    res = train_observer(
        cfg.env_id, reward, **start, updates=cfg.observer_updates, ppo_config=cfg.observer_ppo,
        bc_steps=cfg.bc_steps, bc_config=cfg.lfl, seed=cfg.seed + cfg.observer_seed_offset,
        eval_episodes=cfg.eval_episodes, eval_seed=cfg.eval_seed, checkpoint=ck, progress=run.progress,
        freeze_obs_stats=cfg.observer_obs_stats == "frozen", anchor_weight=weight,
        soft_alpha=cfg.lfl.alpha_model if cfg.observer_soft == "model" else 0.0, critic_warmup=cfg.critic_warmup,
        scores={"sampled": lambda pol: _sampled_returns(cfg, pol), "sigma": _sigma}, paper_code=True,
        desc=f"{cfg.env_id} s{cfg.seed} observer", after_checkpoint=timed)
    return res.record


def _reward_policy_eval(run: _Run, reward: RewardModel) -> dict[str, Any]:
    """mu_phi as a policy: the recovered reward's own Gaussian, under both return protocols."""
    path = run.path("reward_policy_eval.json")
    if path.exists():
        return read_json(path, "reward policy evaluation")
    cfg = run.cfg
    t0 = time.perf_counter()
    std = reward.norm.std.numpy().astype(np.float64)
    state = {k: v.detach().clone() for k, v in reward.policy.state_dict().items()}
    pol = PolicySnapshot(state, reward.norm.mean.numpy().astype(np.float64), std ** 2 - 1e-8 * (std > 1e-3),
                         cfg.lfl.hidden)
    out = {
        "returns": [float(x) for x in evaluate_policy(cfg.env_id, pol, cfg.eval_episodes, cfg.eval_seed)],
        "sampled": _sampled_returns(cfg, pol),
        "sigma": _sigma(pol),
    }
    write_json(out, path)
    run.add_time("reward_policy_eval", t0)
    return out


def _diagnostics(observed: list[dict[str, Any]], lfl_state: dict[str, Any]) -> dict[str, Any]:
    """Standard deviations of the Gaussians involved: the learner's own and the fitted ones."""
    def std(sd: dict[str, torch.Tensor], key: str) -> list[float]:
        return [round(float(x), 4) for x in sd[key].exp()]

    return {
        "learner_action_std": [std(o["policy"]["actor_state"], "log_std") for o in observed],
        "fitted_policy_std": [std(p, "log_std") for p in lfl_state["policies"]],
        "reward_init_std": std(lfl_state["reward_init"], "policy.log_std"),
        "reward_std": std(lfl_state["reward"], "policy.log_std"),
    }


def run_study(
    cfg: StudyConfig, out_dir: str | Path | None = None, run_dir: str | Path | None = None,
    progress: bool = True, command: str | None = None, learner_from: str | Path | None = None,
) -> dict[str, Any]:
    """Run (or resume) the whole pipeline for ``cfg`` and return the results dict.

    Parameters
    ----------
    cfg : StudyConfig
        From :func:`make_config`.
    out_dir : path, optional
        Folder of the results file ``<env_id>_seed<N>.json``; default ``book/data/mujoco``
        for the paper preset (``book/data/mujoco_fix`` with the ``fix`` estimator),
        ``runs/mujoco/results-smoke`` (``results-smoke_fix``) for the smoke preset.
    run_dir : path, optional
        Folder of the checkpoints; default ``runs/mujoco/<env_id>_seed<N>_<preset>``, with
        ``_fix`` appended for the ``fix`` estimator.
    progress : bool
        Show a tqdm progress bar per stage.
    learner_from : path, optional
        The run folder of a run with the same learner (same environment, seed, window,
        learner settings and evaluation protocol; typically the same run with the other
        estimator). When this run has no learner checkpoint yet, the learner's checkpoint,
        observed rollouts and evaluation are copied from there instead of being recomputed,
        with their recorded times; the results file names that folder.

    Raises
    ------
    ValueError
        If the run folder or the results file holds another configuration, or a checkpoint
        is corrupt. These checks happen before anything is written.
    """
    out, rdir = default_folders(cfg, out_dir, run_dir)
    results = out / f"{cfg.env_id}_seed{cfg.seed}.json"
    complete, timings = _prepare(cfg, rdir, results)
    if complete:
        return read_json(results, "results file")
    source = _check_learner_source(cfg, Path(learner_from), rdir) if learner_from is not None else None
    for name, keys in (("learner.pt", ["ppo"]), ("recovery.pt", ["lfl"]), ("observer.pt", ["ppo", "returns"])):
        if (rdir / name).exists():  # a corrupt checkpoint is refused before anything is written
            load_checkpoint(rdir / name, keys)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one core per run, and reproducible float sums
    try:
        rdir.mkdir(parents=True, exist_ok=True)
        write_json(cfg.to_dict(), rdir / "config.json")
        commits = _record_commit(rdir)
        run = _Run(cfg, rdir, results, progress, timings)
        stages = _stages(run, source)
    finally:
        torch.set_num_threads(threads)
    res = _results(run, stages, commits, command)
    out.mkdir(parents=True, exist_ok=True)
    write_json(res, results)
    return res


def default_folders(cfg: StudyConfig, out_dir: str | Path | None = None,
                    run_dir: str | Path | None = None) -> tuple[Path, Path]:
    """(results folder, checkpoint folder) of a run: the given ones, or the defaults of :func:`run_study`."""
    name = variant_name(cfg)
    suffix = name[len("paper"):] if cfg.estimator == "paper" else f"_{name}"
    default_out = ("book/data/mujoco" if cfg.preset == "paper" else "runs/mujoco/results-smoke") + suffix
    out = Path(out_dir) if out_dir is not None else Path(default_out)
    rdir = Path(run_dir) if run_dir is not None else (
        Path("runs") / "mujoco" / f"{cfg.env_id}_seed{cfg.seed}_{cfg.preset}{suffix}")
    return out, rdir


def _record_commit(rdir: Path) -> dict[str, list[str]]:
    """The code that ran: the commit of every process that worked on this run (``commits.json``).

    A run folder written before the file had its name holds ``sessions.json``, read in its place.
    """
    path = rdir / "commits.json"
    old = rdir / "sessions.json"
    src = path if path.exists() else old if old.exists() else None
    commits = read_json(src, "commits file") if src is not None else {"git_commits": []}
    commit = git_commit()
    if commit not in commits["git_commits"] or src != path:
        if commit not in commits["git_commits"]:
            commits["git_commits"].append(commit)
        write_json(commits, path)
    return commits


def results_git_commits(res: dict[str, Any]) -> list[str]:
    """The commits that worked on a run, from its results file.

    Files written before the key ``git_commits_all_runs`` had its name hold
    ``git_commits_all_sessions``; both are read.
    """
    for key in ("git_commits_all_runs", "git_commits_all_sessions"):
        if key in res:
            return [str(c) for c in res[key]]
    raise ValueError("results file has no git_commits_all_runs (nor the older git_commits_all_sessions)")


def _stages(run: _Run, source: Path | None) -> dict[str, Any]:
    """The pipeline's stages, each resumed from its checkpoint: learner, recovery, observer, mu_phi."""
    if source is not None and not run.path("learner.pt").exists():
        _copy_learner(source, run)
    _learner(run)
    observed = _observed(run)
    learner_returns, learner_sampled = _learner_eval(run, observed)
    learner_paper = _learner_paper_code(run)
    reward, info = _recovery(run, observed)
    obs_rec = _observer(run, reward, observed, info.get("kl_weight"))
    mu_phi = _reward_policy_eval(run, reward)
    return {"observed": observed, "learner_returns": learner_returns, "learner_sampled": learner_sampled,
            "learner_paper": learner_paper, "info": info, "observer": obs_rec, "mu_phi": mu_phi}


def _observer_results(cfg: StudyConfig, obs_rec: dict[str, Any], first: float, last: float) -> dict[str, Any]:
    """The results file's ``observer`` entry."""
    steps = cfg.learner_ppo.n_envs * cfg.learner_ppo.n_steps
    ostep = cfg.observer_ppo.n_envs * cfg.observer_ppo.n_steps
    omean = [float(np.mean(r)) for r in obs_rec["returns"]]
    return {
        "updates": list(range(cfg.observer_updates + 1)),
        # the warm-up's rollouts (critic_warmup of them) come before the first update
        "env_steps": [(cfg.window[-1] - 1) * steps + (k + (cfg.critic_warmup if k else 0)) * ostep
                      for k in range(cfg.observer_updates + 1)],
        "returns": obs_rec["returns"],
        "score": omean,
        "normalized": [float(x) for x in normalize_scores(omean, first, last)],
        **({"critic_warmup": obs_rec["warmup"]} if cfg.critic_warmup else {}),
        **({"anchor_weight": obs_rec["anchor_weight"], "anchor_kl": obs_rec["anchor_kl"]}
           if "anchor_kl" in obs_rec else {}),
        **({"soft_alpha": obs_rec["soft_alpha"], "soft_entropy": obs_rec["soft_entropy"]}
           if "soft_alpha" in obs_rec else {}),
    }


def _results(run: _Run, stages: dict[str, Any], commits: dict[str, list[str]], command: str | None) -> dict[str, Any]:
    """The results file of a finished run."""
    cfg = run.cfg
    lmean = [float(np.mean(r)) for r in stages["learner_returns"]]
    steps = cfg.learner_ppo.n_envs * cfg.learner_ppo.n_steps
    first, lastscore = lmean[0], lmean[-1]
    res: dict[str, Any] = {
        "env_id": cfg.env_id,
        "seed": cfg.seed,
        "preset": cfg.preset,
        "config": cfg.to_dict(),
        "command": command or (f"lfl study --env {cfg.env_id} --seed {cfg.seed} --preset {cfg.preset}"
                               + ("" if cfg.estimator == "paper" else f" --estimator {cfg.estimator}")),
        "versions": versions(),
        "git_commit": commits["git_commits"][-1],
        "git_commits_all_runs": commits["git_commits"],
        "wall_time_s": round(sum(run.timings.values()), 1),
        "stage_time_s": {k: round(v, 1) for k, v in run.timings.items()},
        "evaluation": {
            "episodes": cfg.eval_episodes,
            "policy": "deterministic (mean action, clipped to the action box)",
            "reset_seeds": f"{cfg.eval_seed} + episode index",
            "score": "mean undiscounted true return",
        },
        "learner": {
            "updates": list(cfg.window),
            # the policy of update u has been trained on (u - 1) updates' steps
            "env_steps": [(u - 1) * steps for u in cfg.window],
            "returns": stages["learner_returns"],
            "score": lmean,
            "normalized": [float(x) for x in normalize_scores(lmean, first, lastscore)],
        },
        "observer": _observer_results(cfg, stages["observer"], first, lastscore),
        "recovery_losses": {k: float(v) for k, v in stages["info"].items()},
        "diagnostics": _diagnostics(stages["observed"], load_checkpoint(run.path("recovery.pt"), ["lfl"])["lfl"]),
    }
    res["final_observer_normalized"] = res["observer"]["normalized"][-1]
    res["scores"] = _protocol_scores(cfg, stages["learner_returns"], stages["learner_sampled"], stages["learner_paper"],
                                     stages["observer"], stages["mu_phi"])
    res["action_std"] = {
        "learner": [_sigma(PolicySnapshot.from_dict(o["policy"])) for o in stages["observed"]],
        "observer": stages["observer"]["sigma"],
        "reward_policy": stages["mu_phi"]["sigma"],
    }
    if cfg.estimator == "released-code":
        res["label"] = ("what the authors' released code computes (chained policy fits, all equal to the last; "
                        "observer from the last fit on the raw log-probability reward): what produced the paper's "
                        "numbers, not a method")
    note = _learner_from_note(run.run_dir)
    if note is not None:
        res["learner_from"] = note
    return res


def _protocol_scores(
    cfg: StudyConfig, learner_mean: list[list[float]], learner_sampled: list[list[float]],
    learner_paper: list[list[float]], obs: dict[str, list[Any]], mu_phi: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """``scores[PROTOCOL]`` of a results file, each normalized on its own learner scores."""
    n_obs = cfg.observer_updates
    sources = {
        "paper-code": (learner_paper, obs["paper_code"], None, list(range(n_obs)),
                       f"released code: mean of the last {PAPER_CODE_QUEUE} values of the per-step, per-environment "
                       "sum of info reward terms (sampled, unclipped actions) at the last step of each training "
                       "rollout; observer entry k is the rollout collected by its policy after k updates"),
        "sampled-return": (learner_sampled, obs["sampled"], mu_phi["sampled"], list(range(n_obs + 1)),
                           f"mean undiscounted true return of {cfg.eval_episodes} episodes with sampled actions, "
                           f"reset seeds {cfg.eval_seed} + i"),
        "mean-return": (learner_mean, obs["returns"], mu_phi["returns"], list(range(n_obs + 1)),
                        f"mean undiscounted true return of {cfg.eval_episodes} episodes with the mean action, "
                        f"reset seeds {cfg.eval_seed} + i"),
    }
    out: dict[str, dict[str, Any]] = {}
    for name, (lrn, obv, mu, pols, what) in sources.items():
        lm = [float(np.mean(v)) for v in lrn]
        om = [float(np.mean(v)) for v in obv]
        try:
            lnorm = [float(x) for x in normalize_scores(lm, lm[0], lm[-1])]
            onorm = [float(x) for x in normalize_scores(om, lm[0], lm[-1])]
        except ValueError:  # the first and last learner scores are equal: no normalization
            lnorm, onorm = [], []
        entry: dict[str, Any] = {
            "definition": what,
            "learner_returns": lrn,
            "learner_score": lm,
            "learner_normalized": lnorm,
            "observer_policy": pols,
            "observer_returns": obv,
            "observer_score": om,
            "observer_normalized": onorm,
            "final_observer_normalized": onorm[-1] if onorm else None,
        }
        if mu is not None:
            entry["reward_policy_returns"] = mu
            entry["reward_policy_normalized"] = (
                float(normalize_scores(np.mean(mu), lm[0], lm[-1])) if lnorm else None)
        out[name] = entry
    return out


def _parse_kl_weight(text: str) -> float | None:
    """``--kl-weight``: 'fit' (None) or a non-negative number."""
    if text.strip().lower() == "fit":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--kl-weight must be a number >= 0 or 'fit'; got {text!r}") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"--kl-weight must be a number >= 0 or 'fit'; got {text!r}")
    return value


#: The options of a run by their command-line names (``--NAME VALUE``, or a sweep's ``--option
#: NAME=VALUE``): name -> (the keyword of :func:`make_config`, the parser of its text).
RUN_OPTIONS: dict[str, tuple[str, Any]] = {
    "window": ("window", parse_window),
    "learner-updates": ("learner_updates", int),
    "observer-init": ("observer_init", str),
    "kl-weight": ("kl_weight", _parse_kl_weight),
    "terminal": ("terminal", str),
    "critic-warmup": ("critic_warmup", int),
    "observer-anchor": ("observer_anchor", str),
    "observer-obs-stats": ("observer_obs_stats", str),
    "observer-soft": ("observer_soft", str),
}


def config_from_options(env_id: str, seed: int, preset: str, estimator: str,
                        options: Sequence[tuple[str, str]] = ()) -> StudyConfig:
    """:func:`make_config` with ``options`` given as (name, text) pairs of :data:`RUN_OPTIONS`.

    Raises ValueError, naming the option, for an unknown name or a value that does not parse.
    """
    kwargs: dict[str, Any] = {}
    for name, text in options:
        if name not in RUN_OPTIONS:
            raise ValueError(f"option {name!r} is not an option of a study run; expected one of {', '.join(RUN_OPTIONS)}")
        keyword, parse = RUN_OPTIONS[name]
        try:
            kwargs[keyword] = parse(text)
        except ValueError as exc:
            raise ValueError(f"option {name}={text!r}: {exc}") from None
    return make_config(env_id, seed, preset, estimator=estimator, **kwargs)


def summary(cfg: StudyConfig, res: dict[str, Any], protocol: str = "mean-return") -> str:
    """The one line that ``lfl study`` prints at the end of a run."""
    final = protocol_scores(res, protocol)["final_observer_normalized"]
    shown = "undefined (equal learner scores)" if final is None else f"{final:.3f}"
    return (f"{cfg.env_id} seed {cfg.seed}: final observer score {shown} under {protocol} "
            f"(normalized; learner first/last observed = 0/1), wall time {res['wall_time_s']:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status (2 on bad input)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="lfl study", description=__doc__.split("\n\n")[0])
    p.add_argument("--env", required=True, help="gymnasium id, e.g. HalfCheetah-v5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", choices=["paper", "smoke"], default="paper")
    p.add_argument("--estimator", choices=list(ESTIMATORS), default="paper",
                   help="Algorithm 1's fits: the paper's settings, the fix of chapter 6 (exact log-std, "
                   "20%% held out for early stopping), or what the authors' released code computes")
    p.add_argument("--observer-init", choices=list(OBSERVER_INITS), default=None,
                   help="the observer's start (default: the estimator's; 'reward-policy' starts from pi_phi)")
    p.add_argument("--kl-weight", default="0", metavar="LAMBDA|fit",
                   help="learner model of the consistency targets: 0 the paper's SPI model (default), "
                   "a number > 0 the KL-regularized model with that lambda, 'fit' lambda fitted with the reward")
    p.add_argument("--terminal", choices=["absorbing", "bootstrap"], default="absorbing",
                   help="a termination in Eq. (5) and in the observer's PPO: absorbing with value 0 (default, "
                   "the paper's reading) or bootstrapped like a time-limit end, so that the reward's level "
                   "does not matter")
    p.add_argument("--critic-warmup", type=int, default=0, metavar="N",
                   help="rounds of critic-only training on the recovered reward (a rollout each, the actor "
                   "frozen) before the observer's first PPO update (default 0, the paper)")
    for flag, choices, text in (
        ("--observer-anchor", OBSERVER_ANCHORS, "'kl': a KL penalty to the observer's start policy, weighted by "
         "the KL model's lambda (needs --kl-weight); default 'none', the paper"),
        ("--observer-obs-stats", OBSERVER_OBS_STATS, "the observer's observation normalization after its start: "
         "'running' (default, the paper's PPO) or 'frozen' at the statistics its start was fitted under"),
        ("--observer-soft", OBSERVER_SOFT, "'model': the observer maximises the soft return of the recovered "
         "reward, entropy weighted by the learner model's alpha (alpha_model); default 'none', the paper"),
    ):  # the first choice is the paper's, the default
        p.add_argument(flag, choices=list(choices), default=choices[0], help=text)
    p.add_argument("--protocol", choices=list(PROTOCOLS), default="mean-return",
                   help="the scoring protocol of the summary line (the results file holds all three)")
    p.add_argument("--learner-from", default=None, help="run folder of a run with the same learner "
                   "(e.g. the paper-estimator run): copy its learner instead of training it again")
    p.add_argument("--window", default=None, help="observed updates: '10..20', '10..30:5' or '10,15,20' "
                   "(default: the paper's for the environment)")
    p.add_argument("--learner-updates", type=int, default=None, help="default: the last observed update")
    p.add_argument("--out", default=None, help="results folder (default book/data/mujoco for the paper preset)")
    p.add_argument("--run-dir", default=None, help="checkpoint folder (default runs/mujoco/ENV_seedN_PRESET)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(args_list)
    command = "lfl study " + " ".join(shlex.quote(a) for a in args_list)
    try:
        window = parse_window(args.window) if args.window else None
        kl_weight = _parse_kl_weight(args.kl_weight)
        cfg = make_config(args.env, args.seed, args.preset, window, args.learner_updates, args.estimator,
                          args.observer_init, kl_weight, args.terminal, args.critic_warmup, args.observer_anchor,
                          args.observer_obs_stats, args.observer_soft)
        res = run_study(cfg, args.out, args.run_dir, progress=not args.no_progress, command=command,
                        learner_from=args.learner_from)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary(cfg, res, args.protocol))
    return 0


if __name__ == "__main__":
    sys.exit(main())
