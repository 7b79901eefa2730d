"""HTTP handlers of the reports endpoints (endpoints.md); operations listed here are routed."""

from voyagent.handlers_types import Handler

HANDLERS: dict[str, Handler] = {}
