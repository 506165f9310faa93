"""What ``/metrics`` exposes, made once per application context in its own registry.

The meters belong to the context (:attr:`satiot.api.context.AppContext.meters`), not to the
middleware that counts into them: the middleware reads the context of the app serving each
request, so an app built once can serve another context, with that context's counts.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from satiot.core import events
from satiot.core.db import Database


class EventLogCollector(Collector):
    """Reads the event log's head and each consumer's lag at scrape time."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        head = GaugeMetricFamily("satiot_event_log_head", "Sequence number of the newest event")
        lag = GaugeMetricFamily(
            "satiot_consumer_lag_events", "Events a consumer has not read", labels=["consumer"]
        )
        with self.db.read() as session:
            statuses = events.status(session)
            head.add_metric([], events.head(session))
        for s in statuses:
            lag.add_metric([s.name], s.lag)
        yield head
        yield lag


class Meters:
    """HTTP request counts and latencies, and the event log's gauges, in one registry."""

    def __init__(self, registry: CollectorRegistry, db: Database) -> None:
        self.registry = registry
        self.requests = Counter(
            "satiot_http_requests",
            "HTTP requests handled",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "satiot_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            registry=registry,
        )
        registry.register(EventLogCollector(db))
