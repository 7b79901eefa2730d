"""Two hosts, each running ``voyagent serve --workers 2``, against one PostgreSQL and one Redis, behind HAProxy.

:class:`Cluster` builds it (:func:`Cluster.build` tears down whatever it made when a step fails) and offers what
the tests observe it with: the pids of every host's workers (from its log), which worker served how many
requests of a route (from the per-process files of prometheus-client's multiprocess mode, which a host's
scrape sums), and the dependency restarts of the chaos test.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import pathlib
import re
import shutil
import signal
import tempfile
import time
import urllib.error
import urllib.request

from prometheus_client.mmap_dict import MmapedDict

from tests.conftest import TEST_SECRET
from tests.multihost.netns import Host, Network
from tests.multihost.shared_services import HAProxy, NetworkPostgres
from tests.private_redis import PrivateRedis
from tests.server_process import ServerProcess, pid_alive

HOST_PORT = 8000  # every host listens on the same port, as separate machines would
WORKERS_PER_HOST = 2
METRICS_TOKEN = "multihost-metrics-token"
SANDBOX_LATENCY_MS = 1500  # a flight search waits this long after its tool_use: streams are cut, Redis restarts, mid-turn
SERVING = re.compile(r"worker pid=(\d+) serving")
RESTARTED = r"worker \d started again as pid (\d+)"


@dataclasses.dataclass
class ApiHost:
    """One host: its namespace, its ``voyagent serve`` and the directory holding its log and metric files."""

    name: str  # as HAProxy names it in X-Voyagent-Host
    netns: Host
    directory: pathlib.Path
    server: ServerProcess

    @property
    def url(self) -> str:
        """The host itself, bypassing the balancer."""
        return self.server.url

    def worker_pids(self) -> set[int]:
        """The workers serving now: every pid that logged ``serving`` and is still alive."""
        pids = {int(match.group(1)) for match in SERVING.finditer(self.server.read_output())}
        return {pid for pid in pids if pid_alive(pid)}

    def wait_for_workers(self, count: int = WORKERS_PER_HOST, timeout: float = 60.0) -> set[int]:
        deadline = time.monotonic() + timeout
        while len(pids := self.worker_pids()) < count:
            assert time.monotonic() < deadline, f"{self.name}: {count} workers not serving:\n" \
                                                f"{self.server.read_output()[-3000:]}"
            time.sleep(0.05)
        return pids

    def requests_by_worker(self, method: str, path: str, statuses: tuple[int, ...]) -> collections.Counter[int]:
        """How many ``method path`` requests answered one of ``statuses`` each worker (pid) of this host counted
        so far: the per-process values a scrape of the host sums."""
        counts: collections.Counter[int] = collections.Counter()
        wanted = [{"method": method, "path": path, "status": str(status)} for status in statuses]
        for directory in self.directory.glob("voyagent-metrics-*"):
            for file in directory.glob("counter_*.db"):
                pid = int(file.stem.rsplit("_", 1)[1])
                for key, value, *_ in MmapedDict.read_all_values_from_file(str(file)):
                    _, sample, labels, _ = json.loads(key)
                    if sample == "voyagent_api_requests_total" and labels in wanted:
                        counts[pid] += value
        return counts

    def scrape(self) -> str:
        """``/internal/metrics`` of this host, with the metrics token (the scraper is not on its loopback)."""
        status, body = self.get("/internal/metrics", {"X-Voyagent-Metrics-Token": METRICS_TOKEN})
        assert status == 200, (status, body[:300])
        return body.decode()

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(f"{self.url}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (urllib.error.URLError, OSError) as error:
            return 0, repr(error).encode()

    def wait_until_healthy(self, probe: str, timeout: float = 90.0) -> None:
        """Until ``/health/<probe>`` answers 200 on this host (the worker that answers is the kernel's choice)."""
        deadline = time.monotonic() + timeout
        while (answer := self.get(f"/health/{probe}"))[0] != 200:
            assert time.monotonic() < deadline, f"{self.name} /health/{probe} stays {answer}"
            time.sleep(0.1)


class Cluster:
    """The whole environment; use :meth:`build` and :meth:`destroy`."""

    def __init__(self) -> None:
        self.directory = pathlib.Path(tempfile.mkdtemp(prefix="voyagent-multihost-"))
        self.directory.chmod(0o755)  # the PostgreSQL system user reaches its own subdirectory through it
        self.network = Network()
        self.postgres: NetworkPostgres | None = None
        self.redis: PrivateRedis | None = None
        self.hosts: list[ApiHost] = []
        self.balancer: HAProxy | None = None

    @classmethod
    def build(cls, host_count: int = 2) -> "Cluster":
        cluster = cls()
        try:
            cluster._build(host_count)
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    def _build(self, host_count: int) -> None:
        network = self.network.create()
        (self.directory / "postgres").mkdir()
        self.postgres = NetworkPostgres(self.directory / "postgres", network.gateway, str(network.subnet)).create()
        redis_binary = shutil.which("redis-server")
        assert redis_binary is not None
        (self.directory / "redis").mkdir()
        self.redis = PrivateRedis(redis_binary, self.directory / "redis", host=network.gateway)
        self.redis.start()
        for number in range(1, host_count + 1):
            netns = network.add_host()
            directory = self.directory / f"h{number}"
            directory.mkdir()
            server = ServerProcess(self._host_env(directory), args=["--workers", str(WORKERS_PER_HOST)],
                                   output=directory / "server.log", wrapper=netns.command(), address=netns.address)
            self.hosts.append(ApiHost(f"h{number}", netns, directory, server))
        with concurrent.futures.ThreadPoolExecutor(len(self.hosts)) as pool:  # both start at once: migrations
            list(pool.map(lambda host: host.server.start(timeout=120), self.hosts))  # run once, under their lock
        for host in self.hosts:
            host.wait_for_workers()
        self.balancer = HAProxy(self.directory, network.gateway,
                                {host.name: f"{host.netns.address}:{HOST_PORT}" for host in self.hosts}).start()

    def _host_env(self, directory: pathlib.Path) -> dict[str, str]:
        assert self.postgres is not None and self.redis is not None
        return {
            "VOYAGENT_HOST": "0.0.0.0", "VOYAGENT_PORT": str(HOST_PORT),
            "VOYAGENT_DB_URL": self.postgres.dsn, "VOYAGENT_REDIS_URL": self.redis.url,
            "VOYAGENT_AUTH_SECRET": TEST_SECRET, "VOYAGENT_METRICS_TOKEN": METRICS_TOKEN,
            "VOYAGENT_TRUSTED_PROXY_HOPS": "1", "VOYAGENT_DATA_DIR": str(directory),
            "TMPDIR": str(directory),  # the host's multiprocess metric files land here (requests_by_worker)
            "VOYAGENT_AUTH_SKIP_EMAIL_VERIFICATION": "true", "VOYAGENT_AUTH_ARGON2_TIME_COST": "1",
            "VOYAGENT_AUTH_ARGON2_MEMORY_COST": "8192", "VOYAGENT_AUTH_ARGON2_PARALLELISM": "1",
            # Tenants are signed up through the balancer from one address, and the chaos traffic of one user is
            # far above 600 requests a minute: those buckets are not what these tests are about.
            "VOYAGENT_RATE_LIMIT_SIGNUP_IP_PER_MINUTE": "0", "VOYAGENT_RATE_LIMIT_USER_PER_MINUTE": "0",
            "VOYAGENT_SANDBOX_LATENCY_MS": str(SANDBOX_LATENCY_MS),
            "VOYAGENT_DB_POOL_MAX": "5",
        }

    @property
    def url(self) -> str:
        assert self.balancer is not None
        return self.balancer.url

    def host(self, name: str) -> ApiHost:
        return next(host for host in self.hosts if host.name == name)

    def workers(self) -> set[tuple[str, int]]:
        """(host name, pid) of every worker serving now."""
        return {(host.name, pid) for host in self.hosts for pid in host.worker_pids()}

    def requests_by_worker(self, method: str, path: str,
                           statuses: tuple[int, ...]) -> collections.Counter[tuple[str, int]]:
        counts: collections.Counter[tuple[str, int]] = collections.Counter()
        for host in self.hosts:
            for pid, count in host.requests_by_worker(method, path, statuses).items():
                counts[(host.name, pid)] += count
        return counts

    # --- chaos -----------------------------------------------------------------------------------------------

    def kill_worker(self, host: ApiHost) -> tuple[int, int]:
        """SIGKILL one worker of ``host``; wait for the supervisor to start its replacement: (victim, new pid)."""
        before = host.wait_for_workers()
        victim = min(before)
        restarts = len(re.findall(RESTARTED, host.server.read_output()))
        os.kill(victim, signal.SIGKILL)
        replacement = int(host.server.wait_for_output(RESTARTED, count=restarts + 1)[-1].group(1))
        deadline = time.monotonic() + 60
        while host.worker_pids() != (before - {victim}) | {replacement}:
            assert time.monotonic() < deadline, f"{host.name}: workers {host.worker_pids()}, expected " \
                                                f"{(before - {victim}) | {replacement}}"
            time.sleep(0.05)
        return victim, replacement

    def restart_redis(self) -> None:
        assert self.redis is not None
        self.redis.stop()
        self.redis.start()
        for host in self.hosts:
            host.wait_until_healthy("redis")

    def restart_postgres(self) -> None:
        assert self.postgres is not None
        self.postgres.stop("fast")
        self.postgres.start()
        for host in self.hosts:
            host.wait_until_healthy("db")

    # --- teardown ----------------------------------------------------------------------------------------------

    def destroy(self, keep_logs_in: pathlib.Path | None = None) -> None:
        """Stop everything this run started, in reverse order, whatever state it is in; copy the logs of the hosts,
        the balancer and PostgreSQL to ``keep_logs_in`` first (replacing those of an earlier run)."""
        if self.balancer is not None:
            with contextlib.suppress(Exception):
                self.balancer.stop()
        for host in self.hosts:
            if host.server.process is not None and host.server.process.poll() is None:
                with contextlib.suppress(Exception):
                    host.server.stop(timeout=40)
        self.network.destroy()  # kills whatever still runs in a host
        if self.redis is not None:
            with contextlib.suppress(Exception):
                self.redis.stop()
        if self.postgres is not None:
            with contextlib.suppress(Exception):
                self.postgres.stop("immediate")
        if keep_logs_in is not None:
            shutil.rmtree(keep_logs_in, ignore_errors=True)
            keep_logs_in.mkdir(parents=True)
            for log in (*self.directory.glob("h*/server.log"), *self.directory.glob("*/postgres.log"),
                        *self.directory.glob("haproxy.log")):
                shutil.copy(log, keep_logs_in / "-".join(log.relative_to(self.directory).parts))
        shutil.rmtree(self.directory, ignore_errors=True)
