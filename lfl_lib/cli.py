"""``lfl recover`` and ``lfl observe``: Algorithm 1 on your own learner's logs, and the observer it trains.

Two commands of ``lfl`` (also ``python -m lfl_lib recover|observe``)::

    lfl recover --rollouts D1.npz D2.npz ... [--out DIR]
    lfl observe --reward DIR --env ENV_ID [--start DK.npz] [--out DIR]

``recover`` reads one ``.npz`` file per observed policy, in the order of the learning
(arrays ``observations``, ``actions``, ``next_observations``, ``terminations``,
``truncations``; see :mod:`lfl_lib.data`), and writes ``reward.pt`` (continuous:
:func:`lfl_lib.observer.save_reward`) or ``reward.npz`` (``--tabular``: the array ``r``
of shape (S, A)) with ``recover_report.json`` (losses, fitted standard deviations, the
data's shapes, the settings, versions, command, wall time). ``observe`` trains and scores
an observer on that reward (continuous: PPO, :func:`lfl_lib.observer.train_observer`;
tabular: the optimal soft policy, played in the environment) and writes
``observe_report.json`` (and ``policy.pt`` for PPO).

Output folders default to the current working directory. Long stages show progress
bars and checkpoint; Ctrl-C stops with exit status 130 and the same command resumes.
Files are written atomically, and bad input is reported (exit status 2) before anything
is written.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Sequence, cast

import numpy as np

from ._io import versions, write_json, write_npz

__all__ = ["main"]

INTERRUPTED = "interrupted; run the same command again to resume"

#: Step counts of Algorithm 1's four stages for ``--preset``.
RECOVER_PRESETS: dict[str, dict[str, int]] = {
    "paper": {},  # DeepLfLConfig's defaults (Section 6.3)
    "fast": {"policy_steps": 300, "kl_steps": 50, "reward_init_steps": 300, "consistency_steps": 300},
}


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}; got {text!r}") from exc
        if not np.isfinite(v) or v <= 0:
            raise argparse.ArgumentTypeError(f"expected a finite number > 0; got {text!r}")
        return v

    return parse


def _kl_weight(text: str) -> float | None:
    """``--kl-weight``: ``fit`` (None, the weight fitted from the data) or a finite number >= 0."""
    if text == "fit":
        return None
    try:
        v = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected 'fit' or a number >= 0; got {text!r}") from exc
    if not np.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"expected 'fit' or a finite number >= 0; got {text!r}")
    return v


def _out_dir(arg: str | None) -> Path:
    out = Path(arg) if arg else Path.cwd()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a folder")
    if not out.parent.exists():
        raise ValueError(f"--out {str(out)!r}: its parent folder does not exist")
    return out


class _Folder:
    """Creates the output folder on first use; removes it again if it stayed empty after a failure."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.created = False

    def make(self) -> Path:
        if not self.path.exists():
            self.path.mkdir()
            self.created = True
        return self.path

    def cleanup(self) -> None:
        if self.created and self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()


# ------------------------------------------------------------------ recover


def _recover_continuous(args: argparse.Namespace, folder: _Folder, command: str) -> dict[str, Any]:
    from .data import check_rollouts, load_rollout
    from .observer import save_reward
    from .recovery import recover_with_checkpoints

    rollouts = check_rollouts([load_rollout(p) for p in args.rollouts], "--rollouts")
    env_id = args.env or _logged_env_id(args.rollouts)
    if env_id is not None:
        _check_env_fits(env_id, rollouts[0])
    cfg = _recover_config(args)
    shapes = {str(p): {k: list(v.shape) for k, v in r.to_arrays().items()} for p, r in zip(args.rollouts, rollouts)}
    key = {
        "config": cfg.to_dict(),
        "seed": args.seed,
        "rollouts": [str(p) for p in args.rollouts],
        "sizes": [len(r) for r in rollouts],
    }
    out = folder.path
    report_path, ck = out / "recover_report.json", out / "recover_checkpoint.pt"
    if report_path.exists() and (out / "reward.pt").exists():
        old = json.loads(report_path.read_text())
        if old.get("key") == key:
            print(f"already done: {out / 'reward.pt'}")
            return old
        raise ValueError(
            f"--out {str(out)!r} already holds a reward recovered from other data or settings; choose another --out"
        )
    t0 = time.perf_counter()
    folder.make()
    rec = recover_with_checkpoints(rollouts, cfg, ck, seed=args.seed, key=key, progress=not args.no_progress)
    report = _recover_report(command, key, shapes, cfg, args.seed, rec, time.perf_counter() - t0)
    report["env"] = env_id
    if rollouts[0].n_actions is not None:
        report["n_actions"] = rollouts[0].n_actions
    save_reward(
        rec.reward, folder.make() / "reward.pt", {"settings": cfg.to_dict(), "rollouts": list(shapes)}, env=env_id
    )
    write_json(report, out / "recover_report.json")
    ck.unlink(missing_ok=True)
    return report


