"""Request id, metrics and the single access-log line of every request, keyed by the route template.

This wraps every request, so it is written for its cost: what can be looked up once (the log writer, the
settings, the app's metrics at the first request) is bound, not looked up per request.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from aiohttp import web

from voyagent.config import Settings
from voyagent.handlers_types import Handler
from voyagent.keys import CLIENT_IP, METRICS, OPERATION, PRINCIPAL, RATE_LIMIT_HEADERS, REQUEST_ID
from voyagent.logs import info_writer, request_id_var
from voyagent.middleware.client_ip import client_ip
from voyagent.middleware.request_id import accept_request_id

log = logging.getLogger("voyagent.access")
ACCESS_LINE = "method=%s route=%s status=%d duration_ms=%.2f client_ip=%s tenant_id=%s user_id=%s"


def _meta_route_template(request: web.Request, base_path: str) -> str:
    """The template without BASE_PATH of a route that has no operation (meta routes), or ``unmatched``."""
    match_info = request.match_info
    if match_info.http_exception is not None or match_info.route.resource is None:
        return "unmatched"
    return match_info.route.resource.canonical[len(base_path):]


def observe_middleware(settings: Settings) -> web.middleware:
    hops = settings.trusted_proxy_hops
    base_path = settings.base_path
    write_access_line = info_writer(log, ACCESS_LINE)
    info_enabled = log.isEnabledFor
    perf_counter = time.perf_counter
    set_request_id, reset_request_id = request_id_var.set, request_id_var.reset
    observe_request: Callable[[str, str, int, float], None] | None = None  # the app's metrics, bound once

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal observe_request
        started = perf_counter()
        rid = request[REQUEST_ID] = accept_request_id(request.headers.get("X-Request-Id"))
        token = set_request_id(rid)
        ip = request[CLIENT_IP] = client_ip(request, hops)
        request[RATE_LIMIT_HEADERS] = None  # no bucket reported yet (a hit is cheaper than a miss when headers are added)
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            elapsed = perf_counter() - started
            operation = request.get(OPERATION)
            path = operation.path if operation is not None else _meta_route_template(request, base_path)
            method = request.method
            if observe_request is None:
                observe_request = request.app[METRICS].observe_request
            observe_request(method, path, status, elapsed)
            if info_enabled(logging.INFO):
                principal = request.get(PRINCIPAL)
                if principal is None:
                    tenant_id = user_id = "-"
                else:
                    tenant_id, user_id = principal.tenant_id, principal.user_id
                write_access_line(rid, (method, path, status, elapsed * 1000, ip, tenant_id, user_id))
            reset_request_id(token)

    return observe
