"""The approvals service the agent layer shares: request ids (§6.3), resolution rules (§6.4), the tool table."""

import dataclasses
import datetime as dt
import json
import logging

import pytest

from voyagent import edge
from voyagent.errors import ApiError
from voyagent.keys import DATABASE, QUERIES
from voyagent.services import approvals, tools
from voyagent.services.sessions import create_session

TTL = 900


@pytest.fixture
async def app(client):
    return client.server.app


async def new_session(app, user):
    async with app[DATABASE].transaction() as conn:
        return (await create_session(conn, app[QUERIES], tenant_id=user.tenant_id, actor_id=user.id))["id"]


async def request(app, user, session_id, *, turn_id="t-0123456789ab", tool_name="book_offer", now=None, ttl=TTL):
    async with app[DATABASE].transaction() as conn:
        return await approvals.request_approval(
            conn, app[QUERIES], tenant_id=user.tenant_id, session_id=session_id, turn_id=turn_id,
            tool_name=tool_name, tool_call_id="tc-00112233445566aa", payload={"offer_id": "FLT-20526D6B"},
            summary="Book flight 6E893 DEL-DXB on 2026-07-01 (FLT-20526D6B) for INR 54,208.00. Not reversible.",
            ttl_seconds=ttl, now=now)


async def resolve(app, user, approval_id, granted=True, **kwargs):
    return await edge.resolve_approval(app[DATABASE], app[QUERIES], tenant_id=user.tenant_id,
                                            approval_id=approval_id, granted=granted, reason=kwargs.pop("reason", None),
                                            resolver_id=user.id, resolver_role=user.role, **kwargs)


async def test_request_uses_the_turn_and_tool_then_numbers_repeats(app, admin, db):
    session_id = await new_session(app, admin)
    at = dt.datetime.now(dt.timezone.utc).replace(microsecond=123_456)
    first = await request(app, admin, session_id, now=at)
    second = await request(app, admin, session_id, now=at)
    third = await request(app, admin, session_id, now=at)
    other_tool = await request(app, admin, session_id, tool_name="issue_invoice", now=at)
    assert [first.id, second.id, third.id, other_tool.id] == [
        "ap-t-0123456789ab-book_offer", "ap-t-0123456789ab-book_offer-2", "ap-t-0123456789ab-book_offer-3",
        "ap-t-0123456789ab-issue_invoice"]
    assert first.requested_at == at and first.expires_at == at + dt.timedelta(seconds=TTL)
    assert (first.status, first.granted, first.tenant_id, first.session_id) == ("pending", None, admin.tenant_id,
                                                                               session_id)
    assert first.turn_id == "t-0123456789ab" and first.tool_call_id == "tc-00112233445566aa"
    stored = await db.fetchrow("SELECT payload, summary FROM pending_approvals WHERE id = $1", first.id)
    assert json.loads(stored["payload"]) == {"offer_id": "FLT-20526D6B"} and stored["summary"].endswith("reversible.")


async def test_an_id_longer_than_128_characters_is_refused(app, admin):
    session_id = await new_session(app, admin)
    with pytest.raises(ValueError):
        await request(app, admin, session_id, tool_name="x" * 120)


async def test_the_item_is_the_wire_object(app, admin):
    row = await request(app, admin, await new_session(app, admin), turn_id="t-aaaaaaaaaaaa")
    item = row.item()
    assert item["session_id"] == str(row.session_id) and item["payload"] == {"offer_id": "FLT-20526D6B"}
    assert "tenant_id" not in item and "granted" not in item and "consumed_at" not in item


async def test_the_chat_map_treats_the_same_decision_again_as_a_no_op(app, admin, db):
    session_id = await new_session(app, admin)
    row = await request(app, admin, session_id, turn_id="t-bbbbbbbbbbbb")
    decided = await resolve(app, admin, row.id, granted=True, session_id=session_id, same_decision_is_noop=True)
    again = await resolve(app, admin, row.id, granted=True, session_id=session_id, same_decision_is_noop=True)
    assert again == decided and again.status == "granted"
    with pytest.raises(ApiError) as opposite:
        await resolve(app, admin, row.id, granted=False, session_id=session_id, same_decision_is_noop=True)
    assert (opposite.value.status, opposite.value.detail) == (409, "approval_already_resolved")
    with pytest.raises(ApiError) as endpoint_rule:  # the endpoint has no no-op
        await resolve(app, admin, row.id, granted=True)
    assert endpoint_rule.value.status == 409
    assert await db.fetchval("SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND tool LIKE 'approval.%'",
                             admin.tenant_id) == 1


