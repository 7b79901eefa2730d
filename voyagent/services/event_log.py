"""A chat session's event log (chat-and-agent.md §3.2–3.3, operations.md §6): the id counter, the replay buffer
and the marker of the turn still running, read by replays and live followers alike.

With Redis the log is shared by every worker and survives API restarts:

* ``<prefix>sse:<session_id>:seq`` — the last id issued (``INCR``);
* ``<prefix>sse:<session_id>:buf`` — ONE Redis Stream holding the frames, each at the entry id ``<n>-0`` where
  ``n`` is its SSE id, capped with ``XADD … MAXLEN`` at ``VOYAGENT_SSE_REPLAY_BUFFER_CAP``. Replays read it with
  ``XRANGE`` and live followers with ``XREAD``: one log, so nothing is lost or doubled between the two;
* ``<prefix>sse:<session_id>:live`` — the id of the turn still running (set when it starts, with the turn lock's
  expiry; deleted by the append of that turn's ``final``).

One script numbers and appends a frame (counter, stream entry and, for a ``final``, the live marker in one atomic
step); another takes the snapshot a reconnect needs (last id, oldest buffered id, live turn, frames after ``L``)
in one atomic read. The counter never falls below ``sessions.last_event_id`` (the ``floor`` of each append), nor
below the stream's newest entry, so ids stay monotonic when Redis lost the counter. Without Redis the same log
lives in this process (single worker), re-initialised from ``sessions.last_event_id`` after a restart.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import uuid
from typing import Any, Protocol

from voyagent.degradation import DependencyState
from voyagent.services.token_store import redis_required
from voyagent.services.turn_lock import EXPIRY_MARGIN_SECONDS

SUFFIXES = ("seq", "buf", "live")
MAX_LAST_EVENT_ID = 2**53  # ids beyond what a Lua number (a double) counts exactly are never issued

# The next id of a session (Lua, shared with the turn lease's scripts): above the counter, the floor and the
# stream's newest entry.
NEXT_ID_LUA = """
local function newest_id(buf)
    local top = redis.call('XREVRANGE', buf, '+', '-', 'COUNT', 1)
    if top[1] then
        return tonumber(string.match(top[1][1], '^(%d+)')), top[1][2]
    end
    return 0, nil
end
local function next_id(seq, buf, floor)
    local n = redis.call('INCR', seq)
    local newest = newest_id(buf)
    if newest > floor then floor = newest end
    if n <= floor then
        n = floor + 1
        redis.call('SET', seq, string.format('%d', n))
    end
    return n
end
"""

_APPEND_LUA = NEXT_ID_LUA + """
local n = next_id(KEYS[1], KEYS[2], tonumber(ARGV[4]))
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[5], string.format('%d-0', n), 'd', ARGV[1], 't', ARGV[2], 'f', ARGV[3])
if ARGV[3] == '1' and redis.call('GET', KEYS[3]) == ARGV[2] then
    redis.call('DEL', KEYS[3])
end
return n
"""

_SNAPSHOT_LUA = """
local frames = {}
if ARGV[1] ~= '' then
    frames = redis.call('XRANGE', KEYS[2], ARGV[1], '+')
end
return {redis.call('GET', KEYS[1]), redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1), redis.call('GET', KEYS[3]),
        frames}
"""

_INTEGER = re.compile(r"-?[0-9]+")
_MAX_ID_DIGITS = 19  # 2⁶³ − 1, the largest bigint, has 19 digits
_PAST_EVERY_ID = 2**63


def session_keys(prefix: str, session_id: uuid.UUID) -> list[str]:
    """Every Redis key of the session's SSE state (DELETE /chat/sessions/{id} drops them all)."""
    return [f"{prefix}sse:{session_id}:{suffix}" for suffix in SUFFIXES]


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    """One agent-event frame: its SSE id, the exact ``data`` payload, the turn that produced it (the synthetic
    ``replay_failed`` frame belongs to the turn it precedes) and whether it is that turn's ``final``."""

    id: int
    data: bytes
    turn: str
    final: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    """What a reconnect sees at one instant: the last id issued (0: none known to the store), the oldest buffered
    id (None: empty buffer), the turn still running (None: none) and the buffered frames after the asked id."""

    last_id: int
    oldest: int | None
    live: str | None
    frames: list[Frame]


