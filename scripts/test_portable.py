"""``make test-portable``: the CPU-sensitive tests and notebooks again under other BLAS code paths.

    python scripts/test_portable.py

BLAS libraries pick their kernels by the CPU, so a result stored on one x86-64 machine may
round differently on another. This check emulates, on the machine it runs on, the code
paths that another CPU would take, each in fresh processes (the libraries read their
variables once, when they load), and runs under each the files whose outputs were found to
move with the code path (``CPU_SENSITIVE``; found by running the whole unit suite and every
notebook under ``MKL_CBWR=COMPATIBLE OPENBLAS_CORETYPE=Prescott``). Those tests and
notebook cells compare with tolerances measured across the same paths
(``scripts/code_paths.py``), so any failure here means an output moved beyond its stated
tolerance. A path that needs an instruction set this CPU lacks is skipped with a message.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: The files whose outputs depend on the code path (tests at a measured tolerance, notebooks
#: with a visible check of their live values against the stored ones).
CPU_SENSITIVE = [
    "tests/test_deep_lfl_kl.py",
    "book/appendix_lq.ipynb",
    "book/your_own_learner.ipynb",
]

#: (name, variables, CPU flag the path needs or None). "native" unsets the project's pin
#: (what a user gets without lfl_lib's setting); the others combine one path of each
#: library, so that a few runs cover MKL, OpenBLAS and oneDNN.
PATHS: list[tuple[str, dict[str, str], str | None]] = [
    ("native (nothing pinned)", {"LFL_NATIVE_CODE_PATH": "1"}, None),
    ("MKL COMPATIBLE, OpenBLAS Prescott (SSE3)", {"MKL_CBWR": "COMPATIBLE", "OPENBLAS_CORETYPE": "Prescott"}, None),
    (
        "MKL AVX2, OpenBLAS Haswell, oneDNN AVX2",
        {"MKL_CBWR": "AVX2", "OPENBLAS_CORETYPE": "Haswell", "ONEDNN_MAX_CPU_ISA": "AVX2"},
        "avx2",
    ),
    ("MKL AVX512, OpenBLAS SkylakeX", {"MKL_CBWR": "AVX512", "OPENBLAS_CORETYPE": "SkylakeX"}, "avx512f"),
]
VARIABLES = ("MKL_CBWR", "OPENBLAS_CORETYPE", "ONEDNN_MAX_CPU_ISA", "LFL_NATIVE_CODE_PATH")


def cpu_flags() -> set[str]:
    """The instruction-set flags of the first CPU in /proc/cpuinfo (empty where it is missing)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def main() -> int:
    flags = cpu_flags()
    tests = [f for f in CPU_SENSITIVE if f.startswith("tests/")]
    books = [f for f in CPU_SENSITIVE if f.endswith(".ipynb")]
    failed = []
    for name, extra, needs in PATHS:
        if needs and needs not in flags:
            print(f"SKIPPED {name}: this CPU lacks {needs}", flush=True)
            continue
        env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)
        print(f"=== {name}: {' '.join(f'{k}={v}' for k, v in extra.items())}", flush=True)
        for args in (tests, ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", "book/sanitize.cfg", *books]):
            rc = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=REPO, env=env
            ).returncode
            if rc:
                failed.append(name)
    if failed:
        print("FAILED under: " + "; ".join(dict.fromkeys(failed)))
        return 1
    print("every CPU-sensitive output stayed within its tolerance on every emulated path")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