async def test_an_expired_approval_is_409_for_the_map_too(app, admin):
    session_id = await new_session(app, admin)
    row = await request(app, admin, session_id, turn_id="t-cccccccccccc",
                        now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=TTL + 1))
    with pytest.raises(ApiError) as exc:
        await resolve(app, admin, row.id, session_id=session_id, same_decision_is_noop=True)
    assert exc.value.status == 409


async def test_the_map_only_sees_approvals_of_its_session(app, admin):
    row = await request(app, admin, await new_session(app, admin), turn_id="t-dddddddddddd")
    with pytest.raises(ApiError) as exc:
        await resolve(app, admin, row.id, session_id=await new_session(app, admin), same_decision_is_noop=True)
    assert (exc.value.status, exc.value.detail) == (404, "approval_not_found")


async def test_the_session_sweep_expires_only_that_sessions_overdue_rows(app, admin, db):
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    s1, s2 = await new_session(app, admin), await new_session(app, admin)
    overdue = await request(app, admin, s1, turn_id="t-eeeeeeeeeeee", now=past)
    live = await request(app, admin, s1, turn_id="t-ffffffffffff")
    elsewhere = await request(app, admin, s2, turn_id="t-999999999999", now=past)
    async with app[DATABASE].transaction() as conn:
        await approvals.expire_session(conn, app[QUERIES], tenant_id=admin.tenant_id, session_id=s1)
    statuses = {r["id"]: r["status"] for r in await db.fetch(
        "SELECT id, status::text FROM pending_approvals WHERE id = ANY($1)", [overdue.id, live.id, elsewhere.id])}
    assert statuses == {overdue.id: "expired", live.id: "pending", elsewhere.id: "pending"}


class _AuditFails:
    """The app's queries, except that writing an audit event fails."""

    def __init__(self, queries):
        self._queries = queries

    def __getattr__(self, name):
        if name == "insert_audit_event":
            async def broken(conn, **values):
                raise RuntimeError("audit store down")
            return broken
        return getattr(self._queries, name)


async def test_a_failed_audit_write_is_logged_and_the_decision_stands(app, admin, db, caplog):
    row = await request(app, admin, await new_session(app, admin), turn_id="t-121212121212")
    with caplog.at_level(logging.WARNING):
        decided = await edge.resolve_approval(
            app[DATABASE], _AuditFails(app[QUERIES]), tenant_id=admin.tenant_id, approval_id=row.id, granted=False,
            reason="no", resolver_id=admin.id, resolver_role="agency_admin")
    assert decided.status == "rejected"
    assert await db.fetchval("SELECT status::text FROM pending_approvals WHERE id = $1", row.id) == "rejected"
    assert "approval.rejected" in caplog.text


def test_the_tool_table_matches_the_registry():
    assert tools.approval_roles("book_offer") == ("agency_admin", "ticketing_lead")
    assert tools.approval_roles("issue_invoice") == ("agency_admin", "accounting_lead")
    assert tools.approval_roles("hold_offer") == () and tools.approval_roles("unknown") == ()
    assert [name for name, spec in tools.TOOLS.items() if spec.approval_required] == ["hold_offer", "book_offer",
                                                                                       "issue_invoice"]
    assert [name for name, spec in tools.TOOLS.items() if not spec.reversible] == ["book_offer"]
    assert tools.may_decide("book_offer", "ticketing_lead") and not tools.may_decide("book_offer", "agent")
    assert tools.may_decide("search_flights", "viewer") and tools.may_decide("nope", "viewer")
    assert tools.TOOLS["book_offer"].driver == "sandbox" and tools.TOOLS["add_passenger"].audited


def test_registration_invariants_are_enforced():
    with pytest.raises(ValueError):
        tools.ToolSpec("wipe", side_effect=True, reversible=False, approval_required=False)
    with pytest.raises(ValueError):
        tools.ToolSpec("peek", side_effect=False, reversible=True, approval_required=True)
    spec = tools.ToolSpec("ok", side_effect=True, reversible=True, approval_required=True)
    with pytest.raises(ValueError):
        tools.registry([spec, dataclasses.replace(spec)])
