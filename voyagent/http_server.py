"""Serving HTTP in one process: client timeouts (operations.md §1.3), the listener, graceful shutdown (§1.4).

aiohttp arms one timer per connection (``keepalive_timeout``, from connect and again after each response)
and, when it fires while the connection waits for a request, closes it without a word; it never notices a
body that stalls. :class:`ClientTimeoutProtocol` keeps that single, lazily re-armed timer and gives it the
contract's three rules, with ``keepalive_timeout`` = ``VOYAGENT_CLIENT_TIMEOUT_SECONDS``:

* waiting for a request head: at the deadline a connection that sent part of a head, or nothing at all
  since it opened, gets ``408 {"detail":"request_timeout"}`` and is closed (half-closed at once, fully a
  second later); an idle keep-alive connection (nothing sent since its last response) is closed silently;
* receiving a body: when no byte arrived for the timeout while the server was ready to read, the body
  read fails with ``ApiError(408, "request_timeout")`` (the errors middleware answers it) and the
  connection is closed after the answer instead of lingering for the rest of the body;
* otherwise (the handler holds its whole body, or the response is being written) it does nothing.

The hot path pays one clock read per received chunk; timers are never cancelled and re-created per request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import signal
from collections import Counter
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from voyagent.config import Settings
from voyagent.degradation import PeriodicCount
from voyagent.errors import ApiError
from voyagent.middleware.request_id import accept_request_id

log = logging.getLogger("voyagent.http")

SHUTDOWN_TIMEOUT = 10.0  # operations.md §1.4: open requests and streams get this long to finish
BACKLOG = 2048  # a burst of connections waits in the kernel instead of being refused
LINGER_SECONDS = 10.0  # aiohttp's default
DRAIN_SECONDS = 1.0  # after a 408 on a connection without a complete head
_NR_OPEN = "/proc/sys/fs/nr_open"

_TIMEOUT_BODY = b'{"detail":"request_timeout"}'
_TIMEOUT_HEAD = (b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json; charset=utf-8\r\n"
                 b"Content-Length: %d\r\nConnection: close\r\nCache-Control: no-store\r\n" % len(_TIMEOUT_BODY))
_BAD_REQUEST_BODY = b'{"detail":"Bad Request"}'


def _timeout_response() -> bytes:
    return b"%sX-Request-Id: %s\r\n\r\n%s" % (_TIMEOUT_HEAD, accept_request_id(None).encode(), _TIMEOUT_BODY)


class ClientTimeoutProtocol(RequestHandler):
    """One HTTP/1.1 connection with the client timeouts of operations.md §1.3 (see the module docstring)."""

    __slots__ = ("_rx_at",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rx_at = -1.0  # loop time of the last bytes received

    def data_received(self, data: bytes) -> None:
        self._rx_at = self._loop.time()
        super().data_received(data)

    def _process_keepalive(self) -> None:
        """The connection's timer (aiohttp's keep-alive timer, given the three rules)."""
        self._keepalive_handle = None
        if self._force_close or self.transport is None:
            return
        loop = self._loop
        now = loop.time()
        timeout = self._keepalive_timeout
        waiter = self._waiter
        # Waiting for a request head; or not started yet: on a loop starved by a burst of connections the
        # timer can come before the connection's first step (which would then wait with no timer armed).
        not_started = waiter is None and self._request_count == 0
        if not_started or (waiter is not None and not waiter.done()):
            deadline = self._next_keepalive_close_time
            if now < deadline:
                self._keepalive_handle = loop.call_at(deadline, self._process_keepalive)
            # (loop time is cached per iteration: bytes read with the last response are not "after" it)
            elif self._request_count == 0 or self._rx_at > deadline - timeout:
                self._close_with_timeout("no complete request head")
            else:
                self.force_close()  # idle keep-alive connection
            return
        request = self._current_request
        if request is None or request.content.is_eof():
            return  # start() re-arms the timer after the response
        if self._reading_paused or self._buffer_paused:
            self._rx_at = now  # the server holds the client back: not the client's stall
        deadline = self._rx_at + timeout
        if now < deadline:
            self._keepalive_handle = loop.call_at(deadline, self._process_keepalive)
            return
        self._lingering_time = 0.0  # answer, then close: the rest of the body is not awaited
        request.content.set_exception(ApiError(408, "request_timeout"))
        self._count_timeout("body stalled")

    def _close_with_timeout(self, reason: str) -> None:
        """Answer 408 and half-close at once; drop what still arrives for DRAIN_SECONDS, then close.

        Closing a socket that still receives makes the kernel send a reset, which can destroy the 408 on its
        way to a client that keeps trickling bytes; after our FIN the client sees the end of the connection.
        """
        transport = self.transport
        assert transport is not None
        transport.write(_timeout_response())
        self._close = True  # data_received() drops everything from now on
        if transport.can_write_eof():
            transport.write_eof()
        self._keepalive_handle = self._loop.call_later(DRAIN_SECONDS, self.force_close)  # cancelled on close
        self._count_timeout(reason)

    def _count_timeout(self, reason: str) -> None:
        manager = self._manager
        if isinstance(manager, _Server):
            manager.client_timeouts.add(reason)

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """A request that is not valid HTTP is the client's error: one INFO line, no traceback, JSON body."""
        if status != 400:
            return super().handle_error(request, status, exc, message)
        reason = (message or (str(exc) if exc is not None else "")).strip().splitlines()
        log.info("bad HTTP request from %s: %.100r", request.remote, reason[0] if reason else "")
        response = web.Response(status=400, body=_BAD_REQUEST_BODY, content_type="application/json",
                                headers={"X-Request-Id": accept_request_id(None)})
        response.force_close()
        return response


