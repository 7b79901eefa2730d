"""API-key scopes: canonical form and implication (auth.md, Scopes)."""

from __future__ import annotations

from typing import Iterable

SCOPES = (
    "enquiries:read", "enquiries:write", "approvals:read", "approvals:write", "audit:read", "reports:read",
    "chat:read", "chat:write", "tenant:read", "tenant:write",
)
FULL = "full"


def canonical_scopes(requested: Iterable[str] | None) -> list[str]:
    """``["full"]`` when full (or nothing) was asked for; else de-duplicated in the table's order."""
    wanted = set(requested) if requested is not None else {FULL}
    if FULL in wanted:
        return [FULL]
    return [scope for scope in SCOPES if scope in wanted]


def grants(scopes: Iterable[str], needed: str) -> bool:
    """Whether a key's scopes allow a route's scope (write implies read of the same area)."""
    held = set(scopes)
    if FULL in held or needed in held:
        return True
    area, _, action = needed.partition(":")
    return action == "read" and f"{area}:write" in held
