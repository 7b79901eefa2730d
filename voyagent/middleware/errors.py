"""Every failure becomes a contract error body; only real bugs reach ``500 internal_error`` (logged)."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from aiohttp import web

from voyagent.config import Settings
from voyagent.errors import ApiError
from voyagent.handlers_types import Handler
from voyagent.jsonio import json_response
from voyagent.keys import METRICS

log = logging.getLogger("voyagent.errors")

_DB_UNAVAILABLE = (asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.CannotConnectNowError,
                   asyncpg.exceptions.TooManyConnectionsError, asyncpg.exceptions.InterfaceError,
                   ConnectionError, OSError)


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


def errors_middleware(settings: Settings) -> web.middleware:
    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            if exc.status in (401, 403) and isinstance(exc.detail, str):
                request.app[METRICS].auth_failures.labels(exc.detail).inc()
            return error_response(exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _from_http_exception(exc)
        except asyncio.CancelledError:
            raise
        except (asyncio.TimeoutError, *_DB_UNAVAILABLE):
            log.warning("database unavailable for %s %s", request.method, request.path, exc_info=True)
            return json_response({"detail": "db_unavailable"}, status=503)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.path)
            return json_response({"detail": "internal_error"}, status=500)

    return errors