def _recover_config(args: argparse.Namespace) -> Any:
    """The :class:`~lfl_lib.deep_lfl.DeepLfLConfig` of ``lfl recover``'s options (preset, estimator, overrides)."""
    from .deep_lfl import ESTIMATORS, DeepLfLConfig

    settings = {**RECOVER_PRESETS[args.preset], **ESTIMATORS[args.estimator]}
    if args.steps is not None:
        settings.update({k: args.steps for k in ("policy_steps", "kl_steps", "reward_init_steps", "consistency_steps")})
    if args.alpha_model is not None:
        settings["alpha_model"] = args.alpha_model
    if args.gamma is not None:
        settings["gamma"] = args.gamma
    if args.terminal == "reset":
        raise ValueError(
            "--terminal 'reset' is for --tabular with --env; a continuous recovery takes "
            "'absorbing' (default) or 'bootstrap'"
        )
    settings["terminal"] = args.terminal
    if args.kl_weight != 0.0:
        settings["kl_weight"] = args.kl_weight
    return DeepLfLConfig(**settings)


def _recover_report(
    command: str, key: dict[str, Any], shapes: dict[str, Any], cfg: Any, seed: int, rec: Any, wall_s: float
) -> dict[str, Any]:
    """The report of a continuous recovery (``recover_report.json``), before the environment's entries."""

    def sig(sd: dict[str, Any], k: str) -> list[float] | None:
        return [round(float(x), 5) for x in sd[k].exp()] if k in sd else None  # None: categorical policies

    return {
        "command": command,
        "key": key,
        "kind": "continuous",
        "rollouts": shapes,
        "settings": cfg.to_dict(),
        "seed": seed,
        "losses": {k: float(v) for k, v in rec.losses.items()},
        "fitted_policy_std": [sig(sd, "log_std") for sd in rec.state["policies"]],
        "reward_std": sig(rec.state["reward"], "policy.log_std"),
        "versions": versions(),
        "wall_time_s": round(wall_s, 1),
    }


def _logged_env_id(paths: Sequence[str]) -> str | None:
    """The environment id of a :func:`lfl_lib.sb3.LearnerLog` folder (its ``learner_log.json``), if any."""
    log = Path(paths[0]).parent / "learner_log.json"
    try:
        env_id = json.loads(log.read_text()).get("env_id") if log.is_file() else None
    except (OSError, ValueError):
        return None
    return env_id if isinstance(env_id, str) else None


def _check_env_fits(env_id: str, rollout: Any) -> None:
    """--env must be a gymnasium id whose spaces are the data's."""
    import gymnasium as gym

    try:
        env = gym.make(env_id)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"--env {env_id!r} is not a gymnasium environment ({type(exc).__name__}: {exc})") from exc
    try:
        obs_dim = int(np.prod(env.observation_space.shape or (0,)))
        space = env.action_space
        n = rollout.n_actions
        fits = obs_dim == rollout.obs_dim and (
            (n is not None and isinstance(space, gym.spaces.Discrete) and int(space.n) == n)
            or (n is None and isinstance(space, gym.spaces.Box) and int(np.prod(space.shape)) == rollout.act_dim)
        )
        if not fits:
            kind = f"Discrete({n})" if n is not None else f"{rollout.act_dim}-d continuous"
            raise ValueError(
                f"--env {env_id!r} has {env.observation_space} and {space}; the rollouts have "
                f"{rollout.obs_dim}-d observations and {kind} actions"
            )
    finally:
        env.close()


