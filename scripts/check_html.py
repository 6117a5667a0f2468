"""Check that the built HTML book is self-contained: every internal link resolves.

Usage: python scripts/check_html.py [_build/html]

Crawls every ``.html`` file of the build and checks, using only the standard library:

- every internal ``href``/``src`` (links, images, scripts, stylesheets, iframes) names a
  file that exists in the build, and a ``#fragment`` names an ``id`` of the target page;
- no page *loads* anything from the network (a ``script``, stylesheet, image, font or
  iframe with an ``http(s)://`` or ``//`` address): the book must render offline.
  Ordinary ``<a href="https://...">`` links to outside pages are allowed: a reader
  follows them on purpose;
- every ``url(...)`` in the build's CSS files resolves to a local file or a ``data:`` URI.

Prints one line per problem and a summary; exits 1 if anything is broken.
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: (tag, attribute) pairs whose value the browser fetches when the page loads.
LOADED = {
    ("script", "src"),
    ("img", "src"),
    ("iframe", "src"),
    ("source", "src"),
    ("video", "src"),
    ("audio", "src"),
    ("embed", "src"),
    ("object", "data"),
}
#: rel values of <link> that make the browser fetch the target.
LOADED_REL = {"stylesheet", "preload", "icon", "shortcut", "modulepreload", "prefetch"}
SKIP_SCHEMES = ("mailto:", "javascript:", "data:", "tel:", "about:")


class _Page(HTMLParser):
    """Collects the ids and the outgoing references of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str, str, bool]] = []  # (tag, attr, value, loaded)

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        for key in ("id", "name"):
            if a.get(key):
                self.ids.add(a[key])
        if tag == "link" and a.get("href"):
            rels = set(a.get("rel", "").lower().split())
            self.refs.append((tag, "href", a["href"], bool(rels & LOADED_REL)))
        elif tag == "a" and a.get("href"):
            self.refs.append((tag, "href", a["href"], False))
        for attr in ("src", "data"):
            if a.get(attr) and (tag, attr) in LOADED:
                self.refs.append((tag, attr, a[attr], True))

    handle_startendtag = handle_starttag


def _is_external(url: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url)) or url.startswith("//")


def check(root: Path) -> list[str]:
    root = root.resolve()
    pages: dict[Path, _Page] = {}
    for path in sorted(root.rglob("*.html")):
        if path.relative_to(root).parts[0] == "_static":
            continue  # theme templates (Jinja macros), not pages
        parser = _Page()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        pages[path] = parser

    def ids_of(path: Path) -> set[str] | None:
        page = pages.get(path)
        return None if page is None else page.ids

    problems: list[str] = []
    n_refs = 0
    for path, page in pages.items():
        rel = path.relative_to(root)
        for tag, attr, value, loaded in page.refs:
            n_refs += 1
            value = value.strip()
            if not value or value.lower().startswith(SKIP_SCHEMES):
                continue
            if _is_external(value):
                if loaded:
                    problems.append(f"{rel}: <{tag} {attr}> loads from the network: {value}")
                continue
            parts = urlsplit(value)
            target = path if not parts.path else (path.parent / unquote(parts.path))
            target = Path(*target.parts)  # normalise without following symlinks
            try:
                target = target.resolve()
                target.relative_to(root)
            except ValueError:
                problems.append(f"{rel}: <{tag} {attr}> points outside the build: {value}")
                continue
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                problems.append(f"{rel}: <{tag} {attr}> missing target: {value}")
                continue
            frag = unquote(parts.fragment)
            if frag and target.suffix == ".html":
                ids = ids_of(target)
                if ids is not None and frag not in ids:
                    problems.append(
                        f"{rel}: <{tag} {attr}> missing anchor #{frag} in {target.relative_to(root)}: {value}"
                    )

    n_css = 0
    for css in sorted(root.rglob("*.css")):
        text = re.sub(r"/\*.*?\*/", "", css.read_text(encoding="utf-8", errors="replace"), flags=re.S)
        for m in re.finditer(r"url\(\s*(['\"]?)(.*?)\1\s*\)", text):
            url = m.group(2).strip()
            n_css += 1
            if not url or url.startswith(("data:", "#")):
                continue
            if _is_external(url):
                problems.append(f"{css.relative_to(root)}: url() loads from the network: {url}")
                continue
            target = (css.parent / unquote(urlsplit(url).path)).resolve()
            if not target.exists():
                problems.append(f"{css.relative_to(root)}: url() missing target: {url}")
    for line in problems:
        print(line)
    print(f"checked {len(pages)} pages, {n_refs} links, {n_css} CSS urls: {len(problems)} problem(s)")
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "_build/html")
    if not (root / "index.html").exists():
        print(f"{root}/index.html not found: build the book first (make book)")
        return 2
    return 1 if check(root) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
