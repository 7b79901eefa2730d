"""Health probes (operations.md §2): liveness, database and Redis."""

from __future__ import annotations

import asyncio
import time

from aiohttp import hdrs, web

from voyagent.degradation import Unavailable
from voyagent.handlers_types import Handler
from voyagent.jsonio import JSON_CONTENT_TYPE, json_response
from voyagent.keys import DATABASE, DB_MODE, DB_STATE, REDIS, REDIS_STATE

PROBE_TIMEOUT = 2.0
MIN_QUERY_TIMEOUT = 0.001  # asyncpg refuses a timeout of 0
NO_STORE = {hdrs.CACHE_CONTROL: "no-store"}
_OK = b'{"status":"ok"}'
_OK_HEADERS = {**JSON_CONTENT_TYPE, **NO_STORE}  # built once: liveness is hot


async def health(request: web.Request) -> web.Response:
    """Liveness: touches no dependency."""
    return web.Response(body=_OK, headers=_OK_HEADERS)


async def health_db(request: web.Request) -> web.Response:
    """``SELECT 1`` on a pooled connection within 2 s: the pool's wait and the query share one deadline (the
    query's own timeout, which replaces the pool's command timeout: no second timer per probe)."""
    deadline = time.monotonic() + PROBE_TIMEOUT
    try:
        async with request.app[DATABASE].connection(timeout=PROBE_TIMEOUT) as conn:
            value = await conn.fetchval("SELECT 1", timeout=max(deadline - time.monotonic(), MIN_QUERY_TIMEOUT))
    except Exception as exc:
        if not isinstance(exc, Unavailable):  # not reported by voyagent.db
            request.app[DB_STATE].failure("health probe", exc)
        return json_response({"detail": "db_unreachable"}, status=503, headers=NO_STORE)
    return json_response({"status": "ok", "select_1": value, "mode": request.app[DB_MODE]}, headers=NO_STORE)


async def health_redis(request: web.Request) -> web.Response:
    """``PING`` within 2 s; 503 when Redis is not configured or does not answer."""
    redis = request.app[REDIS]
    if redis is None:
        return json_response({"detail": "redis_not_configured"}, status=503, headers=NO_STORE)
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            pong = await redis.ping()
    except Exception as exc:
        request.app[REDIS_STATE].failure("health probe", exc)
        return json_response({"detail": "redis_unreachable"}, status=503, headers=NO_STORE)
    if not pong:
        return json_response({"detail": "redis_unreachable"}, status=503, headers=NO_STORE)
    request.app[REDIS_STATE].success()
    return json_response({"status": "ok", "ping": True}, headers=NO_STORE)


HANDLERS: dict[str, Handler] = {"health": health, "health_db": health_db, "health_redis": health_redis}
