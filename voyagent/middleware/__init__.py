"""Middleware assembly: the order here IS the contract's order of checks (README, Order of checks)."""

from __future__ import annotations

from aiohttp import web

from voyagent.config import Settings
from voyagent.middleware import (
    auth,
    body_limit,
    cors,
    errors,
    observe,
    ratelimit,
    request_id,
    route_context,
    validation,
)


def setup_middlewares(app: web.Application, settings: Settings) -> None:
    """Install every middleware, outermost first.

    1. request_id      – accept or mint X-Request-Id; every log line of the request carries it
    2. observe         – metrics and the one access-log line, around everything below
    3. errors          – contract error bodies; nothing a client sends reaches a bare 500
    4. cors            – preflights answered before routing errors or credentials matter
    5. route_context   – the matched OpenAPI operation (404/405 surface here: check 1)
    6. body_limit      – 413 before any body is parsed, on every route
    7. ratelimit.ip    – credential-route IP bucket (check 2)
    8. auth.authenticate – JWT or API key → principal (check 3)
    9. ratelimit.principal – user or API-key bucket (check 4)
    10. auth.authorize – key eligibility, scope, role (check 5)
    11. validation     – request against openapi.yaml → 422 (check 6)
    The e-mail bucket (check 7) runs inside the credential handlers, after the body is parsed.
    """
    request_id.setup_request_id(app, settings)
    observe.setup_observe(app, settings)
    errors.setup_errors(app, settings)
    cors.setup_cors(app, settings)
    route_context.setup_route_context(app, settings)
    body_limit.setup_body_limit(app, settings)
    ratelimit.setup_credential_ip_limit(app, settings)
    auth.setup_authenticate(app, settings)
    ratelimit.setup_principal_limit(app, settings)
    auth.setup_authorize(app, settings)
    validation.setup_validation(app, settings)
