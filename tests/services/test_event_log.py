"""The session event log (chat-and-agent.md §3.2–3.3): numbering, the cap, the live marker, snapshots and the
drop, in real Redis and in process, with the same expectations."""

import uuid

import pytest
import redis.asyncio as aioredis

from voyagent.errors import ApiError
from voyagent.services.event_log import (
    LocalEventLog,
    RedisEventLog,
    Snapshot,
    parse_last_event_id,
    replay_valid,
    session_keys,
)

CAP = 3


@pytest.fixture(params=["in-process", "redis"])
def event_log(request):
    if request.param == "in-process":
        return LocalEventLog(CAP)
    client = request.getfixturevalue("redis_client")
    return RedisEventLog(client, request.getfixturevalue("prefix"), CAP, 120)


async def append(log, session, n, turn="t-000000000001", floor=0):
    return [await log.append(session, b'{"n":%d}' % i, turn=turn, final=False, floor=floor) for i in range(n)]


async def test_ids_count_from_the_floor_and_the_buffer_keeps_the_last_cap_frames(event_log):
    session = uuid.uuid4()
    frames = await append(event_log, session, 2, floor=40)  # sessions.last_event_id = 40 (e.g. after a restart)
    assert [f.id for f in frames] == [41, 42]
    frames += await append(event_log, session, 3, floor=40)
    assert [f.id for f in frames] == [41, 42, 43, 44, 45]
    snapshot = await event_log.snapshot(session, after=42)
    assert (snapshot.last_id, snapshot.oldest, snapshot.live) == (45, 43, None)
    assert [(f.id, f.data) for f in snapshot.frames] == [(43, b'{"n":0}'), (44, b'{"n":1}'), (45, b'{"n":2}')]
    assert (await event_log.snapshot(session, after=None)).frames == []
    assert (await event_log.snapshot(uuid.uuid4(), after=0)) == Snapshot(0, None, None, [])


async def test_the_live_marker_goes_with_the_final_of_its_own_turn_only(event_log):
    session = uuid.uuid4()
    await event_log.begin(session, "t-aaaaaaaaaaaa")
    await event_log.append(session, b"{}", turn="t-bbbbbbbbbbbb", final=True, floor=0)  # an older turn's final
    assert (await event_log.snapshot(session, after=0)).live == "t-aaaaaaaaaaaa"
    final = await event_log.append(session, b"{}", turn="t-aaaaaaaaaaaa", final=True, floor=0)
    snapshot = await event_log.snapshot(session, after=1)
    assert snapshot.live is None and snapshot.frames == [final] and final.final and final.turn == "t-aaaaaaaaaaaa"


async def test_a_lost_counter_never_reissues_an_id_still_in_the_stream(redis_client, prefix):
    log = RedisEventLog(redis_client, prefix, CAP, 120)
    session = uuid.uuid4()
    await append(log, session, 3)
    await redis_client.delete(session_keys(prefix, session)[0])  # the counter alone is gone
    assert [f.id for f in await append(log, session, 1)] == [4]


async def test_concurrent_appends_get_distinct_increasing_ids(redis_client, prefix):
    import asyncio

    log = RedisEventLog(redis_client, prefix, 500, 120)
    session = uuid.uuid4()
    frames = await asyncio.gather(*(log.append(session, b"{}", turn="t", final=False, floor=0) for _ in range(50)))
    assert sorted(f.id for f in frames) == list(range(1, 51))
    assert [f.id for f in (await log.snapshot(session, after=0)).frames] == list(range(1, 51))


async def test_follow_reads_what_other_workers_append(redis_client, prefix):
    reader, writer = (RedisEventLog(redis_client, prefix, CAP, 120) for _ in range(2))
    one, two = uuid.uuid4(), uuid.uuid4()
    await append(writer, one, 2)
    await append(writer, two, 1)
    read = await reader.read({one: 1, two: 0}, block_ms=10)
    assert [(session, frame.id) for session, frame in read] == [(one, 2), (two, 1)]
    assert await reader.read({one: 2, two: 1}, block_ms=10) == []


