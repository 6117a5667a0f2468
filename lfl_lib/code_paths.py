"""The BLAS code paths that the project pins, so that results do not depend on the CPU's brand.

torch's BLAS (Intel MKL) picks its kernels by the CPU it runs on: an AVX-512 path on Intel
processors that have it, an AVX2 path on AMD ones, and the two round float sums
differently. ``MKL_CBWR=AVX2`` (MKL's conditional numerical reproducibility branch) makes
it take the AVX2 path on every x86-64 CPU with AVX2. MKL reads the variable once, when it
initializes, so it must be in the environment before torch's first BLAS call: importing
``lfl_lib`` sets it (without importing torch), and a value that the user set explicitly
wins. ``LFL_NATIVE_CODE_PATH=1`` leaves every variable alone (used to measure the cost and
the effect of the setting, see ``scripts/code_paths.py``).
"""

from __future__ import annotations

import os

#: Variables set by :func:`pin` unless already set.
PINNED: dict[str, str] = {"MKL_CBWR": "AVX2"}


def pin() -> dict[str, str]:
    """Set each variable of :data:`PINNED` that is not set yet; return the values in force.

    Does nothing when ``LFL_NATIVE_CODE_PATH`` is ``1``. Has an effect only if it runs before
    the library that reads the variable initializes (for MKL: torch's first matrix product).
    """
    if os.environ.get("LFL_NATIVE_CODE_PATH") != "1":
        for key, value in PINNED.items():
            os.environ.setdefault(key, value)
    return {key: os.environ[key] for key in PINNED if key in os.environ}
