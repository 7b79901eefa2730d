"""The lease of a running turn (chat-and-agent.md §2–§3, operations.md §1.2 and §6): with Redis, a turn owns its
session only while it keeps saying so, and it re-asserts what Redis forgot.

Why: Redis here may lose everything (a restart without persistence) and a worker may die mid-turn (SIGKILL). The
session's counter, buffer, live marker and lock then vanish, or stay behind with nobody to end them. Ids must
never be reused and every turn must end with exactly one ``final``, so:

* **The lock is the lease.** A turn takes ``<prefix>turnlock:<sid>`` with a short expiry (``LEASE_SECONDS``);
  its worker's ``LeaseKeeper`` refreshes it every ``KEEP_INTERVAL`` while the turn runs. A dead worker's lease
  expires within seconds and frees the session. Deletes and renames keep taking the same key the old way
  (``turn_lock.holding``), so they still wait for a running turn.
* **A turn re-asserts its state.** It remembers the frames it appended (ids and exact bytes, the last
  ``cap``). Each of its appends is one script that only writes while the lock holds the turn's token. When it
  does not, the turn asks again: its own lock still there → go on; lock gone but the live marker still names
  the turn → take the lock again; the session's counter gone (Redis lost its state) → write its frames back
  with their ids, set the counter to the highest of them and the floor, take the lock, set the live marker —
  one script, before the new frame; anything else (another turn holds the lock, or the marker was taken away
  because the turn was closed as dead) → ``LeaseLost``: the turn writes nothing more.
* **A restarted Redis is given time to be re-asserted.** ``<prefix>sse:epoch`` holds Redis's clock (ms) when
  its state began (set at start-up to 0; set to "now" by the first script that finds it missing). A request
  that finds a session without counter within ``SETTLE_SECONDS`` of that waits out the rest before believing
  "nothing there": a turn that was running has re-asserted itself by then (its keeper ticks every 0.3 s).
* **A dead turn is closed once.** A turn whose live marker is still set while its lock is gone (or is held by
  the request about to start the next turn) died: ``close_dead`` deletes the marker and appends ``error
  "internal_error"`` and ``final`` with its turn id, in one script, so only one caller ever does it.

Without Redis there is one worker and nothing to lease: ``LocalTurnLeases`` takes the in-process lock and
appends as before.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import secrets
import uuid
from typing import Any, Callable, Iterable

from voyagent.degradation import DependencyState
from voyagent.redis_batch import register_batched_script
from voyagent.services.event_log import NEXT_ID_LUA, Frame, LocalEventLog, RedisEventLog, session_keys
from voyagent.services.token_store import redis_required, redis_unreachable
from voyagent.services.turn_lock import LocalTurnLock, RedisTurnLock

log = logging.getLogger(__name__)

LEASE_SECONDS = 2.0  # a dead worker's turn frees its session within this
KEEP_INTERVAL = 0.25  # the keeper's tick while turns run
CHECK_SECONDS = 1.0  # a stream following another worker's turn asks this often whether it still holds its lease
SETTLE_SECONDS = 1.0  # after Redis lost its state: time for running turns to re-assert theirs
OUTAGE_PATIENCE = 15.0  # an append waits this long for Redis to answer again (a restart), then fails
RETRY_PAUSE = 0.1
MAX_REASSERTS = 5  # appends refused in a row before the turn counts its lease as lost

HELD, RETAKEN, RESTORED = 1, 2, 3  # re-assert results
STATE_LOST, SUPERSEDED = -1, -2
NOT_HELD = -1  # append result

# ms since Redis's state began by its own clock (so hosts' clocks never matter); the mark is set when missing.
_EPOCH_LUA = """
local function epoch_age(key)
    local now = redis.call('TIME')
    local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
    local began = redis.call('GET', key)
    if not began then
        redis.call('SET', key, string.format('%d', ms))
        return 0
    end
    return ms - tonumber(began)
end
"""

# KEYS lock, seq, live, epoch; ARGV token, lease ms, settle ms → {1, live turn or ''} | {0, ''} (held) |
# {-1, ms to wait} (Redis lost its state moments ago: a running turn may not have re-asserted itself yet).
_ACQUIRE_LUA = _EPOCH_LUA + """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return {0, ''}
end
if redis.call('EXISTS', KEYS[2]) == 0 then
    local age = epoch_age(KEYS[4])
    if age < tonumber(ARGV[3]) then
        redis.call('DEL', KEYS[1])
        return {-1, string.format('%d', tonumber(ARGV[3]) - age)}
    end
