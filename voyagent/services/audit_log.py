"""Reading the audit log (endpoints.md, Audit): the filters of both endpoints, the AuditEvent wire shape, the CSV.

``GET /audit`` is a ``voyagent.listing`` list (its SELECT: sql/lists/audit.sql); the export runs the same
filters and order over sql/lists/audit_export.sql, without paging.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any, Mapping

import asyncpg
from pypika import Table
from pypika.terms import Function

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
EXPORT_SELECT = select_text("audit_export")  # one column: each event's whole CSV record, written by PostgreSQL


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
    """Every matching event as its CSV record (sql/lists/audit_export.sql), newest first: (SQL, parameters)."""
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


def csv_header() -> bytes:
    """The header record."""
    return (",".join(CSV_HEADER) + "\r\n").encode("ascii")


def export_filename(tenant_id: uuid.UUID, today: dt.date) -> str:
    """``voyagent-audit-<first 8 chars of tenant id>-<YYYY-MM-DD>.csv``."""
    return f"voyagent-audit-{str(tenant_id)[:8]}-{today.isoformat()}.csv"
