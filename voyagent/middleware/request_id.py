"""X-Request-Id: keep a well-formed client id, else mint one (``response_headers`` echoes it on every response)."""

from __future__ import annotations

import itertools
import os
import re
import secrets
from typing import Iterator

from multidict import istr

HEADER = istr("X-Request-Id")  # a header key of aiohttp's kind: looked up without case-folding it every time
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]{1,128}")
# Request ids correlate log lines; they are not secrets. A random prefix per process (so workers and restarts do
# not collide) and a counter: 32 hex digits like a UUID's, for a fraction of the cost of 128 random bits a request.
_PREFIX: str
_SEQUENCE: Iterator[int]


def _new_sequence() -> None:
    """A fresh prefix and counter: at import, and in every forked child (a worker must not repeat its parent's)."""
    global _PREFIX, _SEQUENCE
    _PREFIX, _SEQUENCE = secrets.token_hex(8), itertools.count(secrets.randbelow(1 << 32))


_new_sequence()
os.register_at_fork(after_in_child=_new_sequence)


def accept_request_id(value: str | None) -> str:
    """The client's id when it is 1–128 visible ASCII characters, otherwise a fresh one."""
    if value is not None and _VISIBLE_ASCII.fullmatch(value):
        return value
    return _PREFIX + "%016x" % next(_SEQUENCE)
