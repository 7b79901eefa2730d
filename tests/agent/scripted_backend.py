"""A backend the tests drive (``VOYAGENT_AGENT_BACKEND=tests.agent.scripted_backend:create``): the message is
its script, commands separated by ``;``:

* ``say <text>`` — one ``text_delta``;  ``many <n>`` — ``n`` text deltas ``frame 1`` … ``frame n``;
* ``error <text>`` — an ``error`` event;  ``raise`` — an exception whose text must never reach a client;
* ``wait <name>`` — block until the test calls :func:`release` (in this process) or, in a server process with
  ``VOYAGENT_REDIS_URL`` set, until something is pushed to the Redis list ``<prefix>scripted:<name>``;
* ``hang`` — block for ever (turn timeout, shutdown);  ``bad`` — yield a ``final`` itself (forbidden);
* ``refuse <text>`` (first command) — ``refuse_turn`` answers ``<text>``, as a budget refusal would.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, AsyncIterator

from voyagent.agent.events import event

_signals: dict[str, asyncio.Event] = {}


def release(name: str) -> None:
    """Let every turn waiting on ``name`` in this process go on."""
    _signals.setdefault(name, asyncio.Event()).set()


def _commands(message: str) -> list[tuple[str, str]]:
    parts = [part.strip() for part in message.split(";") if part.strip()]
    return [(part.split(" ", 1) + [""])[:2] for part in parts]  # type: ignore[misc]


class ScriptedBackend:
    name = "scripted"

    def __init__(self, ready: bool = True) -> None:
        self.ready = ready
        self.redis_url = os.environ.get("VOYAGENT_REDIS_URL")
        self.prefix = os.environ.get("VOYAGENT_REDIS_PREFIX", "voyagent:")
        self.turns: list[Any] = []  # every Turn seen by run_turn, for assertions

    async def refuse_turn(self, turn: Any) -> str | None:
        commands = _commands(turn.message)
        if commands and commands[0][0] == "refuse":
            return commands[0][1]
        return None

    async def _wait(self, name: str) -> None:
        if self.redis_url is None:
            await _signals.setdefault(name, asyncio.Event()).wait()
            return
        import redis.asyncio as aioredis

        client = aioredis.from_url(self.redis_url)
        try:
            await client.blpop([f"{self.prefix}scripted:{name}"], timeout=0)
        finally:
            await client.aclose()

    async def run_turn(self, turn: Any, tools: Any) -> AsyncIterator[dict[str, Any]]:
        self.turns.append(turn)
        for command, argument in _commands(turn.message):
            if command == "say":
                yield event("text_delta", turn.session_id, turn.turn_id, text=argument)
            elif command == "many":
                for index in range(1, int(argument) + 1):
                    yield event("text_delta", turn.session_id, turn.turn_id, text=f"frame {index}")
            elif command == "error":
                yield event("error", turn.session_id, turn.turn_id, error_message=argument)
            elif command == "raise":
                raise RuntimeError("scripted failure: SECRET-DETAIL-42")
            elif command == "wait":
                await self._wait(argument)
            elif command == "hang":
                await asyncio.Event().wait()
            elif command == "bad":
                yield event("final", turn.session_id, turn.turn_id)


def create() -> ScriptedBackend:
    return ScriptedBackend()


def create_not_ready() -> ScriptedBackend:
    return ScriptedBackend(ready=False)