def _check_distinct(paths: Sequence[str]) -> None:
    """The same file twice is refused: Algorithm 1 explains an improvement between two different policies."""
    seen: dict[Path, str] = {}
    for p in paths:
        key = Path(p).resolve()
        if key in seen:
            raise ValueError(
                f"--rollouts names the same file twice ({seen[key]!r} and {p!r}); give one file per "
                "observed policy, in order"
            )
        seen[key] = p


def _tabular_model(args: argparse.Namespace) -> tuple[int, int, Any, Any]:
    """(S, A, P or None, mdp or None) from --env or --n-states/--n-actions."""
    if args.env:
        import gymnasium as gym

        from .mdp import TabularMDP

        try:
            env = gym.make(args.env)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(
                f"--env {args.env!r} is not a gymnasium environment ({type(exc).__name__}: {exc})"
            ) from exc
        mdp = TabularMDP.from_gymnasium(
            env, gamma=args.gamma if args.gamma is not None else 0.99, terminal=args.terminal
        )
        env.close()
        return mdp.n_states, mdp.n_actions, mdp.P, mdp
    if args.n_states is None or args.n_actions is None:
        raise ValueError("--tabular needs --env ENV_ID (a toy-text environment) or both --n-states and --n-actions")
    return args.n_states, args.n_actions, None, None


def _recover_tabular(args: argparse.Namespace, folder: _Folder, command: str) -> dict[str, Any]:
    from .data import load_episodes
    from .tabular_lfl import fit_lfl

    if args.learner_model is None:
        args.learner_model = "spi"
    if args.kl_weight != 0.0:
        raise ValueError(
            f"--kl-weight is for a continuous recovery (--tabular models soft policy iteration); "
            f"got {args.kl_weight if args.kl_weight is not None else 'fit'}"
        )
    if args.terminal == "bootstrap":
        raise ValueError(
            "--terminal 'bootstrap' is for a continuous recovery; --tabular takes 'absorbing' (default) or 'reset'"
        )
    data = [load_episodes(p) for p in args.rollouts]
    if len(data) < 2:
        raise ValueError(f"--rollouts must name at least 2 files, one per observed policy; got {len(data)}")
    S, A, P, mdp = _tabular_model(args)
    gamma = args.gamma if args.gamma is not None else 0.99
    alpha_model = args.alpha_model if args.alpha_model is not None else 1.0
    t0 = time.perf_counter()
    if args.learner_model == "auto" and not args.no_progress:
        print(
            "learner model 'auto': fitting each candidate on half of the data and scoring it on the other "
            "half (several fits: slower than one model)",
            file=sys.stderr,
            flush=True,
        )
    res = fit_lfl(
        cast(Any, data), S, A, gamma, alpha_model, P=P, learner_model=args.learner_model, progress=not args.no_progress
    )
    report = {
        "command": command,
        "kind": "tabular",
        "rollouts": {
            str(p): {"episodes": len(eps), "transitions": int(sum(len(e) for e in eps))}
            for p, eps in zip(args.rollouts, data)
        },
        "settings": {
            "n_states": S,
            "n_actions": A,
            "gamma": gamma,
            "alpha_model": alpha_model,
            "env": args.env,
            "terminal": args.terminal if args.env else None,
            "transitions": "known (from --env)" if P is not None else "estimated",
            "learner_model": res.learner_model,
            "kl_weight": res.kl_weight,
        },
        "reward_range": [float(res.r.min()), float(res.r.max())],
        "versions": versions(),
        "wall_time_s": round(time.perf_counter() - t0, 3),
    }
    out = folder.make()

    write_npz({"r": res.r}, out / "reward.npz")
    write_json(report, out / "recover_report.json")
    return report


