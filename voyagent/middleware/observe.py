"""Request id, metrics and the single access-log line of every request, keyed by the route template."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from voyagent.config import Settings
from voyagent.handlers_types import Handler
from voyagent.keys import CLIENT_IP, METRICS, OPERATION, PRINCIPAL, REQUEST_ID
from voyagent.logs import request_id_var
from voyagent.middleware.client_ip import client_ip
from voyagent.middleware.request_id import accept_request_id

log = logging.getLogger("voyagent.access")


def route_template(request: web.Request, base_path: str) -> str:
    """The route template without BASE_PATH (``/enquiries/{enquiry_id}``), or ``unmatched``."""
    operation = request.get(OPERATION)
    if operation is not None:
        return operation.path
    match_info = request.match_info
    if match_info.http_exception is not None or match_info.route.resource is None:
        return "unmatched"
    return match_info.route.resource.canonical[len(base_path):]


def observe_middleware(settings: Settings) -> web.middleware:
    hops = settings.trusted_proxy_hops
    base_path = settings.base_path

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        rid = accept_request_id(request.headers.get("X-Request-Id"))
        request[REQUEST_ID] = rid
        token = request_id_var.set(rid)
        ip = request[CLIENT_IP] = client_ip(request, hops)
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            elapsed = time.perf_counter() - started
            path = route_template(request, base_path)
            request.app[METRICS].observe_request(request.method, path, status, elapsed)
            if log.isEnabledFor(logging.INFO):
                principal = request.get(PRINCIPAL)
                log.info("method=%s route=%s status=%d duration_ms=%.2f client_ip=%s tenant_id=%s user_id=%s",
                         request.method, path, status, elapsed * 1000, ip,
                         principal.tenant_id if principal else "-", principal.user_id if principal else "-")
            request_id_var.reset(token)

    return observe
