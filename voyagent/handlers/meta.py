"""Meta routes (/schema, /openapi.json, /docs and its assets), the Money schema and the Prometheus scrape."""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web

from voyagent.docs_page import ASSETS, CONTENT_SECURITY_POLICY
from voyagent.handlers_types import Handler
from voyagent.jsonio import json_response
from voyagent.keys import CONTRACT, DATABASE, DOCS_HTML, METRICS, QUERIES, SETTINGS

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def openapi_document(request: web.Request) -> web.Response:
    """The checked-in openapi.yaml as JSON (serialised once at start-up)."""
    return web.Response(body=request.app[CONTRACT].json_bytes, content_type="application/json", charset="utf-8")


_DOCS_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff"}


async def docs(request: web.Request) -> web.Response:
    """The Swagger UI page rendered at start-up (voyagent.docs_page)."""
    return web.Response(text=request.app[DOCS_HTML], content_type="text/html", charset="utf-8",
                        headers=_DOCS_HEADERS)


async def docs_asset(request: web.Request) -> web.FileResponse:
    """A file of the /docs page from the package data; revalidated by ETag, so an upgrade shows at once."""
    path = ASSETS.get(request.match_info["name"])
    if path is None:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


async def money_schema(request: web.Request) -> web.Response:
    """The canonical Money JSON Schema (data-model.md), the same object as components.schemas.Money."""
    return json_response(request.app[CONTRACT].document["components"]["schemas"]["Money"])


def _is_loopback(peer: str | None) -> bool:
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def metrics_allowed(request: web.Request) -> bool:
    """Loopback TCP peer, or the metrics token (constant time); X-Forwarded-For is never consulted."""
    if _is_loopback(request.remote):
        return True
    token = request.app[SETTINGS].metrics_token
    offered = request.headers.get("X-Voyagent-Metrics-Token")
    return bool(token) and offered is not None and hmac.compare_digest(offered.encode(), token.encode())


async def internal_metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition; refused scrapes look exactly like an unknown route."""
    if not metrics_allowed(request):
        raise web.HTTPNotFound()

    async def active_sessions() -> int:
        try:
            async with request.app[DATABASE].connection() as conn:
                return int(await request.app[QUERIES].count_active_sessions(conn))
        except Exception:
            return 0

    body = await request.app[METRICS].exposition(active_sessions)
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


HANDLERS: dict[str, Handler] = {"get_money_schema": money_schema, "internal_metrics": internal_metrics}
META_ROUTES: dict[str, Handler] = {"/schema": openapi_document, "/openapi.json": openapi_document, "/docs": docs,
                                   "/docs/assets/{name}": docs_asset}
