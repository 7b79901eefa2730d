"""Tests of the embedded PostgreSQL manager (operations.md §5.2).

These start real PostgreSQL servers from the bundled binaries (or
VOYAGENT_PG_BIN_DIR); each test stops what it started.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from typing import Iterator

import pytest

asyncpg = pytest.importorskip("asyncpg")

from voyagent.embedded_pg import (  # noqa: E402
    PG_SYSTEM_USER,
    EmbeddedPostgres,
    EmbeddedPostgresError,
    _cluster_processes,
    find_bin_dir,
)
from voyagent.migrations import discover, migrate, migrate_dsn  # noqa: E402

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
def cluster_template() -> Iterator[pathlib.Path]:
    """One initialised cluster (initdb is the slow part: it fsyncs every file),
    copied by the tests that do not exercise initdb itself."""
    data_dir = pathlib.Path(tempfile.mkdtemp(prefix="voyagent-test-template-")) / "data"
    server = EmbeddedPostgres(data_dir, bin_dir=BIN_DIR)
    try:
        server.start()
    finally:
        server.stop()
    yield data_dir / "postgres"
    shutil.rmtree(data_dir.parent, ignore_errors=True)


@pytest.fixture
def pg(pg_tmp_path: pathlib.Path, cluster_template: pathlib.Path):
    """A server for pg_tmp_path/data (cluster copied from the template; as root the
    copy is owned by root, so start() must chown it), stopped at the end."""
    (pg_tmp_path / "data").mkdir()
    shutil.copytree(cluster_template, pg_tmp_path / "data" / "postgres", symlinks=True)
    server = EmbeddedPostgres(pg_tmp_path / "data", bin_dir=BIN_DIR)
    try:
        yield server
    finally:
        server.stop()


def test_start_connect_extensions_restart_persistence(pg_tmp_path):
    data_dir = pg_tmp_path / "data"
    pg = EmbeddedPostgres(data_dir, bin_dir=BIN_DIR)
    try:
        _first_start_and_restart(pg, data_dir)
    finally:
        pg.stop()


def _first_start_and_restart(pg: EmbeddedPostgres, data_dir: pathlib.Path) -> None:
    assert not data_dir.exists()
    dsn = pg.start()
    assert dsn.startswith("postgresql://voyagent_app:")
    assert "@127.0.0.1:" in dsn and dsn.endswith("/voyagent")
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
    assert (one, db, user) == (1, "voyagent", "voyagent_app")
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
    _assert_trusts_nobody(pg)
    passwords = pg.password_file.read_text()

    pg.stop()
    assert not pg.started_here
    assert not _accepts(port)
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    pg.stop()  # second stop is a no-op

    again = EmbeddedPostgres(data_dir, bin_dir=BIN_DIR)
    try:
        dsn2 = again.start()
        assert again.started_here
        assert dsn2.split("@")[0] == dsn.split("@")[0]  # the same generated password
        assert again.password_file.read_text() == passwords
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


def test_stale_postmaster_pid_is_removed(pg: EmbeddedPostgres, pg_tmp_path):
    pgdata = pg_tmp_path / "data" / "postgres"
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


def test_running_server_is_reused_not_stopped(pg: EmbeddedPostgres, pg_tmp_path):
    dsn = pg.start()
    other = EmbeddedPostgres(pg_tmp_path / "data", bin_dir=BIN_DIR)
    assert other.start() == dsn
    assert not other.started_here
    other.stop()
    other.stop()
    assert _fetch(dsn, "SELECT 1") == [1]  # still running
    pg.stop()
    assert not _accepts(_port_of(dsn))


def test_bad_bin_dir_raises(pg_tmp_path):
    empty = pg_tmp_path / "bin"
    empty.mkdir()
    for bad in (pg_tmp_path / "does-not-exist", empty):
        server = EmbeddedPostgres(pg_tmp_path / "data", bin_dir=str(bad))
        with pytest.raises(EmbeddedPostgresError, match="VOYAGENT_PG_BIN_DIR"):
            server.start()
        assert not server.started_here
        server.stop()  # nothing to stop
    assert not (pg_tmp_path / "data" / "postgres").exists()


def test_failed_initdb_leaves_no_half_cluster(pg_tmp_path):
    real = find_bin_dir(BIN_DIR)
    bindir = pg_tmp_path / "bin"
    bindir.mkdir()
    for name in ("pg_ctl", "postgres", "psql"):
        (bindir / name).symlink_to(real / name)
    fake = bindir / "initdb"
    fake.write_text('#!/bin/sh\nif [ "$1" = --version ]; then exec true; fi\n'
                    'mkdir -p "$2/base" && echo boom >&2 && exit 3\n')
    fake.chmod(0o755)

    data_dir = pg_tmp_path / "data"
    server = EmbeddedPostgres(data_dir, bin_dir=str(bindir))
    with pytest.raises(EmbeddedPostgresError, match="initdb failed"):
        server.start()
    assert not (data_dir / "postgres").exists()
    assert not list(data_dir.glob("postgres.init-*"))
    assert "boom" in (data_dir / "postgres.log").read_text()


def test_ctrl_c_while_starting_stops_the_server_started(pg_tmp_path, cluster_template):
    """Ctrl-C (SIGINT) arriving after pg_ctl started the server, while psql provisions it: the server stops."""
    real = find_bin_dir(BIN_DIR)
    bindir = pg_tmp_path / "bin"
    bindir.mkdir()
    for name in ("initdb", "pg_ctl", "postgres"):
        (bindir / name).symlink_to(real / name)
    (bindir / "psql").write_text(f"#!/bin/sh\nkill -INT {os.getpid()}\nexec sleep 60\n")
    (bindir / "psql").chmod(0o755)
    data_dir = pg_tmp_path / "data"
    data_dir.mkdir()
    shutil.copytree(cluster_template, data_dir / "postgres", symlinks=True)
    server = EmbeddedPostgres(data_dir, bin_dir=str(bindir))
    with pytest.raises(KeyboardInterrupt):
        server.start()
    assert not server.started_here and server.dsn is None
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    assert not _cluster_processes(data_dir / "postgres")


def test_long_data_dir_uses_short_socket_dir(pg_tmp_path, cluster_template):
    data_dir = pg_tmp_path / ("x" * 60) / ("y" * 40) / "data"
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



def test_killed_postmaster_with_orphan_backend(pg: EmbeddedPostgres, pg_tmp_path):
    """After SIGKILL of the postmaster the stale postmaster.pid is handled, but
    not while one of its old processes still runs (that would corrupt data)."""
    psutil = pytest.importorskip("psutil")
    import signal
    import time


    pgdata = pg_tmp_path / "data" / "postgres"
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
        other = EmbeddedPostgres(pg_tmp_path / "data", bin_dir=BIN_DIR)
        with pytest.raises(EmbeddedPostgresError, match="still run"):
            other.start()
        assert not other.started_here
    finally:
        child.kill()
    deadline = time.monotonic() + 10
    while _cluster_processes(pgdata):  # the other children exit by themselves
        assert time.monotonic() < deadline, "old postgres processes did not exit"
        time.sleep(0.05)

    pg.stop()  # its server is gone: nothing to stop
    dsn = pg.start()
    assert pg.started_here
    assert _fetch(dsn, "SELECT 1") == [1]


# -- no trust: passwords, the application role, upgrades of earlier data directories ------------------------------

def _no_password_is_refused(**where) -> None:
    async def go() -> None:
        for user in ("voyagent", "voyagent_app", "postgres"):
            with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
                await asyncpg.connect(user=user, database="postgres", passfile="/nonexistent", timeout=10, **where)
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(user="voyagent", database="postgres", password="guess", timeout=10, **where)

    asyncio.run(go())


def _assert_trusts_nobody(pg: EmbeddedPostgres) -> None:
    """scram-sha-256 on every rule, passwords kept 0600, no way in without one (TCP or socket), and the
    application role is an ordinary login role that owns its database."""
    hba = (pg.pgdata / "pg_hba.conf").read_text()
    rules = [line.split() for line in hba.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert rules and all(rule[-1] == "scram-sha-256" for rule in rules), hba
    assert stat.S_IMODE(pg.password_file.stat().st_mode) == 0o600
    _no_password_is_refused(host="127.0.0.1", port=pg.port)
    _no_password_is_refused(host=str(pg.socket_dir), port=pg.port)
    role, db_owner = _fetch(
        pg.dsn,
        "SELECT row(rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin)::text "
        "FROM pg_roles WHERE rolname = current_user",
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()",
    )
    assert (role, db_owner) == ("(f,f,f,f,f,t)", "voyagent_app")


_NOT_OWNED_BY_APP = """
SELECT count(*) FROM (
    SELECT relowner AS owner, relnamespace AS ns, 'pg_class'::regclass AS classid, oid FROM pg_class
     WHERE relkind IN ('r', 'p', 'S', 'v', 'm', 'i')
    UNION ALL SELECT typowner, typnamespace, 'pg_type'::regclass, oid FROM pg_type WHERE typtype IN ('e', 'd')
    UNION ALL SELECT proowner, pronamespace, 'pg_proc'::regclass, oid FROM pg_proc) AS o
 WHERE ns = 'public'::regnamespace AND owner <> 'voyagent_app'::regrole
   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = o.classid AND d.objid = o.oid AND d.deptype = 'e')
