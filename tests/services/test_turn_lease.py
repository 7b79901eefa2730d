"""The lease of a running turn (services/turn_lease.py) in real Redis: the keys a restart wipes are deleted with a
real client and the turn writes them back with the same ids and bytes; a dead turn is closed exactly once; a turn
whose session was taken over writes nothing more. Also the in-process leases."""

import asyncio
import uuid

import pytest

from voyagent.services.event_log import LocalEventLog, RedisEventLog, session_keys
from voyagent.services.turn_lease import LeaseLost, create_turn_leases
from voyagent.services.turn_lock import LocalTurnLock, RedisTurnLock

CAP = 50


@pytest.fixture
async def leases(redis_client, prefix):
    built = create_turn_leases(RedisTurnLock(redis_client, prefix, 120), RedisEventLog(redis_client, prefix, CAP, 120))
    await built.mark_epoch()
    yield built
    await built.close()


def every_key(prefix, session):
    return [*session_keys(prefix, session), f"{prefix}turnlock:{session}"]


async def wipe(redis_client, prefix, session):
    """What a Redis restart without persistence does to the session (and to the epoch mark)."""
    await redis_client.delete(*every_key(prefix, session), f"{prefix}sse:epoch")


async def admitted(leases, session, turn="t-aaaaaaaaaaaa", floor=0):
    admission = await leases.acquire(session, turn)
    assert admission is not None and admission.dead_turn is None
    admission.lease.floor = floor
    await leases.log.begin(session, turn)
    return admission.lease


async def stream_of(redis_client, prefix, session):
    entries = await redis_client.xrange(session_keys(prefix, session)[1])
    return [(int(entry_id.split(b"-")[0]), fields[b"d"], fields[b"t"].decode()) for entry_id, fields in entries]


async def test_a_turn_writes_back_its_frames_and_lock_when_redis_lost_them_mid_turn(leases, redis_client, prefix):
    session = uuid.uuid4()
    lease = await admitted(leases, session, floor=7)  # sessions.last_event_id = 7
    first = [await leases.append(lease, b'{"n":%d}' % n, final=False) for n in range(2)]
    assert [frame.id for frame in first] == [8, 9]
    await wipe(redis_client, prefix, session)
    third = await leases.append(lease, b'{"n":2}', final=False)
    assert third.id == 10
    assert await stream_of(redis_client, prefix, session) == [
        (8, b'{"n":0}', lease.turn_id), (9, b'{"n":1}', lease.turn_id), (10, b'{"n":2}', lease.turn_id)]
    assert await redis_client.get(f"{prefix}turnlock:{session}") == lease.token.encode()
    assert (await leases.log.snapshot(session, after=None)).live == lease.turn_id
    final = await leases.append(lease, b"{}", final=True)
    assert final.id == 11 and not await redis_client.exists(f"{prefix}turnlock:{session}")
    assert (await leases.log.snapshot(session, after=None)).live is None


async def test_the_keeper_restores_what_redis_lost_without_waiting_for_the_next_frame(leases, redis_client, prefix):
    session = uuid.uuid4()
    lease = await admitted(leases, session)
    await leases.append(lease, b'{"n":0}', final=False)
    await wipe(redis_client, prefix, session)
    assert await leases.keep([lease]) == []
    snapshot = await leases.log.snapshot(session, after=0)
    assert (snapshot.last_id, snapshot.live, [f.data for f in snapshot.frames]) == (1, lease.turn_id, [b'{"n":0}'])


async def test_a_new_turn_right_after_redis_lost_its_state_waits_for_the_running_one_to_reassert(leases, redis_client,
                                                                                               prefix):
    session = uuid.uuid4()
    lease = await admitted(leases, session)
    await leases.append(lease, b'{"n":0}', final=False)
    leases.keeper.let_go(lease)  # its keeper's tick comes below, after the other request's first try
    await wipe(redis_client, prefix, session)
    other = asyncio.create_task(leases.acquire(session, "t-bbbbbbbbbbbb"))
    while not await redis_client.exists(f"{prefix}sse:epoch"):  # its first try found no counter: it waits
        await asyncio.sleep(0.01)
    assert not other.done()
    assert await leases.keep([lease]) == []  # the running turn's keeper ticks meanwhile
    assert await other is None  # … so the session is the running turn's, not a second turn's


async def test_a_dead_turn_is_closed_exactly_once_and_a_live_one_never(leases, redis_client, prefix):
    session = uuid.uuid4()
    lease = await admitted(leases, session)
    await leases.append(lease, b'{"n":0}', final=False)
    close = dict(token="", floor=0, error=b'{"kind":"error"}', final=b'{"kind":"final"}')
    assert await leases.close_dead(session, lease.turn_id, **close) == []  # its lease runs: alive
    leases.let_go(lease)  # its worker dies: nobody refreshes the lease any more …
    await redis_client.delete(f"{prefix}turnlock:{session}")  # … and it expires
    results = await asyncio.gather(*(leases.close_dead(session, lease.turn_id, **close) for _ in range(2)))
    closing = [frames for frames in results if frames]
    assert len(closing) == 1
    assert [(f.id, f.data, f.final) for f in closing[0]] == [(2, b'{"kind":"error"}', False),
                                                            (3, b'{"kind":"final"}', True)]
    snapshot = await leases.log.snapshot(session, after=0)
    assert snapshot.live is None and [f.id for f in snapshot.frames] == [1, 2, 3]


