"""Typed numbers in the book's prose: each must be glued from a cell or marked as the paper's.

The convention (book/notation.md, "Numbers in the text"):

- a number the book computes is glued from the cell that computes it, with myst-nb:
  ``glue("name", value)`` in the cell, ``{glue:text}`name:.2f``` in the text;
- a number the paper prints or states (a result, a setting) is marked with the ``paper`` role,
  ``{paper}`4.68```, which renders it as the paper's;
- a number assigned to a parameter in math, ``$\\alpha_m = 0.7$``, or a set of values a parameter
  ranges over, ``$\\epsilon \\in \\{0.05, 0.5\\}$``, is a setting (not a result);
- section, table, figure and equation numbers, headings, code and links are not numbers in
  this sense, and neither are integers (counts, seeds, indices): only numbers with a decimal
  point are checked.

Anything else with a decimal point in a markdown cell (or a ``.md`` page) is a typed number,
and this script lists it. Run on every page of ``_toc.yml`` (no argument), it exits 1 if a page
that is not in :data:`EXEMPT` has one; ``make test`` runs it through
``tests/test_prose_numbers.py``, and ``make check`` runs it directly.

Usage: python scripts/prose_numbers.py [page.ipynb | page.md ...]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]

#: Pages whose prose is not (yet) held to the rule, each with the reason. Every other page of
#: the table of contents must pass.
EXEMPT: dict[str, str] = {
    # A computation by hand: each decimal is the rounded value of a closed form derived in the
    # same paragraph (inside display math, where no role can go), and the cell after the
    # paragraph recomputes every one of them with lfl_lib and prints it.
    "book/two_state_example.ipynb": "a hand computation whose decimals the cells below recompute",
}

#: A number with a decimal point, not part of a longer token (a version 1.2.0, a word).
NUMBER = re.compile(r"(?<![\w.])\d+\.\d+(?!\d|\.\d|\w)")
#: Roles whose content is not prose: glued values, the paper's numbers, cross-references, code.
ROLE = re.compile(r"\{[\w:.-]+\}`[^`]*`")
CODE = re.compile(r"`[^`\n]*`")
FENCE_LINE = re.compile(r"^(`{3,}|~{3,}).*$", re.M)  # a directive's opening or closing line
LINK_TARGET = re.compile(r"\]\([^)]*\)")
#: "Section 5.4", "sections 5.4 and 5.5", "§6.2", "Table 2", "Eq. (5)": references, not numbers.
REFERENCE = re.compile(
    r"(?i)(?:\b(?:sections?|chapters?|tables?|figs?\.?|figures?|eqs?\.|equations?|algorithm|theorem|lemma|appendix)|§)"
    r"\s*\(?\d+(?:\.\d+)*\)?(?:\s*(?:,|and|or|-|\u2013|to)\s*\(?\d+(?:\.\d+)*\)?)*"
)
#: In math: a parameter set to a value, "\alpha_m = 0.7", "\gamma = 0.96" (not "\hat\lambda = ...").
SETTING = re.compile(
    r"(?<!\\hat)(?<!\\hat )(?<!\\bar)\\(?:alpha|gamma|lambda|beta|sigma|epsilon|varepsilon|eta|rho|tau|kappa|delta|nu|mu)"
    r"(?:_\{(?:[^{}]|\{[^{}]*\})*\}|_\\?\w+)?"
    r"(?:\s*=\s*-?\d+(?:\.\d+)?|\s*\\in\s*\\\{[-\d.,\s]*\\\})"
)  # = a value, or \in \{a set of values\}
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]*\$", re.S)
HEADING = re.compile(r"^(#+\s+)[\d.]+\s", re.M)
OPTION = re.compile(r"^:[\w-]+:.*$", re.M)
FENCE = re.compile(r"^(`{3,}|~{3,})(?!\{)[^\n]*\n.*?^\1\s*$", re.M | re.S)


def prose(source: str) -> str:
    """The prose of a markdown cell: what is left once code, roles, references and settings are removed."""
    text = FENCE.sub(" ", source)
    text = FENCE_LINE.sub(" ", text)
    text = OPTION.sub(" ", text)
    text = HEADING.sub(r"\1", text)
    text = ROLE.sub(" ", text)
    text = CODE.sub(" ", text)
    text = LINK_TARGET.sub("] ", text)
    text = MATH.sub(lambda m: SETTING.sub(" ", m.group(0)), text)
    text = REFERENCE.sub(" ", text)
    return text


def typed_numbers(source: str) -> list[str]:
    """The numbers with a decimal point typed in one markdown source, in order."""
    return NUMBER.findall(prose(source))


def page_numbers(path: Path) -> list[tuple[int, str]]:
    """(cell index, number) of every typed number in a notebook's markdown cells (index 0 for a .md page)."""
    if path.suffix == ".md":
        return [(0, n) for n in typed_numbers(path.read_text())]
    nb = nbformat.read(path, as_version=4)
    return [
        (i, n) for i, cell in enumerate(nb.cells) if cell.cell_type == "markdown" for n in typed_numbers(cell.source)
    ]


def toc_pages(root: Path = ROOT) -> list[Path]:
    """Every page of ``_toc.yml``, as a path (``.ipynb`` or ``.md``)."""
    files = re.findall(r"(?:root|file):\s*(\S+)", (root / "_toc.yml").read_text())
    pages = []
    for f in files:
        for ext in (".ipynb", ".md"):
            if (root / (f + ext)).is_file():
                pages.append(root / (f + ext))
                break
        else:
            raise FileNotFoundError(f"_toc.yml names {f}, which is neither a notebook nor a .md page")
    return pages


def check(pages: list[Path], root: Path = ROOT) -> dict[str, list[tuple[int, str]]]:
    """The typed numbers of each page that is not exempt (pages without any are left out)."""
    out = {}
    for p in pages:
        rel = p.resolve().relative_to(root).as_posix() if p.resolve().is_relative_to(root) else str(p)
        if rel in EXEMPT:
            continue
        found = page_numbers(p)
        if found:
            out[rel] = found
    return out


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    pages = [Path(a) for a in argv] if argv else toc_pages()
    for p in pages:
        if not p.is_file():
            print(f"{p}: no such page", file=sys.stderr)
            return 2
    bad = check(pages)
    for rel, found in bad.items():
        for i, n in found:
            print(f"{rel}: cell {i}: {n} is typed: glue it, or mark it {{paper}}`{n}` if the paper states it")
    if not argv:
        for rel, why in EXEMPT.items():
            print(f"{rel}: not checked ({why})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
