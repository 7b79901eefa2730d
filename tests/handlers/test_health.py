"""Health probes: liveness, database and Redis, never cached, errors without exception text."""


async def test_liveness(client):
    response = await client.get("/health")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


async def test_database_probe_reports_the_mode(client, database):
    response = await client.get("/health/db")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "select_1": 1, "mode": database.mode}
    assert response.headers["Cache-Control"] == "no-store"


async def test_database_probe_failure_is_503_db_unreachable(make_app, aiohttp_client):
    from voyagent.app import create_app

    app = make_app()
    broken = create_app(_settings(app, db_pool_min=0), dsn="postgresql://nobody@127.0.0.1:1/none",
                        contract=_contract(app), queries=_queries(app))
    client = await aiohttp_client(broken)
    response = await client.get("/health/db")
    assert response.status == 503
    assert await response.json() == {"detail": "db_unreachable"}
    assert response.headers["Cache-Control"] == "no-store"


async def test_redis_probe_without_redis_is_503_not_configured(client):
    response = await client.get("/health/redis")
    assert response.status == 503
    assert await response.json() == {"detail": "redis_not_configured"}


async def test_redis_probe_with_redis(make_client, redis_url):
    client = await make_client(redis_url=redis_url)
    response = await client.get("/health/redis")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "ping": True}


async def test_unreachable_redis_is_503_and_does_not_leak_the_url(make_client):
    client = await make_client(redis_url="redis://:sekret@127.0.0.1:1/0")
    response = await client.get("/health/redis")
    assert response.status == 503
    body = await response.text()
    assert body == '{"detail":"redis_unreachable"}'


def _settings(app, **overrides):
    import dataclasses

    from voyagent.keys import SETTINGS

    return dataclasses.replace(app[SETTINGS], **overrides)


def _contract(app):
    from voyagent.keys import CONTRACT

    return app[CONTRACT]


def _queries(app):
    from voyagent.keys import QUERIES

    return app[QUERIES]
