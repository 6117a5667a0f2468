"""Link each page's first mention of an ``lfl_lib`` name to its API reference entry.

Usage: python scripts/link_api.py [--write] [PAGE ...]

A page (a chapter notebook or a Markdown page; by default every page of ``_toc.yml``
except the API page itself) mentions library code as inline code: ```soft_evaluate```,
```lfl_lib.mdp.soft_evaluate```, ```mdp.soft_evaluate```, ```score(mdp, pi, alpha)```,
```TabularMDP```. The first such mention of each public name of ``lfl_lib`` (its
modules' ``__all__``) in the page's Markdown becomes a cross-reference,
``{py:func}`lfl_lib.mdp.soft_evaluate``` (or ``py:class``, ``py:meth``, ``py:data``,
``py:mod``), keeping the text the reader saw when it held more than the name. Code cells,
outputs, code blocks, math, headings and directive options are left alone, so a notebook
needs no re-execution. Without ``--write`` the planned changes are only printed.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toc import toc_docnames  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SKIP_PAGES = {"book/api"}
#: A MyST role ({name}`...`) or a span of inline code (`...`), scanned left to right so
#: that a role's closing backtick is never taken for the opening of inline code.
INLINE_CODE = re.compile(r"(?P<role>\{[\w:.-]+\}`[^`\n]*`)|(?<!`)`(?P<code>[^`\n]+)`(?!`)")


def api_names() -> tuple[dict[str, tuple[str, str]], dict[str, set[str]]]:
    """Qualified name -> (role, qualified name), and short name -> the qualified names it may mean."""
    import lfl_lib

    qualified: dict[str, tuple[str, str]] = {}
    for info in pkgutil.walk_packages(lfl_lib.__path__, "lfl_lib."):
        if info.name.rsplit(".", 1)[-1].startswith("_") or info.ispkg:
            continue
        modname = info.name
        try:
            module = importlib.import_module(modname)
        except Exception:  # noqa: BLE001 - a module that does not import is not documented either
            continue
        qualified[modname] = ("py:mod", modname)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name, None)
            full = f"{modname}.{name}"
            if inspect.isclass(obj):
                qualified[full] = ("py:class", full)
                for attr, value in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    if inspect.isfunction(value) or isinstance(value, (classmethod, staticmethod)):
                        qualified[f"{full}.{attr}"] = ("py:meth", f"{full}.{attr}")
                    elif isinstance(value, property):
                        qualified[f"{full}.{attr}"] = ("py:attr", f"{full}.{attr}")
            elif inspect.isfunction(obj):
                qualified[full] = ("py:func", full)
    short: dict[str, set[str]] = {}
    for full, (role, _) in qualified.items():
        parts = full.split(".")
        for k in range(1, len(parts)):
            suffix = ".".join(parts[k:])
            if role == "py:mod" and k > 1:
                continue
            short.setdefault(suffix, set()).add(full)
    return qualified, short


def resolve(text: str, qualified, short) -> str | None:
    """The qualified lfl_lib name that an inline-code mention denotes, if exactly one."""
    name = text.strip()
    m = re.match(r"^([A-Za-z_][\w.]*)(\(.*\))?$", name)
    if not m:
        return None
    dotted = m.group(1)
    if dotted in qualified:
        return dotted
    candidates = short.get(dotted, set())
    if len(candidates) == 1:
        full = next(iter(candidates))
        # A bare short name must be long enough not to be a variable (`P`, `r`, `pi`).
        if "." in dotted or len(dotted) >= 5 or qualified[full][0] in ("py:class", "py:mod"):
            return full
    return None


def link_markdown(text: str, seen: set[str], qualified, short) -> tuple[str, list[str]]:
    """Link first mentions in one Markdown text; ``seen`` carries state across cells."""
    out, changes = [], []
    fences: list[tuple[str, bool]] = []  # open fences: (marker, holds code or math)
    in_math = False
    for line in text.split("\n"):
        stripped = line.strip()
        m = re.match(r"^(`{3,}|~{3,}|:{3,})\s*(.*)$", stripped)
        if m:
            marker, info = m.group(1), m.group(2).strip()
            if fences and not info and marker[0] == fences[-1][0][0] and len(marker) >= len(fences[-1][0]):
                fences.pop()
                out.append(line)
                continue
            if not (fences and fences[-1][1]):
                # A directive ({prf:theorem}, {note}, ...) holds Markdown; other fences hold code.
                is_code = not info.startswith("{") or info.startswith(("{code", "{math", "{eval-rst", "{raw"))
                fences.append((marker, is_code))
                out.append(line)
                continue
        if fences and fences[-1][1]:
            out.append(line)
            continue
        if stripped.count("$$") % 2 == 1:
            in_math = not in_math
            out.append(line)
            continue
        if (
            in_math
            or "$$" in stripped
            or stripped.startswith("#")
            or re.match(r"^:\w[\w-]*:", stripped)
            or re.match(r"^\([\w-]+\)=$", stripped)
        ):
            out.append(line)
            continue
        out.append(_link_line(line, seen, qualified, short, changes))
    return "\n".join(out), changes


def _link_line(line: str, seen: set[str], qualified, short, changes: list[str]) -> str:
    if re.match(r"^\s*:\w[\w-]*:", line):  # a directive option such as :label:
        return line
    # Leave inline math alone: split the line on $...$ spans and only touch the rest.
    pieces = re.split(r"(\$[^$]+\$)", line)
    for i, piece in enumerate(pieces):
        if piece.startswith("$") and piece.endswith("$") and len(piece) > 1:
            continue

        def replace(m: re.Match) -> str:
            if m.group("role") is not None:
                return m.group(0)
            text = m.group("code")
            full = resolve(text, qualified, short)
            if full is None or full in seen:
                return m.group(0)
            seen.add(full)
            role, target = qualified[full]
            label = text.strip()
            if label == full:
                new = f"{{{role}}}`{target}`"
            else:
                new = f"{{{role}}}`{label} <{target}>`"
            changes.append(f"{m.group(0)} -> {new}")
            return new

        pieces[i] = INLINE_CODE.sub(replace, piece)
    return "".join(pieces)


def already_linked(text: str) -> set[str]:
    found = set()
    for m in re.finditer(r"\{py:\w+\}`(?:[^`<]*<)?([\w.]+)>?`", text):
        found.add(m.group(1))
    return found


def toc_pages() -> list[Path]:
    pages = []
    for stem in toc_docnames(REPO / "_toc.yml"):
        if stem in SKIP_PAGES:
            continue
        for ext in (".ipynb", ".md"):
            if (REPO / f"{stem}{ext}").exists():
                pages.append(REPO / f"{stem}{ext}")
                break
    return pages


def process(path: Path, write: bool, qualified, short) -> int:
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if c.cell_type == "markdown"]
        seen = set().union(*(already_linked(c.source) for c in cells)) if cells else set()
        changes = []
        for cell in cells:
            new, ch = link_markdown(cell.source, seen, qualified, short)
            if ch:
                cell.source = new
                changes += ch
        if changes and write:
            nbformat.write(nb, path)
    else:
        text = path.read_text()
        seen = already_linked(text)
        new, changes = link_markdown(text, seen, qualified, short)
        if changes and write:
            path.write_text(new)
    rel = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    for change in changes:
        print(f"{rel}: {change}")
    return len(changes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", type=Path)
    parser.add_argument("--write", action="store_true", help="edit the pages (default: only print)")
    args = parser.parse_args(argv)
    qualified, short = api_names()
    pages = [p.resolve() for p in args.pages] or toc_pages()
    total = sum(process(p, args.write, qualified, short) for p in pages)
    print(f"{total} link(s) {'written' if args.write else 'to write (dry run; --write to apply)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
