"""Four processes on two hosts behind a round-robin balancer behave as one server (operations.md §6: the state
the contract puts in Redis is shared by every worker).

The client goes through HAProxy on a new connection each time, so consecutive requests alternate between the
hosts, and within a host the kernel picks either worker; each test drives requests until every one of the four
workers has served some (read from the per-process metric files), so "every process" is observed, not assumed.
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Awaitable, Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.multihost.api import Admin, Answer, Api
from tests.multihost.cluster import Cluster

pytestmark = pytest.mark.multihost

MAX_REQUESTS = 400  # a bound no passing test comes near: four workers are all reached within a few dozen

Send = Callable[[], Awaitable[Answer]]


async def until_every_worker_served(cluster: Cluster, send: Send, method: str, path: str,
                                    statuses: tuple[int, ...], at_least: int = 1) -> list[Answer]:
    """Call ``send`` (at least ``at_least`` times) until each worker of each host has counted one more
    ``method path`` answered with one of ``statuses``; the answers, in order."""
    workers = cluster.workers()
    assert len(workers) == 4, workers
    before = cluster.requests_by_worker(method, path, statuses)
    answers: list[Answer] = []
    while len(answers) < MAX_REQUESTS:
        answers.append(await send())
        if len(answers) >= at_least:
            after = cluster.requests_by_worker(method, path, statuses)
            if all(after[worker] > before[worker] for worker in workers):
                return answers
    served = cluster.requests_by_worker(method, path, statuses) - before
    raise AssertionError(f"{MAX_REQUESTS} requests did not reach every worker {workers}: {served}; "
                         f"statuses {[answer.status for answer in answers[-10:]]}")


def assert_alternating(answers: list[Answer]) -> None:
    """Round robin over two hosts: no two consecutive requests were answered by the same host."""
    hosts = [answer.host for answer in answers]
    assert set(hosts) == {"h1", "h2"}, hosts
    assert all(a != b for a, b in itertools.pairwise(hosts)), hosts


def requests_total(exposition: str, method: str, path: str, status: int) -> float:
    wanted = {"method": method, "path": path, "status": str(status)}
    for family in text_string_to_metric_families(exposition):
        if family.name == "voyagent_api_requests":
            for sample in family.samples:
                if sample.name == "voyagent_api_requests_total" and sample.labels == wanted:
                    return sample.value
    return 0.0


async def test_every_request_lands_on_another_host_and_each_hosts_scrape_sums_its_two_workers(cluster, api,
                                                                                               tenant_admin):
    hosts = cluster.hosts
    before = {host.name: requests_total(host.scrape(), "GET", "/tenant-settings", 200) for host in hosts}

    answers = await until_every_worker_served(
        cluster, lambda: api.request("GET", "/tenant-settings", tenant_admin.token), "GET", "/tenant-settings",
        (200,), at_least=8)

    assert {answer.status for answer in answers} == {200}
    assert_alternating(answers)
    for host in hosts:
        answered = sum(1 for answer in answers if answer.host == host.name)
        expected = before[host.name] + answered
        # A worker counts a request as its response goes out: the last one may land a moment after the client
        # read it, so the scrape is read again until it shows it (never more than a few times).
        deadline = time.monotonic() + 30
        while (scraped := requests_total(host.scrape(), "GET", "/tenant-settings", 200)) != expected:
            assert scraped < expected and time.monotonic() < deadline, (host.name, scraped, expected)
            time.sleep(0.05)
        assert answered > 0


async def test_metrics_through_the_balancer_without_the_token_are_not_found(api):
    answer = await api.request("GET", "/internal/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
    assert (answer.status, answer.json()) == (404, {"detail": "Not Found"})


async def _api_key_on_every_worker(cluster: Cluster, api: Api, admin: Admin, per_minute: int) -> tuple[str, str, Send]:
    """A fresh key of a tenant whose keys get ``per_minute`` requests, cached by every worker: each of them has
    authenticated a request with it. Returns (key, key id, a ``GET /enquiries`` with it)."""
    await api.set_rate_limit(admin, per_minute)
    key, key_id = await api.create_api_key(admin, ["enquiries:read"])

    async def send() -> Answer:
        return await api.request("GET", "/enquiries?limit=1", key)

    primed = await until_every_worker_served(cluster, send, "GET", "/enquiries", (200,))
    assert {answer.status for answer in primed} == {200}
    assert {answer.headers["RateLimit-Limit"] for answer in primed} == {str(per_minute)}
    return key, key_id, send


async def test_a_revoked_api_key_is_refused_from_the_next_request_on_every_process(cluster, api, tenant_admin):
    _, key_id, send = await _api_key_on_every_worker(cluster, api, tenant_admin, per_minute=10_000)

    revoked = await api.request("POST", f"/auth/api-keys/{key_id}/revoke", tenant_admin.token)
    assert revoked.status == 204
    following = await send()
    assert following.host != revoked.host  # the other host, whose workers both had the key cached
    assert (following.status, following.detail) == (401, "unauthorized")

    refused = await until_every_worker_served(cluster, send, "GET", "/enquiries", (401,))
    assert {(answer.status, answer.detail) for answer in refused} == {(401, "unauthorized")}


async def test_a_changed_rate_limit_sizes_the_key_bucket_from_the_next_request_on_every_process(cluster, api,
                                                                                               tenant_admin):
    _, _, send = await _api_key_on_every_worker(cluster, api, tenant_admin, per_minute=1000)

    changed = await api.set_rate_limit(tenant_admin, 5)
    following = await send()
    assert following.host != changed.host
    assert following.status == 200
    # The stored tokens (about a thousand) are clamped to the new capacity, then this request takes one.
    assert (following.headers["RateLimit-Limit"], following.headers["RateLimit-Remaining"]) == ("5", "4")
    assert following.headers["RateLimit-Policy"] == '"api_key";q=5;w=60'

    started = time.monotonic()
    answers = await until_every_worker_served(cluster, send, "GET", "/enquiries", (200, 429), at_least=10)
    elapsed = time.monotonic() - started
    assert {answer.headers["RateLimit-Limit"] for answer in answers} == {"5"}
    admitted = sum(1 for answer in answers if answer.status == 200)
    assert admitted <= 4 + math.floor(elapsed * 5 / 60), (admitted, elapsed)  # the 4 left, plus any refill


async def test_a_key_bucket_admits_its_limit_and_no_more_over_all_four_processes(cluster, api, tenant_admin):
    capacity = 10
    await api.set_rate_limit(tenant_admin, capacity)
    key, _ = await api.create_api_key(tenant_admin, ["enquiries:read"])

    started = time.monotonic()
    answers = await until_every_worker_served(cluster, lambda: api.request("GET", "/enquiries?limit=1", key),
                                              "GET", "/enquiries", (200, 429), at_least=3 * capacity)
    elapsed = time.monotonic() - started

    assert {answer.status for answer in answers} == {200, 429}
    admitted = sum(1 for answer in answers if answer.status == 200)
    refill = math.floor(elapsed * capacity / 60)  # the bucket refills capacity tokens a minute meanwhile
    assert capacity <= admitted <= capacity + refill, (admitted, elapsed)  # per-process buckets: 4 × capacity
    assert all(answer.status == 200 for answer in answers[:capacity])
    assert all(answer.headers.get("Retry-After") for answer in answers if answer.status == 429)
    assert_alternating(answers)


async def test_the_tenant_turn_quota_counts_turns_from_every_process(cluster, api, tenant_admin, chat_routed):
    quota = 4
    await api.set_rate_limit(tenant_admin, quota)
    session_id = await api.create_session(tenant_admin)

    hosts = set()
    for _ in range(quota):
        answer, frames = await api.stream(tenant_admin.token, session_id, "help")
        assert answer.status == 200, answer.body
        kinds = [frame.payload["kind"] for frame in frames]
        assert kinds[-1] == "final" and "error" not in kinds, kinds
        hosts.add(answer.host)
    assert hosts == {"h1", "h2"}  # the turns were started on both hosts, so by at least two processes

    answer, frames = await api.stream(tenant_admin.token, session_id, "help")
    assert answer.status == 200
    assert [frame.payload["kind"] for frame in frames] == ["error", "final"]
    assert frames[0].payload["error_message"] == "rate_limited: minute"


async def test_an_sse_turn_started_on_one_host_resumes_on_the_other_with_exactly_the_missed_frames(
        cluster, api, tenant_admin, chat_routed):
    session_id = await api.create_session(tenant_admin)

    # A flight search: its tool_use comes first, the supplier's latency follows (SANDBOX_LATENCY_MS); the client
    # goes away after that first frame, while the turn runs on.
    started, first = await api.stream(tenant_admin.token, session_id, "DEL to BOM 2027-03-14 2 adults",
                                      stop_after=1)
    assert started.status == 200, started.body
    assert [(frame.id, frame.payload["kind"]) for frame in first] == [(1, "tool_use")]

    resumed, rest = await api.stream(tenant_admin.token, session_id, last_event_id=1)
    assert resumed.status == 200
    assert resumed.host != started.host
    assert [frame.id for frame in rest] == list(range(2, len(rest) + 2))
    assert [frame.payload["kind"] for frame in rest] == ["tool_result", "text_delta", "final"]
    assert {frame.payload["turn_id"] for frame in first + rest} == {first[0].payload["turn_id"]}

    replayed, everything = await api.stream(tenant_admin.token, session_id, last_event_id=0)
    assert replayed.status == 200
    assert [frame.raw for frame in everything] == [frame.raw for frame in first + rest]  # byte-identical
