"""Routing: every operation of openapi.yaml, each with its handler, plus the meta routes, under BASE_PATH; then
the catch-all for what matches none of them."""

from __future__ import annotations

from types import ModuleType

from aiohttp import web

from voyagent.contract import Contract
from voyagent.handlers_types import Handler
from voyagent.middleware import add_route, route_unmatched


def handler_modules() -> list[ModuleType]:
    """The resource modules; each exposes ``HANDLERS = {operationId: handler}``."""
    from voyagent.handlers import (
        api_keys,
        approvals,
        audit,
        auth,
        chat,
        enquiries,
        health,
        invites,
        meta,
        reports,
        tenant_settings,
    )

    return [health, meta, auth, invites, api_keys, tenant_settings, audit, enquiries, approvals, chat, reports]


def collect_handlers() -> dict[str, Handler]:
    handlers: dict[str, Handler] = {}
    for module in handler_modules():
        for operation_id, handler in module.HANDLERS.items():
            if operation_id in handlers:
                raise RuntimeError(f"two handlers for {operation_id}")
            handlers[operation_id] = handler
    return handlers


def setup_routes(app: web.Application, contract: Contract, base_path: str) -> None:
    """Route every operation; start-up fails when one has no handler, or a handler no operation (the contract
    and the code never drift apart silently)."""
    from voyagent.handlers import meta

    handlers = collect_handlers()
    unknown = set(handlers) - set(contract.operations)
    if unknown:
        raise RuntimeError(f"handlers for operations not in openapi.yaml: {', '.join(sorted(unknown))}")
    missing = set(contract.operations) - set(handlers)
    if missing:
        raise RuntimeError(f"operations of openapi.yaml without a handler: {', '.join(sorted(missing))}")
    for operation_id, operation in contract.operations.items():
        add_route(app, operation.method, operation.path, handlers[operation_id], base_path=base_path,
                  operation=operation, name=operation_id)
    for path, handler in meta.META_ROUTES.items():
        add_route(app, "GET", path, handler, base_path=base_path)
    route_unmatched(app)
