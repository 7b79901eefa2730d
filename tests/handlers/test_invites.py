"""Invites: an admin invites a colleague by e-mail, who looks the invite up and accepts it (and signs in)."""

import asyncio
import datetime as dt
import email
import email.policy
import hashlib
import json
import logging
import re
import socket
import uuid

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import unique_email

PASSWORD = "Sturdy-passw0rd-42"
SUMMARY_KEYS = {"id", "tenant_id", "email", "role", "status", "expires_at", "created_at", "accepted_at", "revoked_at",
                "invited_by_user_id"}
LINK_RE = re.compile(r"^http://localhost:3000/accept-invite\?token=([A-Za-z0-9_-]{43})$")


def parse_ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.removesuffix("Z") + "+00:00")


async def invite(client, admin, email_address=None, **extra):
    response = await client.post("/auth/invites", json={"email": email_address or unique_email("invitee"), **extra},
                                 headers=admin.headers)
    assert response.status == 201, await response.text()
    body = await response.json()
    body["token"] = LINK_RE.match(body["invite_link"]).group(1)
    return body


async def accept(client, token, password=PASSWORD, full_name="Grace Hopper"):
    return await client.post("/auth/accept-invite", json={"token": token, "password": password,
                                                          "full_name": full_name})


async def events(db, tenant_id, kind):
    rows = await db.fetch("SELECT actor_id, inputs FROM audit_events WHERE tenant_id = $1 AND tool = $2 "
                          "ORDER BY started_at", tenant_id, kind)
    return [{"actor_id": row["actor_id"], "inputs": json.loads(row["inputs"])} for row in rows]


async def expire(db, invite_id):
    await db.execute("UPDATE invites SET expires_at = now() - interval '1 second' WHERE id = $1::uuid", invite_id)


async def stored_status(db, invite_id):
    return await db.fetchval("SELECT status::text FROM invites WHERE id = $1::uuid", invite_id)


