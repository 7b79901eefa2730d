"""The offline backend (chat-and-agent.md §8): the grammar's command through the gateway, and a short reply.

SKELETON — the interface only; the tools branch of issue 11 fills it in.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from voyagent.agent.interface import Tools, Turn


class OfflineBackend:
    name = "offline"

    def __init__(self, database: Any, sql: Any) -> None:
        self.database = database
        self.sql = sql

    async def run_turn(self, turn: Turn, tools: Tools) -> AsyncIterator[dict[str, Any]]:
        raise NotImplementedError
        yield {}  # pragma: no cover
