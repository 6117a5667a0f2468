"""List the numbers in a notebook's prose that no cell output of the same notebook prints.

Every number in the book's prose comes from a cell or is quoted from the paper. After the
data behind a chapter change and the chapter is re-executed, this finds the prose numbers
that no output shows any more, for a reader (or an author) to check by hand. Numbers with a
decimal point only (counts and section numbers are too common to check this way).

Usage: python scripts/prose_numbers.py book/06_mujoco.ipynb [more notebooks]
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

NUMBER = re.compile(r"(?<![\w.])[-\u2212]?\d+\.\d+(?![\w.])")


def _numbers(text: str) -> set[str]:
    # LaTeX minus signs: "$-0.50" and "-0.50" are the same number
    text = text.replace("$", " ").replace("\u2212", "-").replace("{", " ").replace("}", " ")
    return set(NUMBER.findall(text))


def unsupported(path: Path) -> list[tuple[int, str]]:
    """The (cell index, number) pairs of markdown numbers that no code output of ``path`` prints."""
    nb = nbformat.read(path, as_version=4)
    printed: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            text = out.get("text") or "".join(out.get("data", {}).get("text/plain", ""))
            printed |= _numbers(text)
            # a printed "-0.50" supports a prose "0.50" quoted without its sign, and the reverse
            printed |= {n.lstrip("-") for n in _numbers(text)}
    missing = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            missing += [(i, n) for n in sorted(_numbers(cell.source)) if n not in printed and n.lstrip("-") not in printed]
    return missing


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    for name in argv:
        path = Path(name)
        if not path.is_file():
            print(f"{name}: no such notebook", file=sys.stderr)
            return 2
        for i, n in unsupported(path):
            print(f"{name}: cell {i}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
