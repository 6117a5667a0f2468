"""Sphinx extension: the ``paper`` role marks a number quoted from the paper.

``{paper}`4.68``` renders as the text ``4.68`` in a ``<span class="paper">`` (plain text to the
reader; the sentence around it says that the value is the paper's). The book's prose-number check
(``scripts/prose_numbers.py``) accepts a number in this role, or glued from a cell, and
flags any other number typed in prose.
"""

from __future__ import annotations

from docutils import nodes


def paper_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    node = nodes.inline(rawtext, text, classes=["paper"])
    return [node], []


def setup(app):
    app.add_role("paper", paper_role)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
