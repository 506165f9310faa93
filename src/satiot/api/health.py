"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

from satiot.api.context import AppContext
from satiot.api.deps import Ctx
from satiot.core import events, migrate
from satiot.core.db import Database

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database answers and is fully migrated",
    responses={503: {"description": "Not ready: the checks say which part failed"}},
)
def readyz(ctx: Ctx) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with ctx.db.read() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
        current = migrate.current_revision(ctx.db.engine)
        head = migrate.head_revision(ctx.db.engine)
        checks["migrations"] = "ok" if current == head else f"at {current}, head is {head}"
    except Exception as exc:  # readiness reports any failure instead of raising it
        checks["database"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


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


def register_collectors(ctx: AppContext) -> None:
    ctx.registry.register(EventLogCollector(ctx.db))


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(ctx: Ctx) -> Response:
    return Response(generate_latest(ctx.registry), media_type=CONTENT_TYPE_LATEST)
