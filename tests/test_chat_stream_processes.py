"""The SSE turn across real server processes: a replay on one worker follows a turn running on another (shared
Redis), SIGTERM ends a running turn with turn_timeout and final, a bad backend stops start-up, a killed worker's
turn is closed once, and a turn survives Redis losing its keys."""

from __future__ import annotations

import asyncio
import signal
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


def stop_cleanly(servers):
    """Stop each worker; every one must exit 0 (a turn's shutdown path included)."""
    for server in servers:
        code, output = server.stop()
        assert code == 0, output


@pytest.fixture
def two_workers(server_env, tmp_path):
    """Workers a and b sharing PostgreSQL and Redis, stopped cleanly after the test."""
    workers = [ServerProcess(server_env, output=tmp_path / "a.log").start()]
    try:
        workers.append(ServerProcess(server_env, output=tmp_path / "b.log").start())
        yield workers
    finally:
        stop_cleanly(workers)


async def new_session(http, url, user):
    async with http.post(f"{url}/chat/sessions", headers=user.headers) as response:
        assert response.status == 201
        return (await response.json())["session_id"]


async def test_a_replay_on_another_worker_gets_the_missed_frames_then_the_live_rest(two_workers, admin, redis_url,
                                                                                 redis_prefix):
    worker_a, worker_b = two_workers
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


async def replay(http, url, user, session_id, last_event_id):
    """A reconnect with ``Last-Event-ID``: every agent event up to the end of the stream."""
    async with http.post(f"{url}/chat/sessions/{session_id}/messages", json={},
                         headers={**user.headers, "Last-Event-ID": str(last_event_id)}) as response:
        assert response.status == 200
        return [event async for event in events_of(response) if event.event == "agent_event"]


async def first_frame_of_a_turn(http, url, user, session_id, script):
    """Start a turn, read its first frame and leave (the turn runs on)."""
    response = await http.post(f"{url}/chat/sessions/{session_id}/messages", json={"message": script},
                               headers=user.headers)
    assert response.status == 200
    async for event in events_of(response):
        response.close()
        return event


async def test_a_turn_whose_worker_was_killed_is_closed_once_for_every_follower(server_env, admin, tmp_path):
    """The killed worker's lease expires; each of two followers on two other workers asks, one closes the turn
    (error internal_error + final, its turn id), and both relay the same two frames; the session is free again."""
    doomed = ServerProcess(server_env, output=tmp_path / "doomed.log").start()
    followers = [ServerProcess(server_env, output=tmp_path / f"f{n}.log").start() for n in range(2)]
    try:
        async with aiohttp.ClientSession() as http:
            session_id = await new_session(http, doomed.url, admin)
            first = await first_frame_of_a_turn(http, doomed.url, admin, session_id, "say one; hang")
            doomed.stop(signal.SIGKILL)
            relayed = await asyncio.gather(*(replay(http, server.url, admin, session_id, 1) for server in followers))
            turn_id = first.json["turn_id"]
            for events in relayed:
                assert [(e.id, e.kind, e.json["turn_id"]) for e in events] == [("2", "error", turn_id),
                                                                              ("3", "final", turn_id)]
                assert events[0].json["error_message"] == "internal_error"
            history = await replay(http, followers[0].url, admin, session_id, 0)
            assert [e.id for e in history] == ["1", "2", "3"] and [e.kind for e in history].count("final") == 1
            async with http.post(f"{followers[1].url}/chat/sessions/{session_id}/messages",
                                 json={"message": "say again"}, headers=admin.headers) as response:
                assert response.status == 200
                assert [e.id for e in [e async for e in events_of(response)]] == ["4", "5"]
    finally:
        stop_cleanly(followers)
    closing = [line for server in followers for line in server.read_output().splitlines() if "died holding" in line]
    assert len(closing) == 1, closing


async def test_a_turn_reasserts_its_frames_after_redis_lost_them_and_a_reconnect_follows_it(two_workers, admin,
                                                                                        redis_url, redis_prefix):
    """The effect of a Redis restart without persistence (every key of the session and the epoch mark deleted)
    while a turn waits: the turn writes its frame back with its id and keeps its session; a reconnect on another
    worker follows it, a second turn is refused, and the ids go on 1, 2, 3."""
    worker_a, worker_b = two_workers
    redis = aioredis.from_url(redis_url)
    try:
        async with aiohttp.ClientSession() as http:
            session_id = await new_session(http, worker_a.url, admin)
            first = await first_frame_of_a_turn(http, worker_a.url, admin, session_id,
                                                "say one; wait after-restart; say two")
            assert first.id == "1"
            await redis.delete(*(f"{redis_prefix}sse:{session_id}:{suffix}" for suffix in ("seq", "buf", "live")),
                               f"{redis_prefix}turnlock:{session_id}", f"{redis_prefix}sse:epoch")
            async with http.post(f"{worker_b.url}/chat/sessions/{session_id}/messages", json={},
                                 headers={**admin.headers, "Last-Event-ID": "1"}) as following:
                assert following.status == 200
                async with http.post(f"{worker_b.url}/chat/sessions/{session_id}/messages",
                                     json={"message": "say intruder"}, headers=admin.headers) as second:
                    assert (second.status, (await second.json())["detail"]) == (409, "turn_in_progress")
                await redis.rpush(f"{redis_prefix}scripted:after-restart", "go")
                rest = [e async for e in events_of(following) if e.event == "agent_event"]
            assert [(e.id, e.kind) for e in rest] == [("2", "text_delta"), ("3", "final")]
            assert {e.json["turn_id"] for e in rest} == {first.json["turn_id"]}
    finally:
        await redis.aclose()
