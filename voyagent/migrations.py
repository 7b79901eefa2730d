"""Apply schema.sql (version 0001) and sql/migrations/NNNN_*.sql once each, under an advisory lock."""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg

from voyagent import resources

log = logging.getLogger("voyagent.migrations")

# Any constant works; it only has to be the same for every voyagent process on one database.
ADVISORY_LOCK_KEY = 0x766F7961  # "voya"
BASELINE_VERSION = "0001"

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version varchar(64) PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


def discover(schema: Path | None = None, directory: Path | None = None) -> list[tuple[str, Path]]:
    """(version, file) pairs in lexical order: the baseline first, then numbered migrations."""
    files = [(BASELINE_VERSION, schema or resources.schema_path())]
    folder = directory or resources.migrations_dir()
    if folder.is_dir():
        for path in sorted(folder.glob("*.sql")):
            version = path.name.split("_", 1)[0]
            if not version.isdigit() or version <= BASELINE_VERSION:
                raise RuntimeError(f"migration {path.name} must start with a number above {BASELINE_VERSION}")
            files.append((version, path))
    versions = [v for v, _ in files]
    if len(set(versions)) != len(versions):
        raise RuntimeError("two migrations share a version number")
    return files


async def migrate(conn: asyncpg.Connection, files: list[tuple[str, Path]] | None = None) -> list[str]:
    """Apply pending migrations, each in its own transaction; concurrent callers wait on the lock."""
    files = discover() if files is None else files
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, path in files:
            if version in done:
                continue
            sql = path.read_text(encoding="utf-8")
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            log.info("applied migration version=%s file=%s", version, path.name)
            applied_now.append(version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    return applied_now


async def migrate_dsn(dsn: str) -> list[str]:
    """Connect, migrate, disconnect (used by ``voyagent migrate`` and before workers start)."""
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()
