"""Tenant settings: defaults on first read, an admin's partial PATCH with its validation and its one audit event."""

import json

import pytest

DEFAULTS = {"model": None, "system_prompt_suffix": None, "rate_limit_per_minute": 60, "rate_limit_per_hour": 1000,
            "daily_token_budget": None, "locale": "en", "timezone": "UTC", "default_currency": "INR"}


async def settings_events(db, tenant_id):
    rows = await db.fetch("SELECT actor_id, inputs, status::text FROM audit_events WHERE tenant_id = $1 "
                          "AND tool = 'tenant_settings.updated' ORDER BY started_at", tenant_id)
    return [{**row, "inputs": json.loads(row["inputs"])} for row in rows]


async def test_every_role_reads_the_settings(client, admin, make_user):
    for role in ("agency_admin", "ticketing_lead", "accounting_lead", "agent", "viewer"):
        user = admin if role == "agency_admin" else await make_user(role, tenant_id=admin.tenant_id)
        response = await client.get("/tenant-settings", headers=user.headers)
        assert response.status == 200, role
        assert await response.json() == {"tenant_id": str(admin.tenant_id), **DEFAULTS}


async def test_a_missing_row_is_created_with_the_defaults_on_first_read(client, admin, db):
    await db.execute("DELETE FROM tenant_settings WHERE tenant_id = $1", admin.tenant_id)
    response = await client.get("/tenant-settings", headers=admin.headers)
    assert await response.json() == {"tenant_id": str(admin.tenant_id), **DEFAULTS}
    assert await db.fetchval("SELECT count(*) FROM tenant_settings WHERE tenant_id = $1", admin.tenant_id) == 1
    assert (await client.get("/tenant-settings", headers=admin.headers)).status == 200  # no duplicate insert


async def test_get_needs_a_credential(client):
    response = await client.get("/tenant-settings")
    assert (response.status, await response.json()) == (401, {"detail": "unauthorized"})


async def test_patch_changes_only_the_named_fields_and_audits_them_once(client, admin, db):
    before = await db.fetchval("SELECT updated_at FROM tenant_settings WHERE tenant_id = $1", admin.tenant_id)
    patch = {"model": "claude-opus-4-6", "locale": "hi", "default_currency": "USD", "timezone": "UTC"}
    response = await client.patch("/tenant-settings", json=patch, headers=admin.headers)
    assert response.status == 200
    assert await response.json() == {"tenant_id": str(admin.tenant_id), **DEFAULTS, **patch}
    assert await (await client.get("/tenant-settings", headers=admin.headers)).json() == await response.json()
    [event] = await settings_events(db, admin.tenant_id)
    # every named field with its new value, the unchanged timezone included
    assert event["inputs"] == {"fields": patch}
    assert event["actor_id"] == admin.id and event["status"] == "succeeded"
    after = await db.fetchval("SELECT updated_at FROM tenant_settings WHERE tenant_id = $1", admin.tenant_id)
    assert after > before


async def test_null_clears_the_three_nullable_settings(client, admin, db):
    filled = {"model": "claude-haiku-4-5-20251001", "system_prompt_suffix": "Answer in Hindi.",
              "daily_token_budget": 50_000}
    assert await (await client.patch("/tenant-settings", json=filled, headers=admin.headers)).json() == {
        "tenant_id": str(admin.tenant_id), **DEFAULTS, **filled}
    cleared = {"model": None, "system_prompt_suffix": None, "daily_token_budget": None}
    response = await client.patch("/tenant-settings", json=cleared, headers=admin.headers)
    assert await response.json() == {"tenant_id": str(admin.tenant_id), **DEFAULTS}
    events = await settings_events(db, admin.tenant_id)
    assert [e["inputs"] for e in events] == [{"fields": filled}, {"fields": cleared}]


@pytest.mark.parametrize("field", ["rate_limit_per_minute", "rate_limit_per_hour", "locale", "timezone",
                                   "default_currency"])
async def test_null_on_a_required_setting_is_422_cannot_be_null(client, admin, db, field):
    response = await client.patch("/tenant-settings", json={"locale": "hi", field: None}, headers=admin.headers)
    assert (response.status, await response.json()) == (422, {"detail": f"{field}_cannot_be_null"})
    assert await (await client.get("/tenant-settings", headers=admin.headers)).json() == {
        "tenant_id": str(admin.tenant_id), **DEFAULTS}
    assert await settings_events(db, admin.tenant_id) == []


async def test_an_empty_patch_is_a_no_op(client, admin, db):
    await client.patch("/tenant-settings", json={"locale": "hi"}, headers=admin.headers)
    before = await db.fetchval("SELECT updated_at FROM tenant_settings WHERE tenant_id = $1", admin.tenant_id)
    response = await client.patch("/tenant-settings", json={}, headers=admin.headers)
    assert response.status == 200
    assert await response.json() == {"tenant_id": str(admin.tenant_id), **DEFAULTS, "locale": "hi"}
    assert len(await settings_events(db, admin.tenant_id)) == 1
    assert await db.fetchval("SELECT updated_at FROM tenant_settings WHERE tenant_id = $1", admin.tenant_id) == before


