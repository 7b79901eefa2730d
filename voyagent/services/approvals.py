"""Approvals: the agent's request (chat-and-agent.md §6.3), resolution (§6.4), lazy expiry and the list."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any, Iterator, Literal, Mapping

import asyncpg
from pypika import Table

from voyagent.errors import ApiError, not_found
from voyagent.listing import Filter, Listing
from voyagent.pagination import Page
from voyagent.services import audit
from voyagent.services.tools import may_decide

MAX_ID_LENGTH = 128
COLUMNS = ("id", "tenant_id", "session_id", "tool_name", "tool_call_id", "summary", "turn_id", "payload",
           "requested_at", "expires_at", "status", "granted", "resolved_at", "resolved_by_user_id", "reason",
           "consumed_at")


@dataclasses.dataclass(frozen=True, slots=True)
class ApprovalRow:
    """One ``pending_approvals`` row."""

    id: str
    tenant_id: uuid.UUID
    session_id: uuid.UUID
    tool_name: str
    tool_call_id: str
    summary: str
    turn_id: str
    payload: dict[str, Any]
    requested_at: dt.datetime
    expires_at: dt.datetime
    status: str
    granted: bool | None
    resolved_at: dt.datetime | None
    resolved_by_user_id: uuid.UUID | None
    reason: str | None
    consumed_at: dt.datetime | None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "ApprovalRow":
        return cls(**{name: record[name] for name in COLUMNS})

    def __getitem__(self, name: str) -> Any:
        """Column access by name, like a record (the cursor codec reads ``row["requested_at"]``)."""
        return getattr(self, name)

    def item(self) -> dict[str, Any]:
        """The ApprovalItem wire object (endpoints.md)."""
        return {"id": self.id, "session_id": str(self.session_id), "tool_name": self.tool_name, "summary": self.summary,
                "requested_at": self.requested_at, "expires_at": self.expires_at, "status": self.status,
                "payload": self.payload if isinstance(self.payload, dict) else {}, "resolved_at": self.resolved_at,
                "resolved_by_user_id": None if self.resolved_by_user_id is None else str(self.resolved_by_user_id),
                "reason": self.reason}


def _now(now: dt.datetime | None) -> dt.datetime:
    return now if now is not None else dt.datetime.now(dt.timezone.utc)


def already_resolved() -> ApiError:
    return ApiError(409, "approval_already_resolved")


# --- requesting (the agent's gateway, §6.2 step 5) ---------------------------------------------------


def approval_id_candidates(turn_id: str, tool_name: str) -> Iterator[str]:
    """``ap-<turn_id>-<tool_name>``, then ``-2``, ``-3``, …"""
    base = f"ap-{turn_id}-{tool_name}"
    yield base
    n = 2
    while True:
        yield f"{base}-{n}"
        n += 1


async def request_approval(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, session_id: uuid.UUID,
                           turn_id: str, tool_name: str, tool_call_id: str, payload: dict[str, Any], summary: str,
                           ttl_seconds: int, now: dt.datetime | None = None) -> ApprovalRow:
    """Insert a pending approval in the caller's transaction (§6.3): first free id, expires_at = now + TTL."""
    requested_at = _now(now)
    expires_at = requested_at + dt.timedelta(seconds=ttl_seconds)
    for approval_id in approval_id_candidates(turn_id, tool_name):
        if len(approval_id) > MAX_ID_LENGTH:
            raise ValueError(f"approval id longer than {MAX_ID_LENGTH} characters: {approval_id!r}")
        record = await sql.insert_approval(
            conn, id=approval_id, tenant_id=tenant_id, session_id=session_id, tool_name=tool_name,
            tool_call_id=tool_call_id, summary=summary, turn_id=turn_id, payload=payload,
            requested_at=requested_at, expires_at=expires_at)
        if record is not None:
            return ApprovalRow.from_record(record)
    raise AssertionError("unreachable")  # pragma: no cover


# --- reading with lazy expiry ------------------------------------------------------------------------


async def expire_tenant(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID,
                        now: dt.datetime | None = None) -> None:
    """Switch every pending approval of the tenant past its deadline to ``expired``."""
    await sql.expire_tenant_approvals(conn, tenant_id=tenant_id, now=_now(now))


async def expire_session(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, session_id: uuid.UUID,
                         now: dt.datetime | None = None) -> None:
    """Switch every pending approval of one session past its deadline to ``expired``."""
    await sql.expire_session_approvals(conn, tenant_id=tenant_id, session_id=session_id, now=_now(now))


async def _load(conn: asyncpg.Connection, sql: Any, tenant_id: uuid.UUID, approval_id: str,
                session_id: uuid.UUID | None) -> ApprovalRow:
    record = None
    if len(approval_id) <= MAX_ID_LENGTH:
        record = await sql.get_approval(conn, id=approval_id, tenant_id=tenant_id, session_id=session_id)
    if record is None:
        raise not_found("approval_not_found")
    return ApprovalRow.from_record(record)


