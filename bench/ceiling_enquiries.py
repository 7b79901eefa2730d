"""The ceiling for GET /enquiries: bench/ceiling.py plus one bare route that runs exactly the SQL our list runs.

    python -m bench.ceiling_enquiries --port 8100 --dsn postgresql://…

``GET /enquiries?tenant_id=…[&destination=…][&after_ts=…&after_id=…][&offset=…[&plain=1]][&include_total=false]`` — no
authentication, no validation, no cursor signing; the statements are the ones ``voyagent.services.enquiries``
runs for that request in steady state (text from its ``LISTING``, generated once at import): for a filter, in
a read-only REPEATABLE READ transaction, ``SET LOCAL plan_cache_mode`` and the page; the total from the
counters (unfiltered) or, filtered, the counter version that validates the total counted by the first request
(``?recount=1`` runs the count itself, as a cache miss does). ``&plain=1`` pages with a plain ``LIMIT … OFFSET``
on the whole rows instead of the deferred join: the query issue 14's "today" was measured with, so the deep
page's speed-up over it is a ratio taken in the same run. JSON by orjson.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import orjson
from aiohttp import web

from bench import ceiling
from voyagent.pagination import Page
from voyagent.queries import load_file
from voyagent.resources import sql_dir
from voyagent.services.enquiries import LISTING, STATUSES, like_pattern

_T = uuid.UUID(int=0)
_FIRST = Page(limit=50, offset=0, after=None, include_total=True)
_AFTER = Page(limit=50, offset=0, after=(dt.datetime.now(dt.timezone.utc), _T), include_total=True)
_OFFSET = Page(limit=50, offset=1, after=None, include_total=True)
_FILTER = {"destination": "x"}
SQL = {
    "first": LISTING.page_sql(_T, {}, _FIRST)[0],
    "after": LISTING.page_sql(_T, {}, _AFTER)[0],
    "offset": LISTING.page_sql(_T, {}, _OFFSET)[0],
    "plain_offset": LISTING.page_sql(_T, {}, _FIRST)[0] + " OFFSET $3",
    "filtered": LISTING.page_sql(_T, _FILTER, _FIRST)[0],
    "filtered_count": LISTING.count_sql(_T, _FILTER)[0],
    "totals": next(q.sql for q in load_file(sql_dir() / "enquiries.sql")
                   if q.name == "get_enquiry_totals"),
}
FILTERED_TOTALS: dict[tuple[uuid.UUID, str], tuple[int, int]] = {}


def _default(value: object) -> object:
    if isinstance(value, decimal.Decimal):
        return str(value.quantize(decimal.Decimal("0.01")))
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError


async def enquiries(request: web.Request) -> web.Response:
    tenant_id = uuid.UUID(request.query["tenant_id"])
    destination = request.query.get("destination")
    include_total = request.query.get("include_total", "true") != "false"
    offset = int(request.query.get("offset", 0))
    async with request.app[ceiling.POOL].acquire() as conn:
        if destination:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
                rows = await conn.fetch(SQL["filtered"], tenant_id, like_pattern(destination), 51)
                total = None
                if include_total:
                    version = (await conn.fetchrow(SQL["totals"], [], tenant_id))["version"]
                    cached = FILTERED_TOTALS.get((tenant_id, destination))
                    if cached and cached[0] == version and "recount" not in request.query:
                        total = cached[1]
                    else:
                        total = await conn.fetchval(SQL["filtered_count"], tenant_id, like_pattern(destination))
                        FILTERED_TOTALS[(tenant_id, destination)] = (version, total)
        else:
            if "after_ts" in request.query:
                after = dt.datetime.fromisoformat(request.query["after_ts"])
                rows = await conn.fetch(SQL["after"], tenant_id, after, uuid.UUID(request.query["after_id"]), 51)
            elif offset:
                plain = "plain" in request.query
                rows = await conn.fetch(SQL["plain_offset" if plain else "offset"], tenant_id, 51, offset)
            else:
                rows = await conn.fetch(SQL["first"], tenant_id, 51)
            total = (await conn.fetchrow(SQL["totals"], list(STATUSES), tenant_id))["total"] if include_total else None
    body = {"items": [dict(r) for r in rows[:50]], "total": total, "limit": 50, "offset": offset,
            "next_cursor": str(rows[49]["id"]) if len(rows) > 50 else None}
    return web.Response(body=orjson.dumps(body, default=_default, option=orjson.OPT_UTC_Z),
                        content_type="application/json")


ceiling.ROUTES.append(("GET", "/enquiries", enquiries))

if __name__ == "__main__":
    ceiling.main()