@pytest.mark.parametrize("body, loc, type_", [
    ({"model": "gpt-4"}, ["body", "model"], "literal_error"),
    ({"system_prompt_suffix": "x" * 10_001}, ["body", "system_prompt_suffix"], "string_too_long"),
    ({"rate_limit_per_minute": 0}, ["body", "rate_limit_per_minute"], "greater_than_equal"),
    ({"rate_limit_per_minute": -1}, ["body", "rate_limit_per_minute"], "greater_than_equal"),
    ({"rate_limit_per_minute": 10_001}, ["body", "rate_limit_per_minute"], "less_than_equal"),
    ({"rate_limit_per_minute": "60"}, ["body", "rate_limit_per_minute"], "int_type"),
    ({"rate_limit_per_minute": 1.5}, ["body", "rate_limit_per_minute"], "int_type"),
    ({"rate_limit_per_hour": 1_000_001}, ["body", "rate_limit_per_hour"], "less_than_equal"),
    ({"daily_token_budget": 0}, ["body", "daily_token_budget"], "greater_than_equal"),
    ({"daily_token_budget": -100}, ["body", "daily_token_budget"], "greater_than_equal"),
    ({"daily_token_budget": 2**31}, ["body", "daily_token_budget"], "less_than_equal"),
    ({"daily_token_budget": 10**30}, ["body", "daily_token_budget"], "less_than_equal"),
    ({"locale": "fr"}, ["body", "locale"], "value_error"),
    ({"timezone": ""}, ["body", "timezone"], "string_too_short"),
    ({"timezone": "x" * 65}, ["body", "timezone"], "string_too_long"),
    ({"default_currency": "inr"}, ["body", "default_currency"], "string_pattern_mismatch"),
    ({"default_currency": "RUPEE"}, ["body", "default_currency"], "string_pattern_mismatch"),
    ({"tenant_id": "00000000-0000-7000-8000-000000000000"}, ["body", "tenant_id"], "extra_forbidden"),
    ({"theme": "dark"}, ["body", "theme"], "extra_forbidden"),
    ({"timezone": "UTC\u0000"}, ["body", "timezone"], "value_error"),
])
async def test_bad_patches_are_422_and_change_nothing(client, admin, db, body, loc, type_):
    response = await client.patch("/tenant-settings", json=body, headers=admin.headers)
    assert response.status == 422
    detail = (await response.json())["detail"]
    assert any(item["loc"] == loc and item["type"] == type_ for item in detail), detail
    assert await (await client.get("/tenant-settings", headers=admin.headers)).json() == {
        "tenant_id": str(admin.tenant_id), **DEFAULTS}
    assert await settings_events(db, admin.tenant_id) == []


@pytest.mark.parametrize("raw, type_", [(None, "missing"), (b"[]", "model_attributes_type"), (b"{", "json_invalid")])
async def test_a_missing_or_malformed_body_is_422(client, admin, raw, type_):
    headers = {**admin.headers, "Content-Type": "application/json"}
    response = await client.patch("/tenant-settings", data=raw, headers=headers)
    assert response.status == 422
    assert (await response.json())["detail"][0]["type"] == type_


async def test_the_bounds_themselves_are_accepted(client, admin):
    body = {"rate_limit_per_minute": 10_000, "rate_limit_per_hour": 1_000_000, "daily_token_budget": 2**31 - 1,
            "timezone": "x" * 64, "system_prompt_suffix": "y" * 10_000}
    response = await client.patch("/tenant-settings", json=body, headers=admin.headers)
    assert response.status == 200
    assert {k: v for k, v in (await response.json()).items() if k in body} == body


async def test_only_admins_patch(client, admin, make_user, make_api_key):
    for role in ("ticketing_lead", "accounting_lead", "agent", "viewer"):
        user = await make_user(role, tenant_id=admin.tenant_id)
        response = await client.patch("/tenant-settings", json={"locale": "hi"}, headers=user.headers)
        assert (response.status, await response.json()) == (403, {"detail": "forbidden_role"}), role
    agent = await make_user("agent", tenant_id=admin.tenant_id)
    agents_key = await make_api_key(agent, ["tenant:write"])
    response = await client.patch("/tenant-settings", json={"locale": "hi"}, headers=agents_key.headers)
    assert (response.status, await response.json()) == (403, {"detail": "forbidden_role"})
    # the role gate comes before validation: a bad body from a non-admin is still 403
    response = await client.patch("/tenant-settings", json={"locale": None}, headers=agent.headers)
    assert response.status == 403


async def test_an_admins_key_with_tenant_write_patches(client, admin, make_api_key, db):
    key = await make_api_key(admin, ["tenant:write"])
    response = await client.patch("/tenant-settings", json={"timezone": "Asia/Kolkata"}, headers=key.headers)
    assert response.status == 200 and (await response.json())["timezone"] == "Asia/Kolkata"
    [event] = await settings_events(db, admin.tenant_id)
    assert event["actor_id"] == admin.id  # a key acts as its creator


async def test_a_patch_never_touches_another_tenant(client, admin, make_user):
    other = await make_user("agency_admin")
    await client.patch("/tenant-settings", json={"default_currency": "EUR", "rate_limit_per_minute": 7},
                       headers=admin.headers)
    body = await (await client.get("/tenant-settings", headers=other.headers)).json()
    assert body == {"tenant_id": str(other.tenant_id), **DEFAULTS}
