"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from satiot.api.deps import Ctx
from satiot.core import migrate

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


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(ctx: Ctx) -> Response:
    return Response(generate_latest(ctx.meters.registry), media_type=CONTENT_TYPE_LATEST)
