"""Logging in ``key=value`` lines on stderr, with the request id on every line and secrets scrubbed."""

from __future__ import annotations

import atexit
import contextvars
import io
import logging
import re
import sys
import threading
import time

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_JWT_SEGMENT_RE = re.compile(r"[A-Za-z0-9_-]*")
_API_KEY_RE = re.compile(r"vy_[A-Za-z0-9]{8}_[A-Za-z0-9]{32}")


def _scrub_jwts(text: str) -> str:
    """``_JWT_RE.sub`` in linear time. ``re`` retries every ``eyJ`` of a segment that already failed (quadratic:
    a 64 KiB path of ``eyJeyJ…`` took 1.2 s); every start inside that segment fails the same way, so skip it."""
    parts: list[str] = []
    done = 0
    start = text.find("eyJ")
    while start != -1:
        match = _JWT_RE.match(text, start)
        if match is None:
            start = text.find("eyJ", _JWT_SEGMENT_RE.match(text, start + 3).end())  # type: ignore[union-attr]
            continue
        parts += [text[done:start], "[scrubbed]"]
        done = match.end()
        start = text.find("eyJ", done)
    return "".join(parts) + text[done:] if parts else text


def scrub(text: str) -> str:
    """Replace anything that looks like a JWT or an API key by ``[scrubbed]`` (in time linear in ``text``)."""
    if "eyJ" in text:
        text = _scrub_jwts(text)
    if "vy_" in text:
        text = _API_KEY_RE.sub("[scrubbed]", text)
    return text


class _Formatter(logging.Formatter):
    """``<UTC timestamp> <LEVEL> <logger> request_id=<id> <message>``, scrubbed."""

    _second = -1
    _stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # strftime once per second, not once per line
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        line = (f"{self._stamp}.{int(record.msecs):03d}Z {record.levelname} {record.name} "
                f"request_id={request_id_var.get()} {record.getMessage()}")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return scrub(line)


class _BufferedStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr through a 64 KiB buffer: INFO lines are flushed every FLUSH_SECONDS by a daemon thread
    (one write syscall per batch, not per request); WARNING and above are flushed at once."""

    FLUSH_SECONDS = 0.2

    def __init__(self) -> None:
        raw = io.FileIO(sys.stderr.fileno(), "w", closefd=False)
        super().__init__(io.TextIOWrapper(io.BufferedWriter(raw, 65536), encoding="utf-8", errors="replace"))
        thread = threading.Thread(target=self._flush_forever, name="log-flush", daemon=True)
        thread.start()
        atexit.register(self._flush_now)

    def flush(self) -> None:  # called by emit() after every record
        pass

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if record.levelno >= logging.WARNING:
            self._flush_now()

    def _flush_now(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            try:
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def _flush_forever(self) -> None:
        while True:
            time.sleep(self.FLUSH_SECONDS)
            self._flush_now()


def setup_logging(level: str) -> None:
    """Route every logger to stderr through the scrubbing formatter."""
    # The line format uses none of these; skipping them makes each record much cheaper to build.
    logging._srcfile = None  # type: ignore[attr-defined]  # no caller-frame lookup per record
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = _BufferedStderrHandler()
    handler.setFormatter(_Formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").disabled = True
