"""Shared fixtures: a fresh PostgreSQL database per run (local server, else embedded), a Redis key
prefix per run, and ``app → client → tenant/user → token`` builders. No mocks of Postgres or Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import shutil
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
from voyagent.keys import BACKGROUND
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


@pytest.fixture
def pg_tmp_path() -> Iterator[Path]:
    """A fresh directory for an embedded PostgreSQL's data, removed afterwards. Not under pytest's base directory:
    as root the server runs as ``voyagent-pg``, which must traverse every parent, and pytest sessions (other
    runs on the same machine included) chmod that base back to 0700."""
    path = Path(tempfile.mkdtemp(prefix="voyagent-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def _as_admin(admin_dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _create_database(admin_dsn: str, name: str) -> str:
    await _as_admin(admin_dsn, f'CREATE DATABASE "{name}"')
    return admin_dsn.rsplit("/", 1)[0] + f"/{name}"


async def _drop_database(admin_dsn: str, name: str) -> None:
    await _as_admin(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    """A superuser DSN: the local server, else an embedded PostgreSQL started for this run."""
    if _reachable("127.0.0.1", 5432) or "VOYAGENT_TEST_PG_ADMIN_URL" in os.environ:
        yield LOCAL_PG_ADMIN
        return
    from voyagent.embedded_pg import EmbeddedPostgres

    embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="voyagent-test-pg-")))
    embedded.start()
    try:
        yield embedded.superuser_dsn  # test databases are created, migrated and dropped as the superuser
    finally:
        embedded.stop()
        shutil.rmtree(embedded.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def database(pg_admin_dsn: str) -> Iterator[TestDatabase]:
    """A migrated database of its own for this run, dropped afterwards."""
    name = f"voyagent_test_{RUN_ID}"
    dsn = asyncio.run(_create_database(pg_admin_dsn, name))
    try:
        asyncio.run(migrate_dsn(dsn))
        yield TestDatabase(dsn=dsn, mode="external" if pg_admin_dsn == LOCAL_PG_ADMIN else "embedded")
    finally:
        asyncio.run(_drop_database(pg_admin_dsn, name))


@pytest.fixture
async def empty_database(pg_admin_dsn: str) -> AsyncIterator[str]:
    """The DSN of a database of one test's own, not even migrated (the migration tests start from nothing)."""
    name = f"voyagent_test_{RUN_ID}_{secrets.token_hex(3)}"
    dsn = await _create_database(pg_admin_dsn, name)
    try:
        yield dsn
    finally:
        await _drop_database(pg_admin_dsn, name)


@pytest.fixture
async def fresh_database(empty_database: str) -> str:
    """The DSN of an empty, migrated database for one test (the demo needs one nobody else writes to)."""
    await migrate_dsn(empty_database)
    return empty_database


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


async def wait_until(condition: Callable[[], Any], *, what: str, timeout: float = 10.0) -> None:
    """Poll ``condition`` (sync or async) until it is true: waiting for an event, with a generous deadline
    that only a failure ever reaches."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.005)


async def drain_background(client: TestClient) -> None:
    """Wait for the work the server spawned after its responses so far (e.g. ``last_used_at`` touches): an
    event to wait for, so a test can then assert what that work did, or did not, write."""
    await client.app[BACKGROUND].drain()


@pytest.fixture
async def db(database: TestDatabase) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection for arranging and checking rows."""
    conn = await asyncpg.connect(database.dsn)
    yield conn
    await conn.close()


def unique_email(label: str = "user") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}@example.com"


