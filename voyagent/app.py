"""The application factory: one ``create_app``; every long-lived resource lives in a cleanup_ctx."""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from voyagent import resources
from voyagent.agent import backends
from voyagent.agent.gateway import ToolGateway, ToolServices
from voyagent.agent.offer_cache import create_offer_cache
from voyagent.agent.resume import resume
from voyagent.agent.runtime import TurnRunner
from voyagent.agent.sandbox import SandboxSupplier
from voyagent.background import BackgroundTasks
from voyagent.config import Settings
from voyagent.contract import Contract
from voyagent.db import Database
from voyagent.degradation import DependencyState
from voyagent.docs_page import render_docs_html
from voyagent.keys import (
    ACCESS_TOKENS,
    AGENT_BACKEND,
    API_KEY_CACHE,
    AUDIT_EXPORTS,
    AUDIT_LIMITER,
    BACKGROUND,
    CONTRACT,
    CURSORS,
    DB_MODE,
    DATABASE,
    DB_STATE,
    DOCS_HTML,
    ENQUIRY_TOTALS,
    EVENT_LOG,
    FRAME_HUB,
    MAILER,
    METRICS,
    PASSWORDS,
    QUERIES,
    RATE_LIMITER,
    REDIS,
    REDIS_STATE,
    SETTINGS,
    TOKEN_STORE,
    TURN_LEASES,
    TURN_LOCK,
    TURN_RUNNER,
)
from voyagent.metrics import Metrics
from voyagent.middleware import setup_middlewares
from voyagent.pagination import CursorCodec
from voyagent.queries import Queries
from voyagent.redis_pool import connection_pool
from voyagent.routes import setup_routes
from voyagent.services.api_key_auth import ApiKeyCache
from voyagent.services.audit import AuditVerifyLimiter
from voyagent.services.enquiries import TotalsCache
from voyagent.services.email import Mailer
from voyagent.services.identity import warn_if_verification_skipped
from voyagent.services.passwords import PasswordService
from voyagent.services.ratelimit import RateLimiter
from voyagent.services.event_log import create_event_log
from voyagent.services.frame_hub import FrameHub
from voyagent.services.token_store import create_token_store
from voyagent.services.tokens import VerifiedAccessTokens
from voyagent.services.turn_lease import create_turn_leases
from voyagent.services.turn_lock import create_turn_lock
from voyagent.services.turn_quota import create_turn_quota

log = logging.getLogger("voyagent.app")

# Header fields up to 16 KiB each are accepted (README, Request validation), with room for the name.
MAX_FIELD_SIZE = 16 * 1024 + 1024
RUNNER_KWARGS = {"max_field_size": MAX_FIELD_SIZE, "max_line_size": MAX_FIELD_SIZE, "access_log": None}


def load_queries() -> Queries:
    """Every named query of sql/, failing fast when the code calls one that does not exist."""
    queries = Queries.from_directory(resources.sql_dir())
    queries.require(resources.query_names_used())
    return queries


