"""``voyagent demo`` on a fresh database: what it makes, that its members can sign in, and that a second run
changes nothing."""

from __future__ import annotations

import dataclasses
import io
import stat
from decimal import Decimal

import asyncpg
import orjson
import pytest

from voyagent.app import create_app
from voyagent.demo import people, run_demo
from voyagent.demo.progress import Progress


@pytest.fixture
async def demo(fresh_database, settings, tmp_path):
    demo_settings = dataclasses.replace(settings, db_url=fresh_database, data_dir=tmp_path / "data")
    lines = io.StringIO()
    outcome = await run_demo(demo_settings, fresh_database, Progress(lines, bar=False))
    return demo_settings, outcome, lines.getvalue()


async def table_counts(dsn, tenant_id):
    conn = await asyncpg.connect(dsn)
    try:
        return {table: await conn.fetchval(f"SELECT count(*) FROM {table} WHERE tenant_id = $1", tenant_id)
                for table in ("users", "enquiries", "invites", "audit_events")}
    finally:
        await conn.close()


async def test_the_demo_makes_an_agency_whose_members_sign_in_and_a_second_run_changes_nothing(
        demo, fresh_database, aiohttp_client, contract, queries):
    settings, outcome, lines = demo
    assert outcome.created
    assert sorted(member["role"] for member in outcome.credentials["members"]) == \
        sorted(role for _, _, role in people.STAFF)
    counts = await table_counts(fresh_database, outcome.tenant_id)
    assert counts["users"] == len(people.STAFF)
    assert counts["enquiries"] == outcome.counts["enquiries"] >= 1000
    conn = await asyncpg.connect(fresh_database)
    try:
        span = await conn.fetchval("SELECT max(created_at) - min(created_at) FROM enquiries WHERE tenant_id = $1",
                                   outcome.tenant_id)
        statuses = {row["status"] for row in await conn.fetch(
            "SELECT DISTINCT status::text AS status FROM enquiries WHERE tenant_id = $1", outcome.tenant_id)}
        sessions = await conn.fetchrow("SELECT count(*) AS n, max(created_at) - min(created_at) AS span "
                                       "FROM sessions WHERE tenant_id = $1", outcome.tenant_id)
    finally:
        await conn.close()
    assert span.days >= 300 and sessions["span"].days >= 300
    assert statuses == {"new", "quoted", "booked", "cancelled"}
    assert sessions["n"] == outcome.counts["chat sessions"] >= 100
    for stage in ("agency: 6 done", "enquiries:", "conversations:", "payments:"):  # a plain line per stage, no bar
        assert f"demo: {stage}" in lines

    path = settings.data_dir / people.CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    client = await aiohttp_client(create_app(settings, dsn=settings.db_url, contract=contract, queries=queries))
    for member in outcome.credentials["members"]:
        response = await client.post("/auth/sign-in", json={"email": member["email"], "password": member["password"]})
        assert response.status == 200, member
        assert (await response.json())["user"]["role"] == member["role"]

    before = await table_counts(fresh_database, outcome.tenant_id)
    quiet = io.StringIO()
    again = await run_demo(settings, fresh_database, Progress(quiet, bar=False))
    assert (again.created, again.tenant_id, again.credentials) == (False, outcome.tenant_id, outcome.credentials)
    assert await table_counts(fresh_database, outcome.tenant_id) == before
    assert quiet.getvalue() == ""


# --- after the demo, every operation of /docs has something to show the demo admin ------------------------------


class Tour:
    """A client walking the API as the demo admin, remembering which operations it called with success."""

    def __init__(self, client, contract):
        self.client = client
        self.contract = contract
        self.visited: set[str] = set()
        self.headers: dict[str, str] = {}

    async def call(self, op_id, path, *, expect=range(200, 300), headers=None, raw=False, **kwargs):
        operation = self.contract.operations[op_id]
        response = await self.client.request(operation.method, path, headers=headers or self.headers, **kwargs)
        body = await response.read()
        assert response.status in expect, (op_id, response.status, body[:300])
        self.visited.add(op_id)
        if raw or not body or not response.content_type.endswith("json"):
            return body
        return orjson.loads(body)


