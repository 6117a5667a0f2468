"""Fixtures of the real-browser test: a localhost server of _build/html and headless Chromium.

Kept out of ``tests/`` on purpose: it needs the built book (``make book``) and Debian's
``chromium`` + ``chromium-driver`` (``make browser-deps``). Run it with ``make browser-test``.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("BOOK_HTML", REPO / "_build" / "html"))
OUTPUT = Path(os.environ.get("BROWSER_TEST_OUTPUT", REPO / "test-output"))
CHROMIUM = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = (os.environ.get("CHROMEDRIVER_BIN") or shutil.which("chromedriver")
                or "/usr/bin/chromedriver")

#: Chromium's flags: headless, no sandbox (root in CI), and nothing that phones home.
#: --host-resolver-rules makes every host but localhost unresolvable, so a page that
#: needs the network to render fails here even on a machine that has one.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1024",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: opens the built book in headless Chromium")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass


@pytest.fixture(scope="session")
def base_url():
    """Serve the built book on 127.0.0.1 (a free port) for the whole session."""
    if not (BUILD / "index.html").exists():
        pytest.fail(f"{BUILD}/index.html not found: build the book first (make book)")
    handler = functools.partial(_QuietHandler, directory=str(BUILD))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def driver():
    """Headless Debian Chromium driven by selenium; skipped only if Chromium is absent."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.skip(
            f"Chromium is not installed ({', '.join(missing)} missing): run `make browser-deps` "
            "(apt-get install chromium chromium-driver) to run the real-browser test"
        )
    # Selenium's driver manager must never download a browser or a driver.
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="lfl-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: selenium's driver manager is never asked to download one.
    service = Service(executable_path=CHROMEDRIVER)
    drv = webdriver.Chrome(service=service, options=options)
    drv.set_page_load_timeout(120)
    drv.set_script_timeout(120)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def screenshot_dir():
    path = OUTPUT / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.png"):  # only this run's pages
        old.unlink()
    return path
