"""The agent's tool registry attributes (chat-and-agent.md §6.1): side effects, approval and who may decide."""

from __future__ import annotations

import dataclasses
from typing import Iterable


@dataclasses.dataclass(frozen=True, slots=True)
class ToolSpec:
    """Registration attributes of one tool; ``approval_roles`` empty means any role."""

    name: str
    side_effect: bool
    reversible: bool
    approval_required: bool
    approval_roles: tuple[str, ...] = ()
    driver: str | None = None  # audit ``driver`` of the tool's rows

    def __post_init__(self) -> None:
        # Registration invariants: irreversible ⇒ side effect and approval; approval ⇒ side effect.
        if not self.reversible and not (self.side_effect and self.approval_required):
            raise ValueError(f"tool {self.name}: irreversible tools need side_effect and approval_required")
        if self.approval_required and not self.side_effect:
            raise ValueError(f"tool {self.name}: approval_required implies side_effect")

    @property
    def audited(self) -> bool:
        """Side-effecting calls are audited."""
        return self.side_effect

    def allows(self, role: str) -> bool:
        """Whether ``role`` may request and decide calls of this tool."""
        return not self.approval_roles or role in self.approval_roles


def registry(specs: Iterable[ToolSpec]) -> dict[str, ToolSpec]:
    """Tools by name; a duplicate name is a programming error."""
    tools: dict[str, ToolSpec] = {}
    for spec in specs:
        if spec.name in tools:
            raise ValueError(f"duplicate tool {spec.name}")
        tools[spec.name] = spec
    return tools


TOOLS: dict[str, ToolSpec] = registry([
    ToolSpec("search_flights", side_effect=False, reversible=True, approval_required=False),
    ToolSpec("search_hotels", side_effect=False, reversible=True, approval_required=False),
    ToolSpec("get_itinerary", side_effect=False, reversible=True, approval_required=False),
    ToolSpec("add_to_itinerary", side_effect=True, reversible=True, approval_required=False),
    ToolSpec("add_passenger", side_effect=True, reversible=True, approval_required=False),
    ToolSpec("hold_offer", side_effect=True, reversible=True, approval_required=True, driver="sandbox"),
    ToolSpec("book_offer", side_effect=True, reversible=False, approval_required=True,
             approval_roles=("agency_admin", "ticketing_lead"), driver="sandbox"),
    ToolSpec("issue_invoice", side_effect=True, reversible=True, approval_required=True,
             approval_roles=("agency_admin", "accounting_lead")),
])


def approval_roles(tool_name: str) -> tuple[str, ...]:
    """The roles allowed to decide ``tool_name`` (empty: any role, also for a tool not in the registry)."""
    spec = TOOLS.get(tool_name)
    return spec.approval_roles if spec is not None else ()


def may_decide(tool_name: str, role: str) -> bool:
    """Resolution rule of endpoints.md: a known tool with a non-empty role list must list the role."""
    roles = approval_roles(tool_name)
    return not roles or role in roles