async def test_after_the_demo_every_operation_answers_the_demo_admin_meaningfully(
        fresh_database, settings, tmp_path, aiohttp_client, contract, queries, redis_url, smtp_sink):
    from tests.handlers.auth_flows import code_at, current_step, totp_code
    from tests.sse_client import SseParser

    demo_settings = dataclasses.replace(settings, db_url=fresh_database, data_dir=tmp_path / "data",
                                        redis_url=redis_url, smtp_url=smtp_sink.url)
    outcome = await run_demo(demo_settings, fresh_database, Progress(io.StringIO(), bar=False))
    members = {member["role"]: member for member in outcome.credentials["members"]}
    admin = members["agency_admin"]
    client = await aiohttp_client(create_app(demo_settings, dsn=fresh_database, contract=contract, queries=queries))
    tour = Tour(client, contract)

    # health and meta
    assert (await tour.call("health", "/health"))["status"] == "ok"
    await tour.call("health_db", "/health/db")
    assert (await tour.call("health_redis", "/health/redis"))["ping"] is True
    assert "voyagent_api_active_sessions" in (await tour.call("internal_metrics", "/internal/metrics")).decode()
    assert "pattern" in str(await tour.call("get_money_schema", "/schemas/money"))

    # signing in; the admin's profile
    signed = await tour.call("sign_in", "/auth/sign-in", json={"email": admin["email"], "password": admin["password"]})
    tour.headers = {"Authorization": f"Bearer {signed['access_token']}"}
    me = await tour.call("get_me", "/auth/me")
    assert (me["email"], me["role"], me["tenant_name"]) == (admin["email"], "agency_admin", people.AGENCY_NAME)
    await tour.call("update_profile", "/auth/profile", json={"full_name": "Asha R. Rao"})
    refreshed = await tour.call("refresh_tokens", "/auth/refresh", json={"refresh_token": signed["refresh_token"]})
    tour.headers = {"Authorization": f"Bearer {refreshed['access_token']}"}

    # the agency's settings, members' invites and integrations
    assert (await tour.call("get_tenant_settings", "/tenant-settings"))["default_currency"]
    await tour.call("patch_tenant_settings", "/tenant-settings", json={"system_prompt_suffix": "Be brief."})
    invites = (await tour.call("list_invites", "/auth/invites"))["items"]
    assert {invite["status"] for invite in invites} >= {"pending", "accepted", "revoked"}
    pending = next(invite for invite in invites if invite["status"] == "pending")
    await tour.call("revoke_invite", f"/auth/invites/{pending['id']}/revoke")
    await tour.call("create_invite", "/auth/invites", expect=(201,),
                    json={"email": "tour.guide@saffron-trails.example", "role": "agent"})
    token = (await smtp_sink.wait_for("tour.guide@saffron-trails.example")).token()
    assert (await tour.call("lookup_invite", f"/auth/invites/lookup?token={token}"))["role"] == "agent"
    await tour.call("accept_invite", "/auth/accept-invite", expect=(200, 201), headers={},
                    json={"token": token, "password": "Guide-passw0rd-1", "full_name": "Tour Guide"})
    keys = (await tour.call("list_api_keys", "/auth/api-keys"))["items"]
    assert [key["name"] for key in keys] == [people.INTEGRATION_KEY_NAME]
    made = await tour.call("create_api_key", "/auth/api-keys", expect=(201,), json={"name": "tour"})
    await tour.call("revoke_api_key", f"/auth/api-keys/{made['api_key']['id']}/revoke")
    integration = {"Authorization": f"Bearer {outcome.credentials['api_key']}"}

    # enquiries: a year of them, and the integrator's key works on them
    listed = await tour.call("list_enquiries", "/enquiries?limit=5&include_total=true", headers=integration)
    assert listed["total"] == outcome.counts["enquiries"] and len(listed["items"]) == 5
    enquiry = await tour.call("create_enquiry", "/enquiries", expect=(201,), json={
        "customer_name": "Walk-in Tourist", "origin": "DEL", "destination": "DXB", "pax_count": 2})
    assert (await tour.call("get_enquiry", f"/enquiries/{enquiry['id']}"))["customer_name"] == "Walk-in Tourist"
    await tour.call("patch_enquiry", f"/enquiries/{enquiry['id']}", json={"status": "quoted"})
    promoted = await tour.call("promote_enquiry_to_session", f"/enquiries/{enquiry['id']}/promote-to-session",
                               expect=(200, 201))

    # chat: the played sessions, and a new turn of the offline agent
    sessions = (await tour.call("list_chat_sessions", "/chat/sessions?limit=200"))["sessions"]
    assert len(sessions) == outcome.counts["chat sessions"] + 1
    assert sum(session["message_count"] for session in sessions) > 500
    summary = await tour.call("get_chat_session", f"/chat/sessions/{sessions[-1]['id']}")
    assert summary["message_count"] >= 2 and summary["title"]
    await tour.call("rename_chat_session", f"/chat/sessions/{promoted['session_id']}", json={"title": "Dubai trip"})
    response = await client.post(f"/chat/sessions/{promoted['session_id']}/messages", headers=tour.headers,
                                 json={"message": "flights DEL to DXB on 2026-07-01 for 2 adults"})
    assert response.status == 200
    parser = SseParser()
    frames = parser.feed(await response.read())
    tour.visited.add("send_chat_message")
    kinds = [frame.kind for frame in frames if frame.event == "agent_event"]
    assert kinds == ["tool_use", "tool_result", "text_delta", "final"]
    assert frames[1].json["tool_output"]["offers"][0]["offer_id"] == "FLT-20526D6B"
    created = await tour.call("create_chat_session", "/chat/sessions", expect=(201,), json={})
    await tour.call("delete_chat_session", f"/chat/sessions/{created['session_id']}", expect=(204,))

    # approvals in every state; the pending one is decided
    approvals = (await tour.call("list_approvals", "/approvals?status=all&limit=200"))["items"]
    assert {approval["status"] for approval in approvals} == {"pending", "granted", "rejected", "expired"}
    waiting = next(approval for approval in approvals if approval["status"] == "pending")
    assert (await tour.call("get_approval", f"/approvals/{waiting['id']}"))["summary"].startswith("Book ")
    decided = await tour.call("resolve_approval", f"/approvals/{waiting['id']}/resolve", json={"granted": True})
    assert decided["status"] == "granted"

    # the reports: a booked itinerary, money owed both ways in several buckets, a balanced ledger
    booked = next(approval for approval in approvals
                  if approval["status"] == "granted" and approval["tool_name"] == "book_offer")
    itinerary = await tour.call("get_itinerary_report", f"/reports/itinerary?session_id={booked['session_id']}")
    assert any(flight["status"] == "booked" and flight["pnr"] for flight in itinerary["flights"])
    period = "from=2025-01-01&to=2026-12-31"
    for op_id, path in (("get_receivables_aging", "/reports/receivables"), ("get_payables_aging", "/reports/payables")):
        report = await tour.call(op_id, f"{path}?{period}")
        assert Decimal(report["total_outstanding"]["amount"]) > 0
        assert sum(1 for bucket in report["aging_buckets"] if bucket["count"]) >= 3, report["aging_buckets"]
    balance = await tour.call("get_trial_balance", "/reports/trial-balance")
    assert balance["in_balance"] and {"1000", "1200", "2100", "4000", "5000"} <= {a["code"] for a in balance["accounts"]}

    # the audit trail of all this
    events = await tour.call("list_audit_events", "/audit?limit=50")
    assert len(events["items"]) == 50
    csv = (await tour.call("export_audit_csv", "/audit/export.csv", raw=True)).decode()
    assert csv.count("\n") > 500

    # the rest of the account's life: 2FA, e-mail verification, a password reset, a new agency, signing out
    secret = (await tour.call("setup_totp", "/auth/totp/setup"))["secret"]
    await tour.call("verify_totp", "/auth/totp/verify", json={"code": totp_code(secret, -1)})
    step = current_step()
    challenge = await tour.call("sign_in", "/auth/sign-in", headers={}, expect=(401,),  # the second factor is due
                                json={"email": admin["email"], "password": admin["password"]})
    second = await tour.call("sign_in_totp", "/auth/sign-in-totp", headers={},
                             json={"totp_token": challenge["totp_token"], "totp_code": code_at(secret, step)})
    tour.headers = {"Authorization": f"Bearer {second['access_token']}"}
    await tour.call("disable_totp", "/auth/totp/disable",
                    json={"password": admin["password"], "code": code_at(secret, step + 1)})
    newcomer = await tour.call("sign_up", "/auth/sign-up", expect=(201,), headers={}, json={
        "email": "owner@another-agency.example", "password": "Another-passw0rd-9", "full_name": "Ravi Kumar",
        "agency_name": "Another Agency"})
    await tour.call("send_verification_email", "/auth/send-verification-email", expect=(200, 202),
                    headers={"Authorization": f"Bearer {newcomer['access_token']}"})
    mail = await smtp_sink.wait_for("owner@another-agency.example", count=2)
    await tour.call("verify_email", "/auth/verify-email", headers={}, json={"token": mail.token()})
    await tour.call("request_password_reset", "/auth/request-password-reset", expect=(200, 202), headers={},
                    json={"email": members["viewer"]["email"]})
    reset = await smtp_sink.wait_for(members["viewer"]["email"])
    await tour.call("reset_password", "/auth/reset-password", headers={},
                    json={"token": reset.token(), "new_password": "Viewer-passw0rd-2"})
    await tour.call("sign_out", "/auth/sign-out", expect=(200, 204),
                    json={"refresh_token": second["refresh_token"]})

    assert tour.visited == set(contract.operations)


