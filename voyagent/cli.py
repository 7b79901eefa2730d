"""The ``voyagent`` command: ``serve``, ``migrate`` and ``demo`` (operations.md §1)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
from multiprocessing.process import BaseProcess
from typing import Sequence

from voyagent.config import ConfigError, Settings, ensure_generated_secret, load_settings

log = logging.getLogger("voyagent.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voyagent", description="Voyagent API server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the HTTP server")
    commands.add_parser("migrate", help="apply pending migrations and exit")
    demo = commands.add_parser("demo", help="load the demo agency (once; a second run changes nothing) and print how "
                                            "to sign in (the serve flags say where it will be served)")
    for command in (serve, demo):
        command.add_argument("--host", help="listen address (VOYAGENT_HOST)")
        command.add_argument("--port", type=int, help="listen port (VOYAGENT_PORT)")
        command.add_argument("--workers", type=int, help="worker processes (VOYAGENT_WORKERS)")
    return parser


def _settings_from(args: argparse.Namespace) -> Settings:
    """Environment first; command-line flags override it (validated like the variables)."""
    env = dict(os.environ)
    for flag, variable in (("host", "VOYAGENT_HOST"), ("port", "VOYAGENT_PORT"), ("workers", "VOYAGENT_WORKERS")):
        value = getattr(args, flag, None)
        if value is not None:
            env[variable] = str(value)
    return load_settings(env)


class Database:
    """The database the server uses: the configured DSN, or an embedded PostgreSQL it starts and stops."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded = None
        self.dsn = settings.db_url or ""
        self.mode = "embedded" if settings.embedded_db else "external"

    def start(self) -> str:
        if self.settings.embedded_db:
            from voyagent.embedded_pg import EmbeddedPostgres

            self.embedded = EmbeddedPostgres(self.settings.data_dir, self.settings.pg_bin_dir)
            self.dsn = self.embedded.start()
        return self.dsn

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None


def _prepare(settings: Settings) -> tuple[Settings, Database]:
    """Start-up steps 2–3 (database, migrations), the contract check of step 5 and the backend check of step 6;
    exit on failure."""
    from voyagent.migrations import migrate_dsn

    database = Database(settings)
    try:
        database.start()
        settings = ensure_generated_secret(settings)
        applied = asyncio.run(migrate_dsn(database.dsn))
        if applied:
            log.info("migrations applied: %s", ", ".join(applied))
        from voyagent import resources
        from voyagent.contract import Contract

        Contract.from_file(str(resources.openapi_path()))
        from voyagent.agent import backends

        backends.check(settings)  # step 6: a custom backend that cannot be imported stops the server here
    except BaseException:
        database.stop()
        raise
    return settings, database


def _run_worker(settings: Settings, dsn: str, db_mode: str, reuse_port: bool) -> None:
    """Serve HTTP in this process until SIGTERM/SIGINT (voyagent.http_server)."""
    from voyagent import http_server
    from voyagent.app import create_app

    app = create_app(settings, dsn=dsn, db_mode=db_mode)
    # Everything built so far (contract, validators, the /docs page) lives for the whole process: move it
    # out of the collector's generations so collections stay short under load.
    gc.collect()
    gc.freeze()
    http_server.run(app, settings, reuse_port=reuse_port)


def _worker_process(settings: Settings, dsn: str, db_mode: str) -> None:
    """Entry point of a spawned worker: its own logging; a failure is one ERROR line and a non-zero exit."""
    from voyagent.degradation import describe
    from voyagent.logs import setup_logging

    setup_logging(settings.log_level)
    try:
        _run_worker(settings, dsn, db_mode, reuse_port=True)
    except OSError as exc:  # cannot listen, cannot reach the database at start: the reason is enough
        log.error("worker pid=%d cannot serve: %s", os.getpid(), describe(exc))
        sys.exit(1)
    except Exception:
        log.exception("worker pid=%d failed", os.getpid())
        sys.exit(1)


