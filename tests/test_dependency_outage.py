"""A Redis outage under traffic is logged as one state change plus summaries (voyagent/degradation.py).

The server gets a private ``redis-server`` of its own, which the test stops and starts again; requests go
on meanwhile (credential buckets fail open). Before this, every request of an outage logged a traceback.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

from tests.conftest import TEST_SECRET
from tests.private_redis import private_redis  # noqa: F401 (a fixture)
from tests.server_process import ServerProcess

REQUESTS_DURING_OUTAGE = 300


def _sign_in_with_empty_body(url: str) -> int:
    """A credential route: it takes a token from the IP bucket in Redis before answering 422."""
    request = urllib.request.Request(f"{url}/auth/sign-in", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _redis_health(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{url}/health/redis", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_redis_outage_logs_one_state_change_and_summaries_not_a_traceback_per_request(database, private_redis,
                                                                                       tmp_path):
    env = {"VOYAGENT_DB_URL": database.dsn, "VOYAGENT_AUTH_SECRET": TEST_SECRET,
           "VOYAGENT_REDIS_URL": private_redis.url, "VOYAGENT_REDIS_PREFIX": "outage-test:",
           "VOYAGENT_RATE_LIMIT_AUTH_IP_PER_MINUTE": "100000"}
    server = ServerProcess(env, output=tmp_path / "server.log").start()
    try:
        assert _sign_in_with_empty_body(server.url) == 422
        private_redis.stop()
        for _ in range(REQUESTS_DURING_OUTAGE):  # the bucket fails open: every request still gets its answer
            assert _sign_in_with_empty_body(server.url) == 422
        assert _redis_health(server.url) == (503, {"detail": "redis_unreachable"})
        summary = server.wait_for_output(r"WARNING voyagent\.dependency .*redis still unavailable after \d+ s: "
                                         r"(\d+) failed use\(s\) in the last")[0]
        assert int(summary.group(1)) >= 1
        private_redis.start()
        deadline = time.monotonic() + 60
        while "redis available again" not in server.read_output():  # the next request that reaches Redis
            assert time.monotonic() < deadline, "the server never noticed Redis was back"
            assert _sign_in_with_empty_body(server.url) == 422
        assert _redis_health(server.url) == (200, {"status": "ok", "ping": True})
    finally:
        code, output = server.stop()
    assert code == 0
    dependency_lines = [line for line in output.splitlines() if " voyagent.dependency " in line]
    assert sum(" redis unavailable: " in line for line in dependency_lines) == 1
    recovered = [line for line in dependency_lines if "redis available again" in line]
    assert len(recovered) == 1
    failed_uses = int(re.search(r"\((\d+) failed use\(s\) during the outage\)", recovered[0]).group(1))
    assert failed_uses >= REQUESTS_DURING_OUTAGE
    assert "Traceback" not in output
    # A handful of lines for hundreds of failed uses, instead of one traceback each.
    assert len(dependency_lines) <= 2 + 10 and len(dependency_lines) < REQUESTS_DURING_OUTAGE // 10
