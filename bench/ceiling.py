"""The ceiling: a bare aiohttp + asyncpg app (uvloop, no middleware, access log off) serving the same
routes with the same SQL, so every benchmark reports our rps as a ratio of what the stack can do.

    python -m bench.ceiling --port 8100 --dsn postgresql://… [--secret …]

Routes: ``GET /health``, ``GET /health/db``; ``GET /auth/me`` — the JWT checked by the very code voyagent uses
(``VerifiedAccessTokens.decode``: full verification once, then the memo) and the same ``get-user-by-id`` SELECT,
answered with the same PublicUser object, without denylist, rate limit, request id, metrics or log;
``GET /audit/export.csv?tenant_id=…&from=…&to=…`` — the export's own statement streamed by the same binary COPY,
without the count against the cap, authentication or the export slot.
Other benchmarks add their routes with ``ROUTES.append((method, path, handler))`` before ``main()``.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from typing import Awaitable, Callable

import asyncpg
import orjson
from aiohttp import web

from voyagent.config import Settings
from voyagent.services.tokens import VerifiedAccessTokens

POOL: web.AppKey[asyncpg.Pool] = web.AppKey("pool")
TOKENS: web.AppKey[VerifiedAccessTokens] = web.AppKey("tokens")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DEFAULT_SECRET = "bench-secret-" + "y" * 40  # bench.harness.SECRET


async def health(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


async def health_db(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        value = await conn.fetchval("SELECT 1")
    return web.Response(body=orjson.dumps({"status": "ok", "select_1": value, "mode": "external"}),
                        content_type="application/json")


def _user_sql() -> str:
    from voyagent.app import load_queries

    return load_queries().get_user_by_id.sql


USER_SQL = _user_sql()


async def auth_me(request: web.Request) -> web.Response:
    from voyagent.services.identity import public_user

    claims = request.app[TOKENS].decode(request.headers.get("Authorization", "")[len("Bearer "):])
    if claims is None:
        return web.Response(status=401, body=b'{"detail":"unauthorized"}', content_type="application/json")
    async with request.app[POOL].acquire() as conn:
        user = await conn.fetchrow(USER_SQL, uuid.UUID(claims["sub"]))
    return web.Response(body=orjson.dumps(public_user(user)), content_type="application/json")


async def audit_export(request: web.Request) -> web.StreamResponse:
    import datetime as dt

    from voyagent.pgcopy import TextColumn
    from voyagent.services import audit_log

    filters = audit_log.AuditFilters(day_from=dt.date.fromisoformat(request.query["from"]),
                                     day_to=dt.date.fromisoformat(request.query["to"]))
    text, args = audit_log.export_statement(uuid.UUID(request.query["tenant_id"]), filters)
    response = web.StreamResponse()
    response.content_type = "text/csv"
    await response.prepare(request)
    await response.write(audit_log.csv_header())
    records = TextColumn()

    async def write(chunk: bytes) -> None:
        data = records.feed(chunk)
        if data:
            await response.write(data)

    async with request.app[POOL].acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute("SET LOCAL enable_sort = off")
        await conn.copy_from_query(text, *args, output=write, format="binary", timeout=900)
    await response.write_eof()
    return response


ROUTES: list[tuple[str, str, Handler]] = [("GET", "/health", health), ("GET", "/health/db", health_db),
                                          ("GET", "/auth/me", auth_me), ("GET", "/audit/export.csv", audit_export)]


async def no_reset(conn: asyncpg.Connection) -> None:
    """asyncpg's default reset is a second round trip per request; voyagent skips it (voyagent/db.py)."""


def build_app(dsn: str, pool_size: int = 10, secret: str = DEFAULT_SECRET, asyncpg_reset: bool = False
              ) -> web.Application:
    app = web.Application()
    app[TOKENS] = VerifiedAccessTokens(Settings(auth_secret=secret))

    async def pool(app: web.Application):
        # No reset query on release, as voyagent's pool: the same statements reach the database per request.
        # (``--asyncpg-reset``: asyncpg's default, one more statement per request, as the issue 14 figures had.)
        reset = None if asyncpg_reset else no_reset
        app[POOL] = await asyncpg.create_pool(dsn, min_size=1, max_size=pool_size, reset=reset)
        yield
        await app[POOL].close()

    app.cleanup_ctx.append(pool)
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--secret", default=DEFAULT_SECRET, help="VOYAGENT_AUTH_SECRET of the server measured")
    parser.add_argument("--asyncpg-reset", action="store_true", help="keep asyncpg's reset query on release")
    args = parser.parse_args(argv)
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(build_app(args.dsn, secret=args.secret, asyncpg_reset=args.asyncpg_reset), host=args.host,
                port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
