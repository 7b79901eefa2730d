"""Approvals as a human reviewer meets them: list, get, resolve — with lazy expiry, role rules and races.

Approvals are created through ``voyagent.services.approvals.request_approval``, the function the agent uses.
"""

import asyncio
import datetime as dt
import json
import secrets
import uuid

import pytest

from voyagent.keys import DATABASE, QUERIES
from voyagent.services.approvals import request_approval
from voyagent.services.sessions import create_session

ITEM_KEYS = {"id", "session_id", "tool_name", "summary", "requested_at", "expires_at", "status", "payload",
             "resolved_at", "resolved_by_user_id", "reason"}


def now():
    return dt.datetime.now(dt.timezone.utc)


def parse_ts(value):
    assert value.endswith("Z"), value
    return dt.datetime.fromisoformat(value[:-1] + "+00:00")


@pytest.fixture
def arrange(client):
    """Sessions and approvals written the way the chat layer writes them."""
    app = client.server.app

    class Arrange:
        async def session(self, user):
            async with app[DATABASE].transaction() as conn:
                return (await create_session(conn, app[QUERIES], tenant_id=user.tenant_id, actor_id=user.id))["id"]

        async def approval(self, user, tool_name="hold_offer", *, session_id=None, turn_id=None, ttl=900, now=None,
                           payload=None):
            session_id = session_id or await self.session(user)
            async with app[DATABASE].transaction() as conn:
                return await request_approval(
                    conn, app[QUERIES], tenant_id=user.tenant_id, session_id=session_id,
                    turn_id=turn_id or f"t-{secrets.token_hex(6)}", tool_name=tool_name,
                    tool_call_id=f"tc-{secrets.token_hex(8)}", payload={"offer_id": "FLT-20526D6B"} if payload is None
                    else payload, summary=f"{tool_name} FLT-20526D6B for INR 54,208.00.", ttl_seconds=ttl, now=now)

    return Arrange()


async def resolve(client, user, approval_id, granted=True, **body):
    return await client.post(f"/approvals/{approval_id}/resolve", json={"granted": granted, **body},
                             headers=user.headers)


async def detail(response):
    return (await response.json())["detail"]


async def audit_rows(db, tenant_id, kind=None):
    rows = await db.fetch("SELECT tool, actor_id, actor_kind::text, status::text, inputs, entity_refs "
                          "FROM audit_events "
                          "WHERE tenant_id = $1 AND tool LIKE 'approval.%' ORDER BY started_at", tenant_id)
    return [{**r, "inputs": json.loads(r["inputs"]), "entity_refs": json.loads(r["entity_refs"])} for r in rows
            if kind is None or r["tool"] == kind]


async def test_without_credentials_the_routes_are_401(client):
    for method, path in (("GET", "/approvals"), ("GET", "/approvals/ap-x"), ("POST", "/approvals/ap-x/resolve")):
        response = await client.request(method, path, json={"granted": True})
        assert (response.status, await detail(response)) == (401, "unauthorized"), path


# --- get ----------------------------------------------------------------------------------------------------


async def test_get_returns_the_approval_item(client, admin, arrange):
    row = await arrange.approval(admin, "book_offer", turn_id="t-3f9c0a1b2c4d")
    response = await client.get(f"/approvals/{row.id}", headers=admin.headers)
    assert response.status == 200
    item = await response.json()
    assert set(item) == ITEM_KEYS
    assert item["id"] == "ap-t-3f9c0a1b2c4d-book_offer"
    assert item["session_id"] == str(row.session_id) and item["tool_name"] == "book_offer"
    assert item["status"] == "pending" and item["payload"] == {"offer_id": "FLT-20526D6B"}
    assert parse_ts(item["expires_at"]) - parse_ts(item["requested_at"]) == dt.timedelta(seconds=900)
    assert item["resolved_at"] is None and item["resolved_by_user_id"] is None and item["reason"] is None


@pytest.mark.parametrize("approval_id", ["ap-t-000000000000-book_offer", "nope", "x" * 129, "x" * 5000,
                                         "'; DROP TABLE pending_approvals; --"])
async def test_unknown_ids_are_404(client, admin, approval_id):
    response = await client.get(f"/approvals/{approval_id}", headers=admin.headers)
    assert (response.status, await detail(response)) == (404, "approval_not_found")