def _log_timeouts(counts: Counter[str], seconds: float) -> None:
    detail = ", ".join(f"{reason}: {n}" for reason, n in counts.most_common())
    log.info("client timeouts in the last %.0f s: %d connection(s) answered 408 and closed (%s)", seconds,
             sum(counts.values()), detail)


class _Server(web.Server):
    """aiohttp's low-level server, building :class:`ClientTimeoutProtocol` connections."""

    client_timeouts: PeriodicCount

    def __call__(self) -> RequestHandler:
        return ClientTimeoutProtocol(self, loop=self._loop, **self._kwargs)


class _AppRunner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp offers no hook for the protocol class: same server state, our connection factory.
        server.__class__ = _Server
        server.client_timeouts = PeriodicCount(_log_timeouts)
        return server


async def serve(app: web.Application, settings: Settings, *, reuse_port: bool) -> None:
    """Listen and serve until SIGTERM/SIGINT, then stop accepting and drain (operations.md §1.4)."""
    timeout = float(settings.client_timeout)
    # lingering_time: after answering without reading a whole body, aiohttp reads (and drops) the rest for
    # this long; a client stalling there must not be held past its timeout either.
    runner = _AppRunner(app, access_log=None, keepalive_timeout=timeout, lingering_time=min(LINGER_SECONDS, timeout),
                        shutdown_timeout=SHUTDOWN_TIMEOUT)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):  # before start-up: a stop during it is honoured after it
        loop.add_signal_handler(signum, stop.set)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port, backlog=BACKLOG, reuse_port=reuse_port or None)
        await site.start()
        log.info("worker pid=%d serving http://%s:%d", os.getpid(), settings.host, settings.port)
        await stop.wait()
    finally:
        await runner.cleanup()


def run(app: web.Application, settings: Settings, *, reuse_port: bool) -> None:
    """Run :func:`serve` on uvloop (asyncio's loop where uvloop is missing)."""
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a declared dependency on Linux
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(app, settings, reuse_port=reuse_port))


def raise_open_files_limit() -> None:
    """Raise RLIMIT_NOFILE's soft limit to the hard one: thousands of connections need as many descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:  # Linux refuses more than fs.nr_open
        try:
            with open(_NR_OPEN) as handle:
                target = int(handle.read())
        except (OSError, ValueError):
            return
    if soft == resource.RLIM_INFINITY or soft >= target:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("open-files limit stays at %d: %s", soft, exc)
        return
    log.info("open-files limit raised from %d to %d", soft, target)
