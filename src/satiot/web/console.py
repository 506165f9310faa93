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
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from satiot.api.context import AppContext
from satiot.api.deps import get_ctx
from satiot.web.rendering import STATIC_DIR, bare_page, page
from satiot.web.security import HEADERS, SecurityHeaders
from satiot.web.session import (
    COOKIE_NAME,
    ConsoleForbidden,
    LoginRequired,
    login_url,
    resolve,
)
from satiot.web.views import (
    access,
    access_actions,
    account_statement,
    auth,
    balance_history,
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
    licence_import,
    messages,
    orders,
    payment_import,
    payments,
    status_import,
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
        status_import,
        subscriptions,
        usage,
        invoices,
        account_statement,
        balance_history,
        billing_accounts,
        bill_runs,
        payment_import,
        payments,
        inventory,
        licence_import,
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


#: Addresses that belong to the REST API and its documents: a miss there stays problem+json.
API_PREFIXES = ("/api/", "/openapi.json", "/docs", "/redoc", "/problems/", "/metrics")


def wants_page(request: Request) -> bool:
    """Whether a miss should be answered as a console page: a browser's GET of an address
    outside the API (``Accept`` names HTML)."""
    path = request.url.path
    return (
        request.method in ("GET", "HEAD")
        and not any(path == p.rstrip("/") or path.startswith(p) for p in API_PREFIXES)
        and "text/html" in request.headers.get("accept", "")
    )


def not_found_page(request: Request) -> Response:
    """A mistyped or stale console address: the layout with a way back, not a JSON body."""
    context = {
        "title": "Not found",
        "message": f"There is no page at {request.url.path}.",
        "back": "/",
        "back_label": "Back to the dashboard",
    }
    signed_in = resolve(get_ctx(request), request.cookies.get(COOKIE_NAME))
    if signed_in is None:
        context |= {"back": login_url("/"), "back_label": "Sign in"}
        response = bare_page(request, "not_found.html", context, status_code=404)
    else:
        response = page(request, signed_in, "not_found.html", context, status_code=404)
    for name, value in HEADERS.items():  # the middleware knows console routes, not misses
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


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

    api_http_handler = app.exception_handlers[StarletteHTTPException]

    async def on_http_error(request: Request, exc: Exception) -> Response:
        if (
            isinstance(exc, StarletteHTTPException)
            and exc.status_code == 404
            and wants_page(request)
        ):
            return not_found_page(request)
        answer = api_http_handler(request, exc)
        return answer if isinstance(answer, Response) else await answer

    app.add_exception_handler(StarletteHTTPException, on_http_error)
