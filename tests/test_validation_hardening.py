"""No client value stalls a worker: every pattern-bearing field, sent the largest adversarial value the request
allows, gets its 4xx while GET /health keeps answering on the same (single) worker of a real server process."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from typing import Any, Callable

import aiohttp
import pytest

from tests.conftest import LOCAL_REDIS, TEST_SECRET
from tests.server_process import ServerProcess
from voyagent.config import Settings
from voyagent.routes import collect_handlers

# The VOYAGENT_MAX_BODY_BYTES default (1 MiB): the largest body a client can send.
BODY_LIMIT = next(f.default for f in dataclasses.fields(Settings) if f.name == "max_body_bytes")
FIELD_LIMIT = 16 * 1024  # header fields and the request line are accepted up to 16 KiB (README)
PROBES_WANTED = 3  # /health answers seen in the middle of the adversarial stream
MAX_ROUNDS = 50
HANG_GUARD_SECONDS = 120  # only so that a stalled server fails the test instead of hanging it


def _cycle(unit: str, n: int, prefix: str = "", suffix: str = "") -> str:
    """``prefix + unit*… + suffix``, exactly ``n`` characters."""
    middle = n - len(prefix) - len(suffix)
    return prefix + (unit * (middle // len(unit) + 1))[:middle] + suffix


# Adversarial fillers: inputs on which a backtracking engine does its worst for each pattern.
def _money(n: int) -> str:  # ^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$ : cubic in Python's re
    return _cycle("0", n, suffix="x")


def _email(n: int) -> str:  # ^[^@\s]+@[^@\s]+\.[^@\s]+$ : quadratic in Python's re
    return _cycle("a.", n, prefix="a@", suffix="@")


def _upper(n: int) -> str:  # ^[A-Z]{3}$ and [A-Z]{3}
    return _cycle("A", n)


def _digits(n: int) -> str:  # [+-]?\d{1,19} and [0-9]{6}
    return _cycle("1", n)


@dataclasses.dataclass
class Case:
    """One pattern-bearing field and the answer its adversarial value must get."""

    method: str
    path: str
    status: int
    expect: Any  # a detail code, or the (loc, type) of the first 422 item
    field: str | None = None  # body field filled up to the body limit
    template: dict[str, Any] = dataclasses.field(default_factory=dict)
    filler: Callable[[int], str] = _upper
    query: str | None = None  # query parameter filled up to FIELD_LIMIT
    header: str | None = None  # header filled up to FIELD_LIMIT
    auth: bool = True

    def request(self, token: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if self.auth else {}
        path = self.path.replace("{id}", str(uuid.uuid4()))
        data = None
        if self.field is not None:
            headers["Content-Type"] = "application/json"
            room = BODY_LIMIT - len(json.dumps({**self.template, self.field: ""}).encode())
            data = json.dumps({**self.template, self.field: self.filler(room)}).encode()
            assert len(data) == BODY_LIMIT
        elif self.template:
            headers["Content-Type"] = "application/json"
            data = json.dumps(self.template).encode()
        if self.query is not None:
            path += f"{'&' if '?' in path else '?'}{self.query}={self.filler(FIELD_LIMIT - len(path) - 64)}"
        if self.header is not None:
            value = self.filler(FIELD_LIMIT)
            headers[self.header] = f"Bearer vy_{value[:-10]}" if self.header == "Authorization" else value
        return {"method": self.method, "path": path, "headers": headers, "data": data}


_SIGN_UP = {"password": "Correct-Horse-9-battery", "full_name": "Ada", "agency_name": "Adversaries"}
CASES = {
    # Money amount grammar (x-voyagent-rule: decimal)
    "create_enquiry.budget_amount": Case("POST", "/enquiries", 422, (["body", "budget_amount"], "decimal_parsing"),
                                         field="budget_amount", template={"customer_name": "A"}, filler=_money),
    "patch_enquiry.budget_amount": Case("PATCH", "/enquiries/{id}", 422, (["body", "budget_amount"], "decimal_parsing"),
                                        field="budget_amount", filler=_money),
    # the handler's currency check ([A-Z]{3}, fullmatch)
    "create_enquiry.budget_currency": Case("POST", "/enquiries", 400, "invalid_currency", field="budget_currency",
                                           template={"customer_name": "A"}),
    # schema pattern ^[A-Z]{3}$ (no maxLength: the pattern itself sees the whole megabyte)
    "patch_tenant_settings.default_currency": Case("PATCH", "/tenant-settings", 422,
                                                   (["body", "default_currency"], "string_pattern_mismatch"),
                                                   field="default_currency"),
    # (with a valid period, so the currency is the one bad parameter)
    "get_receivables_aging.currency": Case("GET", "/reports/receivables?from=2026-01-01&to=2026-01-31", 422,
                                           (["query", "currency"], "string_pattern_mismatch"), query="currency"),
    "get_payables_aging.currency": Case("GET", "/reports/payables?from=2026-01-01&to=2026-01-31", 422,
                                        (["query", "currency"], "string_pattern_mismatch"), query="currency"),
    # integer query parameters ([+-]?\d{1,19})
    "list_enquiries.limit": Case("GET", "/enquiries", 422, (["query", "limit"], "int_parsing"), query="limit",
                                 filler=_digits),
    # e-mail rule on every e-mail-bearing route
    "sign_up.email": Case("POST", "/auth/sign-up", 422, (["body", "email"], "string_too_long"), field="email",
                          template=_SIGN_UP, filler=_email, auth=False),
    "sign_in.email": Case("POST", "/auth/sign-in", 422, (["body", "email"], "string_too_long"), field="email",
                          template={"password": "x"}, filler=_email, auth=False),
    "sign_in_totp.email": Case("POST", "/auth/sign-in-totp", 422, (["body", "email"], "string_too_long"),
                               field="email", template={"password": "x", "totp_code": "123456"}, filler=_email,
                               auth=False),
    "request_password_reset.email": Case("POST", "/auth/request-password-reset", 422,
                                         (["body", "email"], "string_too_long"), field="email", filler=_email,
                                         auth=False),
    "create_invite.email": Case("POST", "/auth/invites", 422, (["body", "email"], "string_too_long"),
                                field="email", template={"role": "agent"}, filler=_email),
    "update_profile.email": Case("PATCH", "/auth/profile", 422, (["body", "email"], "string_too_long"),
                                 field="email", filler=_email),
    # TOTP codes ([0-9]{6} after the schema)
    "verify_totp.code": Case("POST", "/auth/totp/verify", 422, (["body", "code"], "string_too_long"), field="code",
                             filler=_digits),
    "sign_in_totp.totp_code": Case("POST", "/auth/sign-in-totp", 422, (["body", "totp_code"], "string_too_long"),
                                   field="totp_code", template={"totp_token": "t"}, filler=_digits, auth=False),
    # header patterns: Idempotency-Key ([\x21-\x7e]{1,255}) and the API-key credential (vy_…{8}_…{32})
    "create_enquiry.Idempotency-Key": Case("POST", "/enquiries", 422, "invalid_idempotency_key",
                                           header="Idempotency-Key", template={"customer_name": "A"}),
    "create_chat_session.Idempotency-Key": Case("POST", "/chat/sessions", 422, "invalid_idempotency_key",
                                                header="Idempotency-Key"),
    "api_key.Authorization": Case("GET", "/enquiries", 401, "unauthorized", header="Authorization", auth=False),
}


@pytest.fixture(scope="module")
def server(database, redis_available, redis_prefix):
    env = {"VOYAGENT_DB_URL": database.dsn, "VOYAGENT_AUTH_SECRET": TEST_SECRET, "VOYAGENT_WORKERS": "1",
           "VOYAGENT_LOG_LEVEL": "WARNING", "VOYAGENT_REDIS_PREFIX": redis_prefix,
           "VOYAGENT_RATE_LIMIT_USER_PER_MINUTE": "0", "VOYAGENT_RATE_LIMIT_AUTH_IP_PER_MINUTE": "0",
           "VOYAGENT_RATE_LIMIT_AUTH_EMAIL_PER_MINUTE": "0", "VOYAGENT_RATE_LIMIT_SIGNUP_IP_PER_MINUTE": "0",
           **({"VOYAGENT_REDIS_URL": LOCAL_REDIS} if redis_available else {})}
    with ServerProcess(env) as running:
        yield running


async def _attack_while_probing(base_url: str, request: dict[str, Any]) -> tuple[list[tuple[int, Any]], int]:
    """Send ``request`` again and again (one after the other) while another client probes GET /health.

    A probe counts when it was sent after the first adversarial request had been written out and was answered
    before the last adversarial answer arrived. A request that held the worker would block every later event,
    so neither its own answer nor any probe would come; the stream stops once PROBES_WANTED probes counted.
    """
    probes_during = 0
    finished = asyncio.Event()
    first_written = asyncio.Event()
    answers: list[tuple[int, Any]] = []

    async def on_sent(session: Any, context: Any, params: Any) -> None:
        first_written.set()

    tracing = aiohttp.TraceConfig()
    tracing.on_request_chunk_sent.append(on_sent)  # the body (or, without one, the head) is written
    tracing.on_request_headers_sent.append(on_sent)
    timeout = aiohttp.ClientTimeout(total=HANG_GUARD_SECONDS)

    async def attack(session: aiohttp.ClientSession) -> None:
        try:
            for _ in range(MAX_ROUNDS):
                async with session.request(request["method"], base_url + request["path"],
                                           headers=request["headers"], data=request["data"]) as response:
                    answers.append((response.status, await response.json(content_type=None)))
                if probes_during >= PROBES_WANTED:
                    return
        finally:
            finished.set()

    async def probe(session: aiohttp.ClientSession) -> None:
        nonlocal probes_during
        await first_written.wait()
        while not finished.is_set():
            async with session.get(base_url + "/health") as response:
                assert response.status == 200
                await response.read()
            if not finished.is_set():
                probes_during += 1

    async with aiohttp.ClientSession(timeout=timeout, trace_configs=[tracing]) as attacker, \
            aiohttp.ClientSession(timeout=timeout) as prober:
        await asyncio.gather(attack(attacker), probe(prober))
    return answers, probes_during


@pytest.mark.parametrize("name", sorted(CASES))
async def test_adversarial_value_is_answered_while_health_keeps_answering(name, server, make_user, contract):
    operation_id = name.split(".")[0]
    if operation_id in contract.operations and operation_id not in collect_handlers():
        pytest.skip(f"{operation_id} has no handler yet, so its route answers 404 before validation")
    case = CASES[name]
    admin = await make_user("agency_admin")
    answers, probes_during = await _attack_while_probing(server.url, case.request(admin.token))
    assert answers, "no answer to the adversarial request"
    for status, body in answers:
        assert status == case.status, body
        if isinstance(case.expect, str):
            assert body == {"detail": case.expect}
        else:
            loc, type_ = case.expect
            assert [body["detail"][0]["loc"], body["detail"][0]["type"]] == [loc, type_], body
            assert len(json.dumps(body)) < 2000, "the 422 must not echo the megabyte"
    assert probes_during >= PROBES_WANTED, f"/health answered only {probes_during} times during {len(answers)} attacks"


def test_every_pattern_bearing_field_has_a_case(contract):
    """The table above covers every schema ``pattern`` and every pattern-checking rule a request can reach."""
    reached: set[str] = set()
    for operation in contract.operations.values():
        for param in operation.path_params + operation.query_params:
            if "pattern" in json.dumps(param.schema) or param.kind == "integer":
                reached.add(f"{operation.operation_id}.{param.name}")
        if operation.body is not None:
            for prop, schema in (operation.body.schema.get("properties") or {}).items():
                if "pattern" in schema or schema.get("x-voyagent-rule") in ("email", "decimal"):
                    reached.add(f"{operation.operation_id}.{prop}")
    integer_params = {name for name in reached if name.endswith((".limit", ".offset", ".include_zero"))}
    covered = set(CASES)
    # One integer parameter stands for all: they share one coercion (contract.coerce_param).
    assert reached - integer_params <= covered, sorted(reached - integer_params - covered)
    assert covered & integer_params


# --- a 422 never amplifies or leaks (README "Error bodies") -------------------------------------------------

SECRET = "Zx9-secret"  # a value that must not appear anywhere in the answer
UNLIMITED = {"rate_limit_auth_ip_per_minute": 0, "rate_limit_auth_email_per_minute": 0,
             "rate_limit_user_per_minute": 0}


@pytest.fixture
async def api(make_client):
    return await make_client(**UNLIMITED)


async def _items(response) -> list[dict[str, Any]]:
    assert response.status == 422, await response.text()
    return (await response.json())["detail"]


async def test_a_thousand_violations_answer_the_first_50(api, admin):
    unknown = {f"field_{i:04d}": i for i in range(1000)}
    items = await _items(await api.post("/enquiries", json={"customer_name": "A", **unknown}, headers=admin.headers))
    assert [item["loc"] for item in items] == [["body", f"field_{i:04d}"] for i in range(50)]
    scopes = {"name": "k", "scopes": [f"nope-{i}" for i in range(1000)]}
    items = await _items(await api.post("/auth/api-keys", json=scopes, headers=admin.headers))
    assert len(items) == 50 and items[0]["type"] == "too_long"


async def test_quoted_values_and_keys_are_cut_to_100_characters(api, admin):
    body = {"customer_name": "n" * 300, "budget_amount": "7" * 4000 + "x", "k" * 5000: 1}
    items = await _items(await api.post("/enquiries", json=body, headers=admin.headers))
    by_loc = {tuple(item["loc"]): item for item in items}
    assert by_loc[("body", "customer_name")]["input"] == "n" * 100
    assert by_loc[("body", "budget_amount")]["input"] == "7" * 100
    assert ("body", "k" * 100) in by_loc
    response = await api.patch("/tenant-settings", json={"default_currency": "a" * 5000}, headers=admin.headers)
    items = await _items(response)
    assert items[0]["input"] == "a" * 100 and "a" * 101 not in await response.text()


SECRET_CASES = [
    ("/auth/sign-up", {"email": "s@example.com", "full_name": "A", "agency_name": "B", "password": SECRET}),
    ("/auth/sign-up", {"email": "s@example.com", "full_name": "A", "agency_name": "B", "password": SECRET * 20}),
    ("/auth/sign-up", {"email": "s@example.com", "full_name": "A", "agency_name": "B",
                       "password": "Zx-secret-only-letters"}),
    ("/auth/sign-up", {"email": "s@example.com", "full_name": "A", "agency_name": "B", "password": 987654321987}),
    ("/auth/sign-up", {"email": "s@example.com", "full_name": "A", "agency_name": "B", "password": SECRET + "\x00"}),
    ("/auth/accept-invite", {"token": "t", "full_name": "A", "password": SECRET}),
    ("/auth/reset-password", {"token": "t", "new_password": SECRET}),
    ("/auth/sign-in", {"email": "s@example.com", "password": SECRET * 30}),
    ("/auth/sign-in-totp", {"totp_token": "t", "totp_code": SECRET}),
    ("/auth/sign-in-totp", {"email": "s@example.com", "password": SECRET * 30, "totp_code": "123456"}),
    ("/auth/totp/verify", {"code": SECRET}),
    ("/auth/totp/verify", {"code": 98765}),
    ("/auth/totp/disable", {"password": SECRET * 30, "code": "1"}),
]


@pytest.mark.parametrize(("path", "body"), SECRET_CASES)
async def test_secret_fields_are_never_echoed(api, admin, path, body):
    response = await api.post(path, json=body, headers=admin.headers)
    items = await _items(response)
    text = await response.text()
    secrets = [v for k, v in body.items() if k in ("password", "new_password", "code", "totp_code")]
    for secret in secrets:
        assert str(secret).replace("\x00", "") not in text
    secret_items = [item for item in items if item["loc"][-1] in ("password", "new_password", "code", "totp_code")]
    assert secret_items and all("input" not in item for item in secret_items), items


EMAIL_ROUTES = [
    ("POST", "/auth/sign-up", {"password": "Correct-Horse-9-battery", "full_name": "A", "agency_name": "B"}, False),
    ("POST", "/auth/sign-in", {"password": "x"}, False),
    ("POST", "/auth/sign-in-totp", {"password": "x", "totp_code": "123456"}, False),
    ("POST", "/auth/request-password-reset", {}, False),
    ("POST", "/auth/invites", {"role": "agent"}, True),
    ("PATCH", "/auth/profile", {}, True),
]


@pytest.mark.parametrize(("method", "path", "rest", "signed_in"), EMAIL_ROUTES)
@pytest.mark.parametrize("email", ["a@b.co\n", "a@b.co\r\n", "\na@b.co", "a@b.co ", "a@b@c.co"])
async def test_an_email_must_match_as_a_whole_on_every_email_route(api, admin, method, path, rest, signed_in, email):
    headers = admin.headers if signed_in else {}
    items = await _items(await api.request(method, path, json={"email": email, **rest}, headers=headers))
    assert [(item["loc"], item["msg"]) for item in items] == [(["body", "email"], "Value error, invalid_email")]


def test_the_table_names_every_email_route(contract):
    with_rule = {(op.method, op.path) for op in contract.operations.values() if op.body is not None
                 and any(rule == "email" for _, rule, _ in op.body.rules)}
    assert with_rule == {(method, path) for method, path, _, _ in EMAIL_ROUTES}