end
return {1, redis.call('GET', KEYS[3]) or ''}
"""

# KEYS seq, epoch; ARGV settle ms → ms to wait before a missing counter means "nothing there".
_SETTLE_LUA = _EPOCH_LUA + """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return 0
end
local left = tonumber(ARGV[1]) - epoch_age(KEYS[2])
if left < 0 then return 0 end
return left
"""

# KEYS seq; ARGV id → 1 when the counter was missing or below the id (an id a stream was sent) and now holds it.
_RESEED_LUA = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""

# KEYS seq, buf, live, lock; ARGV data, turn, final, floor, cap, token, index → the frame's id, or -1 when the
# lock does not hold the token. A retry of an append that was done (its reply lost) returns the same id. A final
# also releases the lock and the live marker: the lock is free before the final can be read (§2 step 8).
_HELD_APPEND_LUA = NEXT_ID_LUA + """
local newest, fields = newest_id(KEYS[2])
if fields then
    local by_name = {}
    for i = 1, #fields, 2 do by_name[fields[i]] = fields[i + 1] end
    if by_name['t'] == ARGV[2] and by_name['k'] == ARGV[7] then return newest end
end
if redis.call('GET', KEYS[4]) ~= ARGV[6] then return -1 end
local n = next_id(KEYS[1], KEYS[2], tonumber(ARGV[4]))
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[5], string.format('%d-0', n), 'd', ARGV[1], 't', ARGV[2], 'f', ARGV[3],
           'k', ARGV[7])
if ARGV[3] == '1' then
    if redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end
    redis.call('DEL', KEYS[4])
end
return n
"""

# KEYS seq, buf, live, lock, epoch; ARGV token, turn, lease ms, live ms, floor, cap, restore ('1'/'0'), then
# (id, data, final, index) per frame of the turn → 1 held (lease refreshed), 2 taken again, 3 restored, -1 the
# session's state is gone (call again with restore '1'), -2 superseded.
_REASSERT_LUA = _EPOCH_LUA + """
local holder = redis.call('GET', KEYS[4])
if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[4], ARGV[3])
    return 1
end
if holder then return -2 end
if redis.call('EXISTS', KEYS[1]) == 1 then
    if redis.call('GET', KEYS[3]) ~= ARGV[2] then return -2 end
    redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[3])
    return 2
end
if ARGV[7] ~= '1' then return -1 end
epoch_age(KEYS[5])
local top = 0
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if last[1] then top = tonumber(string.match(last[1][1], '^(%d+)')) end
local n = math.max(top, tonumber(ARGV[5]))
for i = 8, #ARGV, 4 do
    local id = tonumber(ARGV[i])
    if id > top then
        redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[6], string.format('%d-0', id), 'd', ARGV[i + 1], 't', ARGV[2],
                   'f', ARGV[i + 2], 'k', ARGV[i + 3])
        top = id
    end
    if id > n then n = id end
end
redis.call('SET', KEYS[1], string.format('%d', n))
redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[3])
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[4])
return 3
"""

# KEYS seq, buf, live, lock; ARGV turn, token of the caller ('' for none), floor, cap, error data, final data →
# the ids of the two frames appended, or {} when the turn is not dead (or Redis lost the state to tell).
_CLOSE_LUA = NEXT_ID_LUA + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return {} end
local holder = redis.call('GET', KEYS[4])
if holder and holder ~= ARGV[2] then return {} end
redis.call('DEL', KEYS[3])
local ids = {}
for i, data in ipairs({ARGV[5], ARGV[6]}) do
    local n = next_id(KEYS[1], KEYS[2], tonumber(ARGV[3]))
    redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], string.format('%d-0', n), 'd', data, 't', ARGV[1],
               'f', i == 2 and '1' or '0')
    ids[i] = n
end
return ids
"""


class LeaseLost(Exception):
    """The turn no longer owns its session (closed as dead by another worker, or another holder has the lock):
    it must write nothing more."""


