"""X-Request-Id: a well-formed client id is kept, anything else replaced; echoed and logged."""

import logging
import os

import pytest

from voyagent.middleware.request_id import accept_request_id


@pytest.mark.parametrize("value", ["abc", "A" * 128, "req-1/2:3~!"])
def test_visible_ascii_ids_up_to_128_chars_are_kept(value):
    assert accept_request_id(value) == value


@pytest.mark.parametrize("value", [None, "", "A" * 129, "has space", "tab\t", "ünïcode"])
def test_other_ids_are_replaced(value):
    generated = accept_request_id(value)
    assert generated != value and len(generated) == 32


def test_generated_ids_never_repeat_within_a_process():
    ids = [accept_request_id(None) for _ in range(10_000)]
    assert len(set(ids)) == len(ids)


def test_a_forked_worker_generates_ids_of_its_own():
    """Workers are forked from one parent: each must draw a new prefix, or two workers would mint the same ids."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave without running pytest's exit handlers
        os.write(write_end, accept_request_id(None).encode())
        os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    child_id = os.read(read_end, 64).decode()
    os.close(read_end)
    parent_id = accept_request_id(None)
    assert status == 0 and len(child_id) == 32
    assert child_id[:16] != parent_id[:16]


async def test_id_is_echoed_on_success_and_on_errors_and_appears_in_log_lines(make_bare_client, caplog):
    client = await make_bare_client()
    with caplog.at_level(logging.INFO, logger="voyagent.access"):
        ok = await client.get("/plain", headers={"X-Request-Id": "client-id-1"})
        missing = await client.get("/nowhere", headers={"X-Request-Id": "bad id"})
    assert ok.headers["X-Request-Id"] == "client-id-1"
    assert len(missing.headers["X-Request-Id"]) == 32 and missing.headers["X-Request-Id"] != "bad id"
    access_lines = [r.getMessage() for r in caplog.records if r.name == "voyagent.access"]
    assert any("route=/plain status=200" in line for line in access_lines)
    assert any("route=unmatched status=404" in line for line in access_lines)
