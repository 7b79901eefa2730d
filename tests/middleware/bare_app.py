"""A bare application for middleware tests: only the middlewares a test names, in the contract's order, the
response-header hook, and the in-process state those middlewares read. No database pool, no Redis, no
handlers of ours: what a test sees is the middleware's doing."""

from __future__ import annotations

from aiohttp import web

from voyagent.app import RUNNER_KWARGS
from voyagent.config import Settings
from voyagent.jsonio import json_response
from voyagent.keys import ACCESS_TOKENS, METRICS, OPERATIONS_BY_ROUTE, RATE_LIMITER, SETTINGS, TOKEN_STORE
from voyagent.metrics import Metrics
from voyagent.middleware import LAYERS, response_decorator
from voyagent.services.ratelimit import RateLimiter
from voyagent.services.token_store import LocalTokenStore
from voyagent.services.tokens import VerifiedAccessTokens

LAYER_NAMES = {layer.__name__.removesuffix("_middleware"): layer for layer in LAYERS}  # observe, errors, cors, gate
PLAIN_PATH = "/plain"


async def plain(request: web.Request) -> web.Response:
    """A public route outside the contract (like the meta routes): the gate lets it through unchecked."""
    return json_response({"status": "ok"})


def bare_app(settings: Settings, *layers: str) -> web.Application:
    """``bare_app(settings, "errors", "gate")``: those middlewares (outermost first, whatever order they are
    named in) and ``GET <base_path>/plain``. Add the synthetic operation with ``echo_route.add_echo_route``."""
    unknown = set(layers) - set(LAYER_NAMES)
    if unknown:
        raise ValueError(f"no middleware called {sorted(unknown)}; choose from {sorted(LAYER_NAMES)}")
    app = web.Application(client_max_size=settings.max_body_bytes, handler_args=RUNNER_KWARGS)
    app[SETTINGS] = settings
    app[METRICS] = Metrics(settings.version, settings.git_sha)
    app[OPERATIONS_BY_ROUTE] = {}
    app[RATE_LIMITER] = RateLimiter(None, settings.redis_prefix)
    app[ACCESS_TOKENS] = VerifiedAccessTokens(settings)
    app[TOKEN_STORE] = LocalTokenStore()
    app.middlewares.extend(layer(settings) for name, layer in LAYER_NAMES.items() if name in layers)
    app.on_response_prepare.append(response_decorator(settings))
    app.router.add_route("GET", settings.base_path + PLAIN_PATH, plain)  # as routes.py does: no HEAD
    return app

