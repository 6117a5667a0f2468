"""Sphinx extension: drop duplicated inline ``<script>`` blocks from every page.

Sphinx 7.4 re-adds the scripts registered after ``Builder.init()`` (sphinx-thebe's and
sphinx-togglebutton's configuration snippets) with ``filename=''`` next to the copies it
already holds with ``filename=None``, so each page declares ``const THEBE_JS_URL`` twice
and the browser reports "Identifier 'THEBE_JS_URL' has already been declared". This keeps
the first copy of each script (same file or same inline body, same attributes).
"""

from __future__ import annotations


def _dedupe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen = set()
    unique = []
    for js in scripts:
        attrs = getattr(js, "attributes", {}) or {}
        key = (getattr(js, "filename", str(js)) or "", tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(js)
    scripts[:] = unique


def setup(app):
    # Late priority: after the extensions that add per-page scripts.
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
