"""API-key verification: the key format, the 5-second row cache and how changes reach every worker."""

import asyncio
import datetime as dt
import hashlib
import re
import uuid

from tests.clock import FakeClock
from voyagent.background import BackgroundTasks
from voyagent.keys import API_KEY_CACHE, REDIS, SETTINGS
from voyagent.services import api_key_auth
from voyagent.services.api_key_auth import ApiKeyCache, generate_key, hash_key

CLOSED_REDIS = "redis://127.0.0.1:1/0"


def test_generated_keys_have_the_documented_format_and_are_unique():
    keys = [generate_key() for _ in range(2000)]
    for plaintext, prefix in keys[:50]:
        assert re.fullmatch(r"vy_[A-Za-z0-9]{8}_[A-Za-z0-9]{32}", plaintext) and len(plaintext) == 44
        assert plaintext[3:11] == prefix
    assert len({plaintext for plaintext, _ in keys}) == 2000
    assert len({prefix for _, prefix in keys}) == 2000
    alphabet = {c for plaintext, _ in keys for c in plaintext[3:11] + plaintext[12:]}
    assert len(alphabet) == 62  # upper, lower and digits all drawn


def test_the_stored_hash_is_the_lowercase_sha256_hex_of_the_whole_string():
    plaintext = "vy_abcdefgh_" + "0" * 32
    assert hash_key(plaintext) == hashlib.sha256(plaintext.encode("ascii")).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", hash_key(plaintext))


async def test_a_cached_key_needs_no_database_for_at_most_five_seconds(client, admin, make_api_key, db):
    timer = client.app[API_KEY_CACHE].timer = FakeClock(1_000.0)  # the app's own cache, its default lifetime
    key = await make_api_key(admin, ["tenant:read"])
    assert (await client.get("/tenant-settings", headers=key.headers)).status == 200
    await db.execute("DELETE FROM api_keys WHERE id = $1", key.id)  # behind the API's back
    timer.advance(5.0)
    assert (await client.get("/tenant-settings", headers=key.headers)).status == 200  # served from the cache
    timer.advance(0.001)  # five seconds are over: the row is read again, and it is gone
    assert (await client.get("/tenant-settings", headers=key.headers)).status == 401


async def test_an_unknown_prefix_is_remembered_briefly_too(client, admin):
    cache = client.app[API_KEY_CACHE]
    credential = "vy_Zz9Yy8Xx_" + "a" * 32
    assert (await client.get("/tenant-settings", headers={"Authorization": f"Bearer {credential}"})).status == 401
    assert cache.get("Zz9Yy8Xx") == (True, None)


async def test_a_revocation_marker_makes_other_workers_read_the_row_again(make_client, admin, make_api_key, db,
                                                                          redis_url):
    worker = await make_client(redis_url=redis_url)
    other_worker = await make_client(redis_url=redis_url)
    key = await make_api_key(admin, ["tenant:read"])
    assert (await worker.get("/tenant-settings", headers=key.headers)).status == 200
    # revoked by "another worker": the row changes and the marker is written, this worker's cache is untouched
    await db.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", key.id)
    assert (await worker.get("/tenant-settings", headers=key.headers)).status == 200  # no marker yet: cached
    await other_worker.app[API_KEY_CACHE].announce_revocation(key.id, key.prefix)
    assert (await worker.get("/tenant-settings", headers=key.headers)).status == 401
    # the marker outlives every entry cached before the revocation, on any worker
    redis, prefix = worker.app[REDIS], worker.app[SETTINGS].redis_prefix
    assert await redis.pttl(f"{prefix}apikey_revoked:{key.id}") > worker.app[API_KEY_CACHE].ttl * 1000


async def test_a_settings_version_only_ever_rises(make_client, admin, redis_url):
    worker = await make_client(redis_url=redis_url)
    app = worker.app
    newer = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    older = newer - dt.timedelta(seconds=1)
    await app[API_KEY_CACHE].announce_settings_change(admin.tenant_id, newer)
    await app[API_KEY_CACHE].announce_settings_change(admin.tenant_id, older)  # announced late, out of order
    stored = await app[REDIS].get(f"{app[SETTINGS].redis_prefix}tenant_settings_version:{admin.tenant_id}")
    assert int(stored) == api_key_auth._micros(newer)


async def test_with_redis_unreachable_keys_work_and_revocation_is_still_immediate(make_client, admin, make_api_key):
    worker = await make_client(redis_url=CLOSED_REDIS)
    key = await make_api_key(admin, ["tenant:read"])
    for _ in range(2):
        response = await worker.get("/tenant-settings", headers=key.headers)
        assert response.status == 200  # the rate limiter fails open, the row is read from the database
    other_worker = await make_client(redis_url=CLOSED_REDIS)
    assert (await other_worker.post(f"/auth/api-keys/{key.id}/revoke", headers=admin.headers)).status == 204
    assert (await worker.get("/tenant-settings", headers=key.headers)).status == 401


async def test_last_use_is_due_once_a_minute_per_key():
    clock = FakeClock(1_000_000.0)
    cache = ApiKeyCache(clock=clock)
    key_id, other_key = uuid.uuid4(), uuid.uuid4()
    assert cache.touch_due(key_id) is True
    assert cache.touch_due(key_id) is False
    assert cache.touch_due(other_key) is True  # per key
    clock.set(1_000_059.999)
    assert cache.touch_due(key_id) is False
    clock.set(1_000_060.0)
    assert cache.touch_due(key_id) is True
    assert cache.touch_due(key_id) is False


async def test_drain_waits_for_every_task_spawned_so_far_and_the_ones_they_spawn(caplog):
    tasks = BackgroundTasks()
    release, child_started = asyncio.Event(), asyncio.Event()
    finished = []

    async def child():
        child_started.set()
        await release.wait()
        finished.append("child")

    async def parent():
        tasks.spawn(child(), name="child")
        await release.wait()
        finished.append("parent")

    async def broken():
        raise RuntimeError("logged, not raised")

    tasks.spawn(parent(), name="parent")
    tasks.spawn(broken(), name="broken")
    drained = asyncio.create_task(tasks.drain())
    await child_started.wait()
    assert not drained.done()  # parent and child are both held by ``release``, which nobody has set yet
    release.set()
    await drained
    assert sorted(finished) == ["child", "parent"] and len(tasks) == 0
    assert any("background task broken failed" in r.getMessage() for r in caplog.records)
    await tasks.drain()  # nothing left: returns at once


async def test_background_work_is_awaited_then_cancelled_at_shutdown():
    tasks = BackgroundTasks()
    finished, cancelled = [], []

    async def quick():
        finished.append("quick")

    async def stuck():
        try:
            await asyncio.Event().wait()  # never set: only cancellation ends it
        except asyncio.CancelledError:
            cancelled.append("stuck")
            raise
        finished.append("stuck")

    async def broken():
        raise RuntimeError("logged, not raised")

    tasks.spawn(quick(), name="quick")
    tasks.spawn(stuck(), name="stuck")
    tasks.spawn(broken(), name="broken")
    await tasks.close(timeout=0.05)
    assert finished == ["quick"] and cancelled == ["stuck"] and len(tasks) == 0
    late = stuck()
    tasks.spawn(late, name="late")  # refused after close (and the coroutine is closed, not leaked)
    assert len(tasks) == 0 and late.cr_frame is None