async def test_another_tenants_approval_is_404_for_get_and_resolve(client, admin, make_user, arrange, db):
    row = await arrange.approval(await make_user("agency_admin"))
    response = await client.get(f"/approvals/{row.id}", headers=admin.headers)
    assert (response.status, await detail(response)) == (404, "approval_not_found")
    response = await resolve(client, admin, row.id)
    assert (response.status, await detail(response)) == (404, "approval_not_found")
    assert await db.fetchval("SELECT status::text FROM pending_approvals WHERE id = $1", row.id) == "pending"


async def test_get_expires_a_pending_approval_past_its_deadline(client, admin, arrange, db):
    row = await arrange.approval(admin, now=now() - dt.timedelta(minutes=20))
    item = await (await client.get(f"/approvals/{row.id}", headers=admin.headers)).json()
    assert item["status"] == "expired" and item["resolved_at"] is None
    assert await db.fetchval("SELECT status::text FROM pending_approvals WHERE id = $1", row.id) == "expired"


# --- list ---------------------------------------------------------------------------------------------------


async def listing(client, user, **params):
    response = await client.get("/approvals", params={k: str(v) for k, v in params.items()}, headers=user.headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_list_defaults_to_pending_newest_first(client, admin, arrange):
    old = await arrange.approval(admin, now=now() - dt.timedelta(minutes=2))
    new = await arrange.approval(admin, now=now() - dt.timedelta(minutes=1))
    decided = await arrange.approval(admin)
    assert (await resolve(client, admin, decided.id, granted=False)).status == 200
    page = await listing(client, admin)
    assert [i["id"] for i in page["items"]] == [new.id, old.id]
    assert (page["total"], page["limit"], page["offset"], page["next_cursor"]) == (2, 50, 0, None)
    assert [i["id"] for i in (await listing(client, admin, status="all"))["items"]] == [decided.id, new.id, old.id]
    assert [i["id"] for i in (await listing(client, admin, status="rejected"))["items"]] == [decided.id]
    assert (await listing(client, admin, status="granted"))["items"] == []


async def test_list_sweeps_the_tenant_first(client, admin, make_user, arrange, db):
    stale = await arrange.approval(admin, now=now() - dt.timedelta(hours=1))
    live = await arrange.approval(admin)
    foreign = await arrange.approval(await make_user("agency_admin"), now=now() - dt.timedelta(hours=1))
    assert [i["id"] for i in (await listing(client, admin))["items"]] == [live.id]
    expired = await listing(client, admin, status="expired")
    assert [(i["id"], i["status"]) for i in expired["items"]] == [(stale.id, "expired")]
    assert await db.fetchval("SELECT status::text FROM pending_approvals WHERE id = $1", foreign.id) == "pending"


async def test_list_filters_by_session(client, admin, make_user, arrange):
    session = await arrange.session(admin)
    mine = [await arrange.approval(admin, session_id=session, now=now() - dt.timedelta(seconds=i)) for i in range(3)]
    await arrange.approval(admin)
    page = await listing(client, admin, session_id=str(session).upper())
    assert [i["id"] for i in page["items"]] == [a.id for a in mine] and page["total"] == 3
    foreign_session = await arrange.session(await make_user("agency_admin"))
    assert (await listing(client, admin, session_id=foreign_session))["items"] == []
    assert (await listing(client, admin, session_id=uuid.uuid4(), status="all"))["total"] == 0


@pytest.mark.parametrize("value", ["nope", "", "1234", "'; --", str(uuid.uuid4())[:-1]])
async def test_a_non_uuid_session_filter_is_422(client, admin, value):
    response = await client.get("/approvals", params={"session_id": value}, headers=admin.headers)
    assert (response.status, await detail(response)) == (422, "invalid_session_id")


@pytest.mark.parametrize("params, loc, kind", [
    ({"status": "open"}, "status", "literal_error"), ({"status": "PENDING"}, "status", "literal_error"),
    ({"limit": "501"}, "limit", "less_than_equal"), ({"offset": "-1"}, "offset", "greater_than_equal"),
    ({"session_id": "a\x00"}, "session_id", "value_error"),
])
async def test_bad_list_parameters_are_422_list_shape(client, admin, params, loc, kind):
    response = await client.get("/approvals", params=params, headers=admin.headers)
    assert response.status == 422
    assert [(i["loc"], i["type"]) for i in (await response.json())["detail"]] == [(["query", loc], kind)]


async def test_list_pages_by_cursor_through_tied_timestamps(client, admin, arrange):
    session = await arrange.session(admin)
    tied = now().replace(microsecond=500_000)
    rows = [await arrange.approval(admin, session_id=session, now=tied) for _ in range(7)]
    rows += [await arrange.approval(admin, session_id=session, now=tied - dt.timedelta(seconds=1)) for _ in range(3)]
    expected = [r.id for r in sorted(rows, key=lambda r: (r.requested_at, r.id), reverse=True)]
    seen, cursor = [], None
    while True:
        page = await listing(client, admin, limit=3, **({"cursor": cursor} if cursor else {}))
        assert page["total"] == 10
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    by_offset = (await listing(client, admin, limit=4, offset=4))["items"]
    assert [i["id"] for i in by_offset] == expected[4:8]
    first = await listing(client, admin, limit=2)
    response = await client.get("/approvals", params={"status": "all", "cursor": first["next_cursor"]},
                                headers=admin.headers)
    assert (response.status, await detail(response)) == (422, "invalid_cursor")


async def test_an_offset_past_every_row_is_an_empty_page(client, admin, arrange):
    await arrange.approval(admin)
    page = await listing(client, admin, offset="9999999999999999999")
    assert (page["items"], page["total"], page["offset"]) == ([], 1, 9999999999999999999)


async def test_include_total_false(client, admin, arrange):
    await arrange.approval(admin)
    assert (await listing(client, admin, include_total="false"))["total"] is None


# --- resolve ------------------------------------------------------------------------------------------------


async def test_grant_records_the_decision_and_audits_it(client, admin, arrange, db):
    row = await arrange.approval(admin, "book_offer")
    response = await resolve(client, admin, row.id, granted=True, reason="Customer confirmed by phone")
    assert response.status == 200
    item = await response.json()
    assert item["status"] == "granted" and item["reason"] == "Customer confirmed by phone"
    assert item["resolved_by_user_id"] == str(admin.id)
    assert abs(parse_ts(item["resolved_at"]) - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(seconds=30)
    stored = await db.fetchrow("SELECT status::text, granted, consumed_at FROM pending_approvals WHERE id = $1", row.id)
    assert dict(stored) == {"status": "granted", "granted": True, "consumed_at": None}
    events = await audit_rows(db, admin.tenant_id)
    assert len(events) == 1
    assert {k: events[0][k] for k in ("tool", "actor_id", "actor_kind", "status")} == {
        "tool": "approval.granted", "actor_id": admin.id, "actor_kind": "human", "status": "succeeded"}
    assert events[0]["inputs"] == {"approval_id": row.id, "session_id": str(row.session_id), "tool_name": "book_offer",
                                   "reason": "Customer confirmed by phone"}
    assert (await client.get(f"/approvals/{row.id}", headers=admin.headers)).status == 200


async def test_reject_with_and_without_a_reason(client, admin, arrange, db):
    row = await arrange.approval(admin)
    item = await (await resolve(client, admin, row.id, granted=False)).json()
    assert item["status"] == "rejected" and item["reason"] is None
    assert await db.fetchval("SELECT granted FROM pending_approvals WHERE id = $1", row.id) is False
    assert [e["tool"] for e in await audit_rows(db, admin.tenant_id)] == ["approval.rejected"]
    other = await arrange.approval(admin)
    item = await (await resolve(client, admin, other.id, granted=False, reason=None)).json()
    assert item["reason"] is None


async def test_a_decided_approval_cannot_be_resolved_again(client, admin, arrange, db):
    row = await arrange.approval(admin)
    assert (await resolve(client, admin, row.id, granted=True)).status == 200
    for granted in (True, False):
        response = await resolve(client, admin, row.id, granted=granted)
        assert (response.status, await detail(response)) == (409, "approval_already_resolved")
    assert len(await audit_rows(db, admin.tenant_id)) == 1


async def test_resolving_past_the_deadline_commits_the_expiry_and_is_409(client, admin, arrange, db):
    row = await arrange.approval(admin, now=now() - dt.timedelta(seconds=901))
    response = await resolve(client, admin, row.id)
    assert (response.status, await detail(response)) == (409, "approval_already_resolved")
    stored = await db.fetchrow("SELECT status::text, granted, resolved_at FROM pending_approvals WHERE id = $1", row.id)
    assert dict(stored) == {"status": "expired", "granted": None, "resolved_at": None}
    assert await audit_rows(db, admin.tenant_id) == []


@pytest.mark.parametrize("tool, role, allowed", [
    ("book_offer", "agency_admin", True), ("book_offer", "ticketing_lead", True),
    ("book_offer", "accounting_lead", False), ("book_offer", "agent", False), ("book_offer", "viewer", False),
    ("issue_invoice", "agency_admin", True), ("issue_invoice", "accounting_lead", True),
    ("issue_invoice", "ticketing_lead", False), ("issue_invoice", "agent", False),
    ("hold_offer", "viewer", True), ("hold_offer", "agent", True), ("some_future_tool", "viewer", True),
])
async def test_the_tool_decides_which_roles_may_resolve(client, admin, make_user, arrange, db, tool, role, allowed):
    resolver = await make_user(role, tenant_id=admin.tenant_id)
    row = await arrange.approval(admin, tool)
    response = await resolve(client, resolver, row.id)
    if allowed:
        assert response.status == 200
        assert (await response.json())["resolved_by_user_id"] == str(resolver.id)
    else:
        assert (response.status, await detail(response)) == (403, "forbidden_role")
        assert await db.fetchval("SELECT status::text FROM pending_approvals WHERE id = $1", row.id) == "pending"
        assert await audit_rows(db, admin.tenant_id) == []


async def test_checks_run_404_then_403_then_409(client, admin, make_user, arrange):
    agent = await make_user("agent", tenant_id=admin.tenant_id)
    decided = await arrange.approval(admin, "book_offer")
    assert (await resolve(client, admin, decided.id)).status == 200
    response = await resolve(client, agent, decided.id)  # resolved already, but the role fails first
    assert (response.status, await detail(response)) == (403, "forbidden_role")
    expired = await arrange.approval(admin, "book_offer", now=now() - dt.timedelta(hours=1))
    response = await resolve(client, agent, expired.id)
    assert (response.status, await detail(response)) == (403, "forbidden_role")
    foreign = await arrange.approval(await make_user("agency_admin"), "book_offer")
    response = await resolve(client, agent, foreign.id)
    assert (response.status, await detail(response)) == (404, "approval_not_found")


async def test_two_racing_resolutions_have_exactly_one_winner(client, admin, make_user, arrange, db):
    lead = await make_user("ticketing_lead", tenant_id=admin.tenant_id)
    for _ in range(3):
        row = await arrange.approval(admin, "book_offer")
        responses = await asyncio.gather(resolve(client, admin, row.id, granted=True),
                                         resolve(client, lead, row.id, granted=False),
                                         resolve(client, admin, row.id, granted=False))
        statuses = sorted(r.status for r in responses)
        assert statuses == [200, 409, 409]
        winner = next(r for r in responses if r.status == 200)
        final = await db.fetchval("SELECT status::text FROM pending_approvals WHERE id = $1", row.id)
        assert (await winner.json())["status"] == final
    assert len(await audit_rows(db, admin.tenant_id)) == 3


async def test_api_keys_resolve_as_their_creator_with_the_write_scope(client, make_user, make_api_key, arrange):
    lead = await make_user("ticketing_lead")
    reader = await make_api_key(lead, ["approvals:read"])
    writer = await make_api_key(lead, ["approvals:write"])
    row = await arrange.approval(lead, "book_offer")
    assert (await client.get(f"/approvals/{row.id}", headers=reader.headers)).status == 200
    response = await resolve(client, reader, row.id)
    assert (response.status, await detail(response)) == (403, "insufficient_scope")
    response = await resolve(client, writer, row.id)
    assert (await response.json())["resolved_by_user_id"] == str(lead.id)
    invoice = await arrange.approval(lead, "issue_invoice")
    response = await resolve(client, writer, invoice.id)
    assert (response.status, await detail(response)) == (403, "forbidden_role")


@pytest.mark.parametrize("body, loc, kind", [
    ({}, ["body", "granted"], "missing"), ({"granted": "yes"}, ["body", "granted"], "bool_type"),
    ({"granted": True, "reason": "r" * 1025}, ["body", "reason"], "string_too_long"),
    ({"granted": True, "extra": 1}, ["body", "extra"], "extra_forbidden"),
    ({"granted": True, "reason": "a\x00"}, ["body", "reason"], "value_error"),
])
async def test_bad_resolve_bodies_are_422(client, admin, arrange, body, loc, kind):
    row = await arrange.approval(admin)
    response = await client.post(f"/approvals/{row.id}/resolve", json=body, headers=admin.headers)
    assert response.status == 422
    assert [(i["loc"], i["type"]) for i in (await response.json())["detail"]] == [(loc, kind)]


async def test_the_longest_reason_is_stored_and_echoed(client, admin, arrange):
    row = await arrange.approval(admin)
    reason = "é" * 1024
    assert (await (await resolve(client, admin, row.id, reason=reason)).json())["reason"] == reason