# ------------------------------------------------------------------ observe


def _observe_tabular(args: argparse.Namespace, folder: _Folder, command: str) -> dict[str, Any]:
    import gymnasium as gym

    from .mdp import TabularMDP
    from .tabular_lfl import observer_policy, play_policy

    rpath = Path(args.reward)
    rfile = rpath / "reward.npz" if rpath.is_dir() else rpath
    with np.load(rfile, allow_pickle=False) as z:
        r_hat = z["r"]
    rep_file = rfile.parent / "recover_report.json"
    terminal = json.loads(rep_file.read_text())["settings"].get("terminal") if rep_file.exists() else None
    env = gym.make(args.env)
    mdp = TabularMDP.from_gymnasium(env, gamma=0.99, terminal=terminal or "absorbing")
    if r_hat.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"--reward has shape {r_hat.shape}; {args.env} has (S, A) = ({mdp.n_states}, {mdp.n_actions})")
    pi = observer_policy(mdp, r_hat, args.alpha)
    returns = play_policy(env, pi, args.eval_episodes, seed=args.seed, greedy=args.greedy)
    report = {
        "command": command,
        "kind": "tabular",
        "env": args.env,
        "alpha": args.alpha,
        "greedy": args.greedy,
        "episodes": args.eval_episodes,
        "mean_return": float(returns.mean()),
        "versions": versions(),
    }
    out = folder.make()
    write_json(report, out / "observe_report.json")

    write_npz({"pi": pi}, out / "policy.npz")
    return report


def _observe_continuous(args: argparse.Namespace, folder: _Folder, command: str) -> dict[str, Any]:
    from . import _safe_io
    from .data import load_rollout
    from .observer import load_reward, reward_settings, train_observer
    from .ppo import PPOConfig, check_env_id

    reward = load_reward(args.reward)
    check_env_id(args.env, allow_discrete=True)
    start = load_rollout(args.start) if args.start else None
    if args.terminal == "reset":
        raise ValueError(
            "--terminal 'reset' is for a tabular reward; a continuous observer takes 'absorbing' or 'bootstrap'"
        )
    # by default, terminations are treated as the recovery treated them (its settings travel in reward.pt)
    terminal = args.terminal or reward_settings(args.reward).get("terminal", "absorbing")
    boot = {"bootstrap_terminations": terminal == "bootstrap"}
    if args.preset == "paper":
        ppo_cfg = PPOConfig(anneal_updates=max(args.updates, 1), **boot)
    else:
        ppo_cfg = PPOConfig(
            n_envs=4, n_steps=512, n_epochs=10, n_minibatches=8, anneal_updates=max(args.updates, 1), **boot
        )
    out = folder.make()
    t0 = time.perf_counter()
    res = train_observer(
        args.env,
        reward,
        start=start,
        updates=args.updates,
        ppo_config=ppo_cfg,
        bc_steps=args.bc_steps,
        seed=args.seed,
        eval_episodes=args.eval_episodes,
        checkpoint=out / "observe_checkpoint.pt",
        progress=not args.no_progress,
        freeze_obs_stats=args.obs_stats == "frozen",
        strict=args.strict,
    )
    report = {
        "command": command,
        "kind": "continuous",
        "env": args.env,
        "updates": args.updates,
        "terminal": terminal,
        "obs_stats": args.obs_stats,
        "ppo": ppo_cfg.to_dict(),
        "start": "behaviour cloning of " + str(args.start) if args.start else "fresh actor",
        "evaluation": {
            "episodes": args.eval_episodes,
            "policy": "deterministic mean action",
            "score": "mean undiscounted true return",
        },
        "scores": res.scores,
        "returns": res.returns,
        "versions": versions(),
        "wall_time_s": round(time.perf_counter() - t0, 1),
    }
    _safe_io.save(res.policy.to_dict(), out / "policy.pt")
    write_json(report, out / "observe_report.json")
    (out / "observe_checkpoint.pt").unlink(missing_ok=True)
    return report