async def get_approval(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, approval_id: str,
                       now: dt.datetime | None = None) -> ApprovalRow:
    """One approval of the tenant, expired first if it is pending past its deadline; else ``404``."""
    now = _now(now)
    row = await _load(conn, sql, tenant_id, approval_id, None)
    if row.status == "pending" and row.expires_at <= now:
        expired = await sql.expire_approval(conn, id=row.id, tenant_id=tenant_id, now=now)
        if expired is not None:
            return ApprovalRow.from_record(expired)
        row = await _load(conn, sql, tenant_id, approval_id, None)  # resolved meanwhile
    return row


# --- resolving (§6.4) ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Resolution:
    """What ``decide`` did in its transaction: ``decided`` (row: the decision, its audit event is due after the
    commit), ``unchanged`` (row: already resolved the same way, the chat map's no-op), ``expired`` (committed
    as expired: 409 after the commit) or ``lost`` (another resolver won the race)."""

    outcome: Literal["decided", "unchanged", "expired", "lost"]
    row: ApprovalRow | None = None


async def decide(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, approval_id: str, granted: bool,
                 reason: str | None, resolver_id: uuid.UUID, resolver_role: str, session_id: uuid.UUID | None = None,
                 same_decision_is_noop: bool = False, now: dt.datetime | None = None) -> Resolution:
    """Grant or reject one approval in the caller's transaction (§6.4); ``voyagent.edge.resolve_approval`` runs
    the whole resolution for ``POST /approvals/{id}/resolve`` and the chat ``approvals`` map.

    Checks in the contract's order: ``404 approval_not_found`` (not in the tenant, or not in ``session_id``
    when given), ``403 forbidden_role`` (the tool's approval roles), ``409 approval_already_resolved`` (not
    pending). With ``same_decision_is_noop`` (the chat map) an approval already resolved with the same decision
    is ``unchanged``. Past the deadline it is switched to ``expired`` (which must commit before the 409).
    """
    now = _now(now)
    row = await _load(conn, sql, tenant_id, approval_id, session_id)
    if not may_decide(row.tool_name, resolver_role):
        raise ApiError(403, "forbidden_role")
    if row.status != "pending":
        if same_decision_is_noop and row.status in ("granted", "rejected") and row.granted is granted:
            return Resolution("unchanged", row)
        raise already_resolved()
    if row.expires_at <= now:
        expired = await sql.expire_approval(conn, id=row.id, tenant_id=tenant_id, now=now) is not None
        return Resolution("expired" if expired else "lost")
    record = await sql.decide_approval(conn, id=row.id, tenant_id=tenant_id,
                                       status="granted" if granted else "rejected", granted=granted, now=now,
                                       resolved_by=resolver_id, reason=reason)
    return Resolution("decided", ApprovalRow.from_record(record)) if record is not None else Resolution("lost")


async def settle_lost_race(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, approval_id: str,
                           session_id: uuid.UUID | None, granted: bool) -> ApprovalRow:
    """The chat map's rule after a concurrent resolution: the same decision is a no-op, any other a 409."""
    row = await _load(conn, sql, tenant_id, approval_id, session_id)
    if row.status in ("granted", "rejected") and row.granted is granted:
        return row
    raise already_resolved()


async def write_decision_audit(conn: asyncpg.Connection, sql: Any, row: ApprovalRow, resolver_id: uuid.UUID) -> None:
    """``approval.granted`` / ``approval.rejected`` for a decision (its own transaction, after the decision's)."""
    await audit.write_event(
        conn, sql, tenant_id=row.tenant_id, actor_id=resolver_id, kind=decision_kind(row), actor_kind="human",
        status="succeeded",
        inputs={"approval_id": row.id, "session_id": str(row.session_id), "tool_name": row.tool_name,
                "reason": row.reason},
        entity_refs={"approval_id": row.id, "session_id": str(row.session_id)})


def decision_kind(row: ApprovalRow) -> str:
    return "approval.granted" if row.granted else "approval.rejected"


# --- the list ------------------------------------------------------------------------------------------

_APPROVALS = Table("pending_approvals").as_("p")  # as sql/lists/approvals.sql names it
LISTING = Listing("approvals", _APPROVALS, "requested_at", cursor_id=str, filters=(
    Filter("status", lambda ph: _APPROVALS.status == ph),
    Filter("session_id", lambda ph: _APPROVALS.session_id == ph),
))


async def list_approvals(conn: asyncpg.Connection, *, tenant_id: uuid.UUID, status: str | None,
                         session_id: uuid.UUID | None, page: Page) -> tuple[list[ApprovalRow], int | None]:
    """Up to ``limit + 1`` approvals (requested_at DESC, id DESC) and the exact total when asked for."""
    rows, total = await LISTING.fetch(conn, tenant_id, {"status": status, "session_id": session_id}, page)
    return [ApprovalRow.from_record(row) for row in rows], total
