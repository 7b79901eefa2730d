"""Reading the audit log (endpoints.md, Audit): filters, the AuditEvent wire shape, list/count/export SQL.

The filters are optional and combine freely, so the statements are built with pypika (one statement text per
combination of filters, each prepared and cached by asyncpg) rather than one catch-all named query whose
generic plan could not pick the right index.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import uuid
from typing import Any, Iterable, Mapping

from pypika import Order, Parameter, PostgreSQLQuery, Table, Tuple
from pypika import functions as fn
from pypika.terms import Function

from voyagent import jsonio
from voyagent.errors import ApiError
from voyagent.ids import parse_uuid

CURSOR_SCOPE = "audit"
CSV_HEADER = ("created_at", "kind", "actor_kind", "actor_id", "actor_email", "status", "summary", "payload_json")
_ERROR_STATUSES = frozenset({"failed", "rejected"})
_ONE_DAY = dt.timedelta(days=1)

_EVENTS = Table("audit_events").as_("a")
_USERS = Table("users").as_("u")
_COLUMNS = (_EVENTS.id, _EVENTS.tenant_id, _EVENTS.actor_kind, _EVENTS.actor_id, _USERS.email.as_("actor_email"),
            _EVENTS.tool, _EVENTS.driver, _EVENTS.entity_refs, _EVENTS.inputs, _EVENTS.outputs, _EVENTS.error,
            _EVENTS.approval_required, _EVENTS.approved_by, _EVENTS.approved_at, _EVENTS.started_at,
            _EVENTS.completed_at, _EVENTS.status)


@dataclasses.dataclass(frozen=True, slots=True)
class AuditFilters:
    """The filters of both audit endpoints, ANDed; ``start`` inclusive, ``end`` exclusive (UTC)."""

    actor_id: uuid.UUID | None
    kinds: tuple[str, ...]
    start: dt.datetime | None
    end: dt.datetime | None

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
    """asyncpg's positional ``$n`` parameters, numbered in the order they are added."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> Parameter:
        self.values.append(value)
        return Parameter(f"${len(self.values)}")


def _filtered(query: Any, params: _Params, tenant_id: uuid.UUID, filters: AuditFilters) -> Any:
    query = query.where(_EVENTS.tenant_id == params(tenant_id))
    if filters.actor_id is not None:
        query = query.where(_EVENTS.actor_id == params(filters.actor_id))
    if len(filters.kinds) == 1:
        query = query.where(_EVENTS.tool == params(filters.kinds[0]))
    elif filters.kinds:
        query = query.where(_EVENTS.tool == Function("ANY", params(list(filters.kinds))))
    if filters.start is not None:
        query = query.where(_EVENTS.started_at >= params(filters.start))
    if filters.end is not None:
        query = query.where(_EVENTS.started_at < params(filters.end))
    return query


def count_statement(tenant_id: uuid.UUID, filters: AuditFilters) -> tuple[str, list[Any]]:
    """``SELECT count(*)`` of the matching events."""
    params = _Params()
    query = _filtered(PostgreSQLQuery.from_(_EVENTS).select(fn.Count("*")), params, tenant_id, filters)
    return query.get_sql(), params.values


def rows_statement(tenant_id: uuid.UUID, filters: AuditFilters, *, after: tuple[dt.datetime, uuid.UUID] | None = None,
                   limit: int | None = None, offset: int = 0) -> tuple[str, list[Any]]:
    """The matching events with their actor's e-mail, newest first (``started_at DESC, id DESC``)."""
    params = _Params()
    query = PostgreSQLQuery.from_(_EVENTS).left_join(_USERS).on(_USERS.id == _EVENTS.actor_id).select(*_COLUMNS)
    query = _filtered(query, params, tenant_id, filters)
    if after is not None:  # keyset: one index range scan whatever the depth
        query = query.where(Tuple(_EVENTS.started_at, _EVENTS.id) < Tuple(params(after[0]), params(after[1])))
    query = query.orderby(_EVENTS.started_at, order=Order.desc).orderby(_EVENTS.id, order=Order.desc)
    if limit is not None:
        query = query.limit(params(limit))
    if offset:
        query = query.offset(params(offset))
    return query.get_sql(), params.values


# --- wire shape -----------------------------------------------------------------------------------------


def _summary_and_payload(row: Any) -> tuple[str, dict[str, Any]]:
    kind, status, error, driver = row["tool"], row["status"], row["error"], row["driver"]
    payload: dict[str, Any] = {"inputs": row["inputs"], "outputs": row["outputs"], "entity_refs": row["entity_refs"]}
    if driver is not None:
        payload["driver"] = driver
    if error is not None:
        payload["error"] = error
        summary = f"{kind}: {error}"
    elif driver is not None:
        summary = f"{kind} via {driver} ({status})"
    else:
        summary = f"{kind} ({status})"
    if row["approval_required"]:
        payload["approval_required"] = True
    if row["approved_by"] is not None:
        payload["approved_by"] = str(row["approved_by"])
    if row["approved_at"] is not None:
        payload["approved_at"] = row["approved_at"]
    if row["completed_at"] is not None:
        payload["completed_at"] = row["completed_at"]
    return summary, payload


def wire_event(row: Any) -> dict[str, Any]:
    """The AuditEvent object of a stored row (endpoints.md, AuditEvent wire shape)."""
    summary, payload = _summary_and_payload(row)
    actor_kind, actor_id = row["actor_kind"], row["actor_id"]
    return {"id": str(row["id"]), "tenant_id": str(row["tenant_id"]),
            "actor_kind": "user" if actor_kind == "human" else actor_kind,
            "actor_id": str(actor_id) if actor_id is not None else None, "actor_email": row["actor_email"], "kind": row["tool"], "summary": summary,
            "payload": payload, "status": "error" if row["status"] in _ERROR_STATUSES else "ok",
            "created_at": row["started_at"]}


def csv_records(rows: Iterable[Any], header: bool = False) -> bytes:
    """RFC 4180 records (CRLF after each, quotes only where needed) of the wire values; null → empty field."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(CSV_HEADER)
    timestamp, dumps = jsonio.timestamp, jsonio.dumps
    for row in rows:
        summary, payload = _summary_and_payload(row)
        actor_kind = row["actor_kind"]
        actor_id = row["actor_id"]
        writer.writerow((timestamp(row["started_at"]), row["tool"], "user" if actor_kind == "human" else actor_kind,
                         str(actor_id) if actor_id is not None else None, row["actor_email"],
                         "error" if row["status"] in _ERROR_STATUSES else "ok", summary, dumps(payload).decode()))
    return out.getvalue().encode("utf-8")


def export_filename(tenant_id: uuid.UUID, today: dt.date) -> str:
    """``voyagent-audit-<first 8 chars of tenant id>-<YYYY-MM-DD>.csv``."""
    return f"voyagent-audit-{str(tenant_id)[:8]}-{today.isoformat()}.csv"
