"""Script calls made while the event loop is busy go to Redis together, as one pipeline.

A round trip to Redis costs the worker about 100 µs of CPU whatever it carries (the write, the read, the loop's
polling: measured with redis-py on this machine); a pipeline of four scripts costs about 35 µs a call, of ten about
20 µs. Under load many turns call the same few scripts at the same moment (issue 11: a flight search's turn makes
eight Redis calls, over a third of the worker's CPU by py-spy). ``register_batched_script`` gives a script whose
calls are queued per client; the calls queued while the loop runs the rest of its ready callbacks leave in the next
iteration as one pipeline (``EVALSHA`` each, in call order, on one connection). Nothing waits for a batch to fill:
on a quiet loop a call leaves alone, one iteration later.

Each caller gets its own reply, or its own error reply raised; a failure of the connection itself (after
redis-py's retries, as for any command) is raised to every caller of the batch. A call whose script Redis does not
know (a restarted Redis) is made again alone through redis-py's script, which loads it. A call given ``client``
(a pipeline of the caller's) goes there, as redis-py's script does.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, Sequence

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

_Call = tuple[tuple[Any, ...], asyncio.Future[Any]]  # the EVALSHA's arguments, the caller's reply

_batchers: weakref.WeakKeyDictionary[Any, ScriptBatcher] = weakref.WeakKeyDictionary()


class ScriptBatcher:
    """The queue of one client's batched script calls (see the module docstring)."""

    def __init__(self, redis: Any) -> None:
        self._redis = weakref.ref(redis)  # a strong one would keep the client alive as the key of ``_batchers``
        self._queued: list[_Call] = []
        self._flush_started = False
        self._flushes: set[asyncio.Task[None]] = set()

    def call(self, sha: str, keys: Sequence[Any], args: Sequence[Any]) -> asyncio.Future[Any]:
        """Queue one ``EVALSHA``; the future holds its reply (or the ``ResponseError`` Redis answered)."""
        loop = asyncio.get_running_loop()
        reply = loop.create_future()
        self._queued.append(((sha, len(keys), *keys, *args), reply))
        if not self._flush_started:
            self._flush_started = True
            task = loop.create_task(self._flush())
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
        return reply

    async def _flush(self) -> None:
        calls, self._queued, self._flush_started = self._queued, [], False
        try:
            redis = self._redis()
            if redis is None:
                raise RedisConnectionError("the client is gone")
            pipe = redis.pipeline(transaction=False)
            for command, _ in calls:
                pipe.execute_command("EVALSHA", *command)
            replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # the callers get the failure (a cancelled flush: at shutdown) as theirs
            failure = exc if isinstance(exc, Exception) else RedisConnectionError("the batch was cancelled")
            for _, reply in calls:
                if not reply.done():
                    reply.set_exception(failure)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, reply), value in zip(calls, replies):
            if not reply.done():
                reply.set_result(value)


def batcher_of(redis: Any) -> ScriptBatcher:
    """The client's batcher (one per client, gone with it)."""
    batcher = _batchers.get(redis)
    if batcher is None:
        batcher = _batchers[redis] = ScriptBatcher(redis)
    return batcher


class BatchedScript:
    """A Lua script called like redis-py's (``await script(keys=…, args=…)``), its calls batched per client."""

    def __init__(self, redis: Any, text: str) -> None:
        self.script = redis.register_script(text)
        self.batcher = batcher_of(redis)

    @property
    def sha(self) -> str:
        return self.script.sha

    async def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = (), client: Any = None) -> Any:
        if client is not None:
            return await self.script(keys=keys, args=args, client=client)
        reply = await self.batcher.call(self.script.sha, keys, args)
        if isinstance(reply, NoScriptError):
            return await self.script(keys=keys, args=args)  # loads it, then calls it again
        if isinstance(reply, ResponseError):
            raise reply
        return reply


def register_batched_script(redis: Any, text: str) -> BatchedScript:
    """``redis.register_script(text)`` whose calls are batched (see the module docstring)."""
    return BatchedScript(redis, text)
