"""The REST API application: routers, error handling, limits and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from swagger_ui_bundle import swagger_ui_path

from satiot import __version__
from satiot.api import (
    api_keys,
    audit,
    auth,
    billing_accounts,
    contracts,
    customer_documents,
    customers,
    devices,
    downlinks,
    ground_stations,
    health,
    integrations,
    problems,
    tenants,
    users,
)
from satiot.api.account_statements import router as account_statements_router
from satiot.api.balance_entries import router as balance_entries_router
from satiot.api.bill_runs import router as bill_runs_router
from satiot.api.bills import accounts_router as bill_accounts_router
from satiot.api.bills import router as bills_router
from satiot.api.catalog import router as catalog_router
from satiot.api.context import AppContext
from satiot.api.credit_notes import router as credit_notes_router
from satiot.api.handle_api import resolution_router
from satiot.api.handle_api import router as identifiers_router
from satiot.api.jobs import router as jobs_router
from satiot.api.middleware import BodySizeLimit, RequestMetrics
from satiot.api.numbers import blocks_router, numbers_router
from satiot.api.orders import router as orders_router
from satiot.api.payment_import import router as payment_import_router
from satiot.api.payments import accounts_router as top_ups_router
from satiot.api.payments import listing_router as payments_router
from satiot.api.payments import router as bill_payments_router
from satiot.api.strict_query import known_query_only
from satiot.api.subscriptions import router as subscriptions_router
from satiot.api.terminal_models import router as terminal_models_router
from satiot.api.usage import router as usage_router
from satiot.core.errors import NotFound

API_PREFIX = "/api/v1"


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {problems.MEDIA_TYPE: {}}, "description": text}
    for code, text in {
        400: "Malformed request",
        401: "Missing, unknown or expired credential",
        403: "Scope or tenant does not allow this",
        404: "Not found",
        409: "Conflicts with the current state, or an Idempotency-Key reused for another body",
        413: "Body too large",
        422: "Validation failed",
    }.items()
}


def api_router() -> APIRouter:
    router = APIRouter(
        prefix=API_PREFIX, responses=_ERRORS, dependencies=[Depends(known_query_only)]
    )
    for module in (
        auth,
        tenants,
        users,
        api_keys,
        audit,
        integrations,
        devices,
        ground_stations,
        downlinks,
        customers,
        customer_documents,
        billing_accounts,
        contracts,
    ):
        router.include_router(module.router)
    for oss in (terminal_models_router, blocks_router, numbers_router, identifiers_router):
        router.include_router(oss)
    for bss in (catalog_router, orders_router, subscriptions_router):
        router.include_router(bss)
    billing_routers = (
        bills_router,
        bill_payments_router,
        payments_router,
        payment_import_router,
        account_statements_router,
        balance_entries_router,
        credit_notes_router,
        bill_runs_router,
        jobs_router,
        bill_accounts_router,
        billing_accounts.everyone,
        top_ups_router,
        usage_router,
    )
    for billing in billing_routers:
        router.include_router(billing)
    return router


def _serve_docs_offline(app: FastAPI) -> None:
    """Swagger UI from files shipped in a package: the API docs work with no internet."""
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="satiot API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def create_api(ctx: AppContext) -> FastAPI:
    """Build the API application around one :class:`AppContext` (the console mounts on it)."""
    app = FastAPI(
        title="satiot",
        version=__version__,
        summary="Satellite IoT operator platform: network, BSS, OSS and MSS.",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    use_context(app, ctx)
    problems.install(app)
    app.include_router(health.router)
    _serve_docs_offline(app)
    app.include_router(api_router())
    # the Handle REST API path, outside /api/v1; a bad query is a problem like everywhere else
    app.include_router(resolution_router, responses={422: _ERRORS[422]})

    @app.get(
        "/problems/{slug}",
        tags=["health"],
        summary="What a problem type means",
        responses={404: _ERRORS[404]},
    )
    def problem_type(slug: str) -> JSONResponse:
        if slug not in problems.CATALOG:
            raise NotFound(f"no problem type {slug!r}")
        title, text = problems.CATALOG[slug]
        return JSONResponse({"type": f"/problems/{slug}", "title": title, "description": text})

    return app


def use_context(app: FastAPI, ctx: AppContext) -> None:
    """Serve ``app`` from ``ctx`` from now on.

    Handlers, console pages and middleware all read the context per request
    (``app.state.ctx``), so a built app can be pointed at another context. Building one costs
    FastAPI's analysis of every route (about half a second); a process that serves several
    contexts in turn, as the test suite does, builds once.
    """
    app.state.ctx = ctx


def add_middleware(app: FastAPI) -> None:
    """Outermost layers, added once everything else is mounted."""
    app.add_middleware(BodySizeLimit)
    app.add_middleware(RequestMetrics)
