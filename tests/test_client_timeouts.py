"""Slow and silent clients against the real ``voyagent serve`` (operations.md §1.3).

One server for the module, with ``VOYAGENT_CLIENT_TIMEOUT_SECONDS=1`` and its open-files soft limit lowered
to 1024 before it starts, so the 2,000-socket test also proves the limit is raised at start-up. Every test
waits for the server's own event (its answer, its EOF, its log line), never for a fixed time.
"""

from __future__ import annotations

import json
import re
import resource
import selectors
import socket
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import TEST_SECRET
from tests.server_process import ServerProcess
from voyagent.config import ConfigError, load_settings

TIMEOUT_SECONDS = 1
SILENT_SOCKETS = 2000
SERVER_SOFT_NOFILE = 1024
TIMEOUT_BODY = b'{"detail":"request_timeout"}'
WAIT = 120.0  # upper bound on any wait below: a hang fails the test instead of blocking the suite


@pytest.fixture(scope="module")
def server(database, tmp_path_factory) -> Iterator[ServerProcess]:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def lower_open_files_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(SERVER_SOFT_NOFILE, hard), hard))

    output = tmp_path_factory.mktemp("client-timeouts") / "server.log"
    env = {"VOYAGENT_DB_URL": database.dsn, "VOYAGENT_AUTH_SECRET": TEST_SECRET, "VOYAGENT_REDIS_URL": "",
           "VOYAGENT_CLIENT_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS)}
    process = ServerProcess(env, output=output, preexec_fn=lower_open_files_limit).start()
    try:
        yield process
    finally:
        process.stop()


def _health(server: ServerProcess) -> int:
    with urllib.request.urlopen(f"{server.url}/health", timeout=10) as response:
        return response.status


def _metrics(server: ServerProcess) -> str:
    with urllib.request.urlopen(f"{server.url}/internal/metrics", timeout=10) as response:
        return response.read().decode()


def _connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)


