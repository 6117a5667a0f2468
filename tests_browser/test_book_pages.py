"""Open every page of the built book in headless Chromium and check what a reader sees.

For each page listed in ``_toc.yml`` (in reading order): it loads without console errors
and without fetching anything from outside localhost; every formula is typeset by MathJax
(no raw ``$...$``, ``\\(`` or ``\\[`` left in the text, no MathJax error); every image has
loaded with a non-zero size; chapters 3 and 4 show theorem and proof boxes; the "next"
link leads to the next page of the table of contents. A screenshot of each page is saved
under ``test-output/screenshots/``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.browser

sys.path.insert(0, str(REPO / "scripts"))
from toc import toc_docnames  # noqa: E402

TOC = Path(os.environ.get("BOOK_TOC", REPO / "_toc.yml"))


PAGES = toc_docnames(TOC)
#: Pages that state and prove theorems: their boxes must be rendered (sphinx-proof).
THEOREM_PAGES = re.compile(r"(^|/)0[34]_")

#: Wait for MathJax's first typeset and for every image to settle (loaded or failed).
WAIT_FOR_PAGE = r"""
const done = arguments[arguments.length - 1];
const t0 = Date.now();
function imagesSettled() {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { if (i.loading === 'lazy') i.loading = 'eager'; });
  return Promise.all(imgs.map(i => i.complete ? Promise.resolve() : new Promise(r => {
    i.addEventListener('load', r, {once: true});
    i.addEventListener('error', r, {once: true});
  })));
}
function mathTypeset() {
  if (!document.querySelector('.math')) return Promise.resolve('no math on the page');
  return new Promise((resolve, reject) => {
    (function poll() {
      if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
        MathJax.startup.promise.then(() => resolve('typeset'), e => reject('MathJax: ' + e));
      } else if (Date.now() - t0 > 90000) {
        reject('MathJax did not load within 90 s');
      } else {
        setTimeout(poll, 100);
      }
    })();
  });
}
Promise.all([mathTypeset(), imagesSettled()]).then(
  v => done({ok: true, math: v[0]}),
  e => done({ok: false, error: String(e)}));
"""

#: What a reader would notice, gathered from the rendered DOM.
INSPECT_PAGE = r"""
const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
const maths = Array.from(document.querySelectorAll('span.math, div.math'));
const untypeset = maths.filter(m => !m.querySelector('mjx-container'))
                       .map(m => m.textContent.trim().slice(0, 80));
const mathErrors = Array.from(document.querySelectorAll('mjx-merror'))
                        .map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 80));
const clone = article.cloneNode(true);
clone.querySelectorAll('pre, code, script, style, textarea, mjx-container, .highlight')
     .forEach(e => e.remove());
const images = Array.from(article.querySelectorAll('img')).map(i => ({
  src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth, height: i.naturalHeight}));
const kinds = ['theorem', 'lemma', 'corollary', 'proposition', 'definition', 'algorithm',
               'remark', 'example', 'conjecture', 'axiom', 'criterion', 'observation',
               'property', 'assumption', 'notation'];
const boxes = Array.from(document.querySelectorAll('div.proof'));
const statements = boxes.filter(d => ['theorem', 'lemma', 'corollary', 'proposition']
                                      .some(k => d.classList.contains(k)));
const proofs = boxes.filter(d => !kinds.some(k => d.classList.contains(k)));
const foreign = performance.getEntriesByType('resource').map(e => e.name)
                           .filter(n => !n.startsWith(location.origin));
const next = document.querySelector('a.right-next');
return {
  title: document.title,
  h1: document.querySelectorAll('h1').length,
  nMath: maths.length,
  typeset: document.querySelectorAll('mjx-container').length,
  untypeset: untypeset,
  mathErrors: mathErrors,
  text: clone.textContent,
  images: images,
  nStatements: statements.length,
  nProofs: proofs.length,
  foreign: foreign,
  next: next ? next.href : null,
};
"""

RAW_MATH = re.compile(r"\\\(|\\\[|\$\$|\$[^$\s][^$\n]{0,200}?\$")


def _severe_console_messages(driver) -> list[str]:
    messages = []
    for entry in driver.get_log("browser"):
        if entry.get("level") != "SEVERE":
            continue
        # The browser's own request for /favicon.ico (the book declares none) is not
        # something a reader sees.
        if "favicon.ico" in entry.get("message", ""):
            continue
        messages.append(entry["message"])
    return messages


@pytest.mark.parametrize("page", PAGES)
def test_page_as_a_reader_sees_it(page, base_url, driver, screenshot_dir):
    url = f"{base_url}/{page}.html"
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(url)
    waited = driver.execute_async_script(WAIT_FOR_PAGE)
    info = driver.execute_script(INSPECT_PAGE)
    shot = screenshot_dir / (page.replace("/", "__") + ".png")
    driver.save_screenshot(str(shot))
    console = _severe_console_messages(driver)

    assert waited["ok"], f"{page}: {waited.get('error')}"
    assert info["h1"] >= 1, f"{page}: no page title rendered"
    assert not console, f"{page}: console errors: {console}"
    assert not info["foreign"], f"{page}: fetched from outside localhost: {info['foreign']}"

    # Every formula typeset, none left raw, none in error.
    assert not info["untypeset"], f"{page}: formulas left untypeset: {info['untypeset'][:5]}"
    assert not info["mathErrors"], f"{page}: MathJax errors: {info['mathErrors'][:5]}"
    assert info["typeset"] >= info["nMath"], f"{page}: {info['nMath']} formulas, {info['typeset']} typeset"
    raw = [m.group(0)[:60] for m in RAW_MATH.finditer(info["text"])]
    assert not raw, f"{page}: raw TeX left in the text: {raw[:5]}"

    # Every image loaded, with a non-zero size.
    broken = [i["src"] for i in info["images"] if not (i["complete"] and i["width"] > 0 and i["height"] > 0)]
    assert not broken, f"{page}: images not loaded: {broken}"

    if THEOREM_PAGES.search(page):
        assert info["nStatements"] >= 1, f"{page}: no theorem/lemma box rendered"
        assert info["nProofs"] >= 1, f"{page}: no proof box rendered"

    # The "next" link reaches the next page of the table of contents.
    index = PAGES.index(page)
    if index + 1 < len(PAGES):
        expected = f"{base_url}/{PAGES[index + 1]}.html"
        assert info["next"] == expected, f"{page}: next link is {info['next']}, expected {expected}"
        link = driver.find_element("css selector", "a.right-next")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", link)
        link.click()
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(driver, 60).until(lambda d: d.current_url.split("#")[0] == expected)
        assert driver.find_elements("css selector", "h1"), f"{expected}: no title after navigation"
    else:
        assert info["next"] is None, f"{page}: the last page links to {info['next']}"
