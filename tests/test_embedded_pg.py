"""Tests of the embedded PostgreSQL manager (operations.md §5.2).

These start real PostgreSQL servers from the bundled binaries (or
VOYAGENT_PG_BIN_DIR); each test stops what it started.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import socket
import stat
import subprocess
import sys

import pytest

asyncpg = pytest.importorskip("asyncpg")

from voyagent.embedded_pg import (  # noqa: E402
    EmbeddedPostgres,
    EmbeddedPostgresError,
    find_bin_dir,
)

pytestmark = pytest.mark.embedded

BIN_DIR = os.environ.get("VOYAGENT_PG_BIN_DIR") or None

try:
    find_bin_dir(BIN_DIR)
except EmbeddedPostgresError as exc:  # pragma: no cover
    pytest.skip(f"no PostgreSQL binaries: {exc}", allow_module_level=True)


def _fetch(dsn: str, *queries: str) -> list:
    async def go() -> list:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            return [await conn.fetchval(q) for q in queries]
        finally:
            await conn.close()

    return asyncio.run(go())


def _execute(dsn: str, sql: str) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


def _port_of(dsn: str) -> int:
    return int(dsn.rsplit(":", 1)[1].split("/", 1)[0])


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_fake_pidfile(pgdata: pathlib.Path, pid: int) -> None:
    path = pgdata / "postmaster.pid"
    path.write_text(
        f"{pid}\n{pgdata}\n1700000000\n5432\n/tmp\n127.0.0.1\n  1234567     65536\nready   \n"
    )


@pytest.fixture(scope="module")
def cluster_template(tmp_path_factory) -> pathlib.Path:
    """One initialised cluster (initdb is the slow part: it fsyncs every file),
    copied by the tests that do not exercise initdb itself."""
    data_dir = tmp_path_factory.mktemp("template") / "data"
    server = EmbeddedPostgres(data_dir, bin_dir=BIN_DIR)
    try:
        server.start()
    finally:
        server.stop()
    return data_dir / "postgres"


@pytest.fixture
def pg(tmp_path: pathlib.Path, cluster_template: pathlib.Path):
    """A server for tmp_path/data (cluster copied from the template; as root the
    copy is owned by root, so start() must chown it), stopped at the end."""
    (tmp_path / "data").mkdir()
    shutil.copytree(cluster_template, tmp_path / "data" / "postgres", symlinks=True)
    server = EmbeddedPostgres(tmp_path / "data", bin_dir=BIN_DIR)
    try:
        yield server
    finally:
        server.stop()


def test_start_connect_extensions_restart_persistence(tmp_path):
    data_dir = tmp_path / "data"
    pg = EmbeddedPostgres(data_dir, bin_dir=BIN_DIR)
    try:
        _first_start_and_restart(pg, data_dir)
    finally:
        pg.stop()


def _first_start_and_restart(pg: EmbeddedPostgres, data_dir: pathlib.Path) -> None:
    assert not data_dir.exists()
    dsn = pg.start()
    assert dsn.startswith("postgresql://voyagent@127.0.0.1:")
    assert dsn.endswith("/voyagent")
    assert pg.started_here
    assert pg.start() == dsn  # idempotent

    one, db, user, listen, enc, coll, fsync, maxconn, shbuf = _fetch(
        dsn,
        "SELECT 1",
        "SELECT current_database()",
        "SELECT current_user",
        "SHOW listen_addresses",
        "SHOW server_encoding",
        "SELECT datcollate FROM pg_database WHERE datname = current_database()",
        "SHOW fsync",
        "SHOW max_connections",
        "SHOW shared_buffers",
    )
    assert (one, db, user) == (1, "voyagent", "voyagent")
    assert listen == "127.0.0.1"
    assert (enc, coll) == ("UTF8", "C")
    assert (fsync, maxconn, shbuf) == ("on", "100", "128MB")

    _execute(
        dsn,
        "CREATE EXTENSION pg_trgm; CREATE EXTENSION btree_gin;"
        "CREATE TABLE kept (id int PRIMARY KEY, note text);"
        "INSERT INTO kept VALUES (1, 'survives restart');"
        "CREATE INDEX kept_note_trgm ON kept USING gin (note gin_trgm_ops);",
    )

    # Layout: cluster, log, Unix socket in the data directory; no leftovers.
    assert (data_dir / "postgres" / "PG_VERSION").is_file()
    assert (data_dir / "postgres.log").stat().st_size > 0
    port = _port_of(dsn)
    sock = data_dir / "run" / f".s.PGSQL.{port}"
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert not list(data_dir.glob("postgres.init-*"))
    hba = (data_dir / "postgres" / "pg_hba.conf").read_text()
    rules = [line.split() for line in hba.splitlines() if line.strip() and not line.startswith("#")]
    assert {r[0] for r in rules} == {"local", "host"}
    assert {r[3] for r in rules if r[0] == "host"} == {"127.0.0.1/32", "::1/128"}

    pg.stop()
    assert not pg.started_here
    assert not _accepts(port)
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    pg.stop()  # second stop is a no-op

    again = EmbeddedPostgres(data_dir, bin_dir=BIN_DIR)
    try:
        dsn2 = again.start()
        assert again.started_here
        note, exts = _fetch(
            dsn2,
            "SELECT note FROM kept WHERE id = 1",
            "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension",
        )
        assert note == "survives restart"
        assert "btree_gin" in exts and "pg_trgm" in exts
    finally:
        again.stop()
        again.stop()


def test_stale_postmaster_pid_is_removed(pg: EmbeddedPostgres, tmp_path):
    pgdata = tmp_path / "data" / "postgres"
    pg.start()
    pg.stop()

    # Dead pid (unclean stop).
    _write_fake_pidfile(pgdata, _dead_pid())
    dsn = pg.start()
    assert pg.started_here
    assert _fetch(dsn, "SELECT 1") == [1]
    pg.stop()
    assert not (pgdata / "postmaster.pid").exists()

    # Live pid that is not a postgres for this cluster (pid reuse).
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        _write_fake_pidfile(pgdata, sleeper.pid)
        dsn = pg.start()
        assert pg.started_here
        assert _fetch(dsn, "SELECT 1") == [1]
        pg.stop()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_running_server_is_reused_not_stopped(pg: EmbeddedPostgres, tmp_path):
    dsn = pg.start()
    other = EmbeddedPostgres(tmp_path / "data", bin_dir=BIN_DIR)
    assert other.start() == dsn
    assert not other.started_here
    other.stop()
    other.stop()
    assert _fetch(dsn, "SELECT 1") == [1]  # still running
    pg.stop()
    assert not _accepts(_port_of(dsn))


def test_bad_bin_dir_raises(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    for bad in (tmp_path / "does-not-exist", empty):
        server = EmbeddedPostgres(tmp_path / "data", bin_dir=str(bad))
        with pytest.raises(EmbeddedPostgresError, match="VOYAGENT_PG_BIN_DIR"):
            server.start()
        assert not server.started_here
        server.stop()  # nothing to stop
    assert not (tmp_path / "data" / "postgres").exists()


def test_failed_initdb_leaves_no_half_cluster(tmp_path):
    real = find_bin_dir(BIN_DIR)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("pg_ctl", "postgres"):
        (bindir / name).symlink_to(real / name)
    fake = bindir / "initdb"
    fake.write_text('#!/bin/sh\nif [ "$1" = --version ]; then exec true; fi\n'
                    'mkdir -p "$2/base" && echo boom >&2 && exit 3\n')
    fake.chmod(0o755)

    data_dir = tmp_path / "data"
    server = EmbeddedPostgres(data_dir, bin_dir=str(bindir))
    with pytest.raises(EmbeddedPostgresError, match="initdb failed"):
        server.start()
    assert not (data_dir / "postgres").exists()
    assert not list(data_dir.glob("postgres.init-*"))
    assert "boom" in (data_dir / "postgres.log").read_text()


def test_long_data_dir_uses_short_socket_dir(tmp_path, cluster_template):
    data_dir = tmp_path / ("x" * 60) / ("y" * 40) / "data"
    data_dir.mkdir(parents=True)
    shutil.copytree(cluster_template, data_dir / "postgres", symlinks=True)
    server = EmbeddedPostgres(data_dir, bin_dir=BIN_DIR)
    try:
        dsn = server.start()
        assert _fetch(dsn, "SELECT 1") == [1]
        sock_dir = server.socket_dir
        assert sock_dir is not None and str(sock_dir).startswith("/tmp/")
        assert (sock_dir / f".s.PGSQL.{_port_of(dsn)}").exists()
    finally:
        server.stop()
    assert not sock_dir.exists()



def test_killed_postmaster_with_orphan_backend(pg: EmbeddedPostgres, tmp_path):
    """After SIGKILL of the postmaster the stale postmaster.pid is handled, but
    not while one of its old processes still runs (that would corrupt data)."""
    psutil = pytest.importorskip("psutil")
    import signal
    import time

    from voyagent.embedded_pg import _orphan_backends

    pgdata = tmp_path / "data" / "postgres"
    pg.start()
    postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
    child = postmaster.children()[0]
    child.send_signal(signal.SIGSTOP)  # so it cannot notice its parent's death and exit
    try:
        postmaster.kill()
        deadline = time.monotonic() + 10
        while postmaster.is_running() and postmaster.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "postmaster did not die"
            time.sleep(0.02)
        other = EmbeddedPostgres(tmp_path / "data", bin_dir=BIN_DIR)
        with pytest.raises(EmbeddedPostgresError, match="still run"):
            other.start()
        assert not other.started_here
    finally:
        child.kill()
    deadline = time.monotonic() + 10
    while _orphan_backends(pgdata):  # the other children exit by themselves
        assert time.monotonic() < deadline, "old postgres processes did not exit"
        time.sleep(0.05)

    pg.stop()  # its server is gone: nothing to stop
    dsn = pg.start()
    assert pg.started_here
    assert _fetch(dsn, "SELECT 1") == [1]
