"""Metrics and the access log: route templates as labels, every family of operations.md §3."""

import dataclasses

from aiohttp.test_utils import make_mocked_request

from tests.middleware.bare_app import bare_app, plain
from voyagent.handlers.meta import metrics_allowed
from voyagent.keys import METRICS, SETTINGS

ALWAYS_PRESENT = ("voyagent_api_requests_total", "voyagent_api_request_duration_seconds",
                  "voyagent_api_active_sessions", "voyagent_api_build_info")
FAMILIES = ALWAYS_PRESENT + ("voyagent_api_rate_limited_total", "voyagent_api_auth_failures_total",
                             "voyagent_agent_turns_total", "voyagent_agent_tool_calls_total", "voyagent_emails_total",
                             "voyagent_sse_open_streams")


async def test_scrape_has_every_family_with_help_and_type(client):
    await client.get("/health")
    await client.get("/nowhere")
    response = await client.get("/internal/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] in ("text/plain; version=0.0.4; charset=utf-8",
                                                "text/plain; version=1.0.0; charset=utf-8")
    text = await response.text()
    for family in FAMILIES:
        assert f"# HELP {family} " in text
        assert f"# TYPE {family} " in text
    assert 'voyagent_api_requests_total{method="GET",path="/health",status="200"} 1.0' in text
    assert 'voyagent_api_requests_total{method="GET",path="unmatched",status="404"} 1.0' in text
    assert 'voyagent_api_build_info{commit="unknown",version="0.0.0-dev"} 1.0' in text
    assert 'voyagent_api_request_duration_seconds_bucket{le="0.005",method="GET",path="/health"}' in text
    assert "voyagent_api_active_sessions 0.0" in text
    assert "_created" not in text


async def test_labels_use_the_route_template_without_base_path(settings, aiohttp_client):
    app = bare_app(dataclasses.replace(settings, base_path="/api"), "observe", "errors", "gate")
    app.router.add_route("GET", "/api/things/{thing_id}", plain)
    client = await aiohttp_client(app)
    await client.get("/api/plain")
    await client.get("/api/things/42")
    await client.get("/api/things/43")
    await client.get("/plain")  # outside BASE_PATH: no route
    text = (await app[METRICS].exposition()).decode()
    assert 'voyagent_api_requests_total{method="GET",path="/plain",status="200"} 1.0' in text
    assert 'voyagent_api_requests_total{method="GET",path="/things/{thing_id}",status="200"} 2.0' in text
    assert 'voyagent_api_requests_total{method="GET",path="unmatched",status="404"} 1.0' in text


def _request(peer: str, token: str | None = None, configured: str | None = None, app=None):
    headers = {"X-Voyagent-Metrics-Token": token} if token is not None else {}
    request = make_mocked_request("GET", "/internal/metrics", headers=headers, app=app)
    request._transport_peername = (peer, 1234)  # the TCP peer the access rule reads
    return request


def test_metrics_access_rule(settings):
    app = bare_app(settings)
    assert app[SETTINGS].metrics_token is None
    for peer, allowed in (("127.0.0.1", True), ("::1", True), ("::ffff:127.0.0.1", True), ("10.0.0.8", False),
                          ("203.0.113.9", False)):
        assert metrics_allowed(_request(peer, app=app)) is allowed, peer
    token_app = bare_app(dataclasses.replace(settings, metrics_token="scrape-secret"))
    assert metrics_allowed(_request("203.0.113.9", "scrape-secret", app=token_app))
    assert not metrics_allowed(_request("203.0.113.9", "wrong", app=token_app))
    assert not metrics_allowed(_request("203.0.113.9", "", app=app))  # no token configured: never
