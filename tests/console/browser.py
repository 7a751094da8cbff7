"""Debian's headless Chromium driven by Playwright, for console tests: a page that records every request leaving
the console's server and every error the page raises, and a folder for screenshots that the test names."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [  # no background traffic: this machine's network is closed, and the console must work offline
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 20_000


def playwright() -> Any:
    """Playwright's ``sync_playwright``; skips (with the reason) where Chromium or the package is missing."""
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium package (scripts/test does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e .[test])")
    return sync_playwright


def screenshots(tmp_path: Path) -> Path:
    """Where screenshots go: ``$SCALEOUT_SCREENSHOTS``, else a folder under the test's temporary directory."""
    shots = Path(os.environ.get("SCALEOUT_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    return shots


@dataclass
class ConsolePage:
    """A browser page on the console at ``url``; ``outside`` and ``problems`` collect what must stay empty."""

    page: Any
    url: str
    outside: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def check(self) -> None:
        """The console reached nothing beyond its server and the page raised no error."""
        assert not self.outside, f"the console reached beyond its server: {self.outside}"
        assert not self.problems, f"the page raised errors: {self.problems}"


@contextmanager
def console_page(url: str) -> Iterator[ConsolePage]:
    """A fresh Chromium page watching requests and page errors; the browser is closed at the end."""
    with playwright()() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(WAIT_MS)
            watched = ConsolePage(page, url)
            page.on("request", lambda r: None if r.url.startswith(url) else watched.outside.append(r.url))
            page.on("pageerror", lambda e: watched.problems.append(str(e)))
            yield watched
        finally:
            browser.close()
