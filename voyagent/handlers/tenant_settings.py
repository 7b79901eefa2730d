"""HTTP handlers of the tenant settings endpoints (endpoints.md); operations listed here are routed."""

from voyagent.handlers_types import Handler

HANDLERS: dict[str, Handler] = {}
