"""The pipeline every request runs through: observe → errors → CORS preflight → gate → handler, then the headers.

aiohttp's own middleware dispatch costs every request a wrapper coroutine, a cache lookup keyed by the handler and
an ABC check; each ``on_response_prepare`` receiver a signal dispatch. On a route as short as ``GET /health`` four
layers and the hook cost more than aiohttp itself (about 20 µs of a bare app's 30). So the steps are plain calls
here, each from its own module, in the contract's order (README, Order of checks), and the pipeline is bound to
each route's handler when the route is added (``voyagent.middleware.add_route``), with what the route is
(``RoutePlan``): nothing is looked up per request that was known at start-up. A catch-all route added last sends
the requests no route matched through it too. A response that leaves unprepared gets the common headers here; a
stream gets them from ``response_headers.prepare_stream`` before its head.
"""

from __future__ import annotations

import time
from aiohttp import web

from voyagent.config import Settings
from voyagent.handlers_types import Handler
from voyagent.keys import CLIENT_IP, PRINCIPAL, RATE_LIMIT_HEADERS, REQUEST_ID
from voyagent.logs import request_id_var
from voyagent.middleware import cors, errors, gate, observe
from voyagent.middleware.client_ip import client_ip
from voyagent.middleware.request_id import HEADER as X_REQUEST_ID, accept_request_id
from voyagent.middleware.route_context import Decorate, Pipeline, RoutePlan


def build_pipeline(settings: Settings, decorate: Decorate) -> Pipeline:
    hops = settings.trusted_proxy_hops
    record = observe.recorder()
    preflight = cors.preflight(settings)
    admit = gate.gate(settings)
    perf_counter = time.perf_counter
    set_request_id, reset_request_id = request_id_var.set, request_id_var.reset

    async def pipeline(request: web.Request, *, handler: Handler, plan: RoutePlan) -> web.StreamResponse:
        started = perf_counter()
        rid = request[REQUEST_ID] = accept_request_id(request.headers.get(X_REQUEST_ID))
        token = set_request_id(rid)
        request[CLIENT_IP] = client_ip(request, hops)
        request[RATE_LIMIT_HEADERS] = None  # no bucket reported yet
        request[PRINCIPAL] = None  # until the gate authenticates (the access line reads it whatever happens)
        status = 500  # unless a response comes back (a cancelled request is counted as one)
        try:
            try:
                response = preflight(request)
                if response is None:
                    await admit(request, plan)
                    response = await handler(request)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a contract answer (errors.py)
                response = errors.response_for(request, exc)
            if not response.prepared:
                decorate(request, response)
            status = response.status
            return response
        finally:
            record(request, plan.template, status, perf_counter() - started)
            reset_request_id(token)

    return pipeline