@dataclasses.dataclass
class User:
    """A user arranged directly in the database, with a valid access token."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    role: str
    token: str
    password: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


MakeUser = Callable[..., Awaitable[User]]


@pytest.fixture
def make_user(db: asyncpg.Connection, settings: Settings) -> MakeUser:
    """Create a user (and, unless ``tenant_id`` is given, a new tenant with default settings)."""
    from argon2 import PasswordHasher

    from voyagent.ids import new_id
    from voyagent.services.tokens import mint_access_token

    async def build(role: str = "agency_admin", tenant_id: uuid.UUID | None = None, *, verified: bool = True,
                    password: str | None = None, email: str | None = None,
                    agency_name: str = "Test Agency") -> User:
        if tenant_id is None:
            tenant_id = new_id()
            await db.execute("INSERT INTO tenants (id, display_name) VALUES ($1, $2)", tenant_id, agency_name)
            await db.execute("INSERT INTO tenant_settings (tenant_id) VALUES ($1)", tenant_id)
        user_id = new_id()
        email = (email or unique_email(role)).lower()
        password_hash = None
        if password is not None:
            hasher = PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_cost,
                                    parallelism=settings.argon2_parallelism)
            password_hash = hasher.hash(password)
        await db.execute(
            "INSERT INTO users (id, tenant_id, email, display_name, role, password_hash, email_verified) "
            "VALUES ($1, $2, $3, $4, $5::user_role, $6, $7)",
            user_id, tenant_id, email, f"{role.title()} Person", role, password_hash, verified)
        token, _, _ = mint_access_token(settings, user_id=user_id, tenant_id=tenant_id, role=role, email=email)
        return User(id=user_id, tenant_id=tenant_id, email=email, role=role, token=token, password=password)

    return build


@pytest.fixture
async def admin(make_user: MakeUser) -> User:
    """An agency_admin of a fresh tenant."""
    return await make_user("agency_admin")


@dataclasses.dataclass
class ApiKey:
    """An API key arranged directly in the database (any creator, any state), with its plaintext."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    prefix: str
    key: str
    scopes: list[str]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


MakeApiKey = Callable[..., Awaitable[ApiKey]]


@pytest.fixture
def make_api_key(db: asyncpg.Connection) -> MakeApiKey:
    """Create a key for ``creator`` (a ``User``), e.g. ``make_api_key(admin, ["audit:read"])``."""
    from voyagent.ids import new_id
    from voyagent.services.api_key_auth import generate_key, hash_key
    from voyagent.services.scopes import canonical_scopes

    async def build(creator: User, scopes: list[str] | None = None, *, name: str = "test key",
                    expires_in: float | None = None, revoked: bool = False) -> ApiKey:
        key, prefix = generate_key()
        stored = canonical_scopes(scopes)
        key_id = new_id()
        await db.execute(
            "INSERT INTO api_keys (id, tenant_id, created_by_user_id, name, prefix, key_hash, scopes, expires_at,"
            " revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7,"
            " CASE WHEN $8::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $8::float8) END,"
            " CASE WHEN $9 THEN now() END)",
            key_id, creator.tenant_id, creator.id, name, prefix, hash_key(key), stored, expires_in, revoked)
        return ApiKey(id=key_id, tenant_id=creator.tenant_id, prefix=prefix, key=key, scopes=stored)

    return build


# --- e-mail: a real SMTP server on a free loopback port ------------------------------------------------


@dataclasses.dataclass
class ReceivedMail:
    """One message the sink accepted: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: Any  # email.message.EmailMessage
    raw: bytes

    @property
    def text(self) -> str:
        return self.message.get_content()

    def link(self, public_url: str = "http://localhost:3000") -> str:
        """The action link: the one body line that starts with the public URL."""
        lines = [line for line in self.text.splitlines() if line.startswith(public_url)]
        assert len(lines) == 1, f"expected exactly one link line, got {lines}"
        return lines[0]

    def token(self, public_url: str = "http://localhost:3000") -> str:
        return self.link(public_url).split("?token=", 1)[1]


class SmtpSink:
    """An aiosmtpd server in its own thread; ``await sink.wait_for(address)`` returns the next mail to it."""

    def __init__(self) -> None:
        import threading

        self.messages: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self.port = 0
        self.controller: Any = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd handler hook
        import email
        import email.policy

        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        with self._lock:
            self.messages.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message, raw))
        return "250 OK"

    def to(self, address: str) -> list[ReceivedMail]:
        with self._lock:
            return [m for m in self.messages if address in m.rcpt_tos]

    async def wait_for(self, address: str, count: int = 1, timeout: float = 5.0) -> ReceivedMail:
        """The ``count``-th mail to ``address``, waiting up to ``timeout`` seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            received = self.to(address)
            if len(received) >= count:
                return received[count - 1]
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no mail #{count} to {address} within {timeout}s")
            await asyncio.sleep(0.02)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A real SMTP server on 127.0.0.1 collecting every message; use ``make_client(smtp_url=smtp_sink.url)``."""
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    sink.port = _free_port()
    sink.controller = Controller(sink, hostname="127.0.0.1", port=sink.port, decode_data=False)
    sink.controller.start()
    try:
        yield sink
    finally:
        sink.controller.stop()
