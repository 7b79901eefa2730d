"""X-Request-Id: a well-formed client id is kept, anything else replaced; echoed and logged."""

import logging

import pytest

from voyagent.middleware.request_id import accept_request_id


@pytest.mark.parametrize("value", ["abc", "A" * 128, "req-1/2:3~!"])
def test_visible_ascii_ids_up_to_128_chars_are_kept(value):
    assert accept_request_id(value) == value


@pytest.mark.parametrize("value", [None, "", "A" * 129, "has space", "tab\t", "ünïcode"])
def test_other_ids_are_replaced(value):
    generated = accept_request_id(value)
    assert generated != value and len(generated) == 32


async def test_id_is_echoed_on_success_and_on_errors_and_appears_in_log_lines(make_bare_client, caplog):
    client = await make_bare_client("observe", "errors", "gate")
    with caplog.at_level(logging.INFO, logger="voyagent.access"):
        ok = await client.get("/plain", headers={"X-Request-Id": "client-id-1"})
        missing = await client.get("/nowhere", headers={"X-Request-Id": "bad id"})
    assert ok.headers["X-Request-Id"] == "client-id-1"
    assert len(missing.headers["X-Request-Id"]) == 32 and missing.headers["X-Request-Id"] != "bad id"
    access_lines = [r.getMessage() for r in caplog.records if r.name == "voyagent.access"]
    assert any("route=/plain status=200" in line for line in access_lines)
    assert any("route=unmatched status=404" in line for line in access_lines)
