"""A bare application for middleware tests: the pipeline middleware and the in-process state it reads. No
database pool, no Redis, no handlers of ours: what a test sees is the middleware's doing."""

from __future__ import annotations

from aiohttp import web

from voyagent.app import RUNNER_KWARGS
from voyagent.config import Settings
from voyagent.jsonio import json_response
from voyagent.keys import ACCESS_TOKENS, METRICS, RATE_LIMITER, SETTINGS, TOKEN_STORE
from voyagent.metrics import Metrics
from voyagent.middleware import add_route, route_unmatched, setup_middlewares
from voyagent.services.ratelimit import RateLimiter
from voyagent.services.token_store import LocalTokenStore
from voyagent.services.tokens import VerifiedAccessTokens

PLAIN_PATH = "/plain"


async def plain(request: web.Request) -> web.Response:
    """A public route outside the contract (like the meta routes): the gate lets it through unchecked."""
    return json_response({"status": "ok"})


def bare_app(settings: Settings) -> web.Application:
    """The pipeline and ``GET <base_path>/plain``. Add the synthetic operation with ``echo_route.add_echo_route``."""
    app = web.Application(client_max_size=settings.max_body_bytes, handler_args=RUNNER_KWARGS)
    app[SETTINGS] = settings
    app[METRICS] = Metrics(settings.version, settings.git_sha)
    app[RATE_LIMITER] = RateLimiter(None, settings.redis_prefix)
    app[ACCESS_TOKENS] = VerifiedAccessTokens(settings)
    app[TOKEN_STORE] = LocalTokenStore()
    setup_middlewares(app, settings)
    add_route(app, "GET", PLAIN_PATH, plain, base_path=settings.base_path)  # as routes.py does: no HEAD
    route_unmatched(app)  # routes a test adds later still match first: the catch-all is the router's last resort
    return app

