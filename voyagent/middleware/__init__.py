"""The middleware: one pipeline whose steps ARE the contract's order of checks (README, Order of checks), each
step from its own module, bound to every route's handler when the route is added:

1. observe   – request id (kept or minted), metrics and the one access-log line, around everything
2. errors    – contract error bodies; nothing a client sends reaches a bare 500
3. cors      – preflights answered before routing errors or credentials matter
4. gate      – route (404/405) → body limit (413) → client-IP bucket (429) → authenticate (401)
               → principal bucket (429) → authorize (403) → validate (422)
The e-mail bucket (check 7) runs inside the credential handlers, after the body is parsed.
``response_headers`` adds X-Request-Id, CORS and rate-limit headers to every response (streams prepare through
it) and schedules the ``last_used_at`` write of an API key. Plain calls compiled per route rather than aiohttp
layers and hooks on purpose: the chain is the hot path of every endpoint (``pipeline``'s docstring says what
the layers cost).
"""

from __future__ import annotations

import functools

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from voyagent.config import Settings
from voyagent.contract import Operation
from voyagent.handlers_types import Handler
from voyagent.keys import DECORATE, PIPELINE
from voyagent.middleware import response_headers
from voyagent.middleware.pipeline import build_pipeline
from voyagent.middleware.route_context import UNMATCHED, RoutePlan


def setup_middlewares(app: web.Application, settings: Settings) -> None:
    """Build the pipeline that ``add_route`` puts in front of every handler, and the response headers it and the
    streams add."""
    decorate = app[DECORATE] = response_headers.decorator(settings)
    app[PIPELINE] = build_pipeline(settings, decorate)


def add_route(app: web.Application, method: str, path: str, handler: Handler, *, base_path: str = "",
              operation: Operation | None = None, name: str | None = None) -> AbstractRoute:
    """Route ``method base_path+path`` to ``handler`` behind the pipeline; ``operation`` is None for a meta route
    (public, nothing to validate). ``path`` is the route's label in the metrics and the access log."""
    routed = functools.partial(app[PIPELINE], handler=handler, plan=RoutePlan(operation, path))
    return app.router.add_route(method, base_path + path, routed, name=name)


async def _never_called(request: web.Request) -> web.StreamResponse:
    raise AssertionError("the gate answers every unmatched request")  # pragma: no cover


def route_unmatched(app: web.Application) -> None:
    """After every other route: the requests no route matches go through the pipeline too (check 1 answers them
    ``404``/``405`` as contract errors, counted and logged as ``unmatched``)."""
    app.router.add_route("*", "/{tail:.*}", functools.partial(app[PIPELINE], handler=_never_called, plan=UNMATCHED))
