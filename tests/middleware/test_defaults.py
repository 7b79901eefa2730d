"""The settings an empty environment gives, seen where a client meets them (operations.md, Configuration):
the body limit, the per-user and sign-up buckets, and the client IP taken from the TCP peer."""

import dataclasses
import logging

import pytest
from aiohttp import web

from tests.middleware.bare_app import bare_app
from tests.middleware.echo_route import add_echo_route, echo
from voyagent.config import load_settings
from voyagent.middleware import add_route

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def defaults(settings):
    """``load_settings({})`` with only this run's secret and Redis prefix put in."""
    return dataclasses.replace(load_settings({}), auth_secret=settings.auth_secret,
                               redis_prefix=settings.redis_prefix)


def add_sign_up_route(app: web.Application, contract) -> None:
    """The contract's sign-up operation (its bucket, its body schema), answered by the echo handler."""
    add_route(app, "POST", "/auth/sign-up", echo, operation=contract.operations["sign_up"])


async def test_the_default_body_limit_is_one_mebibyte(defaults, aiohttp_client, caller):
    app = bare_app(defaults)
    add_echo_route(app)
    client = await aiohttp_client(app)
    body = b'{"name": "x"}'
    at_limit = body + b" " * (1_048_576 - len(body))
    assert (await client.post("/things/1", data=at_limit, headers={**caller.headers, **JSON})).status == 201
    over = await client.post("/things/1", data=at_limit + b" ", headers={**caller.headers, **JSON})
    assert over.status == 413 and await over.json() == {"detail": "payload_too_large"}


async def test_the_default_user_bucket_is_600_a_minute(defaults, aiohttp_client, caller):
    app = bare_app(defaults)
    add_echo_route(app)
    client = await aiohttp_client(app)
    response = await client.post("/things/1", json={"name": "x"}, headers=caller.headers)
    assert response.status == 201
    assert response.headers["RateLimit-Policy"] == '"user";q=600;w=60'


async def test_the_default_sign_up_bucket_is_10_a_minute_per_ip(defaults, aiohttp_client, contract):
    app = bare_app(defaults)
    add_sign_up_route(app, contract)
    client = await aiohttp_client(app)
    response = await client.post("/auth/sign-up", json={"email": "ada@example.com", "password": "Sturdy-passw0rd-42",
                                                        "full_name": "Ada", "agency_name": "Ada Travel"})
    assert response.status == 201
    assert response.headers["RateLimit-Policy"] == '"signup_ip";q=10;w=60'


async def test_by_default_the_client_ip_is_the_tcp_peer(defaults, aiohttp_client, caplog):
    client = await aiohttp_client(bare_app(defaults))
    with caplog.at_level(logging.INFO, logger="voyagent.access"):
        response = await client.get("/plain", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status == 200
    [line] = [r.getMessage() for r in caplog.records if r.name == "voyagent.access"]
    assert "client_ip=127.0.0.1 " in line  # X-Forwarded-For is trusted only with VOYAGENT_TRUSTED_PROXY_HOPS