# ------------------------------------------------------------------ main


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lfl", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    _add_recover(sub)
    _add_observe(sub)
    return p


def _add_recover(sub: Any) -> None:
    """The subcommand ``recover`` and its options."""
    r = sub.add_parser(
        "recover",
        help="recover a reward from one .npz file per observed policy",
        description="Algorithm 1 on one .npz file per observed policy, in the order of the learning.",
    )
    r.add_argument(
        "--rollouts",
        nargs="+",
        required=True,
        metavar="D.npz",
        help="one file per observed policy, in order (at least 2)",
    )
    r.add_argument("--out", default=None, help="output folder (default: the current working directory)")
    r.add_argument("--tabular", action="store_true", help="integer states and actions (tabular Algorithm 1)")
    r.add_argument(
        "--env",
        default=None,
        help="tabular: a toy-text env id whose transition table is used as P; "
        "continuous: the learner's env id, recorded in reward.pt and checked against the data's spaces "
        "(default: the env_id of a learner_log.json beside the rollouts)",
    )
    r.add_argument(
        "--learner-model",
        choices=["spi", "kl", "svi", "auto"],
        default=None,
        help="tabular: the learner model (default spi; 'auto' chooses by a held-out likelihood and takes several fits)",
    )
    r.add_argument(
        "--terminal",
        choices=["absorbing", "reset", "bootstrap"],
        default="absorbing",
        help="a termination: absorbing with value 0 (default); tabular with --env: 'reset' cells; "
        "continuous: 'bootstrap', an ordinary state, so that the reward's level is a shaping (chapter 6)",
    )
    r.add_argument("--n-states", type=int, default=None, help="tabular without --env")
    r.add_argument("--n-actions", type=int, default=None, help="tabular without --env")
    r.add_argument(
        "--alpha-model",
        type=_positive(float),
        default=None,
        help="entropy weight of the modelled learner (default 0.7 continuous, 1.0 tabular)",
    )
    r.add_argument("--gamma", type=float, default=None, help="discount (default 0.99)")
    r.add_argument(
        "--preset",
        choices=list(RECOVER_PRESETS),
        default="paper",
        help="continuous: step counts of the four stages (paper: 1000/100/3000/1000; fast: 300/50/300/300)",
    )
    r.add_argument(
        "--steps",
        type=int,
        default=None,
        help="continuous: the same step count for all four stages (overrides --preset; for quick tries)",
    )
    r.add_argument(
        "--estimator",
        choices=["paper", "fix"],
        default="paper",
        help="continuous: the paper's fits, or chapter 6's fix (exact log-std, 20%% held out)",
    )
    r.add_argument(
        "--kl-weight",
        type=_kl_weight,
        default=0.0,
        metavar="{fit,LAMBDA}",
        help="continuous: the learner model's KL penalty lambda (default 0, soft policy iteration as in "
        "the paper); 'fit' estimates it from the data, the choice of chapter 6",
    )
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--debug", action="store_true", help="print the traceback of an error")


