"""Supervised workers (operations.md §1.2) through the real ``voyagent serve --workers 2``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request

import pytest

from tests.conftest import TEST_SECRET
from tests.server_process import ServerProcess, pid_alive
from voyagent.supervisor import MAX_DELAY_SECONDS, describe_exit, restart_delay

SERVING = r"worker pid=(\d+) serving"
MAX_LOOP_REQUESTS = 5000  # the load loop stops by itself even if the test never tells it to


class RequestLoop(threading.Thread):
    """``GET /health`` on a fresh connection, again and again, counting what succeeded and what failed."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.ok = 0
        self.failed: list[str] = []
        self.stop = threading.Event()
        self.progress = threading.Condition()

    def run(self) -> None:
        for _ in range(MAX_LOOP_REQUESTS):
            if self.stop.is_set():
                return
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=10) as response:
                    assert response.status == 200
                self.ok += 1
            except Exception as exc:  # noqa: BLE001 - every failure is recorded and asserted on
                self.failed.append(repr(exc))
            with self.progress:
                self.progress.notify_all()

    def wait_for_successes(self, count: int) -> None:
        with self.progress:
            assert self.progress.wait_for(lambda: self.ok >= count or not self.is_alive(), timeout=120)
        assert self.ok >= count, self.failed[-5:]


@pytest.fixture
def two_workers_env(database, redis_url, redis_prefix) -> dict[str, str]:
    return {"VOYAGENT_DB_URL": database.dsn, "VOYAGENT_AUTH_SECRET": TEST_SECRET, "VOYAGENT_REDIS_URL": redis_url,
            "VOYAGENT_REDIS_PREFIX": redis_prefix, "VOYAGENT_WORKERS": "2"}


def test_a_worker_killed_under_load_is_logged_and_replaced_while_requests_keep_succeeding(two_workers_env,
                                                                                         tmp_path):
    server = ServerProcess(two_workers_env, output=tmp_path / "server.log").start()
    loop = RequestLoop(server.url)
    try:
        first = {int(m.group(1)) for m in server.wait_for_output(SERVING, count=2)}
        assert len(first) == 2 and all(pid_alive(pid) for pid in first)
        loop.start()
        loop.wait_for_successes(50)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        server.wait_for_output(rf"WARNING voyagent\.supervisor .*worker \d \(pid {victim}\) killed by signal SIGKILL")
        serving = [int(m.group(1)) for m in server.wait_for_output(SERVING, count=3)]
        replacement = serving[2]
        assert replacement not in first
        server.wait_for_output(rf"worker \d started again as pid {replacement}")
        assert {pid for pid in serving if pid_alive(pid)} == (first - {victim}) | {replacement}  # two again
        loop.wait_for_successes(loop.ok + 50)
    finally:
        loop.stop.set()
        loop.join(timeout=60)
        code, output = server.stop()
    # Only the request the killed worker was serving, if any, can fail; everything else succeeded.
    assert len(loop.failed) <= 1, loop.failed
    assert code == 0, output[-3000:]


def test_all_workers_failing_at_start_make_the_parent_exit_non_zero(two_workers_env):
    with socket.socket() as blocker:  # holds the port without SO_REUSEPORT: no worker can listen
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        env = {**two_workers_env, "VOYAGENT_PORT": str(port), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        result = subprocess.run([sys.executable, "-m", "voyagent", "serve"], env=env, capture_output=True,
                                text=True, timeout=180)
    assert result.returncode != 0
    assert "no worker stays up" in result.stderr
    assert result.stderr.count("cannot serve") >= 2  # each worker said why, in one line
    assert "Traceback" not in result.stderr


def test_restart_delays_double_up_to_a_minute():
    assert [restart_delay(n) for n in range(9)] == [0, 1, 2, 4, 8, 16, 32, MAX_DELAY_SECONDS, MAX_DELAY_SECONDS]


def test_exit_descriptions_name_the_signal_or_the_status():
    assert describe_exit(-signal.SIGKILL) == "killed by signal SIGKILL"
    assert describe_exit(1) == "exited with status 1"
    assert describe_exit(0) == "exited with status 0"