def _read_until_eof(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _open_files_limit(pid: int) -> tuple[int, int]:
    line = next(line for line in Path(f"/proc/{pid}/limits").read_text().splitlines()
                if line.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    return int(soft), int(hard)


@pytest.fixture
def many_descriptors() -> Iterator[None]:
    """This test process needs more than 2,000 descriptors of its own."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = SILENT_SOCKETS + 500
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the hard open-files limit ({hard}) is below the {needed} descriptors this test needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_open_files_soft_limit_is_raised_to_the_hard_limit_at_start(server):
    assert server.process is not None
    soft, hard = _open_files_limit(server.process.pid)
    assert soft == hard and soft > SERVER_SOFT_NOFILE
    server.wait_for_output(rf"open-files limit raised from {SERVER_SOFT_NOFILE} to {hard}")


def test_2000_silent_sockets_get_408_and_are_closed_while_health_answers(server, many_descriptors):
    sockets = [_connect(server) for _ in range(SILENT_SOCKETS)]
    try:
        assert _health(server) == 200  # while the silent ones are open
        selector = selectors.DefaultSelector()
        received: dict[socket.socket, bytes] = {}
        for sock in sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
            received[sock] = b""
        still_open = set(sockets)
        while still_open:
            events = selector.select(timeout=WAIT)
            assert events, f"{len(still_open)} silent sockets were never closed by the server"
            for key, _ in events:
                sock = key.fileobj
                chunk = sock.recv(65536)  # type: ignore[union-attr]
                if chunk:
                    received[sock] += chunk  # type: ignore[index]
                else:  # EOF: the server closed it
                    selector.unregister(sock)
                    still_open.discard(sock)  # type: ignore[arg-type]
        selector.close()
    finally:
        for sock in sockets:
            sock.close()
    answers = list(received.values())
    wrong = [a for a in answers if not (a.startswith(b"HTTP/1.1 408 Request Timeout\r\n") and a.endswith(TIMEOUT_BODY))]
    assert not wrong, (len(wrong), wrong[:3])
    assert all(b"\r\nConnection: close\r\n" in a for a in answers)
    assert _health(server) == 200
    server.wait_for_output(r"client timeouts in the last \d+ s: \d+ connection\(s\) answered 408")


def test_a_head_sent_byte_by_byte_gets_408_and_is_closed(server):
    request = b"GET /health HTTP/1.1\r\nHost: slow\r\n\r\n"
    with _connect(server) as sock:
        sock.settimeout(0.3)  # the pace of this slow client: one byte whenever the server stays silent
        answer = b""
        for byte in request:
            try:
                answer = sock.recv(65536)
                break  # the server spoke first: it gave up on this head
            except socket.timeout:
                sock.sendall(bytes([byte]))
        assert answer, "the whole head went out, one byte at a time, before the server gave up"
        sock.settimeout(WAIT)
        answer += _read_until_eof(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert answer.endswith(TIMEOUT_BODY)


def test_a_stalled_body_gets_408_with_connection_close(server):
    head = (b"POST /auth/sign-in HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\nX-Request-Id: stalled-body-1\r\n\r\n")
    with _connect(server) as sock:
        sock.sendall(head + b'{"email": "a@exa')  # then nothing more
        answer = _read_until_eof(sock)
    status_line, _, rest = answer.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout"
    assert json.loads(body) == {"detail": "request_timeout"}
    assert b"Connection: close" in headers and b"X-Request-Id: stalled-body-1" in headers
    assert 'path="/auth/sign-in",status="408"' in _metrics(server)


def test_a_body_that_turns_malformed_mid_way_is_a_4xx_not_a_hang_nor_a_5xx(server):
    head = (b"POST /auth/sign-in HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\nX-Request-Id: bad-chunk-1\r\n\r\n")
    with _connect(server) as sock:
        sock.sendall(head)
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"  # the request is being handled now
        sock.sendall(b'3\r\n{"e\r\nzz\r\nnot a chunk\r\n0\r\n\r\n')  # and its body breaks
        answer = _read_until_eof(sock)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line in (b"HTTP/1.1 408 Request Timeout", b"HTTP/1.1 400 Bad Request"), answer
    assert b"X-Request-Id: bad-chunk-1" in rest
    access = server.wait_for_output(r".*request_id=bad-chunk-1 method=POST route=/auth/sign-in status=(\d+).*")
    assert access[0].group(1).startswith("4")
    assert "Traceback" not in server.read_output()


def test_an_idle_keep_alive_connection_is_closed_without_a_word(server):
    with _connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: idle\r\n\r\n")
        answer = _read_until_eof(sock)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b'{"status":"ok"}')  # and nothing after the response: no 408 for an idle connection
    assert answer.count(b"HTTP/1.1") == 1


def test_a_body_cut_off_mid_way_is_an_info_client_disconnect_not_a_server_failure(server):
    head = (b"POST /auth/sign-in HTTP/1.1\r\nHost: gone\r\nContent-Type: application/json\r\n"
            b"Content-Length: 5000\r\nX-Request-Id: cut-off-body-1\r\n\r\n")
    with _connect(server) as sock:
        sock.sendall(head + b'{"email": "someone@example.com", "pass')
    line = server.wait_for_output(r".*request_id=cut-off-body-1 client disconnected mid-request.*")[0].group(0)
    assert " INFO voyagent.errors " in line
    access = server.wait_for_output(r".*request_id=cut-off-body-1 method=POST route=/auth/sign-in status=\d+.*")
    assert "status=499" in access[0].group(0)
    metrics = _metrics(server)
    assert 'path="/auth/sign-in",status="499"' in metrics
    assert not re.search(r'voyagent_api_requests_total\{[^}]*status="5\d\d"', metrics)
    output = server.read_output()
    assert "db_unavailable" not in output and "Traceback" not in output


def test_a_malformed_request_line_is_400_json_logged_without_traceback(server):
    with _connect(server) as sock:
        sock.sendall(b"GARBAGE\x01 / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = _read_until_eof(sock)
    assert b" 400 Bad Request\r\n" in answer.split(b"\r\n", 1)[0] + b"\r\n"
    assert answer.endswith(b'{"detail":"Bad Request"}')
    line = server.wait_for_output(r".* voyagent\.http .*bad HTTP request from 127\.0\.0\.1.*")[0].group(0)
    assert " INFO " in line
    output = server.read_output()
    assert "Traceback" not in output and " ERROR " not in output


@pytest.mark.parametrize("value", ["0", "601", "ten", "1.5"])
def test_the_client_timeout_setting_is_an_integer_from_1_to_600(value):
    with pytest.raises(ConfigError) as caught:
        load_settings({"VOYAGENT_CLIENT_TIMEOUT_SECONDS": value})
    assert caught.value.variable == "VOYAGENT_CLIENT_TIMEOUT_SECONDS"
    assert load_settings({}).client_timeout == 30
    assert load_settings({"VOYAGENT_CLIENT_TIMEOUT_SECONDS": "600"}).client_timeout == 600
