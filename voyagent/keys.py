"""Typed keys for every piece of application and request state (no globals anywhere else)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    import asyncio


    import redis.asyncio as aioredis

    from voyagent.config import Settings
    from voyagent.contract import Contract, Operation
    from voyagent.db import Database
    from voyagent.degradation import DependencyState
    from voyagent.metrics import Metrics
    from voyagent.middleware.route_context import Decorate, Pipeline
    from voyagent.pagination import CursorCodec
    from voyagent.principal import Principal
    from voyagent.queries import Queries
    from voyagent.background import BackgroundTasks
    from voyagent.services.api_key_auth import ApiKeyCache
    from voyagent.services.audit import AuditVerifyLimiter
    from voyagent.services.email import Mailer
    from voyagent.services.enquiries import TotalsCache
    from voyagent.services.passwords import PasswordService
    from voyagent.services.ratelimit import BucketResult, RateLimiter
    from voyagent.agent.runtime import TurnRunner
    from voyagent.agent.interface import Backend
    from voyagent.services.event_log import EventLog
    from voyagent.services.frame_hub import FrameHub
    from voyagent.services.token_store import TokenStore
    from voyagent.services.tokens import VerifiedAccessTokens
    from voyagent.services.turn_lease import TurnLeases
    from voyagent.services.turn_lock import TurnLock

# --- application state -------------------------------------------------------------------------
SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
DATABASE: web.AppKey[Database] = web.AppKey("database")
DB_MODE: web.AppKey[str] = web.AppKey("db_mode")  # "external" | "embedded"
REDIS: web.AppKey[aioredis.Redis | None] = web.AppKey("redis")
# Whether PostgreSQL / Redis answer, as this worker last saw it (voyagent/degradation.py).
DB_STATE: web.AppKey[DependencyState] = web.AppKey("db_state")
REDIS_STATE: web.AppKey[DependencyState] = web.AppKey("redis_state")
QUERIES: web.AppKey[Queries] = web.AppKey("queries")
CONTRACT: web.AppKey[Contract] = web.AppKey("contract")
DOCS_HTML: web.AppKey[str] = web.AppKey("docs_html")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
CURSORS: web.AppKey[CursorCodec] = web.AppKey("cursors")
PIPELINE: web.AppKey[Pipeline] = web.AppKey("pipeline")  # what every route's handler is called through
DECORATE: web.AppKey[Decorate] = web.AppKey("decorate")  # the headers every response carries, streams too
ENQUIRY_TOTALS: web.AppKey[TotalsCache] = web.AppKey("enquiry_totals")
# Services of the identity, integrator and work-queue layers.
RATE_LIMITER: web.AppKey[RateLimiter] = web.AppKey("rate_limiter")
TOKEN_STORE: web.AppKey[TokenStore] = web.AppKey("token_store")
ACCESS_TOKENS: web.AppKey[VerifiedAccessTokens] = web.AppKey("access_tokens")
PASSWORDS: web.AppKey[PasswordService] = web.AppKey("passwords")
MAILER: web.AppKey[Mailer] = web.AppKey("mailer")
API_KEY_CACHE: web.AppKey[ApiKeyCache] = web.AppKey("api_key_cache")
AUDIT_LIMITER: web.AppKey[AuditVerifyLimiter] = web.AppKey("audit_limiter")
BACKGROUND: web.AppKey[BackgroundTasks] = web.AppKey("background_tasks")
AUDIT_EXPORTS: web.AppKey[asyncio.Semaphore] = web.AppKey("audit_exports")  # concurrent CSV exports
# Chat sessions: the per-session turn lock and SSE state (Redis when configured, else in-process).
TURN_LOCK: web.AppKey[TurnLock] = web.AppKey("turn_lock")
EVENT_LOG: web.AppKey[EventLog] = web.AppKey("event_log")
TURN_LEASES: web.AppKey[TurnLeases] = web.AppKey("turn_leases")  # a running turn's claim on its session
# The agent turn: the backend, the runner of turns and this worker's fan-out of live frames to open streams.
AGENT_BACKEND: web.AppKey[Backend] = web.AppKey("agent_backend")
TURN_RUNNER: web.AppKey[TurnRunner] = web.AppKey("turn_runner")
FRAME_HUB: web.AppKey[FrameHub] = web.AppKey("frame_hub")

# --- per-request state -------------------------------------------------------------------------
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
OPERATION: web.RequestKey[Operation | None] = web.RequestKey("operation")
PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("principal")
CLIENT_IP: web.RequestKey[str] = web.RequestKey("client_ip")
BODY: web.RequestKey[Any] = web.RequestKey("body")  # parsed and validated JSON body (None when absent)
QUERY: web.RequestKey[dict[str, Any]] = web.RequestKey("query")  # coerced query parameters
RATE_LIMIT_HEADERS: web.RequestKey[dict[str, str] | None] = web.RequestKey("rate_limit_headers")
CREDENTIAL_IP_RESULT: web.RequestKey[BucketResult | None] = web.RequestKey("credential_ip_result")
PRINCIPAL_BUCKET_RESULT: web.RequestKey[BucketResult | None] = web.RequestKey("principal_bucket_result")
