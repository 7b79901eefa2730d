"""The ceiling: a bare aiohttp + asyncpg app (uvloop, no middleware, access log off) serving the same
routes with the same SQL, so every benchmark reports our rps as a ratio of what the stack can do.

    python bench/ceiling.py --port 8100 --dsn postgresql://…

Other benchmarks add their routes with ``ROUTES.append((method, path, handler))`` before ``main()``.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Awaitable, Callable

import asyncpg
import orjson
from aiohttp import web

POOL: web.AppKey[asyncpg.Pool] = web.AppKey("pool")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def health(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


async def health_db(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        value = await conn.fetchval("SELECT 1")
    return web.Response(body=orjson.dumps({"status": "ok", "select_1": value, "mode": "external"}),
                        content_type="application/json")


ROUTES: list[tuple[str, str, Handler]] = [("GET", "/health", health), ("GET", "/health/db", health_db)]


def build_app(dsn: str, pool_size: int = 10) -> web.Application:
    app = web.Application()

    async def pool(app: web.Application):
        app[POOL] = await asyncpg.create_pool(dsn, min_size=1, max_size=pool_size)
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
    args = parser.parse_args(argv)
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(build_app(args.dsn), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
