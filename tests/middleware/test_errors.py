"""Errors middleware: contract bodies for routing errors, bad input and real bugs; never a bare 500."""

import dataclasses
import logging

import pytest
from aiohttp import web

from tests.middleware.echo_route import add_echo_route
from voyagent.app import create_app
from voyagent.keys import DATABASE, DB_STATE, SETTINGS
from voyagent.middleware import add_route


async def test_unknown_route_and_trailing_slash_are_404_not_found(make_bare_client):
    client = await make_bare_client()
    for path in ("/no-such-route", "/plain/", "/PLAIN"):
        response = await client.get(path)
        assert response.status == 404
        assert await response.json() == {"detail": "Not Found"}


async def test_wrong_method_is_405_with_allow(make_bare_client):
    client = await make_bare_client()
    response = await client.delete("/plain")
    assert response.status == 405
    assert await response.json() == {"detail": "Method Not Allowed"}
    assert response.headers["Allow"] == "GET"


@pytest.mark.parametrize("error", [RuntimeError("database password is hunter2"),
                                   # an OSError of our own while the client is still connected: a bug, not an outage
                                   ConnectionResetError("database password is hunter2")])
async def test_a_bug_is_500_internal_error_logged_with_the_request_id(make_app, aiohttp_client, caplog, error):
    async def broken(request: web.Request) -> web.Response:
        raise error

    app = make_app()
    add_route(app, "GET", "/boom", broken)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR, logger="voyagent.errors"):
        response = await client.get("/boom", headers={"X-Request-Id": "trace-me-42"})
    assert response.status == 500
    assert await response.json() == {"detail": "internal_error"}
    assert response.headers["Content-Type"].startswith("application/json")
    assert "hunter2" not in await response.text()
    assert any(r.exc_info for r in caplog.records)
    assert not app[DB_STATE].down


async def test_database_outage_is_503_db_unavailable_logged_once_without_traceback(make_app, aiohttp_client,
                                                                                     caplog):
    async def needs_db(request: web.Request) -> web.Response:
        async with request.app[DATABASE].connection() as conn:
            return web.json_response({"one": await conn.fetchval("SELECT 1")})

    settings = dataclasses.replace(make_app()[SETTINGS], db_pool_min=0)
    app = create_app(settings, dsn="postgresql://nobody@127.0.0.1:1/none")  # nothing listens on port 1
    add_route(app, "GET", "/needs-db", needs_db)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.INFO):
        for _ in range(20):
            response = await client.get("/needs-db")
            assert response.status == 503
            assert await response.json() == {"detail": "db_unavailable"}
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage().split(":")[0] for r in warnings] == ["postgresql unavailable"]
    assert not any(r.exc_info for r in warnings)
    assert app[DB_STATE].down


async def test_malformed_json_is_422_json_invalid(make_bare_client, caller):
    client = await make_bare_client(routes=add_echo_route)
    for raw in (b"{", b"{'a': 1}", b"\xff\xfe", b"[1,]", b"NaN", b'{"a": Infinity}'):
        response = await client.post("/things/1", data=raw, headers={**caller.headers,
                                                                     "Content-Type": "application/json"})
        assert response.status == 422, raw
        assert (await response.json())["detail"] == [{"loc": ["body"], "msg": "JSON decode error",
                                                      "type": "json_invalid"}]


async def test_nesting_deeper_than_64_levels_is_json_invalid(make_bare_client, caller):
    client = await make_bare_client(routes=add_echo_route)
    deep = "[" * 65 + "]" * 65
    response = await client.post("/things/1", data=deep, headers={**caller.headers, "Content-Type": "application/json"})
    assert response.status == 422
    assert (await response.json())["detail"][0]["type"] == "json_invalid"
    very_deep = "[" * 100_000 + "]" * 100_000
    response = await client.post("/things/1", data=very_deep,
                                 headers={**caller.headers, "Content-Type": "application/json"})
    assert response.status == 422


async def test_wrong_content_type_counts_as_no_body(make_bare_client, caller):
    client = await make_bare_client(routes=add_echo_route)
    response = await client.post("/things/1", data='{"name": "x"}',
                                 headers={**caller.headers, "Content-Type": "text/plain"})
    assert response.status == 422
    assert (await response.json())["detail"] == [{"loc": ["body"], "msg": "Field required", "type": "missing"}]


async def test_nul_characters_are_refused_in_body_query_and_path(make_bare_client, caller):
    client = await make_bare_client(routes=add_echo_route)
    response = await client.post("/things/a%00b", params={"limit": "1"}, json={"name": "a\u0000b"},
                                 headers=caller.headers)
    assert response.status == 422
    locs = {tuple(item["loc"]) for item in (await response.json())["detail"]}
    assert locs == {("path", "thing_id"), ("body", "name")}
    response = await client.post("/things/1?kind=x%00", json={"name": "ok"}, headers=caller.headers)
    assert response.status == 422
    assert (await response.json())["detail"][0]["loc"] == ["query", "kind", 0]


async def test_valid_request_reaches_the_handler_with_coerced_values(make_bare_client, caller):
    client = await make_bare_client(routes=add_echo_route)
    response = await client.post("/things/1?limit=3&flag=on&kind=a&kind=b&unknown=1&limit=4",
                                 json={"name": " Asha ", "amount": "10.005"}, headers=caller.headers)
    assert response.status == 201
    payload = await response.json()
    assert payload["query"] == {"limit": 4, "flag": True, "day": None, "kind": ["a", "b"]}
    assert payload["body"] == {"name": "Asha", "amount": "10.01"}
    assert payload["user_id"] == str(caller.id)


async def test_a_16_kib_authorization_header_is_judged_not_refused(make_bare_client):
    client = await make_bare_client(routes=add_echo_route)
    response = await client.post("/things/1", json={"name": "x"},
                                 headers={"Authorization": "Bearer " + "a" * (16 * 1024 - 7)})
    assert response.status == 401
    assert await response.json() == {"detail": "unauthorized"}
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_undecodable_query_bytes_are_a_422_not_a_crash(make_bare_client, caller):
    client = await make_bare_client(routes=add_echo_route)
    response = await client.post("/things/%ff%fe?limit=%ff&day=%c3%28", json={"name": "x"}, headers=caller.headers)
    assert response.status == 422
    types = {tuple(item["loc"]): item["type"] for item in (await response.json())["detail"]}
    assert types[("query", "limit")] == "int_parsing"
    assert types[("query", "day")] == "date_from_datetime_parsing"
