"""The SSE turn across real server processes: a replay on one worker follows a turn running on another (shared
Redis), SIGTERM ends a running turn with turn_timeout and final, and a bad backend stops start-up."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.conftest import TEST_SECRET
from tests.server_process import ServerProcess
from tests.sse_client import SseParser, events_of

SCRIPTED = "tests.agent.scripted_backend:create"


@pytest.fixture
def server_env(database, redis_url, redis_prefix):
    return {"VOYAGENT_DB_URL": database.dsn, "VOYAGENT_AUTH_SECRET": TEST_SECRET, "VOYAGENT_REDIS_URL": redis_url,
            "VOYAGENT_REDIS_PREFIX": redis_prefix, "VOYAGENT_AGENT_BACKEND": SCRIPTED,
            "VOYAGENT_SSE_HEARTBEAT_SECONDS": "1", "VOYAGENT_LOG_LEVEL": "WARNING"}


async def new_session(http, url, user):
    async with http.post(f"{url}/chat/sessions", headers=user.headers) as response:
        assert response.status == 201
        return (await response.json())["session_id"]


async def test_a_replay_on_another_worker_gets_the_missed_frames_then_the_live_rest(server_env, admin, redis_url,
                                                                                 redis_prefix, tmp_path):
    worker_a = ServerProcess(server_env, output=tmp_path / "a.log").start()
    worker_b = ServerProcess(server_env, output=tmp_path / "b.log").start()
    redis = aioredis.from_url(redis_url)
    try:
        async with aiohttp.ClientSession() as http:
            session_id = await new_session(http, worker_a.url, admin)
            script = "say one; say two; say three; wait cross-worker; many 4"
            raw_a = bytearray()
            parser = SseParser()
            seen_on_a = []
            response = await http.post(f"{worker_a.url}/chat/sessions/{session_id}/messages",
                                       json={"message": script}, headers=admin.headers)
            assert response.status == 200
            while len(seen_on_a) < 3:
                chunk = await response.content.readany()
                raw_a.extend(chunk)
                seen_on_a.extend(parser.feed(chunk))
            response.close()  # the client drops after frame 3 … and reconnects to the other worker
            assert [e.id for e in seen_on_a] == ["1", "2", "3"]

            raw_b = bytearray()
            seen_on_b = []
            async with http.post(f"{worker_b.url}/chat/sessions/{session_id}/messages", json={},
                                 headers={**admin.headers, "Last-Event-ID": "1"}) as replay:
                assert replay.status == 200
                async for event in events_of(replay, raw_b):
                    seen_on_b.append(event)
                    if [e.id for e in seen_on_b] == ["2", "3"]:  # the missed frames came first; now go on
                        await redis.rpush(f"{redis_prefix}scripted:cross-worker", "go")
            agent = [e for e in seen_on_b if e.event == "agent_event"]
            assert [e.id for e in agent] == [str(n) for n in range(2, 9)]  # 2–3 replayed, 4–8 live, once each
            assert [e.kind for e in agent] == ["text_delta"] * 6 + ["final"]
            assert raw_b.startswith(bytes(raw_a[raw_a.index(b"id: 2\n"):]))  # byte-identical to the first sending
            assert len({e.json["turn_id"] for e in agent}) == 1
    finally:
        await redis.aclose()
        for server in (worker_a, worker_b):
            code, output = server.stop()
            assert code == 0, output


async def test_sigterm_ends_a_running_turn_with_turn_timeout_and_final_and_exits_0(server_env, admin, tmp_path):
    server = ServerProcess(server_env, output=tmp_path / "server.log").start()
    async with aiohttp.ClientSession() as http:
        session_id = await new_session(http, server.url, admin)
        response = await http.post(f"{server.url}/chat/sessions/{session_id}/messages",
                                   json={"message": "say working; hang"}, headers=admin.headers)
        assert response.status == 200
        seen = []
        stopping = None
        async for event in events_of(response):
            seen.append(event)
            if len(seen) == 1:  # the turn runs: stop the server under it
                stopping = asyncio.get_running_loop().run_in_executor(None, server.stop)
        code, output = await stopping
    kinds = [e.kind for e in seen if e.event == "agent_event"]
    assert kinds == ["text_delta", "error", "final"], output
    assert [e.json["error_message"] for e in seen if e.event == "agent_event"][1] == "turn_timeout"
    assert code == 0, output


def test_a_custom_backend_that_cannot_be_imported_stops_serve_with_one_line(database):
    result = subprocess.run([sys.executable, "-m", "voyagent", "serve"], capture_output=True, text=True, timeout=120,
                            env={"VOYAGENT_DB_URL": database.dsn, "VOYAGENT_AUTH_SECRET": TEST_SECRET,
                                 "VOYAGENT_AGENT_BACKEND": "tests.agent.no_such_backend:create",
                                 "PATH": "/usr/bin:/bin"})
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "VOYAGENT_AGENT_BACKEND" in line]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
