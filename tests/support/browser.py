"""Debian's chromium driven by playwright, for the pages checked in a real browser. Without
playwright or chromium a test skips with the reason locally, and fails under CI=true."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.support.ci import missing

CHROMIUM = os.environ.get("WARROOM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def need(condition: bool, reason: str) -> None:
    """A missing browser fails the build in CI and is only a skip (with the reason) locally."""
    if not condition:
        missing(reason)


def chromium_found() -> bool:
    return Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None


@asynccontextmanager
async def launch_chromium() -> AsyncIterator[Any]:
    """A headless chromium, closed on the way out."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        need(False, "playwright is not installed (pip install playwright)")
    need(
        chromium_found(),
        f"no chromium at {CHROMIUM} (apt-get install chromium, or set WARROOM_CHROMIUM)",
    )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()