@dataclasses.dataclass(eq=False)
class TurnLease:
    """One turn's claim on its session, from the lock's taking to its final, and what it needs to re-assert it:
    the frames it appended (the last ``cap``, each with its index in the turn) and the id floor."""

    session_id: uuid.UUID
    turn_id: str
    token: str
    cap: int
    floor: int = 0  # sessions.last_event_id read under the lock
    frames: collections.deque[tuple[int, Frame]] = dataclasses.field(default_factory=collections.deque)
    appended: int = 0
    done: bool = False  # final appended or lease lost: the keeper lets go
    on_lost: Callable[[], None] | None = None  # told when the keeper finds the session taken over

    @property
    def last_id(self) -> int:
        """The floor of the turn's next append: its own last id, never below the admission's floor."""
        return max(self.floor, self.frames[-1][1].id) if self.frames else self.floor

    def record(self, frame: Frame) -> None:
        self.frames.append((self.appended, frame))
        while len(self.frames) > self.cap:
            self.frames.popleft()
        self.appended += 1


@dataclasses.dataclass(frozen=True, slots=True)
class Admission:
    """A taken lock: the new turn's lease, and the turn that died holding the session before (to be closed)."""

    lease: TurnLease
    dead_turn: str | None


def _restore_args(lease: TurnLease) -> list[Any]:
    args: list[Any] = []
    for index, frame in lease.frames:
        args += [frame.id, frame.data, "1" if frame.final else "0", index]
    return args