def parse_last_event_id(value: str) -> int | None:
    """``Last-Event-ID`` as a base-10 integer (negative ones included, for the validity rule); None otherwise.
    A number of more than 19 significant digits is past every id (ids are bigints): it reads as ±2⁶³, without
    asking ``int`` for it (which refuses strings of more than 4,300 digits, and would be a 500)."""
    if not _INTEGER.fullmatch(value):
        return None
    negative = value.startswith("-")
    digits = value.lstrip("-").lstrip("0") or "0"
    magnitude = int(digits) if len(digits) <= _MAX_ID_DIGITS else _PAST_EVERY_ID
    return -magnitude if negative else magnitude


def replay_valid(last_event_id: int | None, snapshot: Snapshot, stored_last_id: int) -> bool:
    """§3.3: ``0 ≤ L ≤ N`` and either ``L = N`` or the buffer still holds everything after ``L``. ``N`` is the
    larger of the store's counter and ``sessions.last_event_id`` (the store may have lost its counter)."""
    if last_event_id is None or last_event_id < 0:
        return False
    newest = max(snapshot.last_id, stored_last_id)
    if last_event_id > newest:
        return False
    return last_event_id == newest or (snapshot.oldest is not None and last_event_id >= snapshot.oldest - 1)


class EventLog(Protocol):
    """The log of every session's frames, as the turn, the replay and the delete need it."""

    shared: bool  # True when other workers append to and read the same log (Redis)

    async def begin(self, session_id: uuid.UUID, turn_id: str) -> None:
        """Mark ``turn_id`` as the session's running turn: the pre-stream write check of §2 step 1e."""

    async def append(self, session_id: uuid.UUID, data: bytes, *, turn: str, final: bool, floor: int) -> Frame:
        """Number the frame (above ``floor`` and every id issued before) and buffer it; the stored frame."""

    async def snapshot(self, session_id: uuid.UUID, after: int | None) -> Snapshot:
        """The session's state and, unless ``after`` is None, the buffered frames with an id above it."""

    async def drop(self, session_id: uuid.UUID) -> None:
        """Forget the session's counter, buffer and live marker."""


def _integer(value: Any) -> int:
    return int(value) if value is not None else 0


def _entry_id(raw: Any) -> int:
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return int(text.split("-", 1)[0])


def frame_of_entry(entry_id: Any, fields: dict[Any, Any]) -> Frame:
    """A stream entry as a Frame (field names as bytes, as the client returns them)."""
    turn = fields[b"t"]
    return Frame(id=_entry_id(entry_id), data=bytes(fields[b"d"]), turn=turn.decode(), final=fields[b"f"] == b"1")


def _frames_of_flat(entries: list[Any]) -> list[Frame]:
    """Entries as a script returns them: ``[id, [field, value, …]]``."""
    frames = []
    for entry_id, flat in entries:
        frames.append(frame_of_entry(entry_id, dict(zip(flat[::2], flat[1::2]))))
    return frames


