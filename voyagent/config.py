"""Settings read from ``VOYAGENT_*`` environment variables, validated once at start-up."""

from __future__ import annotations

import dataclasses
import os
import secrets
from pathlib import Path
from typing import Callable, Mapping, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
AUTH_SECRET_FILE = "auth-secret"


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Every tunable of the server; built by :func:`load_settings`."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    base_path: str = ""
    data_dir: Path = Path("./voyagent-data")
    max_body_bytes: int = 1_048_576
    client_timeout: int = 30
    log_level: str = "INFO"
    cors_origins: tuple[str, ...] = ("http://localhost:3000",)
    public_url: str = "http://localhost:3000"
    trusted_proxy_hops: int = 0
    version: str = "0.0.0-dev"
    git_sha: str = "unknown"

    db_url: str | None = None
    db_pool_min: int = 1
    db_pool_max: int = 10
    pg_bin_dir: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "voyagent:"

    auth_secret: str = ""
    access_ttl: int = 3600
    refresh_ttl: int = 2_592_000
    issuer: str = "voyagent"
    audience: str = "voyagent-api"
    argon2_time_cost: int = 2
    argon2_memory_cost: int = 102_400
    argon2_parallelism: int = 8
    skip_email_verification: bool = False
    verification_ttl: int = 86_400
    password_reset_ttl: int = 3600
    invite_ttl_days: int = 7

    rate_limit_user_per_minute: int = 600
    rate_limit_auth_ip_per_minute: int = 30
    rate_limit_auth_email_per_minute: int = 10
    rate_limit_signup_ip_per_minute: int = 10

    smtp_url: str | None = None
    smtp_from: str = "Voyagent <no-reply@localhost>"
    smtp_timeout: int = 10

    metrics_token: str | None = None
    audit_export_max_rows: int = 100_000

    agent_backend: str = "offline"
    anthropic_api_key: str | None = None
    anthropic_base_url: str = "https://api.anthropic.com"
    agent_model: str = "claude-sonnet-4-5"
    agent_max_tokens: int = 1024
    turn_timeout: int = 120
    approval_ttl: int = 900
    offer_ttl: int = 1800
    sse_heartbeat: int = 15
    sse_replay_buffer_cap: int = 200
    sandbox_latency_ms: int = 0

    # Problems worth a WARNING line at every start (deprecated variables…); logged by the CLI once logging is set.
    start_warnings: tuple[str, ...] = dataclasses.field(default=(), compare=False)

    @property
    def embedded_db(self) -> bool:
        """True when the server runs its own PostgreSQL."""
        return self.db_url is None


