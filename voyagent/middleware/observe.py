"""Metrics and the single access-log line of every request, keyed by the route template.

This runs for every request, so it is written for its cost: the log writer and the level check are bound once,
the app's metrics at the first request; the route's template comes with the route (``RoutePlan``).
"""

from __future__ import annotations

import logging
from typing import Callable

from aiohttp import web

from voyagent.keys import CLIENT_IP, METRICS, PRINCIPAL, REQUEST_ID
from voyagent.logs import info_writer

log = logging.getLogger("voyagent.access")
ACCESS_LINE = "method=%s route=%s status=%d duration_ms=%.2f client_ip=%s tenant_id=%s user_id=%s"

Record = Callable[[web.Request, str, int, float], None]


def recorder() -> Record:
    """``record(request, route, status, seconds)``: count the request and write its access line."""
    write_access_line = info_writer(log, ACCESS_LINE)
    info_enabled = log.isEnabledFor
    observe_request: Callable[[str, str, int, float], None] | None = None  # the app's metrics, bound once

    def record(request: web.Request, path: str, status: int, seconds: float) -> None:
        nonlocal observe_request
        if observe_request is None:
            observe_request = request.app[METRICS].observe_request
        method = request.method
        observe_request(method, path, status, seconds)
        if info_enabled(logging.INFO):
            principal = request[PRINCIPAL]
            if principal is None:
                tenant_id = user_id = "-"
            else:
                tenant_id, user_id = principal.tenant_id, principal.user_id
            write_access_line(request[REQUEST_ID], (method, path, status, seconds * 1000, request[CLIENT_IP],
                                                    tenant_id, user_id))

    return record