async def test_the_next_turns_admission_closes_a_dead_predecessor(leases, redis_client, prefix):
    session = uuid.uuid4()
    dead = await admitted(leases, session)
    await leases.append(dead, b"{}", final=False)
    leases.let_go(dead)
    await redis_client.delete(f"{prefix}turnlock:{session}")
    admission = await leases.acquire(session, "t-bbbbbbbbbbbb")
    assert admission is not None and admission.dead_turn == dead.turn_id
    frames = await leases.close_dead(session, dead.turn_id, token=admission.lease.token, floor=0, error=b"e",
                                     final=b"f")
    assert [f.id for f in frames] == [2, 3]


async def test_a_turn_whose_session_was_closed_meanwhile_writes_nothing_more(leases, redis_client, prefix):
    session = uuid.uuid4()
    lease = await admitted(leases, session)
    await leases.append(lease, b"{}", final=False)
    await redis_client.delete(f"{prefix}turnlock:{session}")  # a stall longer than the lease …
    assert await leases.close_dead(session, lease.turn_id, token="", floor=0, error=b"e", final=b"f")
    with pytest.raises(LeaseLost):
        await leases.append(lease, b"late", final=False)
    assert [f.data for f in (await leases.log.snapshot(session, after=0)).frames] == [b"{}", b"e", b"f"]
    assert lease.done


async def test_a_lease_expired_without_a_closer_is_taken_again(leases, redis_client, prefix):
    session = uuid.uuid4()
    lease = await admitted(leases, session)
    await leases.append(lease, b"{}", final=False)
    await redis_client.delete(f"{prefix}turnlock:{session}")
    assert (await leases.append(lease, b"{}", final=False)).id == 2
    assert await redis_client.get(f"{prefix}turnlock:{session}") == lease.token.encode()


async def test_an_append_retried_after_a_lost_reply_keeps_its_id(leases, redis_client, prefix):
    session = uuid.uuid4()
    lease = await admitted(leases, session)
    frame = await leases.append(lease, b'{"n":0}', final=False)
    lease.frames.pop()  # the reply never came: the turn sends the same frame again
    lease.appended -= 1
    assert (await leases.append(lease, b'{"n":0}', final=False)).id == frame.id
    assert [f.id for f in (await leases.log.snapshot(session, after=0)).frames] == [1]


async def test_an_append_cancelled_after_it_was_queued_is_never_taken_for_the_next_frame(leases, redis_client,
                                                                                         prefix):
    """An append whose caller is cancelled (the turn's timeout) may still be written (a queued script call goes
    out anyway): the turn's next frame gets an id of its own, and the log holds each frame with its own bytes."""
    session = uuid.uuid4()
    lease = await admitted(leases, session)
    cancelled = asyncio.ensure_future(leases.append(lease, b'{"n":0}', final=False))
    await asyncio.sleep(0)  # the call is queued
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    next_frame = await leases.append(lease, b'{"n":1}', final=False)
    assert next_frame.id == 2
    assert await stream_of(redis_client, prefix, session) == [(1, b'{"n":0}', lease.turn_id),
                                                              (2, b'{"n":1}', lease.turn_id)]


async def test_the_keeper_tells_a_turn_whose_session_was_taken_over(leases, redis_client, prefix):
    session = uuid.uuid4()
    lease = await admitted(leases, session)
    lost = asyncio.Event()
    lease.on_lost = lost.set
    await redis_client.set(f"{prefix}turnlock:{session}", "somebody-else")
    await lost.wait()  # the keeper's next tick
    assert lease.done


async def test_a_stream_reseeds_a_lost_counter_with_the_last_id_it_was_sent(leases, redis_client, prefix):
    session = uuid.uuid4()
    assert await leases.reseed(session, 4)
    assert not await leases.reseed(session, 3)  # never lowered
    lease = await admitted(leases, session)
    assert (await leases.append(lease, b"{}", final=False)).id == 5


async def test_in_process_leases_append_and_free_the_lock_with_the_final():
    lock, log = LocalTurnLock(120), LocalEventLog(CAP)
    leases = create_turn_leases(lock, log)
    session = uuid.uuid4()
    admission = await leases.acquire(session, "t-aaaaaaaaaaaa")
    assert admission is not None and await leases.acquire(session, "t-bbbbbbbbbbbb") is None
    lease = admission.lease
    lease.floor = 3
    assert (await leases.append(lease, b"{}", final=False)).id == 4
    assert await lock.is_held(session)
    assert (await leases.append(lease, b"{}", final=True)).id == 5
    assert not await lock.is_held(session)
    assert not await leases.settle(session) and not await leases.reseed(session, 9)
    assert await leases.close_dead(session, lease.turn_id, token="", floor=0, error=b"", final=b"") == []
