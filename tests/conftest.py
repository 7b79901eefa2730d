"""Shared fixtures: a fresh PostgreSQL database per run (local server, else embedded), a Redis key
prefix per run, and ``app → client → tenant/user → token`` builders. No mocks of Postgres or Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import socket
import tempfile
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from voyagent import resources
from voyagent.app import create_app, load_queries
from voyagent.config import Settings
from voyagent.contract import Contract
from voyagent.migrations import migrate_dsn

LOCAL_PG_ADMIN = os.environ.get("VOYAGENT_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
LOCAL_REDIS = os.environ.get("VOYAGENT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_SECRET = "test-secret-" + "x" * 40
RUN_ID = secrets.token_hex(4)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


@dataclasses.dataclass
class TestDatabase:
    dsn: str
    mode: str


@pytest.fixture(scope="session")
def test_output_dir() -> Path:
    """Where tests leave artefacts (screenshots); VOYAGENT_TEST_OUTPUT or ./test-output."""
    path = Path(os.environ.get("VOYAGENT_TEST_OUTPUT", "test-output")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def database() -> Iterator[TestDatabase]:
    """A migrated database of its own for this run, dropped afterwards."""
    name = f"voyagent_test_{RUN_ID}"
    embedded = None
    admin_dsn = LOCAL_PG_ADMIN
    if not _reachable("127.0.0.1", 5432) and "VOYAGENT_TEST_PG_ADMIN_URL" not in os.environ:
        from voyagent.embedded_pg import EmbeddedPostgres

        embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="voyagent-test-pg-")))
        admin_dsn = embedded.start().rsplit("/", 1)[0] + "/postgres"

    async def create() -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    try:
        asyncio.run(migrate_dsn(dsn))
        yield TestDatabase(dsn=dsn, mode="embedded" if embedded else "external")
    finally:
        asyncio.run(drop())
        if embedded is not None:
            embedded.stop()


@pytest.fixture(scope="session")
def redis_available() -> bool:
    return _reachable("127.0.0.1", 6379) or "VOYAGENT_TEST_REDIS_URL" in os.environ


@pytest.fixture(scope="session")
def redis_prefix(redis_available: bool) -> Iterator[str]:
    """A key prefix of this run's own; every key under it is deleted afterwards."""
    prefix = f"voyagent-test-{RUN_ID}:"
    yield prefix
    if redis_available:
        async def cleanup() -> None:
            client = aioredis.from_url(LOCAL_REDIS)
            try:
                async for key in client.scan_iter(match=f"{prefix}*", count=1000):
                    await client.delete(key)
            finally:
                await client.aclose()

        asyncio.run(cleanup())


@pytest.fixture
def redis_url(redis_available: bool) -> str:
    """The Redis URL; tests that need Redis skip (saying why) where none runs."""
    if not redis_available:
        pytest.skip("no Redis server at 127.0.0.1:6379 (set VOYAGENT_TEST_REDIS_URL); Redis-only test")
    return LOCAL_REDIS


@pytest.fixture(scope="session")
def contract() -> Contract:
    return Contract.from_file(str(resources.openapi_path()))


@pytest.fixture(scope="session")
def queries() -> Any:
    return load_queries()


@pytest.fixture
def settings(database: TestDatabase, redis_prefix: str, tmp_path: Path) -> Settings:
    """Test settings: cheap Argon2 so suites stay fast (the benchmarks use the real cost)."""
    return Settings(db_url=database.dsn, auth_secret=TEST_SECRET, data_dir=tmp_path, redis_prefix=redis_prefix,
                    argon2_time_cost=1, argon2_memory_cost=8192, argon2_parallelism=1)


MakeApp = Callable[..., web.Application]


@pytest.fixture
def make_app(settings: Settings, database: TestDatabase, contract: Contract, queries: Any) -> MakeApp:
    """Build an app with setting overrides, e.g. ``make_app(redis_url=..., max_body_bytes=10)``."""

    def build(**overrides: Any) -> web.Application:
        return create_app(dataclasses.replace(settings, **overrides), dsn=database.dsn, db_mode=database.mode,
                          contract=contract, queries=queries)

    return build


MakeClient = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def make_client(aiohttp_client: Any, make_app: MakeApp) -> MakeClient:
    async def build(**overrides: Any) -> TestClient:
        return await aiohttp_client(make_app(**overrides))

    return build


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient:
    return await make_client()


@pytest.fixture
async def db(database: TestDatabase) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection for arranging and checking rows."""
    conn = await asyncpg.connect(database.dsn)
    yield conn
    await conn.close()


def unique_email(label: str = "user") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}@example.com"