def create_app(settings: Settings, *, dsn: str, db_mode: str = "external", contract: Contract | None = None,
               queries: Queries | None = None) -> web.Application:
    """Build the application for an already-migrated database at ``dsn``."""
    app = web.Application(client_max_size=settings.max_body_bytes, handler_args=RUNNER_KWARGS)
    contract = contract or Contract.from_file(str(resources.openapi_path()))
    app[SETTINGS] = settings
    app[DB_MODE] = db_mode
    app[CONTRACT] = contract
    app[QUERIES] = queries or load_queries()
    app[DOCS_HTML] = render_docs_html(contract, base_path=settings.base_path)
    app[METRICS] = Metrics(settings.version, settings.git_sha)
    # A CSV export holds a pooled connection while a (possibly slow) client reads: at most half the pool.
    app[AUDIT_EXPORTS] = asyncio.Semaphore(max(1, settings.db_pool_max // 2))
    app[ACCESS_TOKENS] = VerifiedAccessTokens(settings)
    app[CURSORS] = CursorCodec(settings.auth_secret)
    app[ENQUIRY_TOTALS] = TotalsCache()
    app[DB_STATE] = DependencyState("postgresql")
    app[REDIS_STATE] = DependencyState("redis")

    async def database(app: web.Application) -> AsyncIterator[None]:
        app[DATABASE] = await Database.connect(dsn, settings.db_pool_min, settings.db_pool_max, app[DB_STATE])
        yield
        await app[DATABASE].close()

    async def redis_client(app: web.Application) -> AsyncIterator[None]:
        client = None
        if settings.redis_url is not None:
            client = aioredis.Redis.from_pool(connection_pool(settings.redis_url))
        app[REDIS] = client
        app[RATE_LIMITER] = RateLimiter(client, settings.redis_prefix, app[REDIS_STATE])
        app[AUDIT_LIMITER] = AuditVerifyLimiter(client, settings.redis_prefix, redis_state=app[REDIS_STATE])
        app[API_KEY_CACHE] = ApiKeyCache(client, settings.redis_prefix, redis_state=app[REDIS_STATE])
        app[TURN_LOCK] = create_turn_lock(client, settings.redis_prefix, settings.turn_timeout, app[REDIS_STATE])
        app[EVENT_LOG] = create_event_log(client, settings.redis_prefix, settings.sse_replay_buffer_cap,
                                          settings.turn_timeout, app[REDIS_STATE])
        app[TURN_LEASES] = create_turn_leases(app[TURN_LOCK], app[EVENT_LOG], app[REDIS_STATE])
        yield
        if client is not None:
            await client.aclose()

    async def background_tasks(app: web.Application) -> AsyncIterator[None]:
        app[BACKGROUND] = BackgroundTasks()
        yield
        await app[BACKGROUND].close()  # before the pool and Redis close (cleanup runs in reverse order)

    async def identity_services(app: web.Application) -> AsyncIterator[None]:
        app[TOKEN_STORE] = create_token_store(app[REDIS], settings.redis_prefix, app[REDIS_STATE])
        app[PASSWORDS] = await PasswordService.start(settings)
        app[MAILER] = Mailer(settings, app[METRICS])
        warn_if_verification_skipped(settings)
        yield
        app[PASSWORDS].close()

    if settings.agent_backend not in ("offline", "anthropic"):
        backends.load_factory(settings.agent_backend)  # a bad value stops start-up here, naming the variable

    async def agent_runtime(app: web.Application) -> AsyncIterator[None]:
        db, sql, metrics, redis = app[DATABASE], app[QUERIES], app[METRICS], app[REDIS]
        # The LLM backend's requests to the provider go through one client session per worker.
        http = aiohttp.ClientSession() if settings.agent_backend == "anthropic" else None
        backend = app[AGENT_BACKEND] = backends.create_backend(settings, db, sql, http)
        tools = ToolServices(database=db, sql=sql, supplier=SandboxSupplier(settings.sandbox_latency_ms),
                             offers=create_offer_cache(redis, settings.redis_prefix, settings.offer_ttl,
                                                       app[REDIS_STATE]),
                             approval_ttl_seconds=settings.approval_ttl,
                             count_tool_call=lambda tool, outcome: metrics.tool_calls.labels(tool, outcome).inc())
        hub = app[FRAME_HUB] = FrameHub(app[EVENT_LOG], app[REDIS_STATE])
        app[TURN_RUNNER] = TurnRunner(
            database=db, sql=sql, leases=app[TURN_LEASES], hub=hub,
            quota=create_turn_quota(redis, settings.redis_prefix, app[REDIS_STATE]), backend=backend,
            gateway_factory=lambda context, emit: ToolGateway(tools, context, emit), resume=resume,
            count_turn=lambda name, outcome: metrics.agent_turns.labels(name, outcome).inc(),
            turn_timeout=settings.turn_timeout)
        await app[TURN_LEASES].mark_epoch()
        yield
        await app[TURN_LEASES].close()
        await hub.close()
        if http is not None:
            await http.close()

    async def end_turns_and_streams(app: web.Application) -> None:
        """operations.md §1.4: running turns get 10 s, then end with turn_timeout; then every stream closes."""
        if TURN_RUNNER in app:
            await app[TURN_RUNNER].shutdown()
            await app[FRAME_HUB].close()

    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(redis_client)
    app.cleanup_ctx.append(identity_services)
    app.cleanup_ctx.append(background_tasks)
    app.cleanup_ctx.append(agent_runtime)
    app.on_shutdown.append(end_turns_and_streams)
    setup_middlewares(app, settings)
    setup_routes(app, contract, settings.base_path)
    return app
