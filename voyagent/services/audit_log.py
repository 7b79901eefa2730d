"""Reading the audit log (endpoints.md, Audit): the filters of both endpoints, the AuditEvent wire shape, the CSV.

``GET /audit`` is a ``voyagent.listing`` list (its SELECT: sql/lists/audit.sql); the export runs the same
filters and order over sql/lists/audit_export.sql, without paging.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any, Iterable, Mapping

import asyncpg
from pypika import Table
from pypika.terms import Function

from voyagent import jsonio
from voyagent.errors import ApiError
from voyagent.ids import parse_uuid
from voyagent.listing import Filter, Listing, day_end, day_start, select_text
from voyagent.pagination import Page

CSV_HEADER = ("created_at", "kind", "actor_kind", "actor_id", "actor_email", "status", "summary", "payload_json")
_ERROR_STATUSES = frozenset({"failed", "rejected"})

_EVENTS = Table("audit_events").as_("a")  # as sql/lists/audit.sql names it
# The filters of both endpoints, ANDed; one kind is an equality, several an ``= ANY`` (both use the kind index).
LISTING = Listing("audit", _EVENTS, "started_at", filters=(
    Filter("actor_id", lambda ph: _EVENTS.actor_id == ph),
    Filter("kind", lambda ph: _EVENTS.tool == ph),
    Filter("kinds", lambda ph: _EVENTS.tool == Function("ANY", ph)),
    Filter("from", lambda ph: _EVENTS.started_at >= ph, day_start),
    Filter("to", lambda ph: _EVENTS.started_at <= ph, day_end),
))
EXPORT_SELECT = select_text("audit_export")
# The columns of EXPORT_SELECT, in the order csv_records unpacks them.
EXPORT_COLUMNS = ("actor_id", "approved_by", "inputs", "outputs", "entity_refs", "actor_kind", "actor_email", "tool",
                  "driver", "error", "approval_required", "approved_at", "started_at", "completed_at", "status")


@dataclasses.dataclass(frozen=True, slots=True)
class AuditFilters:
    """The filters of both audit endpoints: an actor, kinds, and whole UTC days ``day_from``–``day_to``."""

    actor_id: uuid.UUID | None = None
    kinds: tuple[str, ...] = ()
    day_from: dt.date | None = None
    day_to: dt.date | None = None

    @property
    def unfiltered(self) -> bool:
        return self == AuditFilters()

    def fingerprint(self) -> dict[str, Any]:
        """The filter values a cursor is bound to."""
        return {"actor_id": str(self.actor_id) if self.actor_id else None, "kinds": list(self.kinds),
                "from": self.day_from.isoformat() if self.day_from else None,
                "to": self.day_to.isoformat() if self.day_to else None}

    def values(self) -> dict[str, Any]:
        """The filter values by name, as ``LISTING`` declares them (None: not in effect)."""
        kinds = self.kinds
        return {"actor_id": self.actor_id, "kind": kinds[0] if len(kinds) == 1 else None,
                "kinds": list(kinds) if len(kinds) > 1 else None, "from": self.day_from, "to": self.day_to}


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
    return AuditFilters(actor_id=actor_id, kinds=kinds, day_from=day_from, day_to=day_to)


# --- reading --------------------------------------------------------------------------------------------


async def count(conn: asyncpg.Connection, sql: Any, tenant_id: uuid.UUID, filters: AuditFilters) -> int:
    """The number of matching events: the tenant's maintained counter without filters, else a count."""
    if filters.unfiltered:
        return int(await sql.count_tenant_audit_events(conn, tenant_id=tenant_id))
    return await LISTING.count(conn, tenant_id, filters.values())


async def list_events(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, filters: AuditFilters,
                      page: Page) -> tuple[list[asyncpg.Record], int | None]:
    """Up to ``limit + 1`` events of the page, newest first, and the exact total (None when not asked for)."""
    return await LISTING.fetch(conn, tenant_id, filters.values(), page,
                               total=lambda _count: count(conn, sql, tenant_id, filters))


def export_statement(tenant_id: uuid.UUID, filters: AuditFilters) -> tuple[str, list[Any]]:
    """Every matching event as sql/lists/audit_export.sql selects it, newest first: (SQL, parameters)."""
    return LISTING.all_sql(tenant_id, filters.values(), EXPORT_SELECT)


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
    """The AuditEvent object of a row of sql/lists/audit.sql (endpoints.md, AuditEvent wire shape)."""
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
