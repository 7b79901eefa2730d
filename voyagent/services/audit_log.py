"""Reading the audit log (endpoints.md, Audit): filters, the AuditEvent wire shape, list/count/export SQL.

The filters are optional and combine freely, so the statements are built with pypika, once per combination of
filters (then cached here and prepared by asyncpg), rather than one catch-all named query whose generic plan
could not pick the right index.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import uuid
from typing import Any, Mapping

import asyncpg
from pypika import Order, Parameter, PostgreSQLQuery, Table, Tuple
from pypika import functions as fn
from pypika.terms import Function, LiteralValue

from voyagent import jsonio
from voyagent.errors import ApiError
from voyagent.ids import parse_uuid

CURSOR_SCOPE = "audit"
CSV_HEADER = ("created_at", "kind", "actor_kind", "actor_id", "actor_email", "status", "summary", "payload_json")
_ERROR_STATUSES = frozenset({"failed", "rejected"})
_ONE_DAY = dt.timedelta(days=1)

_EVENTS = Table("audit_events").as_("a")
_USERS = Table("users").as_("u")
_COMMON = (_EVENTS.actor_kind, _USERS.email.as_("actor_email"), _EVENTS.tool, _EVENTS.driver, _EVENTS.error,
           _EVENTS.approval_required)
# GET /audit: jsonb decoded (the pool's codec), ids as UUIDs, timestamps as datetimes.
LIST_COLUMNS = (_EVENTS.id, _EVENTS.tenant_id, _EVENTS.actor_id, _EVENTS.approved_by, _EVENTS.inputs,
                _EVENTS.outputs, _EVENTS.entity_refs, *_COMMON, _EVENTS.approved_at, _EVENTS.started_at,
                _EVENTS.completed_at, _EVENTS.status)


# --- the CSV export's records, written by PostgreSQL --------------------------------------------------------------
# The export streams ``COPY (SELECT <record> …) TO STDOUT``: PostgreSQL renders each whole CSV record (CRLF included)
# from the AuditEvent wire values and this process only passes the bytes on. The rules (endpoints.md,
# GET /audit/export.csv) are spelled out once, here; tests/services/test_audit_export.py reads them in Python and
# compares the two byte for byte on awkward values.

CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet takes these for a formula: a leading ' defuses


def _sql_char(char: str) -> str:
    return {"\t": "\\t", "\r": "\\r", "\n": "\\n"}.get(char, char)


_SQL_STARTS = ", ".join(f"E'{_sql_char(c)}'" for c in CSV_FORMULA_STARTS)
_SQL_QUOTED = '[",\\r\\n]'  # a comma, a double quote, CR or LF anywhere: the field is quoted
# a plain field: no formula start and nothing to quote (one regex test for the common case)
_SQL_PLAIN = "^[" + "".join(_sql_char(c) for c in sorted(CSV_FORMULA_STARTS, key=lambda c: c == "-")) + "]|" + _SQL_QUOTED


def _csv_field_sql(value: str) -> str:
    """One CSV field of a text expression: empty for null, a leading ' before a formula start (the quote is part of
    the value), then quoted with quotes doubled only when it holds a comma, a double quote, CR or LF."""
    defused = f"CASE WHEN left({value}, 1) IN ({_SQL_STARTS}) THEN '''' || {value} ELSE {value} END"
    return (f"CASE WHEN {value} !~ E'{_SQL_PLAIN}' THEN {value} "
            f"""WHEN {value} ~ E'{_SQL_QUOTED}' THEN '"' || replace({defused}, '"', '""') || '"' """
            f"ELSE coalesce({defused}, '') END")


def _wire_timestamp_sql(column: str) -> str:
    """A timestamptz as the JSON API writes it: UTC, six fraction digits unless the fraction is zero, ``Z``."""
    return f"""replace(to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || 'Z', '.000000Z', 'Z')"""


_SUMMARY_SQL = """CASE WHEN "a"."error" IS NOT NULL THEN "a"."tool" || ': ' || "a"."error"
    WHEN "a"."driver" IS NOT NULL THEN "a"."tool" || ' via ' || "a"."driver" || ' (' || "a"."status"::text || ')'
    ELSE "a"."tool" || ' (' || "a"."status"::text || ')' END"""

# payload_json: inputs, outputs and entity_refs as PostgreSQL writes jsonb (as GET /audit returns them), then each
# extra only when set (approval_required only when true), strings escaped by to_json as JSON requires
_PAYLOAD_SQL = f"""'{{"inputs":' || "a"."inputs"::text || ',"outputs":' || "a"."outputs"::text
    || ',"entity_refs":' || "a"."entity_refs"::text
    || coalesce(',"driver":' || to_json("a"."driver")::text, '')
    || coalesce(',"error":' || to_json("a"."error")::text, '')
    || CASE WHEN "a"."approval_required" THEN ',"approval_required":true' ELSE '' END
    || coalesce(',"approved_by":"' || "a"."approved_by"::text || '"', '')
    || coalesce(',"approved_at":"' || {_wire_timestamp_sql('"a"."approved_at"')} || '"', '')
    || coalesce(',"completed_at":"' || {_wire_timestamp_sql('"a"."completed_at"')} || '"', '')
    || '}}'"""

# One record in CSV_HEADER order. created_at, actor_kind, actor_id and status never need quoting nor defusing
# (digits and fixed words); payload_json always begins with "{" and is always quoted.
CSV_RECORD_SQL = f"""{_wire_timestamp_sql('"a"."started_at"')}
    || ',' || {_csv_field_sql('"a"."tool"')}
    || ',' || CASE WHEN "a"."actor_kind" = 'human' THEN 'user' ELSE "a"."actor_kind"::text END
    || ',' || coalesce("a"."actor_id"::text, '')
    || ',' || {_csv_field_sql('"u"."email"')}
    || ',' || CASE WHEN "a"."status" IN ('failed', 'rejected') THEN 'error' ELSE 'ok' END
    || ',' || {_csv_field_sql(f"({_SUMMARY_SQL})")}
    || ',"' || replace({_PAYLOAD_SQL}, '"', '""') || E'"\\r\\n'"""

EXPORT_COLUMNS = (LiteralValue(CSV_RECORD_SQL).as_("record"),)


@dataclasses.dataclass(frozen=True, slots=True)
class AuditFilters:
    """The filters of both audit endpoints, ANDed; ``start`` inclusive, ``end`` exclusive (UTC)."""

    actor_id: uuid.UUID | None
    kinds: tuple[str, ...]
    start: dt.datetime | None
    end: dt.datetime | None

    @property
    def unfiltered(self) -> bool:
        return self.actor_id is None and not self.kinds and self.start is None and self.end is None

    def fingerprint(self) -> dict[str, Any]:
        """The filter values a cursor is bound to."""
        return {"actor_id": str(self.actor_id) if self.actor_id else None, "kinds": list(self.kinds),
                "start": jsonio.timestamp(self.start), "end": jsonio.timestamp(self.end)}


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)


def parse_filters(query: Mapping[str, Any]) -> AuditFilters:
    """Filters from the coerced query: ``422 invalid_actor_id``, then ``422 invalid_period``."""
    actor_id = None
    raw_actor = query.get("actor_id")
    if raw_actor is not None:
        actor_id = parse_uuid(raw_actor)
        if actor_id is None:
            raise ApiError(422, "invalid_actor_id")
    pieces = {piece.strip() for value in query.get("kind") or () for piece in value.split(",")}
    kinds = tuple(sorted(piece for piece in pieces if piece))
    day_from, day_to = query.get("from"), query.get("to")
    if day_from is not None and day_to is not None and day_from > day_to:
        raise ApiError(422, "invalid_period")
    try:
        end = _day_start(day_to) + _ONE_DAY if day_to is not None else None
    except OverflowError:  # to=9999-12-31: through the end of time
        end = None
    return AuditFilters(actor_id=actor_id, kinds=kinds, start=_day_start(day_from) if day_from else None, end=end)


# --- SQL ------------------------------------------------------------------------------------------------


class _Params:
    """asyncpg's ``$n`` parameters, numbered in the order they are named (so a statement can be reused)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, name: str) -> Parameter:
        self.names.append(name)
        return Parameter(f"${len(self.names)}")