class Inbox:
    """A local SMTP server that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def inbox():
    handler = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    handler.url = f"smtp://127.0.0.1:{port}"
    yield handler
    controller.stop()


# --- create -------------------------------------------------------------------------------------------------


async def test_create_returns_the_invite_and_a_link_whose_token_is_stored_only_hashed(client, admin, db):
    address = unique_email("Mixed.Case")
    before = dt.datetime.now(dt.timezone.utc)
    response = await client.post("/auth/invites", json={"email": address.upper()}, headers=admin.headers)
    assert response.status == 201
    body = await response.json()
    assert set(body) == {"invite", "invite_link"}
    summary = body["invite"]
    assert set(summary) == SUMMARY_KEYS
    assert summary["email"] == address.lower() and summary["role"] == "agent" and summary["status"] == "pending"
    assert summary["tenant_id"] == str(admin.tenant_id) and summary["invited_by_user_id"] == str(admin.id)
    assert summary["accepted_at"] is None and summary["revoked_at"] is None
    lifetime = parse_ts(summary["expires_at"]) - before
    assert dt.timedelta(days=7) - dt.timedelta(seconds=5) < lifetime < dt.timedelta(days=7, seconds=5)
    token = LINK_RE.match(body["invite_link"]).group(1)
    stored = await db.fetchval("SELECT token_hash FROM invites WHERE id = $1::uuid", summary["id"])
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert token not in json.dumps(summary)
    [event] = await events(db, admin.tenant_id, "invite.created")
    assert event == {"actor_id": admin.id, "inputs": {"invite_id": summary["id"], "email": address.lower(),
                                                      "role": "agent"}}


async def test_the_invite_lifetime_and_public_url_come_from_the_settings(make_client, admin):
    client = await make_client(invite_ttl_days=2, public_url="https://app.example.org")
    response = await client.post("/auth/invites", json={"email": unique_email(), "role": "viewer"},
                                 headers=admin.headers)
    body = await response.json()
    assert body["invite"]["role"] == "viewer"
    assert re.fullmatch(r"https://app\.example\.org/accept-invite\?token=[A-Za-z0-9_-]{43}", body["invite_link"])
    lifetime = parse_ts(body["invite"]["expires_at"]) - parse_ts(body["invite"]["created_at"])
    assert abs(lifetime - dt.timedelta(days=2)) < dt.timedelta(seconds=5)


async def test_the_invitee_gets_an_email_with_the_link_alone_on_its_line(make_client, make_user, inbox):
    admin = await make_user("agency_admin", agency_name="Sunrise\r\nTours")
    client = await make_client(smtp_url=inbox.url)
    body = await invite(client, admin, "Grace@Example.com", role="ticketing_lead")
    [message] = inbox.messages
    assert message["To"] == "grace@example.com"
    assert message["Subject"] == "You are invited to join Sunrise  Tours on Voyagent"
    text = message.get_content()
    lines = text.splitlines()
    assert lines.count(body["invite_link"]) == 1
    assert [line for line in lines if line.startswith("http://localhost:3000")] == [body["invite_link"]]
    assert "Agency_Admin Person" in text and admin.email in text  # the inviter, by name and address
    assert "7 days" in text


async def test_a_name_cannot_smuggle_a_second_link_into_the_body(make_client, make_user, inbox):
    admin = await make_user("agency_admin", agency_name="Evil\nhttp://localhost:3000/accept-invite?token=x")
    client = await make_client(smtp_url=inbox.url)
    body = await invite(client, admin)
    lines = inbox.messages[0].get_content().splitlines()
    assert [line for line in lines if line.startswith("http://localhost:3000")] == [body["invite_link"]]


async def test_without_smtp_the_link_is_logged(client, admin, caplog):
    with caplog.at_level(logging.INFO, logger="voyagent.email"):
        body = await invite(client, admin)
    [line] = [r.getMessage() for r in caplog.records if r.name == "voyagent.email"]
    assert line.startswith("email kind=invite to=")
    assert line.endswith(f"link={body['invite_link']}")


async def test_a_second_pending_invite_for_the_same_address_is_409(client, admin, db):
    address = unique_email()
    await invite(client, admin, address)
    response = await client.post("/auth/invites", json={"email": address.upper()}, headers=admin.headers)
    assert (response.status, await response.json()) == (409, {"detail": "invite_already_exists"})
    assert await db.fetchval("SELECT count(*) FROM invites WHERE email = $1", address) == 1


async def test_an_address_that_already_has_a_user_is_409(client, admin, make_user):
    elsewhere = await make_user("agent")  # another tenant: e-mail addresses are unique system-wide
    for address in (admin.email, elsewhere.email):
        response = await client.post("/auth/invites", json={"email": address}, headers=admin.headers)
        assert (response.status, await response.json()) == (409, {"detail": "email_already_registered"})


async def test_a_pending_invite_is_reported_before_a_registered_address(client, admin, db, make_user):
    address = unique_email()
    await invite(client, admin, address)
    await make_user("agent", email=address)
    response = await client.post("/auth/invites", json={"email": address}, headers=admin.headers)
    assert (await response.json()) == {"detail": "invite_already_exists"}


async def test_re_inviting_after_revocation_or_expiry_works(client, admin, db):
    address = unique_email()
    first = await invite(client, admin, address)
    assert (await client.post(f"/auth/invites/{first['invite']['id']}/revoke", headers=admin.headers)).status == 200
    second = await invite(client, admin, address)
    await expire(db, second["invite"]["id"])
    third = await invite(client, admin, address)  # the overdue invite is swept first
    assert await stored_status(db, second["invite"]["id"]) == "expired"
    assert third["invite"]["status"] == "pending"


async def test_two_tenants_may_invite_the_same_address(client, admin, make_user):
    other_admin = await make_user("agency_admin")
    address = unique_email()
    await invite(client, admin, address)
    await invite(client, other_admin, address)


async def test_concurrent_invites_for_one_address_make_one_invite(client, admin, db):
    address = unique_email()
    responses = await asyncio.gather(*(client.post("/auth/invites", json={"email": address}, headers=admin.headers)
                                       for _ in range(5)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [201, 409, 409, 409, 409]
    assert await db.fetchval("SELECT count(*) FROM invites WHERE email = $1", address) == 1


@pytest.mark.parametrize("body, loc, type_, code", [
    ({}, ["body", "email"], "missing", None),
    ({"email": "not-an-address"}, ["body", "email"], "value_error", "invalid_email"),
    ({"email": "a b@example.com"}, ["body", "email"], "value_error", "invalid_email"),
    ({"email": "x" * 310 + "@example.com"}, ["body", "email"], "string_too_long", None),
    ({"email": "ok@example.com", "role": "owner"}, ["body", "role"], "value_error", "invalid_role"),
    ({"email": "ok@example.com", "role": 3}, ["body", "role"], "string_type", None),
    ({"email": "ok@example.com", "tenant_id": str(uuid.uuid4())}, ["body", "tenant_id"], "extra_forbidden", None),
])
async def test_bad_create_bodies_are_422(client, admin, db, body, loc, type_, code):
    response = await client.post("/auth/invites", json=body, headers=admin.headers)
    assert response.status == 422
    detail = (await response.json())["detail"]
    assert any(i["loc"] == loc and i["type"] == type_ and (code is None or i["msg"] == f"Value error, {code}")
               for i in detail), detail
    assert await db.fetchval("SELECT count(*) FROM invites WHERE tenant_id = $1", admin.tenant_id) == 0


async def test_create_list_and_revoke_are_for_admins_with_a_jwt(client, admin, make_user, make_api_key):
    agent = await make_user("agent", tenant_id=admin.tenant_id)
    key = await make_api_key(admin, ["full"])
    calls = [("POST", "/auth/invites", {"email": unique_email()}), ("GET", "/auth/invites", None),
             ("POST", f"/auth/invites/{uuid.uuid4()}/revoke", None)]
    for method, path, body in calls:
        response = await client.request(method, path, json=body, headers=agent.headers)
        assert (response.status, await response.json()) == (403, {"detail": "forbidden_role"}), path
        response = await client.request(method, path, json=body, headers=key.headers)
        assert (response.status, await response.json()) == (403, {"detail": "api_key_not_allowed"}), path
        assert (await client.request(method, path, json=body)).status == 401


# --- list ---------------------------------------------------------------------------------------------------


async def test_list_is_newest_first_with_an_optional_status_filter(client, admin, db, make_user):
    other_admin = await make_user("agency_admin")
    foreign = await invite(client, other_admin)
    pending = await invite(client, admin)
    revoked = await invite(client, admin)
    await client.post(f"/auth/invites/{revoked['invite']['id']}/revoke", headers=admin.headers)
    overdue = await invite(client, admin)
    await expire(db, overdue["invite"]["id"])
    accepted = await invite(client, admin)
    assert (await accept(client, accepted["token"])).status == 201

    response = await client.get("/auth/invites", headers=admin.headers)
    assert response.status == 200
    items = (await response.json())["items"]
    assert [i["id"] for i in items] == [x["invite"]["id"] for x in (accepted, overdue, revoked, pending)]
    assert [i["status"] for i in items] == ["accepted", "expired", "revoked", "pending"]
    assert all(set(i) == SUMMARY_KEYS for i in items)
    assert foreign["invite"]["id"] not in await response.text()
    assert await stored_status(db, overdue["invite"]["id"]) == "expired"  # the sweep is stored
    for status, expected in (("pending", pending), ("accepted", accepted), ("revoked", revoked),
                             ("expired", overdue)):
        response = await client.get("/auth/invites", params={"status": status}, headers=admin.headers)
        assert [i["id"] for i in (await response.json())["items"]] == [expected["invite"]["id"]], status


@pytest.mark.parametrize("status", ["PENDING", "active", "", "pending,revoked"])
async def test_an_unknown_status_filter_is_400_invalid_status(client, admin, status):
    response = await client.get("/auth/invites", params={"status": status}, headers=admin.headers)
    assert (response.status, await response.json()) == (400, {"detail": "invalid_status"})


# --- revoke -------------------------------------------------------------------------------------------------


async def test_revoke_a_pending_invite(client, admin, db):
    created = await invite(client, admin)
    response = await client.post(f"/auth/invites/{created['invite']['id']}/revoke", headers=admin.headers)
    assert response.status == 200
    revoked = (await response.json())["invite"]
    assert set(revoked) == SUMMARY_KEYS
    assert revoked["status"] == "revoked" and revoked["revoked_at"] is not None
    assert {k: v for k, v in revoked.items() if k not in ("status", "revoked_at")} == {
        k: v for k, v in created["invite"].items() if k not in ("status", "revoked_at")}
    [event] = await events(db, admin.tenant_id, "invite.revoked")
    assert event == {"actor_id": admin.id, "inputs": {"invite_id": revoked["id"], "email": revoked["email"]}}
    response = await client.get("/auth/invites/lookup", params={"token": created["token"]})
    assert (response.status, await response.json()) == (400, {"detail": "invite_not_pending"})


async def test_only_pending_invites_can_be_revoked(client, admin, db):
    revoked = await invite(client, admin)
    await client.post(f"/auth/invites/{revoked['invite']['id']}/revoke", headers=admin.headers)
    accepted = await invite(client, admin)
    await accept(client, accepted["token"])
    overdue = await invite(client, admin)
    await expire(db, overdue["invite"]["id"])
    for created in (revoked, accepted, overdue):
        response = await client.post(f"/auth/invites/{created['invite']['id']}/revoke", headers=admin.headers)
        assert (response.status, await response.json()) == (409, {"detail": "invite_not_pending"})
    assert await stored_status(db, overdue["invite"]["id"]) == "expired"  # swept, not revoked
    assert len(await events(db, admin.tenant_id, "invite.revoked")) == 1


@pytest.mark.parametrize("invite_id", ["nope", "00000000-0000-7000-8000-000000000000", "1234",
                                       "01938a2b-0000-7000-8000-00000000000z"])
async def test_revoking_an_unknown_or_malformed_id_is_404(client, admin, invite_id):
    response = await client.post(f"/auth/invites/{invite_id}/revoke", headers=admin.headers)
    assert (response.status, await response.json()) == (404, {"detail": "invite_not_found"})


async def test_another_tenants_invite_is_404_and_untouched(client, admin, make_user, db):
    other_admin = await make_user("agency_admin")
    foreign = await invite(client, other_admin)
    for invite_id in (foreign["invite"]["id"], foreign["invite"]["id"].upper()):
        response = await client.post(f"/auth/invites/{invite_id}/revoke", headers=admin.headers)
        assert (response.status, await response.json()) == (404, {"detail": "invite_not_found"})
    assert await stored_status(db, foreign["invite"]["id"]) == "pending"


# --- lookup -------------------------------------------------------------------------------------------------


async def test_lookup_shows_safe_metadata_only(client, admin):
    created = await invite(client, admin, role="accounting_lead")
    response = await client.get("/auth/invites/lookup", params={"token": created["token"]},
                                headers={"Authorization": "Bearer garbage"})  # ignored on a public route
    assert response.status == 200
    assert await response.json() == {"email": created["invite"]["email"], "role": "accounting_lead",
                                     "tenant_name": "Test Agency", "inviter_email": admin.email,
                                     "expires_at": created["invite"]["expires_at"]}
    assert "RateLimit-Limit" not in response.headers  # not rate limited


async def test_lookup_of_an_unusable_token(client, admin, db):
    response = await client.get("/auth/invites/lookup", params={"token": "x" * 43})
    assert (response.status, await response.json()) == (404, {"detail": "invite_not_found"})
    overdue = await invite(client, admin)
    await expire(db, overdue["invite"]["id"])
    response = await client.get("/auth/invites/lookup", params={"token": overdue["token"]})
    assert (response.status, await response.json()) == (400, {"detail": "invite_expired"})
    assert await stored_status(db, overdue["invite"]["id"]) == "expired"
    response = await client.get("/auth/invites/lookup", params={"token": overdue["token"]})
    assert (await response.json()) == {"detail": "invite_expired"}  # and stays so


@pytest.mark.parametrize("query, type_", [({}, "missing"), ({"token": ""}, "string_too_short"),
                                          ({"token": "t" * 129}, "string_too_long"),
                                          ({"token": "abc\x00"}, "value_error")])
async def test_lookup_needs_a_token_of_1_to_128_characters(client, query, type_):
    response = await client.get("/auth/invites/lookup", params=query)
    assert response.status == 422
    assert (await response.json())["detail"][0]["type"] == type_


# --- accept -------------------------------------------------------------------------------------------------


async def test_accept_creates_a_verified_user_in_the_inviters_tenant_and_signs_in(client, admin, db):
    created = await invite(client, admin, role="ticketing_lead")
    response = await accept(client, created["token"], full_name="  Grace Hopper  ")
    assert response.status == 201
    body = await response.json()
    assert set(body) == {"access_token", "refresh_token", "expires_in", "user"}
    assert body["expires_in"] == 3600 and len(body["refresh_token"]) == 43
    user = body["user"]
    assert user["email"] == created["invite"]["email"] and user["role"] == "ticketing_lead"
    assert user["tenant_id"] == str(admin.tenant_id) and user["tenant_name"] == "Test Agency"
    assert user["full_name"] == "Grace Hopper" and user["email_verified"] is True and user["totp_enabled"] is False
    assert "password" not in json.dumps(body)
    # the pair works: the access token reads the tenant, the refresh token is a stored row
    me = await client.get("/tenant-settings", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert (await me.json())["tenant_id"] == str(admin.tenant_id)
    digest = hashlib.sha256(body["refresh_token"].encode()).digest()
    assert await db.fetchval("SELECT user_id FROM auth_refresh_tokens WHERE token_hash = $1", digest) == \
        uuid.UUID(user["id"])
    row = await db.fetchrow("SELECT status::text, accepted_at FROM invites WHERE id = $1::uuid",
                            created["invite"]["id"])
    assert row["status"] == "accepted" and row["accepted_at"] is not None
    [event] = await events(db, admin.tenant_id, "invite.accepted")
    assert event == {"actor_id": uuid.UUID(user["id"]),
                     "inputs": {"invite_id": created["invite"]["id"], "email": user["email"], "role": "ticketing_lead"}}
    signed_in = await client.post("/auth/sign-in", json={"email": user["email"], "password": PASSWORD})
    assert signed_in.status == 200


async def test_a_token_is_single_use(client, admin):
    created = await invite(client, admin)
    assert (await accept(client, created["token"])).status == 201
    response = await accept(client, created["token"])
    assert (response.status, await response.json()) == (400, {"detail": "invite_not_pending"})


async def test_concurrent_accepts_make_exactly_one_user(client, admin, db):
    created = await invite(client, admin)
    responses = await asyncio.gather(*(accept(client, created["token"]) for _ in range(4)))
    assert sorted(r.status for r in responses) == [201, 400, 400, 400]
    assert await db.fetchval("SELECT count(*) FROM users WHERE email = $1", created["invite"]["email"]) == 1


async def test_accepting_an_unusable_invite(client, admin, db):
    response = await accept(client, "no-such-token")
    assert (response.status, await response.json()) == (404, {"detail": "invite_not_found"})
    revoked = await invite(client, admin)
    await client.post(f"/auth/invites/{revoked['invite']['id']}/revoke", headers=admin.headers)
    response = await accept(client, revoked["token"])
    assert (response.status, await response.json()) == (400, {"detail": "invite_not_pending"})
    overdue = await invite(client, admin)
    await expire(db, overdue["invite"]["id"])
    response = await accept(client, overdue["token"], password="password1234")  # expiry is checked first
    assert (response.status, await response.json()) == (400, {"detail": "invite_expired"})
    assert await stored_status(db, overdue["invite"]["id"]) == "expired"
    assert await db.fetchval("SELECT count(*) FROM users WHERE tenant_id = $1", admin.tenant_id) == 1


async def test_a_weak_password_is_400_and_leaves_the_invite_usable(client, admin, db):
    created = await invite(client, admin)
    response = await accept(client, created["token"], password="password1234")
    assert response.status == 400
    assert await response.json() == {"detail": {"error": "password_too_weak", "code": "password_common"}}
    assert await stored_status(db, created["invite"]["id"]) == "pending"
    assert (await accept(client, created["token"])).status == 201


async def test_an_address_registered_meanwhile_is_409(client, admin, make_user, db):
    created = await invite(client, admin)
    await make_user("agent", email=created["invite"]["email"])
    response = await accept(client, created["token"])
    assert (response.status, await response.json()) == (409, {"detail": "email_already_registered"})
    assert await stored_status(db, created["invite"]["id"]) == "pending"


@pytest.mark.parametrize("body, loc, type_", [
    ({"password": PASSWORD, "full_name": "G"}, ["body", "token"], "missing"),
    ({"token": "", "password": PASSWORD, "full_name": "G"}, ["body", "token"], "string_too_short"),
    ({"token": "t" * 129, "password": PASSWORD, "full_name": "G"}, ["body", "token"], "string_too_long"),
    ({"token": "t", "password": "Short1", "full_name": "G"}, ["body", "password"], "string_too_short"),
    ({"token": "t", "password": "x" * 129 + "1", "full_name": "G"}, ["body", "password"], "string_too_long"),
    ({"token": "t", "password": "no-digits-at-all", "full_name": "G"}, ["body", "password"], "value_error"),
    ({"token": "t", "password": PASSWORD, "full_name": "   "}, ["body", "full_name"], "value_error"),
    ({"token": "t", "password": PASSWORD}, ["body", "full_name"], "missing"),
    ({"token": "t", "password": PASSWORD, "full_name": "G", "role": "agency_admin"}, ["body", "role"],
     "extra_forbidden"),
])
async def test_bad_accept_bodies_are_422(client, body, loc, type_):
    response = await client.post("/auth/accept-invite", json=body)
    assert response.status == 422
    detail = (await response.json())["detail"]
    assert any(item["loc"] == loc and item["type"] == type_ for item in detail), detail


async def test_accept_counts_against_the_credential_ip_bucket(make_client, admin):
    client = await make_client(rate_limit_auth_ip_per_minute=2)
    created = await invite(client, admin)
    first = await accept(client, "unknown-token")
    assert first.status == 404 and first.headers["RateLimit-Policy"] == '"auth_ip";q=2;w=60'
    assert (await accept(client, created["token"])).status == 201
    response = await accept(client, created["token"])
    assert (response.status, await response.json()) == (429, {"detail": "rate_limited"})
    assert int(response.headers["Retry-After"]) >= 1


async def test_admin_routes_count_against_the_users_bucket(make_client, admin):
    client = await make_client(rate_limit_user_per_minute=2)
    assert (await client.get("/auth/invites", headers=admin.headers)).status == 200
    assert (await client.post("/auth/invites", json={"email": unique_email()}, headers=admin.headers)).status == 201
    response = await client.get("/auth/invites", headers=admin.headers)
    assert (response.status, await response.json()) == (429, {"detail": "rate_limited"})
    assert response.headers["RateLimit-Policy"] == '"user";q=2;w=60' and int(response.headers["Retry-After"]) >= 1


async def test_an_oversized_body_is_413_before_anything_else(make_client, admin):
    client = await make_client(max_body_bytes=64)
    response = await client.post("/auth/invites", json={"email": "x" * 100 + "@example.com"}, headers=admin.headers)
    assert (response.status, await response.json()) == (413, {"detail": "payload_too_large"})
