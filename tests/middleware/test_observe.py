"""Metrics and the access log: route templates as labels, every family of operations.md §3."""

import dataclasses
import logging
import re
import urllib.error
import urllib.request

from aiohttp.test_utils import make_mocked_request

from tests.conftest import TEST_SECRET
from tests.middleware.bare_app import bare_app, plain
from tests.server_process import ServerProcess
from voyagent.handlers.meta import metrics_allowed
from voyagent.keys import METRICS, SETTINGS
from voyagent.middleware import add_route

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
    # computed over the whole database, which other tests' chat turns share: its value is tested with the turns
    assert re.search(r"^voyagent_api_active_sessions \d+\.0$", text, re.MULTILINE)
    assert "_created" not in text


async def test_labels_use_the_route_template_without_base_path(settings, aiohttp_client):
    app = bare_app(dataclasses.replace(settings, base_path="/api"))
    add_route(app, "GET", "/things/{thing_id}", plain, base_path="/api")
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


# --- the access log on the server's stderr ------------------------------------------------------------------

ACCESS_LINE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO voyagent\.access request_id=(?P<rid>\S+) method=(?P<method>\S+) "
    r"route=(?P<route>\S+) status=(?P<status>\d{3}) duration_ms=\d+\.\d\d client_ip=(?P<ip>\S+) "
    r"tenant_id=(?P<tenant>\S+) user_id=(?P<user>\S+)")


def _status_of(url: str, headers: dict[str, str]) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


async def test_the_server_writes_one_access_line_per_request_in_order_and_scrubbed(database, admin):
    """The real server's stderr (its access lines are written in batches, not through a log record)."""
    jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    sent = [("/health", {"X-Request-Id": "first-1"}, 200), ("/nowhere", {"X-Request-Id": "second-2"}, 404),
            ("/auth/me", {**admin.headers, "X-Request-Id": "third-3"}, 200),
            ("/health", {"X-Request-Id": jwt_like}, 200)]
    env = {"VOYAGENT_DB_URL": database.dsn, "VOYAGENT_AUTH_SECRET": TEST_SECRET, "VOYAGENT_LOG_LEVEL": "INFO",
           "VOYAGENT_REDIS_URL": ""}
    with ServerProcess(env) as server:
        assert [_status_of(server.url + path, headers) for path, headers, _ in sent] == [s for _, _, s in sent]
        code, output = server.stop()
    assert code == 0, output
    ours = {"first-1", "second-2", "third-3", "[scrubbed]"}
    lines = [match.groupdict() for line in output.splitlines()
             if (match := ACCESS_LINE.fullmatch(line)) and match["rid"] in ours]
    assert [(line["rid"], line["method"], line["route"], line["status"], line["ip"], line["tenant"], line["user"])
            for line in lines] == [
        ("first-1", "GET", "/health", "200", "127.0.0.1", "-", "-"),
        ("second-2", "GET", "unmatched", "404", "127.0.0.1", "-", "-"),
        ("third-3", "GET", "/auth/me", "200", "127.0.0.1", str(admin.tenant_id), str(admin.id)),
        ("[scrubbed]", "GET", "/health", "200", "127.0.0.1", "-", "-")]
    assert jwt_like not in output


def test_deferred_access_lines_keep_their_place_among_other_records(capfd):
    """A line deferred before a warning is written before it, formatted as a record of that logger would be."""
    from voyagent.logs import _BufferedStderrHandler, _Formatter, info_writer

    handler = _BufferedStderrHandler()
    handler.setFormatter(_Formatter())
    logger = logging.getLogger("voyagent.test_deferred")
    root_handlers = logging.root.handlers[:]
    logging.root.handlers[:] = [handler]
    try:
        write = info_writer(logger, "n=%d text=%s")
        write("rid-1", (1, "first"))
        logger.warning("second")
        write("rid-3", (3, "third"))
        handler._flush_now()
    finally:
        logging.root.handlers[:] = root_handlers
    lines = capfd.readouterr().err.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "INFO voyagent.test_deferred request_id=rid-1 n=1 text=first",
        "WARNING voyagent.test_deferred request_id=- second",
        "INFO voyagent.test_deferred request_id=rid-3 n=3 text=third"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line.split(" ", 1)[0]) for line in lines)


# --- headers of every response, streams included -----------------------------------------------------------


async def test_a_stream_carries_the_headers_of_every_response(make_client, admin):
    client = await make_client(cors_origins=("https://app.example.com",))
    response = await client.get("/audit/export.csv", headers={**admin.headers, "X-Request-Id": "export-7",
                                                              "Origin": "https://app.example.com"})
    assert response.status == 200 and response.headers.get("Transfer-Encoding") == "chunked"
    assert response.headers["X-Request-Id"] == "export-7"
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert int(response.headers["RateLimit-Remaining"]) >= 0  # the principal's bucket was reported
