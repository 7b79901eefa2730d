"""Middleware assembly: the order here IS the contract's order of checks (README, Order of checks).

Outermost first:
1. observe   – request id (kept or minted), metrics and the one access-log line, around everything
2. errors    – contract error bodies; nothing a client sends reaches a bare 500
3. cors      – preflights answered before routing errors or credentials matter
4. gate      – the order of checks, each step from its own module:
               route (404/405) → body limit (413) → client-IP bucket (429) → authenticate (401)
               → principal bucket (429) → authorize (403) → validate (422)
The e-mail bucket (check 7) runs inside the credential handlers, after the body is parsed.
One ``on_response_prepare`` hook adds X-Request-Id, CORS and rate-limit headers to every response,
streams included, and schedules the ``last_used_at`` write of an API key. Few layers and one hook on purpose:
the chain is the hot path of every endpoint.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web

from voyagent import edge
from voyagent.config import Settings
from voyagent.keys import PRINCIPAL
from voyagent.middleware import cors, errors, gate, observe, ratelimit, request_id

# Outermost first; each entry builds one middleware from the settings.
LAYERS: tuple[Callable[[Settings], web.middleware], ...] = (
    observe.observe_middleware, errors.errors_middleware, cors.cors_middleware, gate.gate_middleware)


def response_decorator(settings: Settings) -> Callable[[web.BaseRequest, web.StreamResponse], Awaitable[None]]:
    """The ``on_response_prepare`` hook: X-Request-Id, rate-limit and CORS headers on every response, and the
    API key's ``last_used_at`` (one hook: each signal receiver costs every request a coroutine)."""
    add_cors_headers = cors.response_headers(settings)

    async def decorate_response(request: web.BaseRequest, response: web.StreamResponse) -> None:
        request_id.echo_request_id(request, response)
        ratelimit.add_rate_limit_headers(request, response)
        add_cors_headers(request, response)
        principal = request.get(PRINCIPAL)
        if principal is not None and principal.api_key_id is not None:
            await edge.record_api_key_use(request, response)

    return decorate_response


def setup_middlewares(app: web.Application, settings: Settings) -> None:
    """Install the middlewares and the response-header hook, in the documented order."""
    app.middlewares.extend(layer(settings) for layer in LAYERS)
    app.on_response_prepare.append(response_decorator(settings))
