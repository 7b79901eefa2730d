"""Prometheus metric families of operations.md §3, per app, summed over workers in multiprocess mode."""

from __future__ import annotations

import bisect
import os
from typing import Awaitable, Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

disable_created_metrics()  # the *_created series add nothing for SREs and double the scrape size

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# The ``bucket`` label values of voyagent_api_rate_limited_total (operations.md §3), exported at 0 from the start
# so that a dashboard or an alert on a bucket sees the series before its first refusal.
RATE_LIMIT_BUCKETS = ("api_key", "user", "auth_ip", "auth_email", "signup_ip")
MAX_REQUEST_SERIES = 10_000  # (method, path, status) combinations whose lookups are kept; more are still counted


def multiprocess_dir() -> str | None:
    """The shared directory of multiprocess mode, when the CLI started several workers."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _ScrapeTimeCollector:
    """Families computed when scraped: build info and the active-sessions gauge (value set by the handler)."""

    def __init__(self, version: str, commit: str) -> None:
        self.version = version
        self.commit = commit
        self.active_sessions = 0

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily("voyagent_api_build_info", "Build information; always 1.",
                                 labels=["version", "commit"])
        info.add_metric([self.version, self.commit], 1)
        yield info
        yield GaugeMetricFamily("voyagent_api_active_sessions",
                                "Distinct chat sessions with a message in the last 3600 s.",
                                value=self.active_sessions)


class Metrics:
    """All metric objects of one app."""

    def __init__(self, version: str, commit: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("voyagent_api_requests", "Requests handled.", ["method", "path", "status"], registry=r)
        self.duration = Histogram("voyagent_api_request_duration_seconds", "Request duration to end of body.",
                                  ["method", "path"], buckets=DURATION_BUCKETS, registry=r)
        self.rate_limited = Counter("voyagent_api_rate_limited", "Requests refused with 429.", ["bucket"], registry=r)
        for bucket in RATE_LIMIT_BUCKETS:
            self.rate_limited.labels(bucket)
        self.auth_failures = Counter("voyagent_api_auth_failures", "401 and 403 responses by detail code.",
                                     ["reason"], registry=r)
        self.agent_turns = Counter("voyagent_agent_turns", "Agent turns by outcome.", ["backend", "outcome"], registry=r)
        self.tool_calls = Counter("voyagent_agent_tool_calls", "Agent tool calls by outcome.", ["tool", "outcome"],
                                  registry=r)
        self.emails = Counter("voyagent_emails", "E-mails by kind and result.", ["kind", "result"], registry=r)
        self.sse_open_streams = Gauge("voyagent_sse_open_streams", "SSE streams currently open.", registry=r,
                                      multiprocess_mode="livesum")
        self.scrape_time = _ScrapeTimeCollector(version, commit)
        self._request_values: dict[tuple[str, str, int], _RequestValues] = {}
        self._tallies: dict[tuple[str, str, int], _RequestTally] = {}
        self._shared = multiprocess_dir() is not None
        # Every request is counted: in plain Python, added to the metric values when scraped (one process), or
        # straight into the shared values that a scrape of any worker sums (several workers).
        self.observe_request = self._write_through if self._shared else self._tally

    def _values(self, method: str, path: str, status: int) -> _RequestValues:
        key = (method, path, status)
        values = self._request_values.get(key)
        if values is None:
            values = _RequestValues(self.requests.labels(method, path, str(status)), self.duration.labels(method, path))
            if len(self._request_values) < MAX_REQUEST_SERIES:
                self._request_values[key] = values
        return values

    def _write_through(self, method: str, path: str, status: int, seconds: float) -> None:
        """What ``Counter.inc`` and ``Histogram.observe`` do, with the label children looked up once."""
        values = self._values(method, path, status)
        values.count(1)
        values.seconds(seconds)
        values.buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)](1)

    def _tally(self, method: str, path: str, status: int, seconds: float) -> None:
        tally = self._tallies.get((method, path, status))
        if tally is None:
            if len(self._tallies) >= MAX_REQUEST_SERIES:
                self._write_through(method, path, status, seconds)
                return
            tally = self._tallies[(method, path, status)] = _RequestTally(self._values(method, path, status))
        tally.count += 1
        tally.seconds += seconds
        tally.buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1

    def _add_tallies(self) -> None:
        for tally in self._tallies.values():
            tally.add_to_values()

    async def exposition(self, refresh: Callable[[], Awaitable[int]] | None = None) -> bytes:
        """The text exposition of every family, summed over workers in multiprocess mode."""
        if refresh is not None:
            self.scrape_time.active_sessions = await refresh()
        directory = multiprocess_dir()
        if directory is None:
            self._add_tallies()
            registry = CollectorRegistry()
            registry.register(_Both(self.registry, self.scrape_time))
            return generate_latest(registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        registry.register(self.scrape_time)
        return generate_latest(registry)


class _RequestValues:
    """The bound ``inc`` of the values behind one (method, path, status) request counter and its duration
    histogram: in-process floats, or shared-file values in multiprocess mode (summed over workers by a scrape)."""

    __slots__ = ("count", "seconds", "buckets")

    def __init__(self, counter: Counter, histogram: Histogram) -> None:
        self.count = counter._value.inc
        self.seconds = histogram._sum.inc
        self.buckets = [bucket.inc for bucket in histogram._buckets]  # DURATION_BUCKETS, then +Inf
        if len(self.buckets) != len(DURATION_BUCKETS) + 1:
            raise RuntimeError("unexpected histogram layout in prometheus_client")


class _RequestTally:
    """Requests of one (method, path, status) counted since the last scrape, without a lock or a call."""

    __slots__ = ("count", "seconds", "buckets", "values")

    def __init__(self, values: _RequestValues) -> None:
        self.values = values
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * len(values.buckets)

    def add_to_values(self) -> None:
        if not self.count:
            return
        values, buckets = self.values, self.buckets
        values.count(self.count)
        values.seconds(self.seconds)
        for index, count in enumerate(buckets):
            if count:
                values.buckets[index](count)
                buckets[index] = 0
        self.count = 0
        self.seconds = 0.0


class _Both:
    """Adapter exposing an app registry plus the scrape-time families as one collector."""

    def __init__(self, registry: CollectorRegistry, extra: _ScrapeTimeCollector) -> None:
        self.registry = registry
        self.extra = extra

    def collect(self) -> Iterable[Metric]:
        yield from self.registry.collect()
        yield from self.extra.collect()
