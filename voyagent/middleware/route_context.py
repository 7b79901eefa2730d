"""Check 1: what a route is (an operation, a meta route, or nothing at all) and the 404/405 of the unmatched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol

from aiohttp import web

from voyagent.contract import Operation
from voyagent.handlers_types import Handler


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """What the pipeline needs to know of a route, bound once when the route is added."""

    operation: Operation | None  # None: a meta route (public, nothing to validate) or the unmatched route
    template: str  # the route label of the metrics and the access log
    unmatched: bool = False


UNMATCHED = RoutePlan(None, "unmatched", unmatched=True)

# ``decorate(request, response)``: the headers every response carries (``voyagent.middleware.response_headers``)
Decorate = Callable[[web.BaseRequest, web.StreamResponse], None]


class Pipeline(Protocol):
    """What every route's handler is called through (``voyagent.middleware.pipeline``)."""

    def __call__(self, request: web.Request, *, handler: Handler, plan: RoutePlan) -> Awaitable[web.StreamResponse]:
        ...


async def unmatched_error(request: web.Request) -> web.HTTPException:
    """``405`` with ``Allow`` when a route has the path under other methods, else ``404`` (as aiohttp's router
    answers when nothing matches; here the catch-all route matched, so ask the other routes)."""
    allowed: set[str] = set()
    catch_all = request.match_info.route.resource
    for resource in request.app.router.resources():
        if resource is not catch_all:
            _, methods = await resource.resolve(request)
            allowed |= methods
    if allowed:
        return web.HTTPMethodNotAllowed(request.method, allowed)
    return web.HTTPNotFound()
