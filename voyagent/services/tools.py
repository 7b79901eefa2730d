"""The agent's tool registry (chat-and-agent.md §6.1): what each tool takes, writes, and who may decide it.

One registry serves every backend (the offline grammar, an LLM's tool list), the gateway's input check, the
approvals' role rule and the audit's ``driver``. Input schemas are JSON Schema draft 2020-12 objects that refuse
unknown keys; they are compiled once for the linear regex engine (``voyagent.schema_check``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from voyagent.schema_check import SchemaCheck

OFFER_ID_PATTERN = "^(FLT|HTL)-[0-9A-F]{8}$"
MAX_DETAIL_ITEMS = 5  # violations named in an ``invalid_input`` detail


class ToolFailure(Exception):
    """A tool's refusal: ``{"ok": false, "error": code, "detail": detail}`` (§6.2, §9)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail

    def output(self) -> dict[str, Any]:
        return {"ok": False, "error": self.code, "detail": self.detail}


@dataclasses.dataclass(frozen=True, slots=True)
class ToolSpec:
    """Registration attributes of one tool; ``approval_roles`` empty means any role."""

    name: str
    side_effect: bool
    reversible: bool
    approval_required: bool
    approval_roles: tuple[str, ...] = ()
    driver: str | None = None  # audit ``driver`` of the tool's rows
    description: str = ""
    input_schema: dict[str, Any] = dataclasses.field(default_factory=lambda: _object({}))
    check: SchemaCheck = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Registration invariants: irreversible ⇒ side effect and approval; approval ⇒ side effect.
        if not self.reversible and not (self.side_effect and self.approval_required):
            raise ValueError(f"tool {self.name}: irreversible tools need side_effect and approval_required")
        if self.approval_required and not self.side_effect:
            raise ValueError(f"tool {self.name}: approval_required implies side_effect")
        object.__setattr__(self, "check", SchemaCheck.compile(self.input_schema))

    @property
    def audited(self) -> bool:
        """Side-effecting calls are audited."""
        return self.side_effect

    def allows(self, role: str) -> bool:
        """Whether ``role`` may request and decide calls of this tool."""
        return not self.approval_roles or role in self.approval_roles

    def validated(self, tool_input: Any) -> dict[str, Any]:
        """The input with defaults filled in and integers as ``int``; ``ToolFailure("invalid_input")`` otherwise."""
        errors = self.check.errors(tool_input, [], limit=MAX_DETAIL_ITEMS)
        if errors:
            raise ToolFailure("invalid_input", "; ".join(_describe(error) for error in errors))
        properties = self.input_schema["properties"]
        clean = dict(tool_input)
        for name, schema in properties.items():
            if name not in clean and "default" in schema:
                clean[name] = schema["default"]
            elif schema.get("type") == "integer" and isinstance(clean.get(name), float):
                clean[name] = int(clean[name])  # JSON Schema counts 2.0 as an integer
        return clean

    def llm_tool(self) -> dict[str, Any]:
        """The tool as an LLM is offered it: name, description, input schema."""
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema}


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "input"
    return f"{where}: {error['msg']}"


def _object(properties: dict[str, Any], required: Iterable[str] = ()) -> dict[str, Any]:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "additionalProperties": False, "properties": properties, "required": list(required)}


def _string(min_length: int, max_length: int, description: str) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max_length, "description": description}


def _date(description: str) -> dict[str, Any]:
    return {"type": "string", "format": "date", "description": description}


