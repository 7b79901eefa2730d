"""The audit writer every layer uses, and the limiter that keeps the ``auth.verify`` record of 403s small."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from typing import Any

import asyncpg

from voyagent.degradation import DependencyState
from voyagent.ids import new_id

log = logging.getLogger("voyagent.audit")

AUTH_VERIFY_PER_MINUTE = 5


async def write_event(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, actor_id: uuid.UUID | None,
                      kind: str, actor_kind: str = "human", status: str = "succeeded",
                      inputs: dict[str, Any] | None = None, outputs: dict[str, Any] | None = None,
                      entity_refs: dict[str, Any] | None = None, error: str | None = None,
                      driver: str | None = None, approval_required: bool = False,
                      approved_by: uuid.UUID | None = None, approved_at: dt.datetime | None = None,
                      completed: bool = True) -> uuid.UUID:
    """Insert one event in the caller's transaction and return its id."""
    event_id = new_id()
    now = dt.datetime.now(dt.timezone.utc)
    await sql.insert_audit_event(
        conn, id=event_id, tenant_id=tenant_id, actor_id=actor_id, actor_kind=actor_kind, tool=kind,
        driver=driver, entity_refs=entity_refs or {}, inputs=inputs or {}, outputs=outputs or {}, error=error,
        approval_required=approval_required, approved_by=approved_by, approved_at=approved_at, started_at=now,
        completed_at=now if completed else None, status=status)
    return event_id


class AuditVerifyLimiter:
    """At most N ``auth.verify`` events per minute per (principal, route template): Redis when configured.

    Keyed by the route template, not the raw path, so a caller cycling ids in the path cannot flood the log;
    keyed by the principal, not the IP, so proxies and IPv6 address changes neither merge nor split callers.
    """

    def __init__(self, redis: Any, prefix: str, per_minute: int = AUTH_VERIFY_PER_MINUTE,
                 redis_state: DependencyState | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.per_minute = per_minute
        self.redis_state = redis_state or DependencyState("redis")
        self._local: dict[str, tuple[int, int]] = {}

    async def allow(self, principal: str, route: str) -> bool:
        """Count one event of ``principal`` on ``route``; True while within the per-minute allowance."""
        key = f"{principal}|{route}"
        if self.redis is not None:
            try:
                redis_key = f"{self.prefix}auditfail:{key}"
                count = await self.redis.incr(redis_key)
                if count == 1:
                    await self.redis.expire(redis_key, 60)
                self.redis_state.success()
                return int(count) <= self.per_minute
            except Exception as exc:  # Redis down: fall back to this process's own window
                self.redis_state.failure("audit limiter (in-process window used)", exc)
        window = int(time.monotonic() // 60)
        seen_window, count = self._local.get(key, (window, 0))
        if seen_window != window:
            count = 0
            if len(self._local) > 50_000:
                self._local.clear()
        self._local[key] = (window, count + 1)
        return count + 1 <= self.per_minute


async def finish_event(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, event_id: uuid.UUID,
                       status: str, outputs: dict[str, Any] | None = None, error: str | None = None,
                       completed_at: dt.datetime | None = None) -> None:
    """Move a ``started`` event (``write_event(..., status="started", completed=False)``) to its terminal status,
    in the caller's transaction: the started → succeeded / failed transition of an agent tool call."""
    await sql.finish_audit_event(conn, id=event_id, tenant_id=tenant_id, status=status, outputs=outputs or {},
                                 error=error, completed_at=completed_at or dt.datetime.now(dt.timezone.utc))