class RedisEventLog:
    """The log in Redis (see the module docstring)."""

    shared = True

    def __init__(self, redis: Any, prefix: str, cap: int, turn_timeout_seconds: int,
                 redis_state: DependencyState | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.cap = cap
        self.live_ms = (turn_timeout_seconds + EXPIRY_MARGIN_SECONDS) * 1000
        self.redis_state = redis_state or DependencyState("redis")
        self._append = redis.register_script(_APPEND_LUA)
        self._snapshot = redis.register_script(_SNAPSHOT_LUA)

    def stream_key(self, session_id: uuid.UUID) -> str:
        return f"{self.prefix}sse:{session_id}:buf"

    async def _call(self, what: str, call: Any) -> Any:
        return await redis_required(self.redis_state, f"SSE event log ({what})", call)

    async def begin(self, session_id: uuid.UUID, turn_id: str) -> None:
        live = session_keys(self.prefix, session_id)[2]
        await self._call("begin", self.redis.set(live, turn_id, px=self.live_ms))

    async def begin_taking_quota(self, session_id: uuid.UUID, turn_id: str, quota: Any, tenant_id: uuid.UUID,
                                 per_minute: int, per_hour: int) -> Any:
        """``begin``, then the tenant's turn quota (a ``RedisTurnQuota`` on the same Redis) in the same round trip:
        the quota's verdict. A failure is ``begin``'s: ``503 redis_unreachable``, nothing counted."""
        live = session_keys(self.prefix, session_id)[2]
        return await self._call("begin", quota.mark_live_and_take(tenant_id, per_minute, per_hour, live_key=live,
                                                                   turn_id=turn_id, live_ms=self.live_ms))

    async def append(self, session_id: uuid.UUID, data: bytes, *, turn: str, final: bool, floor: int) -> Frame:
        call = self._append(keys=session_keys(self.prefix, session_id),
                            args=[data, turn, "1" if final else "0", floor, self.cap])
        return Frame(id=int(await self._call("append", call)), data=data, turn=turn, final=final)

    async def snapshot(self, session_id: uuid.UUID, after: int | None) -> Snapshot:
        start = "" if after is None or after >= MAX_LAST_EVENT_ID else f"{max(after, 0) + 1}-0"
        seq, first, live, entries = await self._call(
            "snapshot", self._snapshot(keys=session_keys(self.prefix, session_id), args=[start]))
        return Snapshot(last_id=_integer(seq), oldest=_entry_id(first[0][0]) if first else None,
                        live=live.decode() if live is not None else None, frames=_frames_of_flat(entries))

    async def read(self, positions: dict[uuid.UUID, int], block_ms: int) -> list[tuple[uuid.UUID, Frame]]:
        """Frames appended after each session's position, waiting up to ``block_ms`` for the first (one
        ``XREAD BLOCK`` over every followed session: one connection per worker, not one per stream)."""
        streams = {self.stream_key(session_id): f"{position}-0" for session_id, position in positions.items()}
        by_key = {self.stream_key(session_id): session_id for session_id in positions}
        result = await self.redis.xread(streams, block=block_ms)
        frames = []
        for key, entries in result or ():
            session_id = by_key[key.decode() if isinstance(key, bytes) else key]
            frames.extend((session_id, frame_of_entry(entry_id, fields)) for entry_id, fields in entries)
        return frames

    async def drop(self, session_id: uuid.UUID) -> None:
        await self._call("drop", self.redis.delete(*session_keys(self.prefix, session_id)))


@dataclasses.dataclass
class _LocalSession:
    last_id: int = 0
    frames: collections.deque[Frame] = dataclasses.field(default_factory=collections.deque)
    live: str | None = None


class LocalEventLog:
    """The same log in this process (one worker): every operation completes without yielding, so each is
    atomic on the event loop as the scripts are in Redis."""

    shared = False

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.sessions: dict[uuid.UUID, _LocalSession] = {}

    async def begin(self, session_id: uuid.UUID, turn_id: str) -> None:
        self.sessions.setdefault(session_id, _LocalSession()).live = turn_id

    async def append(self, session_id: uuid.UUID, data: bytes, *, turn: str, final: bool, floor: int) -> Frame:
        state = self.sessions.setdefault(session_id, _LocalSession())
        state.last_id = max(state.last_id, floor) + 1
        frame = Frame(id=state.last_id, data=data, turn=turn, final=final)
        state.frames.append(frame)
        while len(state.frames) > self.cap:
            state.frames.popleft()
        if final and state.live == turn:
            state.live = None
        return frame

    async def snapshot(self, session_id: uuid.UUID, after: int | None) -> Snapshot:
        state = self.sessions.get(session_id) or _LocalSession()
        frames = [] if after is None else [frame for frame in state.frames if frame.id > after]
        return Snapshot(last_id=state.last_id, oldest=state.frames[0].id if state.frames else None,
                        live=state.live, frames=frames)

    async def drop(self, session_id: uuid.UUID) -> None:
        self.sessions.pop(session_id, None)


def create_event_log(redis: Any, prefix: str, cap: int, turn_timeout_seconds: int,
                     redis_state: DependencyState | None = None) -> RedisEventLog | LocalEventLog:
    """Redis when a client is configured, else in-process."""
    if redis is not None:
        return RedisEventLog(redis, prefix, cap, turn_timeout_seconds, redis_state)
    return LocalEventLog(cap)
