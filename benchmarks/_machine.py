"""The machine a benchmark ran on, as its results file records it (shared by the benchmarks' scripts).

The scripts run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path`` and
``from _machine import machine`` finds this module.
"""

from __future__ import annotations

import os
import platform


def machine() -> dict[str, object]:
    """Python and torch versions, the CPU, its number of cores, and a note that others shared it."""
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "note": "a shared 2-core machine: other processes ran beside the benchmark",
    }
