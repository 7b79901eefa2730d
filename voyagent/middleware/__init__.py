"""Middleware assembly: the order here IS the contract's order of checks (README, Order of checks).

Outermost first:
1. observe   – request id (kept or minted), metrics and the one access-log line, around everything
2. errors    – contract error bodies; nothing a client sends reaches a bare 500
3. gate      – the order of checks, each step from its own module: CORS preflight (answered before routing
               errors or credentials matter) → route (404/405) → body limit (413) → client-IP bucket (429)
               → authenticate (401) → principal bucket (429) → authorize (403) → validate (422)
The e-mail bucket (check 7) runs inside the credential handlers, after the body is parsed.
Observe also adds X-Request-Id, CORS and rate-limit headers to every response (a handler that starts a
stream uses ``response_headers.prepare_stream``) and schedules the ``last_used_at`` write of an API key.
Few layers, and no ``on_response_prepare`` signal, on purpose: the chain is the hot path of every endpoint.
"""

from __future__ import annotations

from aiohttp import web

from voyagent.config import Settings
from voyagent.keys import METRICS
from voyagent.middleware import errors, gate, observe


def setup_middlewares(app: web.Application, settings: Settings) -> None:
    """Install the middlewares in the documented order."""
    app.middlewares.append(observe.observe_middleware(settings, app[METRICS]))
    app.middlewares.append(errors.errors_middleware(settings))
    app.middlewares.append(gate.gate_middleware(settings))