async def test_dropping_deletes_exactly_that_sessions_state(event_log):
    session, other = uuid.uuid4(), uuid.uuid4()
    for sid in (session, other):
        await event_log.begin(sid, "t-aaaaaaaaaaaa")
        await append(event_log, sid, 2)
    await event_log.drop(session)
    await event_log.drop(session)  # nothing left: still fine
    assert await event_log.snapshot(session, after=0) == Snapshot(0, None, None, [])
    assert (await event_log.snapshot(other, after=0)).last_id == 2


async def test_the_redis_keys_are_the_ones_delete_drops(redis_client, prefix):
    log = RedisEventLog(redis_client, prefix, CAP, 120)
    session = uuid.uuid4()
    await log.begin(session, "t-aaaaaaaaaaaa")
    await append(log, session, 1)
    assert await redis_client.exists(*session_keys(prefix, session)) == 3
    assert session_keys(prefix, session) == [f"{prefix}sse:{session}:{s}" for s in ("seq", "buf", "live")]
    await log.drop(session)
    assert await redis_client.exists(*session_keys(prefix, session)) == 0


async def test_an_unreachable_redis_is_503_for_every_write_and_read():
    unreachable = aioredis.from_url("redis://127.0.0.1:1")
    log = RedisEventLog(unreachable, "x:", CAP, 120)
    session = uuid.uuid4()
    for call in (log.begin(session, "t"), log.append(session, b"{}", turn="t", final=False, floor=0),
                 log.snapshot(session, after=0), log.drop(session)):
        with pytest.raises(ApiError) as failed:
            await call
        assert (failed.value.status, failed.value.detail) == (503, "redis_unreachable")
    await unreachable.aclose()


@pytest.mark.parametrize("header, last_id, stored, oldest, valid", [
    ("5", 5, 0, 3, True),  # L = N
    ("2", 5, 0, 3, True),  # oldest − 1
    ("1", 5, 0, 3, False),  # older than the buffer can prove
    ("6", 5, 0, 3, False),  # from the future
    ("7", 5, 7, None, True),  # N from sessions.last_event_id (the store lost its counter)
    ("6", 5, 7, None, False),  # … and nothing buffered to prove 6
    ("0", 0, 0, None, True),  # a fresh session
    ("-1", 5, 0, 3, False), ("007", 7, 0, 3, True), ("+3", 5, 0, 3, False), ("3 ", 5, 0, 3, False),
    ("x", 5, 0, 3, False),
    ("0" * 5000 + "3", 5, 0, 3, True), ("9" * 5000, 5, 0, 3, False), ("-" + "9" * 5000, 5, 0, 3, False),  # no int()
    ("9223372036854775807", 5, 0, 3, False), ("9223372036854775808", 5, 0, 3, False),
])
def test_the_validity_rule_of_last_event_id(header, last_id, stored, oldest, valid):
    assert replay_valid(parse_last_event_id(header), Snapshot(last_id, oldest, None, []), stored) is valid


async def test_streams_of_one_worker_share_a_snapshot_read_for_a_moment(redis_client, prefix):
    """Replays ask the log again after every heartbeat silence: the hub answers simultaneous (and, briefly, later)
    identical questions with one read, then reads afresh."""
    import asyncio

    from tests.conftest import wait_until
    from voyagent.services.frame_hub import FrameHub

    class CountingLog(RedisEventLog):
        reads = 0

        async def snapshot(self, session_id, after):
            CountingLog.reads += 1
            return await super().snapshot(session_id, after)

    log = CountingLog(redis_client, prefix, CAP, 120)
    hub = FrameHub(log)
    session = uuid.uuid4()
    await append(log, session, 2)
    first = await asyncio.gather(*(hub.snapshot(session, 1) for _ in range(50)))
    assert CountingLog.reads == 1 and {tuple(s.frames) for s in first} == {tuple(first[0].frames)}
    assert [frame.id for frame in first[0].frames] == [2]
    await hub.snapshot(session, 0)  # another question: its own read
    assert CountingLog.reads == 2
    await append(log, session, 1)
    await wait_until(lambda: not hub._snapshots, what="the shared answers forgotten")
    assert [frame.id for frame in (await hub.snapshot(session, 1)).frames] == [2, 3]
    assert CountingLog.reads == 3
    await hub.close()
