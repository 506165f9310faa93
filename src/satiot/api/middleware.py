"""ASGI middleware: a request-body size limit and Prometheus request metrics.

Both read what they need from the context of the app serving the request
(``scope["app"].state.ctx``), as handlers do, rather than holding values from when the app
was built: an app can then be pointed at another context (:func:`satiot.api.app.use_context`).
"""

from __future__ import annotations

import json
import time
from typing import Any, Final

from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satiot.api.deps import get_ctx
from satiot.api.problems import MEDIA_TYPE

#: Bodies that carry an uploaded file: held to ``max_upload_bytes`` instead.
UPLOADS: Final = (b"text/csv", b"multipart/form-data")


class BodySizeLimit:
    """Refuse bodies over the context's ``max_body_bytes`` with 413, whether declared up front
    or streamed; an uploaded file (:data:`UPLOADS`) may be as large as ``max_upload_bytes``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = get_ctx(Request(scope)).settings
        headers = dict(scope.get("headers", []))
        media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        max_bytes = settings.max_upload_bytes if media in UPLOADS else settings.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._reject(send, scope, max_bytes)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    # Raised inside the app, so its exception handlers answer with a problem.
                    raise HTTPException(413, _detail(max_bytes))
            return message

        await self.app(scope, limited, send)

    async def _reject(self, send: Send, scope: Scope, max_bytes: int) -> None:
        body = json.dumps(
            {
                "type": "/problems/payload-too-large",
                "title": "Request body too large",
                "status": 413,
                "detail": _detail(max_bytes),
                "instance": scope.get("path", ""),
                "max_bytes": max_bytes,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _detail(max_bytes: int) -> str:
    return f"the request body exceeds {max_bytes} bytes"


def _template_of(routes: list[Any], route: Any, endpoint: Any) -> str:
    if route is not None:
        return next(
            (
                rc.path
                for rc in iter_route_contexts(routes)
                if rc.original_route is route and rc.path
            ),
            getattr(route, "path", None) or "unmatched",
        )
    for candidate in routes:
        if isinstance(candidate, Mount) and candidate.app is endpoint:
            return f"{candidate.path}/{{path}}"
        if getattr(candidate, "endpoint", None) is endpoint:
            return str(candidate.path)
    return "unmatched"


class RequestMetrics:
    """Count requests and time them, labelled by route template (never the raw path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: dict[int, str] = {}

    def _template(self, scope: Scope) -> str:
        """The matched route's full path template (``scope["route"]`` lacks router prefixes);
        for what FastAPI does not route itself (static files, ``/openapi.json``), the mount
        or route that took the request; ``unmatched`` only when nothing did."""
        route: Any = scope.get("route")
        taken: Any = route if route is not None else scope.get("endpoint")
        if taken is None:
            return "unmatched"
        template = self._templates.get(id(taken))
        if template is None:
            template = _template_of(getattr(scope.get("app"), "routes", []), route, taken)
            self._templates[id(taken)] = template
        return template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            template = self._template(scope)
            method = scope.get("method", "GET")
            meters = get_ctx(Request(scope)).meters
            meters.requests.labels(method, template, str(status)).inc()
            meters.latency.labels(method, template).observe(time.perf_counter() - started)