async def test_the_command_prints_where_to_go_and_how_to_sign_in_then_says_the_demo_exists(fresh_database, tmp_path):
    import asyncio
    import os
    import sys

    env = {**os.environ, "VOYAGENT_DB_URL": fresh_database, "VOYAGENT_AUTH_SECRET": "s" * 40,
           "VOYAGENT_DATA_DIR": str(tmp_path / "data"), "VOYAGENT_PORT": "8000", "VOYAGENT_LOG_LEVEL": "WARNING",
           "VOYAGENT_AUTH_ARGON2_MEMORY_COST": "8192", "VOYAGENT_AUTH_ARGON2_TIME_COST": "1"}

    async def demo() -> str:
        # bin/serve --demo passes the serve flags on: the address printed is the one that will be served
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "voyagent", "demo", "--port", "8123",
                                                       env=env,
                                                       stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.STDOUT)
        out, _ = await process.communicate()
        assert process.returncode == 0, out.decode()
        return out.decode()

    first = await demo()
    assert "demo agency created:" in first and "demo: conversations:" in first
    assert "http://127.0.0.1:8123/docs" in first
    for _, email, role in people.STAFF:
        assert any(role in line and email in line and "password " in line for line in first.splitlines()), email
    assert "integrator API key" in first and "vy_" in first
    second = await demo()
    assert "the demo agency exists already; nothing was changed" in second
    assert [line for line in second.splitlines() if "password " in line] == \
        [line for line in first.splitlines() if "password " in line]
