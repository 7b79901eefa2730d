"""Logging in ``key=value`` lines on stderr, with the request id on every line and secrets scrubbed."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_API_KEY_RE = re.compile(r"vy_[A-Za-z0-9]{8}_[A-Za-z0-9]{32}")


def scrub(text: str) -> str:
    """Replace anything that looks like a JWT or an API key by ``[scrubbed]``."""
    if "eyJ" in text:
        text = _JWT_RE.sub("[scrubbed]", text)
    if "vy_" in text:
        text = _API_KEY_RE.sub("[scrubbed]", text)
    return text


class _Formatter(logging.Formatter):
    """``<UTC timestamp> <LEVEL> <logger> request_id=<id> <message>``, scrubbed."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = (f"{stamp}.{int(record.msecs):03d}Z {record.levelname} {record.name} "
                f"request_id={request_id_var.get()} {record.getMessage()}")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return scrub(line)


def setup_logging(level: str) -> None:
    """Route every logger to stderr through the scrubbing formatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").disabled = True
