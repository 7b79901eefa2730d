"""The backend interface of chat-and-agent.md §10.1: what a turn gives a backend and what the tools answer.

A backend is any object with a ``name`` and an async generator ``run_turn(turn, tools)`` that yields only
``text_delta`` and ``error`` events (``voyagent.agent.events.event``); tool events are emitted by the gateway
behind ``tools.invoke``. After an ``approval_needed`` outcome it stops calling tools and returns; it never
yields ``final``.

Two optional members let the turn ask a backend before it starts (absent = no objection):
``ready`` (bool attribute or property): False → new turns answer ``503 agent_runtime_unavailable`` (§2 step 1c);
``async refuse_turn(turn) -> str | None``: an ``error_message`` that refuses the turn at §2 step 4 (the LLM
backend's daily token budget), the turn then emits that ``error`` and ``final`` and stores nothing;
``reads_history`` (bool): False → the turn does not read the stored messages for it (``Turn.history`` is empty):
the offline agent acts on the message alone, and a search's first event then comes one query sooner.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any, AsyncIterator, Literal, Protocol, Sequence

OutcomeKind = Literal["success", "error", "permission_denied", "approval_needed"]


@dataclasses.dataclass(frozen=True, slots=True)
class TenantAgentSettings:
    """The tenant's settings a backend may use (tenant_settings)."""

    model: str | None
    system_prompt_suffix: str | None
    locale: str
    default_currency: str


@dataclasses.dataclass(frozen=True, slots=True)
class Turn:
    """One turn as a backend sees it. ``history`` is the session's stored messages, oldest first, including this
    turn's user message (``{"role", "content"}`` each); ``resumed`` the outcomes of §6.5 handled in this turn."""

    session_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID | None
    role: str
    turn_id: str
    message: str
    history: Sequence[dict[str, Any]]
    resumed: Sequence["ResumedApproval"]
    settings: TenantAgentSettings


@dataclasses.dataclass(frozen=True, slots=True)
class ResumedApproval:
    """One decision acted on at the resume step (§6.5): ``status`` granted / rejected / expired."""

    approval_id: str
    tool_name: str
    tool_call_id: str
    status: Literal["granted", "rejected", "expired"]
    output: dict[str, Any] | None  # the tool_result output of a granted call, None otherwise


@dataclasses.dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What ``tools.invoke`` answers: the output object of the ``tool_result`` (or of the approval request)."""

    kind: OutcomeKind
    output: dict[str, Any]
    approval_id: str | None = None


class Tools(Protocol):
    """The tool gateway as a backend sees it (§6.2)."""

    def specs(self) -> Sequence[Any]:
        """The ToolSpecs (§6.1) offered to the backend: name, description, input_schema, …"""

    async def invoke(self, name: str, tool_input: Any) -> ToolOutcome:
        """Run the gateway procedure for one call, emitting its events."""


class Backend(Protocol):
    name: str

    def run_turn(self, turn: Turn, tools: Tools) -> AsyncIterator[dict[str, Any]]:
        """Yield the turn's ``text_delta`` / ``error`` events."""


def reads_history(backend: Backend) -> bool:
    """A backend without a ``reads_history`` member gets the history."""
    return bool(getattr(backend, "reads_history", True))
