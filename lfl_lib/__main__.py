"""The ``lfl`` command (also ``python -m lfl_lib``): one entry point, a subcommand per task.

``lfl recover`` and ``lfl observe`` run Algorithm 1 and its observer on a user's own logs
(:mod:`lfl_lib.cli`); the others run the experiment drivers of ``lfl_lib.experiments``,
which produce the book's data. ``lfl SUBCOMMAND --help`` describes each one.

This module is the application's entry point, not part of the library: it is the one
place outside ``lfl_lib.experiments`` that names the drivers, and it imports a
subcommand's module only when that subcommand runs.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Sequence

#: Subcommand -> (module that runs it, one-line description).
COMMANDS: dict[str, tuple[str, str]] = {
    "recover": ("lfl_lib.cli", "recover a reward from one file per observed policy (Algorithm 1)"),
    "observe": ("lfl_lib.cli", "train and score an observer on a recovered reward"),
    "study": ("lfl_lib.experiments.study", "the MuJoCo study of chapter 6: learner, recovery, observer"),
    "sweep": ("lfl_lib.experiments.sweep", "a grid of study runs on Ray"),
    "terminations": ("lfl_lib.experiments.terminations", "the observer's episode ends of finished study runs"),
    "learner-logs": ("lfl_lib.experiments.learner_logs", "the study's learner run longer, every update kept"),
    "reward-bench": (
        "lfl_lib.experiments.reward_bench",
        "the reward benchmark: learned rewards ranked against the learner's future",
    ),
    "reward-observers": (
        "lfl_lib.experiments.reward_observers",
        "observers trained on the benchmark's learned rewards (T-REX)",
    ),
    "lq-state-term": (
        "lfl_lib.experiments.lq_state_term",
        "Algorithm 1 with and without a state term on the LQ test bed",
    ),
    "table2": ("lfl_lib.experiments.table2", "Table 2 of the paper (chapter 5)"),
    "table2-study": ("lfl_lib.experiments.table2_study", "chapter 5's estimator study and ablations"),
    "table2-extended": ("lfl_lib.experiments.table2_extended", "the extended Table 2 of chapter 8"),
    "baselines": ("lfl_lib.experiments.baselines", "chapter 7's table: BC and max-ent IRL beside LfL"),
}

#: Subcommands whose tiny matrices run slower with OpenBLAS worker threads (set before numpy loads).
_SINGLE_BLAS = ("baselines",)


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return (
        "usage: lfl SUBCOMMAND [ARGS ...]   (also: python -m lfl_lib SUBCOMMAND ...)\n\n"
        "Learning from a Learner: the library's commands and the book's experiment drivers.\n\n"
        "subcommands:\n" + "\n".join(lines) + "\n\n`lfl SUBCOMMAND --help` describes each one."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lfl``; returns the exit status of the subcommand (2 for an unknown one)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    if args[0] == "--version":
        from . import __version__

        print(f"lfl_lib {__version__}")
        return 0
    name = args[0]
    if name not in COMMANDS:
        print(f"lfl: unknown subcommand {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    if name in _SINGLE_BLAS and "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    module = importlib.import_module(COMMANDS[name][0])
    status = module.main(args) if module.__name__ == "lfl_lib.cli" else module.main(args[1:])
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
