"""Minimal headless-Chromium helper (command line only, no CDP, no third-party packages).

Usage from async tests::

    from tests.browser.chromium import find_chromium, dump_dom, screenshot

    html = await dump_dom(url)                      # DOM after scripts ran
    await screenshot(url, path, width=375, height=2000)

Both raise :class:`ChromiumNotFound` when no browser is installed; callers decide whether to skip
(developer machine) or fail (``CI`` set) — see :func:`require_chromium`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

__all__ = [
    "ChromiumError",
    "ChromiumNotFound",
    "dump_dom",
    "find_chromium",
    "require_chromium",
    "screenshot",
]

_CANDIDATES = (
    "/usr/bin/chromium",
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
)

DEFAULT_TIMEOUT = 60.0


class ChromiumNotFound(RuntimeError):
    """No Chromium/Chrome binary could be found."""


class ChromiumError(RuntimeError):
    """Chromium exited with an error or timed out."""


def find_chromium() -> str | None:
    """Path of a Chromium binary: ``$CHROMIUM_BIN``, then the usual names on PATH."""
    override = os.environ.get("CHROMIUM_BIN")
    if override and os.access(override, os.X_OK):
        return override
    for name in _CANDIDATES:
        if os.path.isabs(name):
            if os.path.isfile(name) and os.access(name, os.X_OK):
                return name
        else:
            found = shutil.which(name)
            if found:
                return found
    return None


def require_chromium() -> str:
    """Return the binary, or skip the calling test (fail instead when ``CI`` is set)."""
    import pytest

    binary = find_chromium()
    if binary is None:
        reason = (
            "no Chromium binary found (looked for $CHROMIUM_BIN, /usr/bin/chromium, chromium, "
            "chromium-browser, google-chrome); install it with `apt-get install -y chromium`"
        )
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(reason + " — CI is set, so the browser test must run", pytrace=False)
        pytest.skip(reason)
    return binary


def _base_args(user_data_dir: str) -> list[str]:
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--mute-audio",
        "--run-all-compositor-stages-before-draw",
        "--virtual-time-budget=5000",
        f"--user-data-dir={user_data_dir}",
    ]


async def _run(args: list[str], timeout: float) -> bytes:
    binary = find_chromium()
    if binary is None:
        raise ChromiumNotFound("no Chromium binary found")
    with tempfile.TemporaryDirectory(prefix="vy-chromium-") as profile:
        cmd = [binary, *_base_args(profile), *args]
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise ChromiumError(f"chromium timed out after {timeout}s: {' '.join(cmd)}") from None
        if proc.returncode != 0:
            tail = stderr.decode("utf-8", "replace")[-2000:]
            raise ChromiumError(f"chromium exited with {proc.returncode}: {tail}")
        return stdout


async def dump_dom(
    url: str,
    *,
    width: int = 1280,
    height: int = 2000,
    timeout: float = DEFAULT_TIMEOUT,
    extra_args: Sequence[str] = (),
) -> str:
    """Serialized DOM of ``url`` after its scripts ran (``--dump-dom``)."""
    out = await _run([f"--window-size={width},{height}", *extra_args, "--dump-dom", url], timeout)
    return out.decode("utf-8", "replace")


async def screenshot(
    url: str,
    path: str | os.PathLike[str],
    width: int = 1280,
    height: int = 2000,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    extra_args: Sequence[str] = (),
) -> None:
    """Save a PNG screenshot of ``url`` rendered in a ``width``×``height`` window.

    ``extra_args`` go to Chromium as is, e.g. ``["--force-dark-mode"]`` for ``prefers-color-scheme: dark``.
    Note: headless screenshots of a URL with a ``#fragment`` come out blank (Chromium scrolls after capture);
    screenshot the top of a page instead.
    """
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    await _run([f"--window-size={width},{height}", *extra_args, f"--screenshot={target}", url], timeout)
    if not target.exists() or target.stat().st_size == 0:
        raise ChromiumError(f"chromium did not write the screenshot {target}")
