"""Authentication of access JWTs: every invalid token is the same ``401 unauthorized``; the jti denylist."""

import asyncio
import logging
import time
import uuid
import warnings

import jwt
import pytest
import redis.asyncio as aioredis

from tests.conftest import TEST_SECRET
from tests.handlers.auth_flows import fresh_prefix
from voyagent.services.tokens import VerifiedAccessTokens, decode_access_token

UNAUTHORIZED = {"detail": "unauthorized"}


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


async def _me(client, credential, scheme="Bearer"):
    return await client.get("/auth/me", headers={"Authorization": f"{scheme} {credential}"})


async def test_a_well_formed_token_authenticates(client, make_user):
    user = await make_user()
    response = await _me(client, _token(_claims(user)))
    assert response.status == 200 and (await response.json())["id"] == str(user.id)


@pytest.mark.parametrize("scheme_and_spacing", ["bearer {t}", "BEARER {t}", "Bearer   {t}  ", "  Bearer {t}"])
async def test_the_scheme_is_case_insensitive_and_whitespace_is_trimmed(client, make_user, scheme_and_spacing):
    user = await make_user()
    header = scheme_and_spacing.format(t=user.token)
    response = await client.get("/auth/me", headers={"Authorization": header})
    assert response.status == 200


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


async def test_every_invalid_token_is_the_same_401(client, make_user):
    user = await make_user()
    for name, token in _bad_tokens(user).items():
        response = await _me(client, token)
        assert response.status == 401, name
        assert await response.json() == UNAUTHORIZED, name
        assert response.headers["WWW-Authenticate"] == "Bearer", name


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer    ", "Basic dXNlcjpwYXNz", "Token abc"])
async def test_missing_or_non_bearer_credentials_are_401(client, header):
    headers = {} if header is None else {"Authorization": header}
    response = await client.get("/auth/me", headers=headers)
    assert response.status == 401 and await response.json() == UNAUTHORIZED
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_the_decoder_accepts_only_its_own_tokens(settings, make_user):
    user = await make_user()
    claims = decode_access_token(settings, _token(_claims(user)))
    assert claims is not None and claims["sub"] == str(user.id)
    for name, token in _bad_tokens(user).items():
        assert decode_access_token(settings, token) is None, name


async def test_tokens_never_reach_the_log(client, make_user, caplog):
    user = await make_user()
    caplog.set_level(logging.DEBUG)
    bad = _token(_claims(user), secret="another-secret-" + "z" * 40)
    await _me(client, bad)
    await _me(client, user.token)
    await client.post("/auth/sign-out", headers=user.headers)
    text = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert bad not in text and user.token not in text


async def test_a_denied_jti_is_401_until_the_token_would_expire(client, make_user):
    user = await make_user()
    assert (await client.post("/auth/sign-out", headers=user.headers)).status == 204
    response = await client.get("/auth/me", headers=user.headers)
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
        ttl = await redis.ttl(f"{prefix}revoked_jti:{claims['jti']}")
    finally:
        await redis.aclose()
    assert claims["exp"] - time.time() - 5 < ttl <= claims["exp"] - time.time() + 1


async def test_the_denylist_fails_open_when_redis_is_unreachable(make_client, make_user, caplog):
    client = await make_client(redis_url="redis://127.0.0.1:1")
    user = await make_user()
    with caplog.at_level(logging.WARNING, logger="voyagent.token_store"):
        response = await client.get("/auth/me", headers=user.headers)
    assert response.status == 200
    assert any("fail open" in r.getMessage() for r in caplog.records)


async def test_a_remembered_token_still_expires_on_time(client, make_user):
    user = await make_user()
    now = int(time.time())
    token = _token(_claims(user, iat=now, exp=now + 2))
    assert (await _me(client, token)).status == 200  # verified once, then remembered
    assert (await _me(client, token)).status == 200
    await asyncio.sleep(now + 2 - time.time() + 0.05)
    response = await _me(client, token)
    assert response.status == 401 and await response.json() == UNAUTHORIZED


async def test_the_memo_of_verified_tokens_is_bounded_and_never_holds_failures(settings, make_user):
    user = await make_user()
    memo = VerifiedAccessTokens(settings, size=2)
    tokens = [_token(_claims(user)) for _ in range(3)]
    for token in tokens:
        assert memo.decode(token)["sub"] == str(user.id)
    assert list(memo._claims) == tokens[1:]  # the oldest went first
    assert memo.decode(_token(_claims(user), secret="another-secret-" + "q" * 40)) is None
    assert memo.decode("junk") is None
    assert len(memo._claims) == 2
