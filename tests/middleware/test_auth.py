"""Authentication of access JWTs: every invalid token is the same ``401 unauthorized``; the jti denylist.

The gate runs on a bare app (tests/middleware/bare_app.py) with the synthetic ``POST /things/{thing_id}``
operation, which echoes the principal's user id; the tests that need the sign-out handler use the whole app.
"""

import logging
import time
import uuid
import warnings

import jwt
import pytest
import redis.asyncio as aioredis

from tests.clock import FakeClock
from tests.conftest import TEST_SECRET
from tests.handlers.auth_flows import fresh_prefix
from tests.middleware.bare_app import bare_app
from tests.middleware.echo_route import add_echo_route
from voyagent.keys import ACCESS_TOKENS, TOKEN_STORE
from voyagent.services.token_store import RedisTokenStore
from voyagent.services.tokens import VerifiedAccessTokens, decode_access_token

UNAUTHORIZED = {"detail": "unauthorized"}
CLOSED_REDIS = "redis://127.0.0.1:1"


@pytest.fixture
async def gate(make_bare_client):
    """A client of the gate (and the errors middleware that renders its refusals), nothing else."""
    return await make_bare_client(routes=add_echo_route)


def _claims(user, **changes):
    now = int(time.time())
    claims = {"sub": str(user.id), "tid": str(user.tenant_id), "role": user.role, "email": user.email, "iat": now,
              "exp": now + 600, "jti": uuid.uuid4().hex, "iss": "voyagent", "aud": "voyagent-api"}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _token(claims, secret=TEST_SECRET, algorithm="HS256"):
    with warnings.catch_warnings():  # HS512 with the (HS256-sized) test secret
        warnings.simplefilter("ignore")
        return jwt.encode(claims, secret, algorithm=algorithm)


async def _call(client, authorization=None):
    """The protected synthetic operation, with ``authorization`` as the header (none when None)."""
    headers = {} if authorization is None else {"Authorization": authorization}
    return await client.post("/things/1", json={"name": "x"}, headers=headers)


async def _me(client, credential, scheme="Bearer"):
    return await _call(client, f"{scheme} {credential}")


async def test_a_well_formed_token_authenticates(gate, caller):
    response = await _me(gate, _token(_claims(caller)))
    assert response.status == 201 and (await response.json())["user_id"] == str(caller.id)


@pytest.mark.parametrize("scheme_and_spacing", ["bearer {t}", "BEARER {t}", "Bearer   {t}  ", "  Bearer {t}"])
async def test_the_scheme_is_case_insensitive_and_whitespace_is_trimmed(gate, caller, scheme_and_spacing):
    response = await _call(gate, scheme_and_spacing.format(t=caller.token))
    assert response.status == 201


def _bad_tokens(user):
    now = int(time.time())
    unsigned = jwt.encode(_claims(user), None, algorithm="none")
    return {
        "expired": _token(_claims(user, iat=now - 700, exp=now - 1)),
        "expiring now (no leeway)": _token(_claims(user, iat=now - 700, exp=now)),
        "other secret": _token(_claims(user), secret="another-secret-" + "y" * 40),
        "alg none": unsigned,
        "alg none, no signature dot": unsigned.rstrip("."),
        "HS512": _token(_claims(user), algorithm="HS512"),
        "TOTP audience": _token(_claims(user, aud="voyagent-totp")),
        "audience list": _token(_claims(user, aud=["voyagent-api", "other"])),
        "wrong issuer": _token(_claims(user, iss="someone-else")),
        "sub not a uuid": _token(_claims(user, sub="42")),
        "tid not a uuid": _token(_claims(user, tid="tenant")),
        "sub an integer": _token(_claims(user, sub=42)),
        "iat a string": _token(_claims(user, iat="yesterday")),
        **{f"no {claim}": _token(_claims(user, **{claim: None}))
           for claim in ("sub", "tid", "iat", "exp", "jti", "iss", "aud", "role")},
        "jti not a string": _token(_claims(user, jti=12345)),
        "tampered payload": _token(_claims(user))[:-4] + "AAAA",
        "not a jwt": "definitely-not-a-jwt",
        "three dots": "a.b.c",
        "16 KiB": "x" * 16_000,
    }


