"""RFC 9457 problem details for every error the API returns.

Each problem has a stable ``type`` (``/problems/<slug>``, documented at that path), a short
``title``, the HTTP ``status``, a human ``detail`` and, where useful, extension members such as
``errors`` (which field failed and why) or ``field``.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from satiot.core.errors import DomainError

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"

#: slug -> (title, explanation); served at /problems/<slug>.
CATALOG: dict[str, tuple[str, str]] = {
    "malformed-json": ("Malformed JSON", "The request body is not valid JSON."),
    "validation-error": (
        "Invalid request",
        "A field is missing, has the wrong type, is out of range, or is not a known field. "
        "The errors member lists each one with its location.",
    ),
    "invalid-input": ("Invalid input", "A value is well-formed but not acceptable."),
    "unauthenticated": (
        "Authentication required",
        "No credential, or one that is unknown, revoked or expired. Send "
        "'Authorization: Bearer <api key or token>'.",
    ),
    "invalid-grant": ("Invalid credentials", "The username or password is wrong."),
    "forbidden": ("Not allowed", "The credential is valid but its scopes do not cover this."),
    "tenant-violation": ("Outside the caller's tenant", "The target belongs to another tenant."),
    "not-found": ("Not found", "No such resource, or none visible to this caller."),
    "method-not-allowed": ("Method not allowed", "The resource exists but not with this method."),
    "conflict": ("Conflict", "The request conflicts with the resource's current state."),
    "illegal-transition": ("Lifecycle transition not allowed", "See the allowed targets."),
    "payload-too-large": ("Request body too large", "Send a smaller body; see max_bytes."),
    "unsupported-media-type": ("Unsupported media type", "Send application/json."),
    "internal-error": ("Internal error", "Something failed on the server; it was logged."),
    "http-error": ("HTTP error", "A generic HTTP error."),
}

_BY_STATUS = {
    400: "malformed-json",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    500: "internal-error",
}


def problem(
    status: int,
    slug: str,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{slug}",
        "title": title or CATALOG.get(slug, (HTTPStatus(status).phrase, ""))[0],
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extensions.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _auth_headers(status: int) -> dict[str, str] | None:
    return {"WWW-Authenticate": 'Bearer realm="satiot"'} if status == 401 else None


def _clean_errors(errors: Any) -> list[dict[str, Any]]:
    cleaned = []
    for err in errors:
        cleaned.append(
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": err.get("msg", ""),
                "type": err.get("type", ""),
            }
        )
    return cleaned


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem(
        exc.status,
        exc.slug,
        exc.detail,
        title=exc.title,
        headers=_auth_headers(exc.status),
        instance=request.url.path,
        **exc.extensions,
    )


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _clean_errors(exc.errors())
    if any(e["type"] == "json_invalid" for e in errors):
        return problem(
            400,
            "malformed-json",
            "The request body is not valid JSON.",
            instance=request.url.path,
            errors=errors,
        )
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(p for p in first["loc"] if p != "body") or "request"
    return problem(
        422,
        "validation-error",
        f"{where}: {first['msg']}",
        instance=request.url.path,
        errors=errors,
    )


def _allowed_methods(request: Request) -> str:
    path = request.scope.get("path", "")
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        if route.path and route.methods and compile_path(route.path)[0].match(path):
            methods |= route.methods
    return ", ".join(sorted(methods))


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug = _BY_STATUS.get(exc.status_code, "http-error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers or {}) | (_auth_headers(exc.status_code) or {})
    if exc.status_code == 405:
        # Starlette names only the first matching route's methods; list every one of them.
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    return problem(
        exc.status_code, slug, detail, headers=headers or None, instance=request.url.path
    )


async def _on_unhandled(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        500,
        "internal-error",
        "The server failed to handle this request.",
        instance=request.url.path,
    )


async def _on_data_error(request: Request, exc: Exception) -> JSONResponse:
    # The database refused a value the request carried (PostgreSQL: a NUL character in text).
    log.info("database refused a value on %s %s: %s", request.method, request.url.path, exc)
    return problem(
        422,
        "invalid-input",
        "a value in the request cannot be stored or compared "
        "(for example, it contains a NUL character)",
        instance=request.url.path,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(DataError, _on_data_error)
    app.add_exception_handler(Exception, _on_unhandled)
