"""Headless Chromium driven by Playwright for the live pages' tests: Debian's chromium, never a downloaded one."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

pytest.importorskip("playwright.async_api", reason="Playwright for Python is in the dev extra: pip install -e '.[dev]'")
from playwright.async_api import Page, async_playwright, expect

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"  # where the report test leaves its screenshot too
CHROMIUM = shutil.which("chromium")
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
WAIT_MS = 30_000  # Playwright's waits give up after this: a page that never changes fails, it does not hang

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no `chromium` on PATH: run scripts/install-browser.sh (Debian's chromium) to enable"
)


@asynccontextmanager
async def browser_page(width: int = 1280, height: int = 1000) -> AsyncIterator[Page]:
    """A fresh page in a fresh headless Chromium; the browser (and its helpers) end with the block."""
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = await browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(WAIT_MS)
            expect.set_options(timeout=WAIT_MS)
            yield page
        finally:
            await browser.close()


def css_string(value: str) -> str:
    """`value` as a quoted CSS string, for an attribute selector on a hostile id."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name
