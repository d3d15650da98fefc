"""Headless Chromium for browser tests (Debian's package, driven by Playwright)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import services_required

__all__ = ["CHROMIUM", "chromium_page"]

CHROMIUM = Path("/usr/bin/chromium")
# Without these, Chromium tries to reach Google's services at start and on a closed network
# its connections are refused many at a time.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium_page() -> Iterator[Any]:
    """A fresh page in headless Chromium; skips (fails in CI) where no browser is installed."""
    if not CHROMIUM.exists():
        reason = f"no browser at {CHROMIUM} (Debian package chromium)"
        if services_required():
            pytest.fail(f"{reason} (ERPGW_REQUIRE_SERVICES=1)")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            yield page
        finally:
            browser.close()