@dataclasses.dataclass(frozen=True, slots=True)
class _Shape:
    """Which parts a statement has; the SQL text depends on nothing else, so it is built once per shape."""

    select: str  # "count" | "list" | "export"
    actor: bool
    kinds: int  # 0 none, 1 one kind, 2 several
    start: bool
    end: bool
    after: bool = False
    limit: bool = False
    offset: bool = False


@functools.lru_cache(maxsize=256)
def _build(shape: _Shape) -> tuple[str, tuple[str, ...]]:
    """(SQL, parameter names in ``$n`` order) of a shape."""
    params = _Params()
    if shape.select == "count":
        query = PostgreSQLQuery.from_(_EVENTS).select(fn.Count("*"))
    else:
        columns = LIST_COLUMNS if shape.select == "list" else EXPORT_COLUMNS
        query = PostgreSQLQuery.from_(_EVENTS).left_join(_USERS).on(_USERS.id == _EVENTS.actor_id).select(*columns)
    query = query.where(_EVENTS.tenant_id == params("tenant_id"))
    if shape.actor:
        query = query.where(_EVENTS.actor_id == params("actor_id"))
    if shape.kinds == 1:
        query = query.where(_EVENTS.tool == params("kind"))
    elif shape.kinds:
        query = query.where(_EVENTS.tool == Function("ANY", params("kinds")))
    if shape.start:
        query = query.where(_EVENTS.started_at >= params("start"))
    if shape.end:
        query = query.where(_EVENTS.started_at < params("end"))
    if shape.after:  # keyset: one index range scan whatever the depth
        query = query.where(Tuple(_EVENTS.started_at, _EVENTS.id) < Tuple(params("after_at"), params("after_id")))
    if shape.select != "count":
        query = query.orderby(_EVENTS.started_at, order=Order.desc).orderby(_EVENTS.id, order=Order.desc)
    if shape.limit:
        query = query.limit(params("limit"))
    if shape.offset:
        query = query.offset(params("offset"))
    return query.get_sql(), tuple(params.names)