class _Reader:
    """Reads typed values from an environment mapping, raising ConfigError with the variable's name."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def text(self, name: str, default: str) -> str:
        value = self.raw(name)
        return default if value is None else value

    def integer(self, name: str, default: int, low: int | None = None, high: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value, 10)
        except ValueError:
            raise ConfigError(name, f"must be an integer, got {value!r}") from None
        if low is not None and number < low:
            raise ConfigError(name, f"must be at least {low}, got {number}")
        if high is not None and number > high:
            raise ConfigError(name, f"must be at most {high}, got {number}")
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(name, f"must be one of true|false|1|0|yes|no|on|off, got {value!r}")

    def choice(self, name: str, default: str, allowed: tuple[str, ...], fold: Callable[[str], str] = str) -> str:
        value = self.raw(name)
        if value is None:
            return default
        folded = fold(value)
        if folded not in allowed:
            raise ConfigError(name, f"must be one of {', '.join(allowed)}, got {value!r}")
        return folded


def _check_url(name: str, value: str | None, schemes: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(name, f"must be a URL with scheme {' or '.join(schemes)}")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ConfigError(name, "has an invalid port") from None
    return value


def _db_url(reader: _Reader) -> str | None:
    value = reader.raw("VOYAGENT_DB_URL")
    if value is None:
        return None
    if value.startswith("postgresql+asyncpg://"):
        value = "postgresql://" + value[len("postgresql+asyncpg://"):]
    return _check_url("VOYAGENT_DB_URL", value, ("postgresql", "postgres"))


MAX_PROXY_HOPS = 10


def _trusted_proxy_hops(reader: _Reader) -> tuple[int, list[str]]:
    """VOYAGENT_TRUSTED_PROXY_HOPS, or its deprecated alias VOYAGENT_TRUST_FORWARDED_FOR (true → 1), and warnings."""
    legacy = reader.boolean("VOYAGENT_TRUST_FORWARDED_FOR", False)
    legacy_set = reader.raw("VOYAGENT_TRUST_FORWARDED_FOR") is not None
    if reader.raw("VOYAGENT_TRUSTED_PROXY_HOPS") is not None:
        hops = reader.integer("VOYAGENT_TRUSTED_PROXY_HOPS", 0, 0, MAX_PROXY_HOPS)
        if legacy_set:
            return hops, ["VOYAGENT_TRUST_FORWARDED_FOR is deprecated and ignored because "
                          f"VOYAGENT_TRUSTED_PROXY_HOPS={hops} is set; remove it"]
        return hops, []
    if not legacy_set:
        return 0, []
    hops = 1 if legacy else 0
    return hops, [f"VOYAGENT_TRUST_FORWARDED_FOR is deprecated; it is read as VOYAGENT_TRUSTED_PROXY_HOPS={hops}. "
                  "Set VOYAGENT_TRUSTED_PROXY_HOPS to the number of proxies in front of the server instead"]


def _base_path(reader: _Reader) -> str:
    value = reader.text("VOYAGENT_BASE_PATH", "")
    if value and (not value.startswith("/") or value.endswith("/") or "//" in value or " " in value):
        raise ConfigError("VOYAGENT_BASE_PATH", "must start with '/' and must not end with '/'")
    return value


def _auth_secret(reader: _Reader, embedded: bool, data_dir: Path) -> str:
    value = reader.env.get("VOYAGENT_AUTH_SECRET")
    if value:
        if len(value.encode("utf-8")) < 32:
            raise ConfigError("VOYAGENT_AUTH_SECRET", "must be at least 32 bytes")
        return value
    if not embedded:
        raise ConfigError("VOYAGENT_AUTH_SECRET", "is required when VOYAGENT_DB_URL is set")
    return ""  # generated and stored in the data directory by ensure_generated_secret()


def ensure_generated_secret(settings: Settings) -> Settings:
    """With the embedded database and no secret, create one once in the data directory and reuse it."""
    if settings.auth_secret:
        return settings
    path = settings.data_dir / AUTH_SECRET_FILE
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    secret = path.read_text().strip()
    if len(secret.encode()) < 32:
        raise ConfigError("VOYAGENT_AUTH_SECRET", f"the generated secret in {path} is too short; delete it")
    return dataclasses.replace(settings, auth_secret=secret)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Parse and validate the environment; raise ConfigError naming the first bad variable."""
    r = _Reader(os.environ if env is None else env)
    db_url = _db_url(r)
    data_dir = Path(r.text("VOYAGENT_DATA_DIR", "./voyagent-data")).expanduser()
    redis_url = _check_url("VOYAGENT_REDIS_URL", r.raw("VOYAGENT_REDIS_URL"), ("redis", "rediss", "unix"))
    workers = r.integer("VOYAGENT_WORKERS", 1, 1, 64)
    if workers > 1 and redis_url is None:
        raise ConfigError("VOYAGENT_WORKERS", "more than 1 worker requires VOYAGENT_REDIS_URL")
    pool_min = r.integer("VOYAGENT_DB_POOL_MIN", 1, 0, 1000)
    pool_max = r.integer("VOYAGENT_DB_POOL_MAX", 10, 1, 1000)
    if pool_min > pool_max:
        raise ConfigError("VOYAGENT_DB_POOL_MIN", "must not exceed VOYAGENT_DB_POOL_MAX")
    public_url = r.text("VOYAGENT_PUBLIC_URL", "http://localhost:3000").rstrip("/")
    _check_url("VOYAGENT_PUBLIC_URL", public_url, ("http", "https"))
    origins = tuple(o.strip() for o in r.text("VOYAGENT_API_CORS_ORIGINS", "http://localhost:3000").split(",") if o.strip())
    proxy_hops, start_warnings = _trusted_proxy_hops(r)
    backend = r.text("VOYAGENT_AGENT_BACKEND", "offline")
    if backend not in ("offline", "anthropic") and ":" not in backend:
        raise ConfigError("VOYAGENT_AGENT_BACKEND", "must be offline, anthropic or <module>:<factory>")
    return Settings(
        host=r.text("VOYAGENT_HOST", "127.0.0.1"),
        port=r.integer("VOYAGENT_PORT", 8000, 1, 65535),
        workers=workers,
        base_path=_base_path(r),
        data_dir=data_dir,
        max_body_bytes=r.integer("VOYAGENT_MAX_BODY_BYTES", 1_048_576, 1, 1 << 30),
        client_timeout=r.integer("VOYAGENT_CLIENT_TIMEOUT_SECONDS", 30, 1, 600),
        log_level=r.choice("VOYAGENT_LOG_LEVEL", "INFO", _LOG_LEVELS, str.upper),
        cors_origins=origins,
        public_url=public_url,
        trusted_proxy_hops=proxy_hops,
        version=r.text("VOYAGENT_VERSION", "0.0.0-dev"),
        git_sha=r.text("VOYAGENT_GIT_SHA", "unknown"),
        db_url=db_url,
        db_pool_min=pool_min,
        db_pool_max=pool_max,
        pg_bin_dir=r.raw("VOYAGENT_PG_BIN_DIR"),
        redis_url=redis_url,
        redis_prefix=r.text("VOYAGENT_REDIS_PREFIX", "voyagent:"),
        auth_secret=_auth_secret(r, db_url is None, data_dir),
        access_ttl=r.integer("VOYAGENT_AUTH_ACCESS_TTL_SECONDS", 3600, 60),
        refresh_ttl=r.integer("VOYAGENT_AUTH_REFRESH_TTL_SECONDS", 2_592_000, 3600),
        issuer=r.text("VOYAGENT_AUTH_ISSUER", "voyagent"),
        audience=r.text("VOYAGENT_AUTH_AUDIENCE", "voyagent-api"),
        argon2_time_cost=r.integer("VOYAGENT_AUTH_ARGON2_TIME_COST", 2, 1),
        argon2_memory_cost=r.integer("VOYAGENT_AUTH_ARGON2_MEMORY_COST", 102_400, 8192),
        argon2_parallelism=r.integer("VOYAGENT_AUTH_ARGON2_PARALLELISM", 8, 1),
        skip_email_verification=r.boolean("VOYAGENT_AUTH_SKIP_EMAIL_VERIFICATION", False),
        verification_ttl=r.integer("VOYAGENT_AUTH_VERIFICATION_TTL_SECONDS", 86_400, 60),
        password_reset_ttl=r.integer("VOYAGENT_AUTH_PASSWORD_RESET_TTL_SECONDS", 3600, 60),
        invite_ttl_days=r.integer("VOYAGENT_INVITE_TTL_DAYS", 7, 1, 365),
        rate_limit_user_per_minute=r.integer("VOYAGENT_RATE_LIMIT_USER_PER_MINUTE", 600, 0),
        rate_limit_auth_ip_per_minute=r.integer("VOYAGENT_RATE_LIMIT_AUTH_IP_PER_MINUTE", 30, 0),
        rate_limit_auth_email_per_minute=r.integer("VOYAGENT_RATE_LIMIT_AUTH_EMAIL_PER_MINUTE", 10, 0),
        rate_limit_signup_ip_per_minute=r.integer("VOYAGENT_RATE_LIMIT_SIGNUP_IP_PER_MINUTE", 10, 0),
        smtp_url=_check_url("VOYAGENT_SMTP_URL", r.raw("VOYAGENT_SMTP_URL"), ("smtp", "smtp+starttls", "smtps")),
        smtp_from=r.text("VOYAGENT_SMTP_FROM", "Voyagent <no-reply@localhost>"),
        smtp_timeout=r.integer("VOYAGENT_SMTP_TIMEOUT_SECONDS", 10, 1, 120),
        metrics_token=r.raw("VOYAGENT_METRICS_TOKEN"),
        audit_export_max_rows=r.integer("VOYAGENT_AUDIT_EXPORT_MAX_ROWS", 100_000, 1),
        agent_backend=backend,
        anthropic_api_key=r.raw("ANTHROPIC_API_KEY"),
        anthropic_base_url=_check_url("ANTHROPIC_BASE_URL", r.text("ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
                                      ("http", "https")).rstrip("/"),
        agent_model=r.text("VOYAGENT_AGENT_MODEL", "claude-sonnet-4-5"),
        agent_max_tokens=r.integer("VOYAGENT_AGENT_MAX_TOKENS", 1024, 64, 16384),
        turn_timeout=r.integer("VOYAGENT_AGENT_TURN_TIMEOUT_SECONDS", 120, 5, 3600),
        approval_ttl=r.integer("VOYAGENT_APPROVAL_TTL_SECONDS", 900, 1),
        offer_ttl=r.integer("VOYAGENT_OFFER_TTL_SECONDS", 1800, 1),
        sse_heartbeat=r.integer("VOYAGENT_SSE_HEARTBEAT_SECONDS", 15, 1, 300),
        sse_replay_buffer_cap=r.integer("VOYAGENT_SSE_REPLAY_BUFFER_CAP", 200, 1, 10000),
        sandbox_latency_ms=r.integer("VOYAGENT_SANDBOX_LATENCY_MS", 0, 0, 60000),
        start_warnings=tuple(start_warnings),
    )