def _add_observe(sub: Any) -> None:
    """The subcommand ``observe`` and its options."""
    o = sub.add_parser(
        "observe",
        help="train and score an observer on a recovered reward",
        description="Train an observer on a recovered reward and score it on the true reward.",
    )
    o.add_argument("--reward", required=True, help="folder (or file) written by recover")
    o.add_argument("--env", required=True, help="gymnasium id of the learner's environment")
    o.add_argument("--out", default=None, help="output folder (default: the current working directory)")
    o.add_argument(
        "--start",
        default=None,
        metavar="DK.npz",
        help="continuous: start by behaviour cloning of this rollout (the last observed one)",
    )
    o.add_argument("--updates", type=int, default=30, help="continuous: PPO updates (default 30, the paper's)")
    o.add_argument(
        "--preset",
        choices=["paper", "small"],
        default="paper",
        help="continuous PPO size: paper (32 envs x 2048 steps) or small (4 x 512)",
    )
    o.add_argument(
        "--terminal",
        choices=["absorbing", "bootstrap"],
        default=None,
        help="continuous: a termination ends the observer's return ('absorbing') or is bootstrapped like "
        "a time limit ('bootstrap'); default: as the recovery treated it",
    )
    o.add_argument(
        "--obs-stats",
        choices=["running", "frozen"],
        default="frozen",
        help="continuous: the observation normalization after the start: 'frozen' (default) at the "
        "statistics the start was fitted under (chapter 6), or 'running' (the paper's PPO)",
    )
    o.add_argument("--bc-steps", type=int, default=3000, help="continuous: behaviour-cloning steps (default 3000)")
    o.add_argument("--alpha", type=_positive(float), default=0.01, help="tabular: the observer's entropy weight")
    o.add_argument("--greedy", action="store_true", help="tabular: play argmax of the observer's policy")
    o.add_argument("--eval-episodes", type=int, default=10, help="episodes of the score (default 10)")
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    o.add_argument("--no-progress", action="store_true")
    o.add_argument(
        "--strict", action="store_true", help="refuse a reward recovered on another environment id (default: a warning)"
    )
    o.add_argument("--debug", action="store_true", help="print the traceback of an error")


def _check_args(args: argparse.Namespace) -> None:
    """The checks of the options that argparse does not make; a ValueError names the option."""
    for name in ("seed",):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name} must be >= 0; got {getattr(args, name)}")
    if args.cmd == "observe":
        if args.updates < 0 or args.bc_steps < 1 or args.eval_episodes < 1:
            raise ValueError("--updates must be >= 0, --bc-steps and --eval-episodes >= 1")
    if args.cmd == "recover" and args.gamma is not None and not 0 <= args.gamma < 1:
        raise ValueError(f"--gamma must be in [0, 1); got {args.gamma}")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1; got {args.threads}")


def _run(args: argparse.Namespace, folder: _Folder, command: str) -> None:
    """Run the subcommand and print its one-line summary."""
    if args.cmd == "recover":
        _check_distinct(args.rollouts)
        if not args.tabular and args.learner_model is not None:
            raise ValueError("--learner-model is for --tabular; a continuous recovery takes --kl-weight")
        rep = (_recover_tabular if args.tabular else _recover_continuous)(args, folder, command)
        if "losses" in rep:
            print(f"reward written to {folder.path}; losses: {rep['losses']}")
        else:
            lo, hi = rep["reward_range"]
            print(
                f"reward written to {folder.path}; reward range [{lo:.4g}, {hi:.4g}], learner model "
                f"{rep['settings']['learner_model']}"
            )
    else:
        rpath = Path(args.reward)
        if not rpath.exists():
            raise ValueError(f"--reward {args.reward!r} does not exist")
        tabular = (rpath / "reward.npz").exists() if rpath.is_dir() else rpath.suffix == ".npz"
        rep = (_observe_tabular if tabular else _observe_continuous)(args, folder, command)
        score = rep.get("mean_return", rep.get("scores", [None])[-1])
        print(f"observer on {args.env}: mean true return {score:.3f}; report in {folder.path}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 done, 1 unexpected error, 2 bad input, 130 interrupted).

    An error is reported on one line (``--debug`` adds its traceback); an output folder that
    the run created and left empty is removed.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(args_list)
    command = "lfl " + " ".join(shlex.quote(a) for a in args_list)
    folder: _Folder | None = None
    try:
        _check_args(args)
        folder = _Folder(_out_dir(args.out))
        if not getattr(args, "tabular", False):
            import torch

            torch.set_num_threads(args.threads)
        _run(args, folder, command)
    except KeyboardInterrupt:
        if folder is not None:
            folder.cleanup()
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except ValueError as exc:
        if folder is not None:
            folder.cleanup()
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - an unexpected failure: one line, the traceback with --debug
        if folder is not None:
            folder.cleanup()
        if args.debug:
            traceback.print_exc()
        where = "" if args.debug else " (run again with --debug for the traceback)"
        print(f"error: unexpected {type(exc).__name__}: {exc}{where}", file=sys.stderr)
        return 1
    return 0