async def test_every_invalid_token_is_the_same_401(gate, caller):
    for name, token in _bad_tokens(caller).items():
        response = await _me(gate, token)
        assert response.status == 401, name
        assert await response.json() == UNAUTHORIZED, name
        assert response.headers["WWW-Authenticate"] == "Bearer", name


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer    ", "Basic dXNlcjpwYXNz", "Token abc"])
async def test_missing_or_non_bearer_credentials_are_401(gate, header):
    response = await _call(gate, header)
    assert response.status == 401 and await response.json() == UNAUTHORIZED
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_the_decoder_accepts_only_its_own_tokens(settings, caller):
    claims = decode_access_token(settings, _token(_claims(caller)))
    assert claims is not None and claims["sub"] == str(caller.id)
    for name, token in _bad_tokens(caller).items():
        assert decode_access_token(settings, token) is None, name


async def test_tokens_never_reach_the_log(client, make_user, caplog):
    user = await make_user()
    caplog.set_level(logging.DEBUG)
    bad = _token(_claims(user), secret="another-secret-" + "z" * 40)
    await client.get("/auth/me", headers={"Authorization": f"Bearer {bad}"})
    await client.get("/auth/me", headers=user.headers)
    await client.post("/auth/sign-out", headers=user.headers)
    text = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert bad not in text and user.token not in text


async def test_a_denied_jti_is_401(gate, caller):
    claims = jwt.decode(caller.token, TEST_SECRET, algorithms=["HS256"], audience="voyagent-api")
    assert (await _me(gate, caller.token)).status == 201
    assert await gate.app[TOKEN_STORE].revoke_jti(claims["jti"], claims["exp"]) is True  # what sign-out does
    response = await _me(gate, caller.token)
    assert response.status == 401 and await response.json() == UNAUTHORIZED


@pytest.mark.redis
async def test_with_redis_the_denylist_key_expires_with_the_token(make_client, make_user, redis_url, settings):
    prefix = fresh_prefix(settings)
    client = await make_client(redis_url=redis_url, redis_prefix=prefix)
    user = await make_user()
    claims = jwt.decode(user.token, TEST_SECRET, algorithms=["HS256"], audience="voyagent-api")
    await client.post("/auth/sign-out", headers=user.headers)
    redis = aioredis.from_url(redis_url)
    try:
        expires = await redis.expiretime(f"{prefix}revoked_jti:{claims['jti']}")
    finally:
        await redis.aclose()
    assert expires == claims["exp"]


async def test_the_denylist_fails_open_when_redis_is_unreachable(settings, aiohttp_client, caller, caplog):
    app = bare_app(settings)
    add_echo_route(app)
    unreachable = aioredis.from_url(CLOSED_REDIS)
    app[TOKEN_STORE] = RedisTokenStore(unreachable, settings.redis_prefix)
    client = await aiohttp_client(app)
    try:
        with caplog.at_level(logging.WARNING, logger="voyagent.token_store"):
            response = await _me(client, caller.token)
    finally:
        await unreachable.aclose()
    assert response.status == 201
    assert any("fail open" in r.getMessage() for r in caplog.records)


async def test_a_remembered_token_still_expires_on_time(gate, caller):
    clock = gate.app[ACCESS_TOKENS].clock = FakeClock()
    now = int(time.time())
    token = _token(_claims(caller, iat=now, exp=now + 600))
    assert (await _me(gate, token)).status == 201  # verified once, then remembered
    clock.set(now + 599.999)
    assert (await _me(gate, token)).status == 201  # from the memo
    clock.set(now + 600)  # exp reached: no leeway
    response = await _me(gate, token)
    assert response.status == 401 and await response.json() == UNAUTHORIZED


async def test_the_memo_of_verified_tokens_is_bounded_and_never_holds_failures(settings, caller):
    memo = VerifiedAccessTokens(settings, size=2)
    tokens = [_token(_claims(caller)) for _ in range(3)]
    for token in tokens:
        assert memo.decode(token)["sub"] == str(caller.id)
    assert list(memo._claims) == tokens[1:]  # the oldest went first
    assert memo.decode(_token(_claims(caller), secret="another-secret-" + "q" * 40)) is None
    assert memo.decode("junk") is None
    assert len(memo._claims) == 2
