"""Tenant settings (endpoints.md, Tenant settings): defaults on first read, partial updates with their audit."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from voyagent.errors import ApiError, ValidationFailed, validation_item
from voyagent.services import audit

FIELDS = ("model", "system_prompt_suffix", "rate_limit_per_minute", "rate_limit_per_hour", "daily_token_budget",
          "locale", "timezone", "default_currency")
NULLABLE = frozenset({"model", "system_prompt_suffix", "daily_token_budget"})
# The column default of tenant_settings.default_currency (schema.sql): the currency of a tenant whose settings
# row is missing, which reads must not re-create (tests/services/test_itinerary.py holds the two together).
DEFAULT_CURRENCY = "INR"
INT4_MAX = 2_147_483_647  # daily_token_budget is an integer column; the schema sets no maximum


def wire(row: Any) -> dict[str, Any]:
    """The TenantSettings object."""
    return {"tenant_id": str(row["tenant_id"]), **{field: row[field] for field in FIELDS}}


async def get_or_create(conn: asyncpg.Connection, sql: Any, tenant_id: uuid.UUID) -> Any:
    """The tenant's row, inserted with the defaults first when it is missing."""
    row = await sql.get_tenant_settings(conn, tenant_id=tenant_id)
    if row is None:
        await sql.ensure_tenant_settings(conn, tenant_id=tenant_id)
        row = await sql.get_tenant_settings(conn, tenant_id=tenant_id)
    return row


def changes_from(body: dict[str, Any]) -> dict[str, Any]:
    """The named fields of a validated patch body, in table order; explicit nulls checked."""
    budget = body.get("daily_token_budget")
    if budget is not None and budget > INT4_MAX:
        raise ValidationFailed([validation_item(["body", "daily_token_budget"], "less_than_equal",
                                                f"Input should be less than or equal to {INT4_MAX}")])
    for field in FIELDS:
        if field in body and body[field] is None and field not in NULLABLE:
            raise ApiError(422, f"{field}_cannot_be_null")
    return {field: body[field] for field in FIELDS if field in body}


async def update(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, actor_id: uuid.UUID,
                 changes: dict[str, Any]) -> Any:
    """Apply the named fields and write ``tenant_settings.updated`` (caller's transaction); returns the row."""
    await sql.ensure_tenant_settings(conn, tenant_id=tenant_id)
    values: dict[str, Any] = {}
    for field in FIELDS:
        values[f"set_{field}"] = field in changes
        values[field] = changes.get(field)
    row = await sql.update_tenant_settings(conn, tenant_id=tenant_id, **values)
    await audit.write_event(conn, sql, tenant_id=tenant_id, actor_id=actor_id, kind="tenant_settings.updated",
                            inputs={"fields": changes})
    return row
