"""The audit log (endpoints.md, Audit): a keyset-paginated list and a streamed CSV export."""

from __future__ import annotations

import datetime as dt
import logging

from aiohttp import web

from voyagent.errors import ApiError
from voyagent.handlers_types import Handler
from voyagent.jsonio import json_response
from voyagent.keys import AUDIT_EXPORTS, CURSORS, DATABASE, PRINCIPAL, QUERIES, QUERY, SETTINGS
from voyagent.middleware.response_headers import prepare_stream
from voyagent.pgcopy import TextColumn
from voyagent.services import audit_log

log = logging.getLogger("voyagent.audit_export")

EXPORT_SECONDS = 900  # the longest an export may hold its connection and snapshot (a client reading ~50 kB/s)


async def list_audit_events(request: web.Request) -> web.Response:
    """GET /audit: filters, limit/offset or cursor, total unless include_total=false."""
    tenant_id = request[PRINCIPAL].tenant_id
    filters = audit_log.parse_filters(request[QUERY])
    paging = audit_log.LISTING.paging(request.app[CURSORS], request[QUERY], tenant_id, filters.fingerprint())
    async with audit_log.LISTING.reader(request.app[DATABASE], filters.values()) as conn:
        rows, total = await audit_log.list_events(conn, request.app[QUERIES], tenant_id=tenant_id, filters=filters,
                                                  page=paging.page)
    return json_response(paging.envelope(rows, total, audit_log.wire_event))


async def export_audit_csv(request: web.Request) -> web.StreamResponse:
    """GET /audit/export.csv: count against the cap, then stream the records PostgreSQL writes (a binary COPY).

    Memory stays constant: asyncpg stops reading the COPY until the chunk in hand is written, and ``write`` waits
    while the client is slow. A client that goes away makes the next ``write`` fail: asyncpg cancels the COPY and
    the transaction ends at once. Exports beyond half the pool wait for a slot, so slow readers cannot starve the
    other requests of connections; one still running after EXPORT_SECONDS is cut off.
    """
    tenant_id = request[PRINCIPAL].tenant_id
    filters = audit_log.parse_filters(request[QUERY])
    cap = request.app[SETTINGS].audit_export_max_rows
    sql = request.app[QUERIES]
    rows_sql, rows_args = audit_log.export_statement(tenant_id, filters)
    filename = audit_log.export_filename(tenant_id, dt.datetime.now(dt.timezone.utc).date())
    records = TextColumn()
    async with request.app[AUDIT_EXPORTS], request.app[DATABASE].read_transaction() as conn:
        if await audit_log.count(conn, sql, tenant_id, filters) > cap:  # same snapshot as the rows below
            raise ApiError(400, "export_too_large")
        # A COPY is planned for its whole result: walk the keyset index in order (rows stream from the first
        # one) rather than sort every matching row first. Local to this transaction.
        await conn.execute("SET LOCAL enable_sort = off")
        response = web.StreamResponse(headers={"Content-Disposition": f'attachment; filename="{filename}"'})
        response.content_type = "text/csv"
        response.charset = "utf-8"
        await prepare_stream(request, response)

        async def write(chunk: bytes) -> None:
            data = records.feed(chunk)
            if data:
                await response.write(data)

        try:
            await response.write(audit_log.csv_header())
            await conn.copy_from_query(rows_sql, *rows_args, output=write, format="binary", timeout=EXPORT_SECONDS)
            if not records.done:
                raise RuntimeError("the COPY stream ended without its trailer")
        except ConnectionResetError:
            log.info("audit export stopped: client went away after %d rows", records.rows)
            return response
        except Exception:  # headers are sent: a truncated stream, not a JSON error, tells the client
            log.exception("audit export failed after %d rows", records.rows)
            if request.transport is not None:
                request.transport.close()
            return response
    await response.write_eof()
    return response


HANDLERS: dict[str, Handler] = {
    "list_audit_events": list_audit_events,
    "export_audit_csv": export_audit_csv,
}
