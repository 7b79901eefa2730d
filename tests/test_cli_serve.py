"""``voyagent serve`` end to end: zero-config embedded PostgreSQL, migrate, workers, graceful stop."""

import asyncio
import json
import signal
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import TEST_SECRET
from tests.server_process import ServerProcess


def _get(url: str) -> tuple[int, dict | str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read().decode()
        try:
            return response.status, json.loads(body)
        except json.JSONDecodeError:
            return response.status, body


def _embedded_server_roles(data_dir: Path) -> set[str]:
    """Roles of the server's connections to its database, seen by the superuser (password from the 0600 file)."""
    password_file = data_dir / "postgres.pgpass"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    port = int((data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[3])

    async def roles() -> set[str]:
        conn = await asyncpg.connect(host="127.0.0.1", port=port, user="voyagent", database="postgres",
                                     passfile=str(password_file))
        try:
            rows = await conn.fetch("SELECT usename FROM pg_stat_activity WHERE datname = 'voyagent'")
            return {row["usename"] for row in rows}
        finally:
            await conn.close()

    return asyncio.run(roles())


@pytest.mark.embedded
def test_zero_config_serve_uses_embedded_postgres_and_stops_it(pg_tmp_path):
    env = {"VOYAGENT_DATA_DIR": str(pg_tmp_path / "data"), "VOYAGENT_DB_URL": "", "VOYAGENT_AUTH_SECRET": "",
           "VOYAGENT_REDIS_URL": ""}
    server = ServerProcess(env, cwd=pg_tmp_path).start(timeout=120)
    try:
        status, body = _get(f"{server.url}/health/db")
        assert status == 200 and body == {"status": "ok", "select_1": 1, "mode": "embedded"}
        assert (pg_tmp_path / "data" / "auth-secret").exists()
        assert (pg_tmp_path / "data" / "postgres" / "PG_VERSION").exists()
        assert _embedded_server_roles(pg_tmp_path / "data") == {"voyagent_app"}
    finally:
        code, output = server.stop(signal.SIGINT)
    assert code == 0, output
    assert f"http://127.0.0.1:{server.port}/docs" in output
    assert "embedded PostgreSQL" in output
    assert not (pg_tmp_path / "data" / "postgres" / "postmaster.pid").exists(), "embedded PostgreSQL left running"
    secret = (pg_tmp_path / "data" / "auth-secret").read_text()
    # A second start reuses the cluster and the generated secret.
    again = ServerProcess(env, cwd=pg_tmp_path).start(timeout=120)
    try:
        assert _get(f"{again.url}/health/db")[0] == 200
    finally:
        code, _ = again.stop()
    assert code == 0
    assert (pg_tmp_path / "data" / "auth-secret").read_text() == secret


def test_migrate_command_applies_and_exits(database):
    result = subprocess.run([sys.executable, "-m", "voyagent", "migrate"], capture_output=True, text=True,
                            env={"VOYAGENT_DB_URL": database.dsn, "VOYAGENT_AUTH_SECRET": TEST_SECRET,
                                 "PATH": "/usr/bin:/bin"}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_unreachable_database_exits_non_zero_with_one_line():
    result = subprocess.run([sys.executable, "-m", "voyagent", "serve"], capture_output=True, text=True,
                            env={"VOYAGENT_DB_URL": "postgresql://nobody@127.0.0.1:1/none",
                                 "VOYAGENT_AUTH_SECRET": TEST_SECRET, "PATH": "/usr/bin:/bin"}, timeout=120)
    assert result.returncode != 0
    assert "cannot start" in result.stderr
    assert "password" not in result.stderr.lower()


def test_two_workers_share_the_port_and_metrics_sum_over_workers(database, redis_url, redis_prefix):
    env = {"VOYAGENT_DB_URL": database.dsn, "VOYAGENT_AUTH_SECRET": TEST_SECRET, "VOYAGENT_REDIS_URL": redis_url,
           "VOYAGENT_REDIS_PREFIX": redis_prefix, "VOYAGENT_WORKERS": "2"}
    with ServerProcess(env) as server:
        requests = 40
        for _ in range(requests):
            assert _get(f"{server.url}/health")[0] == 200
        status, text = _get(f"{server.url}/internal/metrics")
        assert status == 200
        line = next(line for line in text.splitlines()
                    if line.startswith('voyagent_api_requests_total{method="GET",path="/health",status="200"}'))
        # Whatever worker answered each request, one scrape sees them all (+1 for the readiness probe).
        assert float(line.rsplit(" ", 1)[1]) >= requests
        code, output = server.stop()
    assert code == 0, output


def test_more_workers_than_one_need_redis(database):
    result = subprocess.run([sys.executable, "-m", "voyagent", "serve", "--workers", "2"], capture_output=True,
                            text=True, env={"VOYAGENT_DB_URL": database.dsn, "VOYAGENT_AUTH_SECRET": TEST_SECRET,
                                            "PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode != 0
    assert "VOYAGENT_WORKERS" in result.stderr


