"""Every failure becomes a contract error body; only real bugs reach ``500 internal_error`` (logged).

A database outage was already told apart and reported by ``voyagent.db`` (``DatabaseUnavailable``), so it
is answered here without a log line of its own. A client that hangs up in the middle of its request is an
INFO line and status 499 in the access log and metrics: neither a database nor a server failure.
"""

from __future__ import annotations

import logging

from aiohttp import web

from voyagent.db import DatabaseUnavailable
from voyagent.degradation import describe
from voyagent.errors import ApiError
from voyagent.jsonio import json_response
from voyagent.keys import METRICS

log = logging.getLogger("voyagent.errors")

# nginx's "client closed request": recorded, never sent (the connection is gone).
CLIENT_CLOSED_REQUEST = 499


def error_response(exc: ApiError) -> web.Response:
    return json_response(exc.body(), status=exc.status, headers=exc.headers or None)


def _from_http_exception(exc: web.HTTPException) -> web.Response:
    headers = {}
    if exc.status == 404:
        detail = "Not Found"
    elif exc.status == 405:
        detail = "Method Not Allowed"
        allow = exc.headers.get("Allow")
        if allow is not None:
            headers["Allow"] = allow
    elif exc.status == 413:
        detail = "payload_too_large"
    else:
        detail = exc.reason
    return json_response({"detail": detail}, status=exc.status, headers=headers or None)


def client_gone(request: web.BaseRequest) -> bool:
    """True once the client's connection is closed: nothing can be answered any more."""
    transport = request.transport
    return transport is None or transport.is_closing()


def _internal_error(request: web.Request) -> web.Response:
    log.exception("unhandled error in %s %s", request.method, request.path)
    return json_response({"detail": "internal_error"}, status=500)


def response_for(request: web.Request, exc: Exception) -> web.Response:
    """The answer to a failure of the checks or the handler (the pipeline's errors step)."""
    if isinstance(exc, ApiError):
        if exc.status in (401, 403) and isinstance(exc.detail, str):
            request.app[METRICS].auth_failures.labels(exc.detail).inc()
        response = error_response(exc)
        if exc.status == 408:  # the rest of the body will not come: this connection is done
            response.force_close()
        return response
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:  # a redirect: answered as aiohttp would, with our headers
            return web.Response(status=exc.status, reason=exc.reason, text=exc.text, headers=exc.headers)
        return _from_http_exception(exc)
    if isinstance(exc, DatabaseUnavailable):
        return json_response({"detail": "db_unavailable"}, status=503)
    if isinstance(exc, ConnectionError) and client_gone(request):
        log.info("client disconnected mid-request: %s %s (%s)", request.method, request.path, describe(exc))
        return web.Response(status=CLIENT_CLOSED_REQUEST)
    return _internal_error(request)