class RedisTurnLeases:
    """Leases in Redis (see the module docstring)."""

    shared = True

    def __init__(self, redis: Any, lock: RedisTurnLock, event_log: RedisEventLog,
                 redis_state: DependencyState | None = None) -> None:
        self.redis = redis
        self.lock = lock
        self.log = event_log
        self.redis_state = redis_state or DependencyState("redis")
        self.epoch_key = f"{event_log.prefix}sse:epoch"
        self.lease_ms = int(LEASE_SECONDS * 1000)
        self.settle_ms = int(SETTLE_SECONDS * 1000)
        # Called by every turn, several times: batched across the worker's turns (voyagent/redis_batch.py).
        self._acquire = register_batched_script(redis, _ACQUIRE_LUA)
        self._settle = register_batched_script(redis, _SETTLE_LUA)
        self._append = register_batched_script(redis, _HELD_APPEND_LUA)
        self._reassert = redis.register_script(_REASSERT_LUA)
        self._close = register_batched_script(redis, _CLOSE_LUA)
        self._reseed = redis.register_script(_RESEED_LUA)
        self.keeper = LeaseKeeper(self)

    def _keys(self, session_id: uuid.UUID) -> list[str]:
        """seq, buf, live, lock."""
        return [*session_keys(self.log.prefix, session_id), self.lock.key(session_id)]

    async def _call(self, what: str, call: Any) -> Any:
        return await redis_required(self.redis_state, f"turn lease ({what})", call)

    async def mark_epoch(self) -> None:
        """At start-up: a missing epoch means a fresh Redis, not one that lost running turns. Best effort and
        silent (Redis down at start-up is reported by what needs it; the first turn then waits 1 s once)."""
        try:
            await self.redis.set(self.epoch_key, "0", nx=True)
        except Exception as exc:
            log.debug("the epoch mark of the turn leases is not set: %s", exc)

    async def acquire(self, session_id: uuid.UUID, turn_id: str) -> Admission | None:
        """Take the session for the turn ``turn_id`` (``None``: held), its lease kept from now on; right after
        Redis lost its state, first give a turn that was running the time to re-assert itself."""
        token = secrets.token_hex(16)
        seq, live, lock = (self._keys(session_id)[i] for i in (0, 2, 3))
        while True:
            status, value = await self._call("take", self._acquire(
                keys=[lock, seq, live, self.epoch_key], args=[token, self.lease_ms, self.settle_ms]))
            if int(status) != -1:
                break
            await asyncio.sleep(int(value) / 1000)
        if int(status) == 0:
            return None
        lease = TurnLease(session_id, turn_id, token, self.log.cap)
        self.keeper.hold(lease)
        dead = value.decode() if isinstance(value, bytes) else str(value)
        return Admission(lease, dead or None)

    async def release(self, lease: TurnLease) -> None:
        """Give the session back without a final (a pre-stream check failed)."""
        lease.done = True
        self.keeper.let_go(lease)
        await self.lock.release(lease.session_id, lease.token)

    def let_go(self, lease: TurnLease) -> None:
        """The turn is over: keep its lease no more."""
        lease.done = True
        self.keeper.let_go(lease)

    async def close(self) -> None:
        await self.keeper.close()

    async def settle(self, session_id: uuid.UUID) -> bool:
        """Wait, when the session has no counter and Redis lost its state moments ago, until a running turn had
        its time to re-assert itself; True when it waited (read again)."""
        wait = int(await self._call("settle", self._settle(keys=[self._keys(session_id)[0], self.epoch_key],
                                                           args=[self.settle_ms])))
        if wait > 0:
            await asyncio.sleep(wait / 1000)
        return wait > 0

    async def reseed(self, session_id: uuid.UUID, last_id: int) -> bool:
        """After Redis lost the session's state and no turn re-asserted it: set the missing counter to
        ``last_id``, an id a stream of this server sent (so ids a client holds are never issued again); True when
        it was missing."""
        return bool(await self._call("reseed", self._reseed(keys=[self._keys(session_id)[0]], args=[last_id])))

    async def close_dead(self, session_id: uuid.UUID, turn_id: str, *, token: str, floor: int,
                         error: bytes, final: bytes) -> list[Frame]:
        """Append ``error`` and ``final`` for ``turn_id`` if it died holding the session (its live marker set, its
        lock gone or taken by ``token``); exactly one caller does. The frames appended, or [] (alive, ended)."""
        ids = await self._call("close", self._close(keys=self._keys(session_id),
                                                    args=[turn_id, token, floor, self.log.cap, error, final]))
        appended = zip(ids or (), (error, final))
        return [Frame(int(n), data, turn_id, index == 1) for index, (n, data) in enumerate(appended)]

    async def append(self, lease: TurnLease, data: bytes, *, final: bool) -> Frame:
        """Append one frame of the turn under its lease (a final also frees the session), re-asserting the lease
        when Redis forgot it and waiting up to ``OUTAGE_PATIENCE`` for Redis to answer; ``LeaseLost`` when the
        session is no longer the turn's."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + OUTAGE_PATIENCE
        refused = 0
        if final:  # the final releases the lock: the keeper must not take it again meanwhile
            self.let_go(lease)
        while True:
            try:
                n = int(await self._append(keys=self._keys(lease.session_id), args=[
                    data, lease.turn_id, "1" if final else "0", lease.last_id, lease.cap, lease.token,
                    lease.appended]))
                if n == NOT_HELD:
                    refused += 1
                    if refused > MAX_REASSERTS or await self._reassert_one(lease) == SUPERSEDED:
                        raise LeaseLost(lease.turn_id)
                    continue
            except LeaseLost:
                lease.done = True
                raise
            except asyncio.CancelledError:
                # The call may still be written (a queued script call goes out anyway): the turn's next frame
                # must not be taken for its retry, so it gets the next index.
                lease.appended += 1
                raise
            except Exception as exc:
                self.redis_state.failure("SSE event log (append)", exc)
                if loop.time() >= give_up:
                    raise redis_unreachable() from None
                await asyncio.sleep(RETRY_PAUSE)
                continue
            self.redis_state.success()
            frame = Frame(id=n, data=data, turn=lease.turn_id, final=final)
            lease.record(frame)
            return frame

    def _reassert_call(self, lease: TurnLease, restore: bool, client: Any = None) -> Any:
        seq, buf, live, lock = self._keys(lease.session_id)
        args = [lease.token, lease.turn_id, self.lease_ms, self.log.live_ms, lease.floor, lease.cap,
                "1" if restore else "0", *(_restore_args(lease) if restore else ())]
        return self._reassert(keys=[seq, buf, live, lock, self.epoch_key], args=args, client=client)

    async def _reassert_one(self, lease: TurnLease) -> int:
        result = int(await self._reassert_call(lease, restore=False))
        if result == STATE_LOST:
            result = int(await self._reassert_call(lease, restore=True))
            log.warning("turn %s of session %s re-asserted its %d frame(s) after Redis lost them", lease.turn_id,
                        lease.session_id, len(lease.frames))
        return result

    async def keep(self, leases: Iterable[TurnLease]) -> list[TurnLease]:
        """One tick of the keeper: refresh every lease in one pipeline, restore those Redis forgot; the leases
        that are lost (superseded)."""
        leases = [lease for lease in leases if not lease.done]
        if not leases:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for lease in leases:
            await self._reassert_call(lease, restore=False, client=pipe)
        try:
            results = await pipe.execute()
            lost = []
            for lease, result in zip(leases, results):
                if int(result) == STATE_LOST:
                    result = await self._reassert_one(lease)
                if int(result) == SUPERSEDED and not lease.done:
                    lost.append(lease)
        except Exception as exc:
            self.redis_state.failure("turn lease (keep)", exc)
            return []
        self.redis_state.success()
        return lost


class LocalTurnLeases:
    """One worker, no Redis: the in-process lock and log; nothing can be forgotten or left behind by a dead
    worker, so nothing is kept, settled or closed."""

    shared = False

    def __init__(self, lock: LocalTurnLock, event_log: LocalEventLog) -> None:
        self.lock = lock
        self.log = event_log

    async def mark_epoch(self) -> None:
        return None

    async def acquire(self, session_id: uuid.UUID, turn_id: str) -> Admission | None:
        token = await self.lock.acquire(session_id)
        return Admission(TurnLease(session_id, turn_id, token, self.log.cap), None) if token is not None else None

    async def release(self, lease: TurnLease) -> None:
        lease.done = True
        await self.lock.release(lease.session_id, lease.token)

    def let_go(self, lease: TurnLease) -> None:
        lease.done = True

    async def close(self) -> None:
        return None

    async def settle(self, session_id: uuid.UUID) -> bool:
        return False

    async def reseed(self, session_id: uuid.UUID, last_id: int) -> bool:
        return False

    async def close_dead(self, session_id: uuid.UUID, turn_id: str, *, token: str, floor: int,
                         error: bytes, final: bytes) -> list[Frame]:
        return []

    async def append(self, lease: TurnLease, data: bytes, *, final: bool) -> Frame:
        if final:  # §2 step 8: the lock is free before the final can be read
            lease.done = True
            await self.lock.release(lease.session_id, lease.token)
        frame = await self.log.append(lease.session_id, data, turn=lease.turn_id, final=final, floor=lease.last_id)
        lease.record(frame)
        return frame


TurnLeases = RedisTurnLeases | LocalTurnLeases


class LeaseKeeper:
    """The watchdog of one worker's turns: while any holds a lease, every ``interval`` seconds one pipeline
    refreshes (or restores) them all; a turn whose session was taken over is told (``TurnLease.on_lost``)."""

    def __init__(self, leases: RedisTurnLeases, interval: float = KEEP_INTERVAL) -> None:
        self.leases = leases
        self.interval = interval
        self._held: set[TurnLease] = set()
        self._task: asyncio.Task[None] | None = None

    def hold(self, lease: TurnLease) -> None:
        self._held.add(lease)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="turn-lease-keeper")

    def let_go(self, lease: TurnLease) -> None:
        self._held.discard(lease)

    async def _run(self) -> None:
        while self._held:
            await asyncio.sleep(self.interval)
            for lease in await self.leases.keep(list(self._held)):
                log.warning("turn %s of session %s lost its lease: another holder has the session",
                            lease.turn_id, lease.session_id)
                self._held.discard(lease)
                lease.done = True
                if lease.on_lost is not None:
                    lease.on_lost()

    async def close(self) -> None:
        self._held.clear()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


def create_turn_leases(lock: RedisTurnLock | LocalTurnLock, event_log: RedisEventLog | LocalEventLog,
                       redis_state: DependencyState | None = None) -> TurnLeases:
    """Redis leases over the Redis lock and log, else the in-process ones."""
    if isinstance(lock, RedisTurnLock) and isinstance(event_log, RedisEventLog):
        return RedisTurnLeases(lock.redis, lock, event_log, redis_state)
    assert isinstance(lock, LocalTurnLock) and isinstance(event_log, LocalEventLog)
    return LocalTurnLeases(lock, event_log)
