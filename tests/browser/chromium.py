"""Headless Chromium for browser tests: Debian's browser driven by Playwright, every request recorded.

Playwright's own browser downloads are never used (they would fetch from the internet): it launches the
system Chromium (``$CHROMIUM_BIN`` or ``/usr/bin/chromium``). Every request the page makes is recorded
through a DevTools-protocol session (``Network.requestWillBeSent``), and any request that is not to
loopback is aborted, so a test can assert where a page went without letting it get there.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator
from urllib.parse import urlsplit

import pytest

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


def find_chromium() -> str | None:
    """Path of a Chromium binary: ``$CHROMIUM_BIN``, ``/usr/bin/chromium``, then the usual names on PATH."""
    for path in (os.environ.get("CHROMIUM_BIN"), "/usr/bin/chromium"):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return next((found for name in _CANDIDATES if (found := shutil.which(name))), None)


def require_chromium() -> str:
    """Return the binary, or skip the calling test (fail instead when ``CI`` is set)."""
    binary = find_chromium()
    if binary is None:
        reason = "no Chromium binary found; install it with `apt-get install -y chromium` (or set $CHROMIUM_BIN)"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(reason + " — CI is set, so the browser test must run", pytrace=False)
        pytest.skip(reason)
    return binary


@dataclasses.dataclass
class RecordedPage:
    """A Playwright page with what it did: every request URL and every console error or uncaught exception."""

    page: Any
    requests: list[str] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)

    def foreign_requests(self, origin: str) -> list[str]:
        """Requests that went anywhere but ``origin`` (``scheme://host:port``); ``data:`` URLs are no request."""
        return [url for url in self.requests if not url.startswith("data:") and _origin(url) != origin]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@asynccontextmanager
async def open_page(*, width: int = 1280, height: int = 900, javascript: bool = True,
                    dark: bool = False) -> AsyncIterator[RecordedPage]:
    """A fresh browser with one page of the given viewport; closed on exit."""
    binary = require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=binary,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"],
        )
        try:
            context = await browser.new_context(viewport={"width": width, "height": height},
                                                java_script_enabled=javascript,
                                                color_scheme="dark" if dark else "light")
            await context.route("**/*", _loopback_only)
            page = await context.new_page()
            recorded = RecordedPage(page)
            devtools = await context.new_cdp_session(page)
            devtools.on("Network.requestWillBeSent", lambda event: recorded.requests.append(event["request"]["url"]))
            await devtools.send("Network.enable")
            page.on("console", lambda message: message.type == "error" and recorded.errors.append(message.text))
            page.on("pageerror", lambda error: recorded.errors.append(str(error)))
            yield recorded
        finally:
            await browser.close()


async def _loopback_only(route: Any) -> None:
    """Let loopback requests through and abort the rest (they are still recorded, so the test fails)."""
    host = urlsplit(route.request.url).hostname
    if host is None or host in _LOOPBACK:
        await route.continue_()
    else:
        await route.abort()
