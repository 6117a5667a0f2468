"""Experiment drivers: the programs that write ``book/data/``. The library never imports them.

Each module is one subcommand of ``lfl`` (``lfl SUBCOMMAND --help``):
:mod:`~lfl_lib.experiments.table2` (``lfl table2``), :mod:`~lfl_lib.experiments.table2_study`
(``lfl table2-study``), :mod:`~lfl_lib.experiments.table2_extended` (``lfl table2-extended``),
:mod:`~lfl_lib.experiments.baselines` (``lfl baselines``), :mod:`~lfl_lib.experiments.study`
(``lfl study``), :mod:`~lfl_lib.experiments.terminations` (``lfl terminations``),
:mod:`~lfl_lib.experiments.sweep` (``lfl sweep``) and :mod:`~lfl_lib.experiments.learner_logs`
(``lfl learner-logs``). Default output folders are relative to the current folder, the
repository's root when the Makefile runs them.
"""