"""


def _assert_app_owns_everything(dsn: str) -> None:
    not_owned, tables, enums, functions, migrations_owner = _fetch(
        dsn,
        _NOT_OWNED_BY_APP,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
        "SELECT count(*) FROM pg_type WHERE typtype = 'e' AND typowner = 'voyagent_app'::regrole",
        "SELECT count(*) FROM pg_proc WHERE proowner = 'voyagent_app'::regrole",
        "SELECT tableowner FROM pg_tables WHERE tablename = 'schema_migrations'",
    )
    assert not_owned == 0
    assert tables > 10 and enums > 5 and functions > 0 and migrations_owner == "voyagent_app"


def test_the_application_role_migrates_and_owns_the_schema(pg: EmbeddedPostgres):
    """schema.sql's CREATE EXTENSION (trusted extensions), the advisory lock and every migration run as
    voyagent_app, which then owns all it made."""
    dsn = pg.start()
    _assert_trusts_nobody(pg)
    assert asyncio.run(migrate_dsn(dsn)) == [version for version, _ in discover()]
    assert asyncio.run(migrate_dsn(dsn)) == []
    _assert_app_owns_everything(dsn)
    extensions = _fetch(dsn, "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension")[0]
    assert "btree_gin" in extensions and "pg_trgm" in extensions


# The pg_hba.conf versions before the scram change wrote.
_OLD_HBA = """\
# Written by voyagent: trust authentication, local connections only.
local   all             all                                     trust
host    all             all             127.0.0.1/32            trust
host    all             all             ::1/128                 trust
local   replication     all                                     trust
host    replication     all             127.0.0.1/32            trust
host    replication     all             ::1/128                 trust
"""


def _as_earlier_versions(program: str, *args: str) -> None:
    """Run a PostgreSQL program as the earlier versions did (as voyagent-pg when root)."""
    as_user = {"user": PG_SYSTEM_USER, "group": PG_SYSTEM_USER, "extra_groups": []} if os.geteuid() == 0 else {}
    subprocess.run([str(find_bin_dir(BIN_DIR) / program), *args], cwd="/", check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, timeout=120, **as_user)


def _old_style_data_dir(data_dir: pathlib.Path) -> int:
    """Make a data directory the way versions before the scram change did (trust rules, no password file, the
    application connecting as the superuser, which so owns every table), fill it, leave its server running on
    the returned port."""
    pgdata, run = data_dir / "postgres", data_dir / "run"
    for directory in (pgdata, run):
        directory.mkdir(parents=True, mode=0o700)
        if os.geteuid() == 0:
            entry = pwd.getpwnam(PG_SYSTEM_USER)
            os.chown(directory, entry.pw_uid, entry.pw_gid)
    if os.geteuid() == 0:
        for directory in (data_dir, *data_dir.parents):
            directory.chmod(directory.stat().st_mode | stat.S_IXOTH)
    _as_earlier_versions("initdb", "-D", str(pgdata), "--encoding=UTF8", "--locale=C",
                         "--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--username=voyagent",
                         "--auth=trust")
    (pgdata / "pg_hba.conf").write_text(_OLD_HBA)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _as_earlier_versions("pg_ctl", "start", "-D", str(pgdata), "-w",
                         "-o", f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={run}")
    superuser = f"postgresql://voyagent@127.0.0.1:{port}"
    _execute(f"{superuser}/postgres", "CREATE DATABASE voyagent OWNER voyagent ENCODING 'UTF8' TEMPLATE template0")
    asyncio.run(migrate_dsn(f"{superuser}/voyagent"))
    _execute(f"{superuser}/voyagent", "INSERT INTO tenants (id, display_name) "
                                      "VALUES ('00000000-0000-0000-0000-000000000001', 'Agence d''Été')")
    return port


def _stop_old_server(data_dir: pathlib.Path) -> None:
    if (data_dir / "postgres" / "postmaster.pid").exists():
        _as_earlier_versions("pg_ctl", "stop", "-D", str(data_dir / "postgres"), "-m", "fast", "-w")


def _assert_upgraded(pg: EmbeddedPostgres, pg_tmp_path: pathlib.Path) -> None:
    _assert_trusts_nobody(pg)
    _assert_app_owns_everything(pg.dsn)
    # schema.sql's CREATE EXTENSION still passes for the extensions the superuser created.
    _execute(pg.dsn, "CREATE EXTENSION IF NOT EXISTS pg_trgm; CREATE EXTENSION IF NOT EXISTS btree_gin")
    _execute(pg.dsn, "INSERT INTO tenants (id, display_name) VALUES ('00000000-0000-0000-0000-000000000002', 'B')")
    names = _fetch(pg.dsn, "SELECT string_agg(display_name, '|' ORDER BY id) FROM tenants")[0]
    assert names == "Agence d'Été|B"
    # A later migration altering an old table runs as the application role (it needs to own the table).
    folder = pg_tmp_path / "later"
    folder.mkdir(exist_ok=True)
    (folder / "9999_after_upgrade.sql").write_text("ALTER TABLE tenants ADD COLUMN upgraded boolean;")

    async def later() -> list[str]:
        conn = await asyncpg.connect(pg.dsn)
        try:
            return await migrate(conn, discover() + discover(directory=folder)[1:])
        finally:
            await conn.close()

    assert asyncio.run(later()) == ["9999"]


def test_old_style_data_dir_is_upgraded_in_place(pg_tmp_path, cluster_template):
    data_dir = pg_tmp_path / "data"
    _old_style_data_dir(data_dir)
    _stop_old_server(data_dir)
    pg = EmbeddedPostgres(data_dir, bin_dir=BIN_DIR)
    try:
        pg.start()
        assert pg.started_here
        _assert_upgraded(pg, pg_tmp_path)
    finally:
        pg.stop()
    passwords = pg.password_file.read_text()
    again = EmbeddedPostgres(data_dir, bin_dir=BIN_DIR)
    try:  # the next start has nothing left to upgrade and keeps the passwords and the data
        dsn = again.start()
        assert again.password_file.read_text() == passwords
        assert _fetch(dsn, "SELECT count(*) FROM tenants WHERE upgraded IS NULL") == [2]
    finally:
        again.stop()


def test_old_style_server_still_running_is_upgraded_and_left_running(pg_tmp_path, cluster_template):
    data_dir = pg_tmp_path / "data"
    port = _old_style_data_dir(data_dir)
    try:
        pg = EmbeddedPostgres(data_dir, bin_dir=BIN_DIR)
        pg.start()
        assert not pg.started_here and pg.port == port
        _assert_upgraded(pg, pg_tmp_path)  # pg_hba.conf rewritten and reloaded
        pg.stop()
        assert _accepts(port)
    finally:
        _stop_old_server(data_dir)