def _statement(select: str, tenant_id: uuid.UUID, filters: AuditFilters, *,
               after: tuple[dt.datetime, uuid.UUID] | None = None, limit: int | None = None,
               offset: int = 0) -> tuple[str, list[Any]]:
    kinds = filters.kinds
    shape = _Shape(select=select, actor=filters.actor_id is not None, kinds=min(len(kinds), 2),
                   start=filters.start is not None, end=filters.end is not None, after=after is not None,
                   limit=limit is not None, offset=offset > 0)
    sql, names = _build(shape)
    values = {"tenant_id": tenant_id, "actor_id": filters.actor_id, "kind": kinds[0] if kinds else None,
              "kinds": list(kinds), "start": filters.start, "end": filters.end,
              "after_at": after[0] if after else None, "after_id": after[1] if after else None, "limit": limit,
              "offset": offset}
    return sql, [values[name] for name in names]


def count_statement(tenant_id: uuid.UUID, filters: AuditFilters) -> tuple[str, list[Any]]:
    """``SELECT count(*)`` of the matching events."""
    return _statement("count", tenant_id, filters)


async def count(conn: asyncpg.Connection, sql: Any, tenant_id: uuid.UUID, filters: AuditFilters) -> int:
    """The number of matching events: the tenant's maintained counter without filters, else a count."""
    if filters.unfiltered:
        return int(await sql.count_tenant_audit_events(conn, tenant_id=tenant_id))
    statement, args = count_statement(tenant_id, filters)
    return int(await conn.fetchval(statement, *args))


def rows_statement(tenant_id: uuid.UUID, filters: AuditFilters, *,
                   after: tuple[dt.datetime, uuid.UUID] | None = None, limit: int | None = None,
                   offset: int = 0) -> tuple[str, list[Any]]:
    """A page of ``LIST_COLUMNS`` rows with their actor's e-mail, newest first (``started_at DESC, id DESC``)."""
    return _statement("list", tenant_id, filters, after=after, limit=limit, offset=offset)


def export_statement(tenant_id: uuid.UUID, filters: AuditFilters) -> tuple[str, list[Any]]:
    """Every matching event as its CSV record (one text column, CSV_RECORD_SQL), newest first."""
    return _statement("export", tenant_id, filters)


# --- wire shape -----------------------------------------------------------------------------------------


def summary(kind: str, status: str, error: str | None, driver: str | None) -> str:
    """``<kind>: <error>``, else ``<kind> via <driver> (<status>)``, else ``<kind> (<status>)``."""
    if error is not None:
        return f"{kind}: {error}"
    if driver is not None:
        return f"{kind} via {driver} ({status})"
    return f"{kind} ({status})"


def payload_extras(driver: str | None, error: str | None, approval_required: bool, approved_by: Any,
                   approved_at: dt.datetime | None, completed_at: dt.datetime | None) -> dict[str, Any]:
    """The payload keys beside inputs/outputs/entity_refs, each only when set (approval_required only when true)."""
    extras: dict[str, Any] = {}
    if driver is not None:
        extras["driver"] = driver
    if error is not None:
        extras["error"] = error
    if approval_required:
        extras["approval_required"] = True
    if approved_by is not None:
        extras["approved_by"] = str(approved_by)
    if approved_at is not None:
        extras["approved_at"] = approved_at
    if completed_at is not None:
        extras["completed_at"] = completed_at
    return extras


def _actor_kind(stored: str) -> str:
    return "user" if stored == "human" else stored


def _status(stored: str) -> str:
    return "error" if stored in _ERROR_STATUSES else "ok"


def wire_event(row: Any) -> dict[str, Any]:
    """The AuditEvent object of a ``LIST_COLUMNS`` row (endpoints.md, AuditEvent wire shape)."""
    actor_id, kind, status, error, driver = row["actor_id"], row["tool"], row["status"], row["error"], row["driver"]
    return {"id": str(row["id"]), "tenant_id": str(row["tenant_id"]), "actor_kind": _actor_kind(row["actor_kind"]),
            "actor_id": str(actor_id) if actor_id is not None else None, "actor_email": row["actor_email"],
            "kind": kind, "summary": summary(kind, status, error, driver),
            "payload": {"inputs": row["inputs"], "outputs": row["outputs"], "entity_refs": row["entity_refs"],
                        **payload_extras(driver, error, row["approval_required"], row["approved_by"],
                                         row["approved_at"], row["completed_at"])},
            "status": _status(status), "created_at": row["started_at"]}


def csv_header() -> bytes:
    """The header record."""
    return (",".join(CSV_HEADER) + "\r\n").encode("ascii")


def export_filename(tenant_id: uuid.UUID, today: dt.date) -> str:
    """``voyagent-audit-<first 8 chars of tenant id>-<YYYY-MM-DD>.csv``."""
    return f"voyagent-audit-{str(tenant_id)[:8]}-{today.isoformat()}.csv"