def _serve(settings: Settings) -> int:
    multiproc_dir = None
    if settings.workers > 1:
        # Must be set before prometheus_client is imported anywhere: values then live in shared files.
        multiproc_dir = tempfile.mkdtemp(prefix="voyagent-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiproc_dir
    settings, database = _prepare(settings)
    from voyagent.http_server import raise_open_files_limit

    raise_open_files_limit()  # before the workers start: they inherit it
    url = f"http://{settings.host}:{settings.port}{settings.base_path}"
    where = f"embedded PostgreSQL in {settings.data_dir.resolve() / 'postgres'}" if database.mode == "embedded" \
        else "external PostgreSQL (VOYAGENT_DB_URL)"
    print(f"voyagent {_version()} serving {url} with {settings.workers} worker(s)", flush=True)
    print(f"  API reference: {url}/docs", flush=True)
    print(f"  data: {where}; local state in {settings.data_dir.resolve()}", flush=True)
    try:
        if settings.workers == 1:
            _run_worker(settings, database.dsn, database.mode, reuse_port=False)
            return 0
        return _run_workers(settings, database, multiproc_dir)
    finally:
        database.stop()
        if multiproc_dir is not None:
            shutil.rmtree(multiproc_dir, ignore_errors=True)


def _run_workers(settings: Settings, database: Database, multiproc_dir: str | None) -> int:
    """N processes share the port with SO_REUSEPORT, supervised (voyagent.supervisor); the exit code."""
    from prometheus_client import multiprocess

    from voyagent.supervisor import Supervisor

    # Workers fork from a server process that imported the application once (never from this parent, which
    # runs a logging thread): a replacement for a dead worker skips a second or more of imports.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["voyagent.cli", "voyagent.app", "voyagent.http_server"])

    def start_worker(index: int) -> BaseProcess:
        process = context.Process(target=_worker_process, args=(settings, database.dsn, database.mode),
                                  name=f"voyagent-worker-{index}")
        process.start()
        return process

    def forget_metrics_of(pid: int) -> None:
        """Live gauges of a dead worker leave the sums; its counters stay counted."""
        multiprocess.mark_process_dead(pid, multiproc_dir)

    return Supervisor(start_worker, settings.workers, on_death=forget_metrics_of).run()


def _migrate(settings: Settings) -> int:
    _, database = _prepare(settings)
    database.stop()
    print("migrations are up to date", flush=True)
    return 0


def _demo(settings: Settings) -> int:
    """Migrate, load the demo agency unless it exists, print where to go and how to sign in."""
    from voyagent.demo import run_demo
    from voyagent.demo.progress import Progress

    settings, database = _prepare(settings)
    try:
        outcome = asyncio.run(run_demo(settings, database.dsn, Progress()))
    finally:
        database.stop()
    url = f"http://{settings.host}:{settings.port}{settings.base_path}"
    if outcome.created:
        made = ", ".join(f"{count} {name}" for name, count in outcome.counts.items())
        print(f"demo agency created: {made}", flush=True)
    else:
        print("the demo agency exists already; nothing was changed", flush=True)
    print(f"  serve it with `voyagent serve`, then open {url}/docs (API reference) — API base {url}", flush=True)
    if outcome.credentials is None:
        print("  its passwords were printed by the run that created it (another data directory)", flush=True)
        return 0
    print("  sign in with POST /auth/sign-in (or \"Authorize\" in /docs) as any of:", flush=True)
    for member in outcome.credentials["members"]:
        print(f"    {member['role']:<16} {member['email']:<36} password {member['password']}"
              f"  ({member['full_name']})", flush=True)
    print(f"  integrator API key (header Authorization: Bearer …): {outcome.credentials['api_key']}", flush=True)
    return 0


def _version() -> str:
    from voyagent import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from voyagent.logs import setup_logging

    try:
        settings = _settings_from(args)
    except ConfigError as exc:
        print(f"voyagent: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    for warning in settings.start_warnings:
        log.warning("configuration: %s", warning)
    try:
        if args.command == "serve":
            return _serve(settings)
        if args.command == "demo":
            return _demo(settings)
        return _migrate(settings)
    except ConfigError as exc:
        print(f"voyagent: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # start-up failure: one clear line, details in the log at DEBUG
        log.debug("start-up failed", exc_info=True)
        print(f"voyagent: cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())



