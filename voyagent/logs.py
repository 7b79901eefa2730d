"""Logging in ``key=value`` lines on stderr, with the request id on every line and secrets scrubbed."""

from __future__ import annotations

import atexit
import collections
import contextvars
import io
import logging
import re
import sys
import threading
import time
from typing import Any, Callable

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

    def timestamp(self, created: float) -> str:
        """``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC) of an epoch time."""
        second = int(created)
        if second != self._second:  # strftime once per second, not once per line
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        line = (f"{self.timestamp(record.created)} {record.levelname} {record.name} "
                f"request_id={request_id_var.get()} {record.getMessage()}")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return scrub(line)


class _BufferedStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr through a 64 KiB buffer: INFO lines are flushed every FLUSH_SECONDS by a daemon thread
    (one write syscall per batch, not per request); WARNING and above are flushed at once.

    Lines deferred by ``info_writer`` (the access log) are only formatted when written: in batches, by the flush
    thread or before any other record, so the file keeps the order in which lines were logged."""

    FLUSH_SECONDS = 0.2

    def __init__(self) -> None:
        raw = io.FileIO(sys.stderr.fileno(), "w", closefd=False)
        super().__init__(io.TextIOWrapper(io.BufferedWriter(raw, 65536), encoding="utf-8", errors="replace"))
        # (logger name, format, created, request id, args): appended by the event loop, taken by whoever writes
        self._deferred: collections.deque[tuple[str, str, float, str, tuple[Any, ...]]] = collections.deque()
        thread = threading.Thread(target=self._flush_forever, name="log-flush", daemon=True)
        thread.start()
        atexit.register(self._flush_now)

    def flush(self) -> None:  # called by emit() after every record
        pass

    def emit(self, record: logging.LogRecord) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_deferred()
            super().emit(record)
        if record.levelno >= logging.WARNING:
            self._flush_now()

    def defer_info(self, name: str, fmt: str, request_id: str, args: tuple[Any, ...]) -> None:
        """Log ``fmt % args`` at INFO as ``name`` (what ``format`` would write), formatted later in a batch."""
        self._deferred.append((name, fmt, time.time(), request_id, args))

    def _write_deferred(self) -> None:
        """Format and write the deferred lines (call with the lock held)."""
        deferred = self._deferred
        if not deferred:
            return
        batch = [deferred.popleft() for _ in range(len(deferred))]
        formatter = self.formatter
        assert isinstance(formatter, _Formatter)
        stamp = formatter.timestamp
        lines = [f"{stamp(created)} INFO {name} request_id={request_id} {fmt % args}\n"
                 for name, fmt, created, request_id, args in batch]
        self.stream.write(scrub("".join(lines)))

    def _flush_now(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            try:
                self._write_deferred()
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def _flush_forever(self) -> None:
        while True:
            time.sleep(self.FLUSH_SECONDS)
            try:
                self._flush_now()
            except Exception:  # noqa: BLE001 - a line that cannot be written must not stop the writer
                pass


def info_writer(logger: logging.Logger, fmt: str) -> Callable[[str, tuple[Any, ...]], None]:
    """``write(request_id, args)``: ``logger.info(fmt, *args)``, but while the stderr handler alone would receive
    the record, the line is deferred and formatted later in a batch, without a LogRecord (the access log's
    per-request cost). Anything else listening (a test's capture, another handler) gets the real record.
    The caller checks the level first."""
    root = logging.root

    def write(request_id: str, args: tuple[Any, ...]) -> None:
        handlers = root.handlers
        if len(handlers) == 1 and type(handler := handlers[0]) is _BufferedStderrHandler and not handler.filters \
                and logger.parent is root and not logger.handlers and not logger.filters:
            handler.defer_info(logger.name, fmt, request_id, args)
        else:
            logger.info(fmt, *args)

    return write


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
