"""What the hosts share, run by the test itself on the network address: PostgreSQL and the load balancer.

Both are the test run's own processes (Redis too: ``tests.private_redis``), never the machine's, so a test may
stop and restart them at will while other test runs use the machine's servers.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import time
import urllib.error
import urllib.request

from tests.server_process import free_port
from voyagent.embedded_pg import EmbeddedPostgres, find_bin_dir

DATABASE = "voyagent"
SUPERUSER = "voyagent"


def pg_bin_dir() -> pathlib.Path:
    """Debian's PostgreSQL programs when ``pg_ctl`` is on PATH (any user may run them), else the wheel's."""
    on_path = shutil.which("pg_ctl")
    return find_bin_dir(pathlib.Path(on_path).resolve().parent if on_path else None)


class NetworkPostgres:
    """A throw-away cluster listening on ``host`` only, at a port kept across restarts; ``trust`` for the
    network's /24 (a private network of the test's own), no durability (fsync off): it holds test data.

    As root the programs run as the embedded database's system user, since PostgreSQL refuses root.
    """

    def __init__(self, directory: pathlib.Path, host: str, subnet: str) -> None:
        self.directory = directory
        self.pgdata = directory / "pgdata"
        self.log_path = directory / "postgres.log"
        self.host = host
        self.subnet = subnet
        self.port = free_port(host)
        self.bin_dir = pg_bin_dir()
        self.run_as = EmbeddedPostgres._system_user() if os.geteuid() == 0 else None

    @property
    def dsn(self) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{DATABASE}"

    def _run(self, program: str, *args: str) -> None:
        options: dict = {}
        if self.run_as is not None:
            options = {"user": self.run_as.pw_uid, "group": self.run_as.pw_gid, "extra_groups": []}
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        result = subprocess.run([str(self.bin_dir / program), *args], capture_output=True, text=True, cwd="/",
                                env=env, timeout=120, **options)
        if result.returncode != 0:
            log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            raise RuntimeError(f"{program} {args[0]} failed: {result.stdout}{result.stderr}\n{log}")

    def create(self) -> "NetworkPostgres":
        """initdb, the listen address, trust for the network, start, and the database."""
        if self.run_as is not None:
            os.chown(self.directory, self.run_as.pw_uid, self.run_as.pw_gid)
        self._run("initdb", "-D", str(self.pgdata), "--encoding=UTF8", "--locale=C", f"--username={SUPERUSER}",
                  "--auth=trust", "--no-sync")
        with open(self.pgdata / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(f"\nlisten_addresses = '{self.host}'\nport = {self.port}\nunix_socket_directories = ''\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n")
        with open(self.pgdata / "pg_hba.conf", "w", encoding="utf-8") as hba:
            hba.write(f"host all all {self.subnet} trust\n")
        self.start()
        self._run("psql", "-X", "-q", "-h", self.host, "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres",
                  "-c", f'CREATE DATABASE "{DATABASE}"')
        return self

    def start(self) -> None:
        self._run("pg_ctl", "start", "-D", str(self.pgdata), "-l", str(self.log_path), "-w", "-t", "60")

    def stop(self, mode: str = "fast") -> None:
        if (self.pgdata / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-D", str(self.pgdata), "-m", mode, "-w", "-t", "60")


HAPROXY_CONFIG = """\
global
    maxconn 4000

defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout http-request 10s
    # A new connection to the host for every request, so its kernel picks one of its workers anew each time
    # (SO_REUSEPORT), and never a pooled one: requests spread over every process of every host.
    option http-server-close
    http-reuse never
    retries 2
    retry-on conn-failure

frontend api
    bind {address}:{port}
    option forwardfor
    default_backend hosts

backend hosts
    balance roundrobin
    option httpchk GET /health
    http-response set-header X-Voyagent-Host %s
{servers}

listen stats
    bind {address}:{stats_port}
    stats enable
    stats uri /stats
"""


class HAProxy:
    """Debian's haproxy in front of the hosts: round-robin, no stickiness, health-checked on ``/health``; it
    names the host that answered in ``X-Voyagent-Host``."""

    def __init__(self, directory: pathlib.Path, address: str, backends: dict[str, str]) -> None:
        self.directory = directory
        self.address = address
        self.port = free_port(address)
        self.stats_port = free_port(address)
        self.backends = backends  # name → "address:port"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def start(self) -> "HAProxy":
        binary = shutil.which("haproxy")
        assert binary is not None
        servers = "\n".join(f"    server {name} {target} check inter 1s fall 3 rise 1"
                            for name, target in self.backends.items())
        config = self.directory / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(address=self.address, port=self.port, stats_port=self.stats_port,
                                                servers=servers))
        log = (self.directory / "haproxy.log").open("w")
        self.process = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.wait_until_every_host_is_up()
        return self

    def server_states(self) -> dict[str, str]:
        """``{"h1": "UP", …}`` from the CSV statistics page."""
        with urllib.request.urlopen(f"http://{self.address}:{self.stats_port}/stats;csv", timeout=5) as response:
            lines = response.read().decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","))) for line in lines[1:] if line]
        return {row["svname"]: row["status"] for row in rows if row["pxname"] == "hosts" and row["svname"]
                in self.backends}

    def wait_until_every_host_is_up(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, "haproxy exited"
            try:
                states = self.server_states()
            except (urllib.error.URLError, OSError):
                states = {}
            if states and all(state == "UP" for state in states.values()) and len(states) == len(self.backends):
                return
            time.sleep(0.1)
        raise AssertionError(f"haproxy does not see every host up: {states}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None
