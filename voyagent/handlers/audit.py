"""The audit log (endpoints.md, Audit): a keyset-paginated list and a streamed CSV export."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any, AsyncIterator

import asyncpg
from aiohttp import web

from voyagent.errors import ApiError
from voyagent.handlers_types import Handler
from voyagent.jsonio import json_response
from voyagent.keys import AUDIT_EXPORTS, CURSORS, DATABASE, PRINCIPAL, QUERIES, QUERY, SETTINGS
from voyagent.services import audit_log

log = logging.getLogger("voyagent.audit_export")

EXPORT_BATCH_ROWS = 1000


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
    """GET /audit/export.csv: count against the cap, then stream from a server-side cursor in batches.

    Memory stays constant (one batch at a time, and ``write`` waits while the client is slow). A client that
    goes away makes the next ``write`` fail (or cancels this task): the transaction, and with it the cursor
    and the query, end at once. Exports beyond half the pool wait for a slot, so slow readers cannot starve
    the other requests of connections.
    """
    tenant_id = request[PRINCIPAL].tenant_id
    filters = audit_log.parse_filters(request[QUERY])
    cap = request.app[SETTINGS].audit_export_max_rows
    sql = request.app[QUERIES]
    rows_sql, rows_args = audit_log.export_statement(tenant_id, filters)
    filename = audit_log.export_filename(tenant_id, dt.datetime.now(dt.timezone.utc).date())
    exported = 0
    async with request.app[AUDIT_EXPORTS], request.app[DATABASE].connection() as conn, \
            conn.transaction(isolation="repeatable_read", readonly=True):
        if await audit_log.count(conn, sql, tenant_id, filters) > cap:  # same snapshot as the rows below
            raise ApiError(400, "export_too_large")
        response = web.StreamResponse(headers={"Content-Disposition": f'attachment; filename="{filename}"'})
        response.content_type = "text/csv"
        response.charset = "utf-8"
        await response.prepare(request)
        try:
            await response.write(audit_log.csv_header())
            async with contextlib.aclosing(_batches(conn, rows_sql, rows_args)) as batches:
                async for rows in batches:
                    await response.write(await asyncio.to_thread(audit_log.csv_records, rows))
                    exported += len(rows)
        except ConnectionResetError:
            log.info("audit export stopped: client went away after %d rows", exported)
            return response
        except Exception:  # headers are sent: a truncated stream, not a JSON error, tells the client
            log.exception("audit export failed after %d rows", exported)
            if request.transport is not None:
                request.transport.close()
            return response
    await response.write_eof()
    return response


async def _batches(conn: asyncpg.Connection, statement: str, args: list[Any]) -> AsyncIterator[list[Any]]:
    """Rows of a server-side cursor, ``EXPORT_BATCH_ROWS`` at a time, the next batch fetched while one is used."""
    cursor = await conn.cursor(statement, *args)
    pending = asyncio.ensure_future(cursor.fetch(EXPORT_BATCH_ROWS))
    try:
        while rows := await pending:
            pending = asyncio.ensure_future(cursor.fetch(EXPORT_BATCH_ROWS))
            yield rows
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending


HANDLERS: dict[str, Handler] = {
    "list_audit_events": list_audit_events,
    "export_audit_csv": export_audit_csv,
}
