"""Internal helpers for files and provenance: one atomic writer, one provenance.

Every file the library or its drivers write goes through :func:`atomic_write`, so nothing
half-written is ever left on disk. :func:`git_commit`, :func:`versions` and
:func:`provenance` record where a result came from (the command, the commit of the code
that ran, the versions of the libraries, the wall time).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Callable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

#: The folder of this package: git is asked about the commit of the code that runs.
_SOURCE = Path(__file__).resolve().parent


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a temporary binary file in ``path``'s folder, then rename it to ``path``.

    The file gets the usual mode (mkstemp's would be private); on any error, Ctrl-C included,
    the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(data: bytes, path: str | Path) -> None:
    """Write ``data`` to ``path`` atomically."""

    def write(f: IO[bytes]) -> None:
        f.write(data)

    atomic_write(path, write)


def write_text(text: str, path: str | Path) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(text.encode(), path)


def write_json(obj: Any, path: str | Path, sort_keys: bool = True, mkdir: bool = False) -> None:
    """Write ``obj`` as JSON (indent 1, a final newline) to ``path`` atomically.

    ``mkdir``: create ``path``'s folder first if it is missing.
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    write_text(json.dumps(obj, indent=1, sort_keys=sort_keys) + "\n", path)


def read_json(path: str | Path, what: str) -> Any:
    """The JSON in ``path``; a missing or corrupt file raises a ValueError naming ``what`` and ``path``."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{what} {path} is corrupt or unreadable ({type(exc).__name__}); delete it") from exc


def write_npz(arrays: Mapping[str, NDArray[Any]], path: str | Path, compressed: bool = False) -> None:
    """``numpy.savez`` (``savez_compressed`` if ``compressed``) of ``arrays`` to ``path`` atomically."""
    save: Callable[..., None] = np.savez_compressed if compressed else np.savez
    atomic_write(path, lambda f: save(f, **arrays))


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=_SOURCE, capture_output=True, text=True, check=True).stdout.strip()


def git_commit() -> str:
    """The git commit of the running code, or ``"unknown"`` outside a git checkout."""
    try:
        return _git("rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def modified_since_commit(paths: Sequence[str]) -> bool | None:
    """Whether any of ``paths`` (relative to the repository root) has uncommitted changes; None if unknown."""
    try:
        return bool(_git("status", "--porcelain", "--", *(":/" + p for p in paths)))
    except (OSError, subprocess.CalledProcessError):
        return None


def versions(packages: Sequence[str] = ("lfl_lib", "numpy", "torch", "gymnasium", "mujoco")) -> dict[str, str]:
    """``{"python": ..., package: version, ...}`` for the installed ``packages`` (missing ones left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def provenance(
    command: str, wall_s: float, pipeline: Sequence[str] = (), packages: Sequence[str] = ("numpy", "scipy")
) -> dict[str, Any]:
    """The command, git commit, library versions and wall time of a computation.

    ``pipeline_modified_since_commit`` is true when one of the files ``pipeline`` had
    uncommitted changes when the computation ended.
    """
    return {
        "command": command,
        "git_commit": git_commit(),
        "pipeline_modified_since_commit": modified_since_commit(pipeline) if pipeline else None,
        **versions(packages),
        "wall_time_s": round(wall_s, 1),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
