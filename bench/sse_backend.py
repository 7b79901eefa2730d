"""The backend of bench/sse_bench.py (``VOYAGENT_AGENT_BACKEND=bench.sse_backend:create``): turns whose length
and output the benchmark chooses, so it measures the transport, not an agent. Message ``burst <n>``: n text
deltas at once; ``sleep <s>``: one delta, ``s`` seconds of silence, one delta."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

from voyagent.agent.events import event


class BenchBackend:
    name = "bench"
    reads_history = False  # the script is the message

    async def run_turn(self, turn: Any, tools: Any) -> AsyncIterator[dict[str, Any]]:
        command, _, argument = turn.message.partition(" ")
        if command == "burst":
            for index in range(int(argument)):
                yield event("text_delta", turn.session_id, turn.turn_id, text=f"delta {index}")
        elif command == "sleep":
            yield event("text_delta", turn.session_id, turn.turn_id, text="started")
            await asyncio.sleep(float(argument))
            yield event("text_delta", turn.session_id, turn.turn_id, text="done")


def create() -> BenchBackend:
    return BenchBackend()
