"""The resume step of a turn (chat-and-agent.md §6.5): decisions taken since the last turn are acted on once.

SKELETON — the interface only; the tools branch of issue 11 fills it in.
"""

from __future__ import annotations

from voyagent.agent.gateway import ToolGateway
from voyagent.agent.interface import ResumedApproval


async def resume(gateway: ToolGateway) -> list[ResumedApproval]:
    """Sweep the session's overdue approvals, then act on every decided, unconsumed one (events through the
    gateway's ``emit``); the outcomes, in order."""
    return []
