"""X-Request-Id: keep a well-formed client id, else mint one; echo it on every response (streams too)."""

from __future__ import annotations

import random
import re

from aiohttp import web

from voyagent.keys import REQUEST_ID

_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]{1,128}")


def accept_request_id(value: str | None) -> str:
    """The client's id when it is 1–128 visible ASCII characters, otherwise a fresh one.

    Request ids correlate log lines; they are not secrets, so a fast PRNG is enough.
    """
    if value is not None and _VISIBLE_ASCII.fullmatch(value):
        return value
    return f"{random.getrandbits(128):032x}"


def echo_request_id(request: web.BaseRequest, response: web.StreamResponse) -> None:
    rid = request.get(REQUEST_ID)
    if rid is not None:
        response.headers["X-Request-Id"] = rid
