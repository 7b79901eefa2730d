"""HTTP handlers of the enquiries endpoints (endpoints.md); operations listed here are routed."""

from voyagent.handlers_types import Handler

HANDLERS: dict[str, Handler] = {}
