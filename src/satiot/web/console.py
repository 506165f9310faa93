"""Mounts the console on the application: its pages, its static files and its error pages.

The console is server-rendered HTML with its own stylesheets and, on the Messages page only, one
small same-origin script that fetches new rows, so it works without internet access and under
``Content-Security-Policy: default-src 'self'``. Its routes
stay out of the OpenAPI document, which describes the REST API only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.routing import Match
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from satiot.api.context import AppContext
from satiot.web.rendering import STATIC_DIR, bare_page, page
from satiot.web.security import SecurityHeaders
from satiot.web.session import (
    ConsoleForbidden,
    LoginRequired,
    login_url,
)
from satiot.web.views import (
    access,
    access_actions,
    auth,
    bill_runs,
    billing_accounts,
    catalog,
    contracts,
    customers,
    dashboard,
    devices,
    ground_stations,
    integrations,
    inventory,
    invoices,
    messages,
    orders,
    subscriptions,
    usage,
)

STATIC_PATH = "/static"


def console_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    for module in (
        auth,
        dashboard,
        access,
        access_actions,
        messages,
        devices,
        ground_stations,
        integrations,
        customers,
        contracts,
        catalog,
        orders,
        subscriptions,
        usage,
        invoices,
        billing_accounts,
        bill_runs,
        inventory,
    ):
        router.include_router(module.router)
    return router


def _refusal(error: Mapping[str, Any]) -> str:
    """One line per failing field, e.g. ``subscription_id: Input should be a valid UUID``."""
    where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "path", "query"))
    return f"{where or 'request'}: {error.get('msg', 'not valid')}"


async def _on_login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(login_url(exc.next_path), status_code=303)


async def _on_forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleForbidden)
    context = {"message": exc.message, "title": "Not allowed"}
    if exc.signed_in is None:
        return bare_page(request, "forbidden.html", context, status_code=403)
    return page(request, exc.signed_in, "forbidden.html", context, status_code=403)


def mount(app: FastAPI, ctx: AppContext) -> None:
    """Attach the console's pages and static files to ``app``."""
    router = console_router()
    app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(LoginRequired, _on_login_required)
    app.add_exception_handler(ConsoleForbidden, _on_forbidden)
    routes = list(router.routes)

    def is_console(scope: Scope) -> bool:
        path = str(scope.get("path", ""))
        if path == STATIC_PATH or path.startswith(STATIC_PATH + "/"):
            return True
        return any(route.matches(scope)[0] is not Match.NONE for route in routes)

    app.add_middleware(SecurityHeaders, applies=is_console, static_prefix=STATIC_PATH + "/")

    # A console address or form that does not parse (an id that is not one, a number field
    # holding text) is a page, like every other refusal here; the API keeps its problem+json.
    api_handler = app.exception_handlers[RequestValidationError]

    async def on_invalid(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, RequestValidationError) or not is_console(request.scope):
            answer = api_handler(request, exc)
            return answer if isinstance(answer, Response) else await answer
        problems = [_refusal(e) for e in exc.errors()[:10]]
        return bare_page(request, "refused.html", {"problems": problems}, status_code=422)

    app.add_exception_handler(RequestValidationError, on_invalid)
