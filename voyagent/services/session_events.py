"""Where a chat session's SSE state lives (operations.md §6, chat-and-agent.md §3.2) and how it is dropped.

With Redis: ``<prefix>sse:<session_id>:seq`` (the event-id counter) and ``<prefix>sse:<session_id>:buf`` (the
replay buffer, which may also be the stream live frames are followed on). ``session_keys`` is the one list of
them: whatever per-session SSE key the streaming turn adds must be named there, so deleting a session drops it.
Without Redis the same state is kept in this process, in ``LocalSessionEvents.sessions``.

Only dropping is built here (DELETE /chat/sessions/{id}); writing and replaying frames belong to the turn.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from voyagent.degradation import DependencyState
from voyagent.services.token_store import redis_unreachable

SUFFIXES = ("seq", "buf")


def session_keys(prefix: str, session_id: uuid.UUID) -> list[str]:
    """Every Redis key of the session's SSE state."""
    return [f"{prefix}sse:{session_id}:{suffix}" for suffix in SUFFIXES]


class SessionEvents(Protocol):
    async def drop(self, session_id: uuid.UUID) -> None:
        """Forget the session's event counter and buffer (``503 redis_unreachable`` when Redis fails)."""


class RedisSessionEvents:
    def __init__(self, redis: Any, prefix: str, redis_state: DependencyState | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.redis_state = redis_state or DependencyState("redis")

    async def drop(self, session_id: uuid.UUID) -> None:
        try:
            await self.redis.delete(*session_keys(self.prefix, session_id))
        except Exception as exc:
            self.redis_state.failure("SSE event buffer (drop)", exc)
            raise redis_unreachable() from None
        self.redis_state.success()


class LocalSessionEvents:
    """In this process: session id → its SSE state (owned by the streaming turn)."""

    def __init__(self) -> None:
        self.sessions: dict[uuid.UUID, Any] = {}

    async def drop(self, session_id: uuid.UUID) -> None:
        self.sessions.pop(session_id, None)


def create_session_events(redis: Any, prefix: str,
                          redis_state: DependencyState | None = None) -> RedisSessionEvents | LocalSessionEvents:
    """Redis when a client is configured, else in-process."""
    return RedisSessionEvents(redis, prefix, redis_state) if redis is not None else LocalSessionEvents()
