"""Request id, metrics, the single access-log line of every request (keyed by the route template), and the headers
every response carries.

This wraps every request, so it is written for its cost: what can be looked up once per process (the metrics,
the log writer, the settings) is bound when the middleware is built, and the response headers are added here,
not by an ``on_response_prepare`` signal (streams add them through ``prepare_stream``).
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from voyagent.config import Settings
from voyagent.handlers_types import Handler
from voyagent.keys import CLIENT_IP, OPERATION, PRINCIPAL, REQUEST_ID, RESPONSE_HEADERS
from voyagent.logs import info_writer, request_id_var
from voyagent.metrics import Metrics
from voyagent.middleware.client_ip import client_ip
from voyagent.middleware.request_id import accept_request_id
from voyagent.middleware.response_headers import add_response_headers
from voyagent.services import api_key_auth

log = logging.getLogger("voyagent.access")
ACCESS_LINE = "method=%s route=%s status=%d duration_ms=%.2f client_ip=%s tenant_id=%s user_id=%s"


def route_template(request: web.Request, base_path: str) -> str:
    """The route template without BASE_PATH (``/enquiries/{enquiry_id}``), or ``unmatched``."""
    operation = request.get(OPERATION)
    return operation.path if operation is not None else _meta_route_template(request, base_path)


def _meta_route_template(request: web.Request, base_path: str) -> str:
    match_info = request.match_info
    if match_info.http_exception is not None or match_info.route.resource is None:
        return "unmatched"
    return match_info.route.resource.canonical[len(base_path):]


def observe_middleware(settings: Settings, metrics: Metrics) -> web.middleware:
    hops = settings.trusted_proxy_hops
    base_path = settings.base_path
    cors_origins = frozenset(settings.cors_origins)
    observe_request = metrics.observe_request
    write_access_line = info_writer(log, ACCESS_LINE)
    info_enabled = log.isEnabledFor
    perf_counter = time.perf_counter
    set_request_id, reset_request_id = request_id_var.set, request_id_var.reset

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = perf_counter()
        rid = request[REQUEST_ID] = accept_request_id(request.headers.get("X-Request-Id"))
        request[RESPONSE_HEADERS] = extra_headers = {"X-Request-Id": rid}
        token = set_request_id(rid)
        ip = request[CLIENT_IP] = client_ip(request, hops)
        response: web.StreamResponse | None = None
        try:
            response = await handler(request)
            return response
        except web.HTTPException as exc:  # a redirect: the errors middleware answers everything else
            response = exc
            raise
        finally:
            elapsed = perf_counter() - started
            operation = request.get(OPERATION)
            path = operation.path if operation is not None else _meta_route_template(request, base_path)
            method = request.method
            principal = request.get(PRINCIPAL)
            if response is None:
                status = 500
            else:
                status = response.status
                if not response.prepared:  # a stream added them in prepare_stream
                    add_response_headers(request, response, extra_headers, cors_origins)
                if principal is not None and principal.api_key_id is not None:
                    await api_key_auth.record_use(request, response)
            observe_request(method, path, status, elapsed)
            if info_enabled(logging.INFO):
                if principal is None:
                    tenant_id = user_id = "-"
                else:
                    tenant_id, user_id = principal.tenant_id, principal.user_id
                write_access_line(rid, (method, path, status, elapsed * 1000, ip, tenant_id, user_id))
            reset_request_id(token)

    return observe
