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
from typing import Any, Iterable, Mapping

import asyncpg
from pypika import Order, Parameter, PostgreSQLQuery, Table, Tuple
from pypika import functions as fn
from pypika.functions import Cast
from pypika.terms import AtTimezone, Function

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


def _as_json_text(timestamp_column: Any) -> Any:
    """``to_json(<column> AT TIME ZONE 'UTC')::text``: ``"2025-01-01T10:00:00.12"``, see ``_wire_timestamp``."""
    return Cast(Function("to_json", AtTimezone(timestamp_column, "UTC")), "text").as_(timestamp_column.name)


# CSV export: only what the CSV needs, as text PostgreSQL renders cheaply in its own process (jsonb is spliced,
# not decoded and encoded again; datetimes are never built). csv_records unpacks rows in exactly this order.
EXPORT_COLUMNS = (*(Cast(column, "text").as_(column.name) for column in (
    _EVENTS.actor_id, _EVENTS.approved_by, _EVENTS.inputs, _EVENTS.outputs, _EVENTS.entity_refs)), *_COMMON,
    _as_json_text(_EVENTS.approved_at), _as_json_text(_EVENTS.started_at), _as_json_text(_EVENTS.completed_at),
    _EVENTS.status)


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
    """Every matching event as ``EXPORT_COLUMNS``, newest first."""
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


# A spreadsheet reads a cell starting with one of these as a formula (CSV injection); OWASP's remedy is a leading "'".
_FORMULA_STARTS = frozenset("=+-@\t\r")


def _csv_field(value: str | None) -> str:
    """One RFC 4180 field: formula-neutralised, then quoted (quotes doubled) only when it holds a comma, a quote,
    CR or LF; null → empty."""
    if not value:
        return ""
    if value[0] in _FORMULA_STARTS:
        value = "'" + value
    if '"' in value or "," in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def _wire_timestamp(json_text: str | None) -> str | None:
    """A ``to_json`` UTC timestamp (fraction without trailing zeros) in the wire format: 6 digits or none, ``Z``."""
    if json_text is None:
        return None
    inner = json_text[1:-1]
    return (inner.ljust(26, "0") if len(inner) > 19 else inner) + "Z"


def csv_header() -> bytes:
    """The header record."""
    return (",".join(CSV_HEADER) + "\r\n").encode("ascii")


def csv_records(rows: Iterable[Any]) -> bytes:
    """RFC 4180 records of ``EXPORT_COLUMNS`` rows: the wire values (text that a spreadsheet would take for a formula
    gets a leading ``'``), CRLF after each, quotes only where needed.

    ``payload_json`` is spliced from the JSON text PostgreSQL renders for inputs/outputs/entity_refs anyway (the
    same JSON values as in ``GET /audit``) instead of being decoded and encoded again, and timestamps arrive as
    text. This loop is the export's hot path: rows are unpacked by position, in ``EXPORT_COLUMNS`` order.
    """
    field, timestamp, dumps, extras_of = _csv_field, _wire_timestamp, jsonio.dumps, payload_extras
    lines = []
    for (actor_id, approved_by, inputs, outputs, entity_refs, actor_kind, actor_email, kind, driver, error,
         approval_required, approved_at, started_at, completed_at, status) in rows:
        extras = extras_of(driver, error, approval_required, approved_by, timestamp(approved_at),
                           timestamp(completed_at))
        tail = "," + dumps(extras)[1:].decode() if extras else "}"
        payload = f'{{"inputs":{inputs},"outputs":{outputs},"entity_refs":{entity_refs}{tail}'.replace('"', '""')
        # created_at, actor_kind, actor_id and status never need quoting nor neutralising (digits and fixed words),
        # and payload_json always begins with "{"
        lines.append(f'{timestamp(started_at)},{field(kind)},{_actor_kind(actor_kind)},{actor_id or ""},'
                     f'{field(actor_email)},{_status(status)},{field(summary(kind, status, error, driver))},'
                     f'"{payload}"\r\n')
    return "".join(lines).encode("utf-8")


def export_filename(tenant_id: uuid.UUID, today: dt.date) -> str:
    """``voyagent-audit-<first 8 chars of tenant id>-<YYYY-MM-DD>.csv``."""
    return f"voyagent-audit-{str(tenant_id)[:8]}-{today.isoformat()}.csv"
