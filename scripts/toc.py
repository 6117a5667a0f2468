"""Read the book's ``_toc.yml``: the docnames of its pages, in reading order.

Shared by ``scripts/exec_times.py``, ``scripts/link_api.py`` and the browser test.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml


def toc_docnames(toc_path: Path) -> list[str]:
    """Docnames (paths without ``.md``/``.ipynb``) of every page of ``toc_path``, root first."""
    toc = yaml.safe_load(Path(toc_path).read_text())
    names = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [re.sub(r"\.(md|ipynb)$", "", n) for n in names]