def _party(description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": 9, "default": 1, "description": description}


_OFFER_ID = {"type": "string", "pattern": OFFER_ID_PATTERN,
             "description": "An offer id from a search result, e.g. FLT-20526D6B or HTL-FF773A59."}
_OFFER_ONLY = _object({"offer_id": _OFFER_ID}, ["offer_id"])


def registry(specs: Iterable[ToolSpec]) -> dict[str, ToolSpec]:
    """Tools by name; a duplicate name is a programming error."""
    tools: dict[str, ToolSpec] = {}
    for spec in specs:
        if spec.name in tools:
            raise ValueError(f"duplicate tool {spec.name}")
        tools[spec.name] = spec
    return tools


TOOLS: dict[str, ToolSpec] = registry([
    ToolSpec(
        "search_flights", side_effect=False, reversible=True, approval_required=False,
        description="Search the sandbox supplier for one-way flights; returns 3 offers (ids FLT-…) with prices.",
        input_schema=_object({
            "origin": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "IATA airport code, e.g. DEL."},
            "destination": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "IATA airport code."},
            "depart_date": _date("Departure date, YYYY-MM-DD."),
            "adults": _party("Number of adult passengers, 1-9."),
            "cabin": {"type": "string", "enum": ["economy", "premium_economy", "business", "first"],
                      "default": "economy", "description": "Cabin class."},
        }, ["origin", "destination", "depart_date"])),
    ToolSpec(
        "search_hotels", side_effect=False, reversible=True, approval_required=False,
        description="Search the sandbox supplier for hotels in a city; returns 3 offers (ids HTL-…) with prices.",
        input_schema=_object({
            "city": _string(1, 80, "City name, e.g. Dubai."),
            "check_in": _date("Check-in date, YYYY-MM-DD."),
            "check_out": _date("Check-out date, YYYY-MM-DD, after check_in."),
            "guests": _party("Number of guests, 1-9 (two per room)."),
        }, ["city", "check_in", "check_out"])),
    ToolSpec(
        "get_itinerary", side_effect=False, reversible=True, approval_required=False,
        description="The session's itinerary: passengers, flights, hotels, visas and the total cost.",
        input_schema=_object({})),
    ToolSpec(
        "add_to_itinerary", side_effect=True, reversible=True, approval_required=False,
        description="Add an offer from a recent search to the session's itinerary (status planned).",
        input_schema=_OFFER_ONLY),
    ToolSpec(
        "add_passenger", side_effect=True, reversible=True, approval_required=False,
        description="Add a passenger to the session's itinerary.",
        input_schema=_object({
            "full_name": _string(1, 120, "The passenger's full name."),
            "passport_number": {"type": ["string", "null"], "pattern": "^[A-Z0-9]{5,20}$", "default": None,
                                "description": "Passport number (upper-case letters and digits) or null."},
        }, ["full_name"])),
    ToolSpec(
        "hold_offer", side_effect=True, reversible=True, approval_required=True, driver="sandbox",
        description="Hold an itinerary offer with the supplier (needs a human approval).",
        input_schema=_OFFER_ONLY),
    ToolSpec(
        "book_offer", side_effect=True, reversible=False, approval_required=True,
        approval_roles=("agency_admin", "ticketing_lead"), driver="sandbox",
        description="Book an itinerary offer with the supplier and record the supplier's bill (not reversible; "
                    "needs a human approval).",
        input_schema=_OFFER_ONLY),
    ToolSpec(
        "issue_invoice", side_effect=True, reversible=True, approval_required=True,
        approval_roles=("agency_admin", "accounting_lead"),
        description="Issue one invoice to the customer for the session's booked, not yet invoiced offers "
                    "(needs a human approval).",
        input_schema=_object({
            "customer_name": _string(1, 255, "The customer invoiced."),
            "offer_ids": {"type": "array", "items": _OFFER_ID, "description": "The booked offers to invoice."},
        }, ["customer_name", "offer_ids"])),
])


def approval_roles(tool_name: str) -> tuple[str, ...]:
    """The roles allowed to decide ``tool_name`` (empty: any role, also for a tool not in the registry)."""
    spec = TOOLS.get(tool_name)
    return spec.approval_roles if spec is not None else ()


def may_decide(tool_name: str, role: str) -> bool:
    """Resolution rule of endpoints.md: a known tool with a non-empty role list must list the role."""
    roles = approval_roles(tool_name)
    return not roles or role in roles
