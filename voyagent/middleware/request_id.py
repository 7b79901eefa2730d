"""X-Request-Id: keep a well-formed client id, else mint one; echo it on every response (streams too)."""

from __future__ import annotations

import re
import secrets

from aiohttp import web

from voyagent.config import Settings
from voyagent.handlers_types import Handler
from voyagent.keys import REQUEST_ID
from voyagent.logs import request_id_var

_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]{1,128}")


def accept_request_id(value: str | None) -> str:
    """The client's id when it is 1–128 visible ASCII characters, otherwise a fresh one."""
    if value is not None and _VISIBLE_ASCII.fullmatch(value):
        return value
    return secrets.token_hex(16)


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = accept_request_id(request.headers.get("X-Request-Id"))
    request[REQUEST_ID] = rid
    token = request_id_var.set(rid)
    try:
        return await handler(request)
    finally:
        request_id_var.reset(token)


async def _echo_request_id(request: web.BaseRequest, response: web.StreamResponse) -> None:
    rid = request.get(REQUEST_ID)
    if rid is not None:
        response.headers["X-Request-Id"] = rid


def setup_request_id(app: web.Application, settings: Settings) -> None:
    app.middlewares.append(request_id_middleware)
    app.on_response_prepare.append(_echo_request_id)
