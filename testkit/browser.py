"""Debian's headless Chromium, driven by Playwright, for the page tests (no browser is ever downloaded).

`make test` and `.ci/run` install the `chromium` package when it is missing (`tools/ensure_chromium.sh`, which
reads the same CHROMIUM_BIN); Playwright is pointed at it with `executable_path`, so `playwright install` is never
needed. Without it, a page test fails (never skips). Pages are opened at a laptop viewport by default.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu"]  # root in a container needs --no-sandbox


class BrowserMissingError(RuntimeError):
    """Chromium is not installed: `bash tools/ensure_chromium.sh` installs it (`make test` and CI run it)."""


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser (playwright.sync_api.Browser) for the block."""
    if not os.path.exists(CHROMIUM):
        raise BrowserMissingError(f"{CHROMIUM} not found: run `bash tools/ensure_chromium.sh` (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def chromium_with(browser: Any, extra_args: list[str]) -> Iterator[Any]:
    """A second headless Chromium from the same Playwright as `browser` (one Playwright per process), with
    more command-line flags, e.g. `--host-resolver-rules=MAP attacker.test 127.0.0.1`."""
    launched = browser.browser_type.launch(executable_path=CHROMIUM, headless=True,
                                           args=[*CHROMIUM_ARGS, *extra_args])
    try:
        yield launched
    finally:
        launched.close()


def page_errors(page: Any) -> list[str]:
    """Collects the page's uncaught JavaScript errors (a test asserts the list stays empty)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def has_horizontal_overflow(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth"))
