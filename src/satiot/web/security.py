"""Security headers for every console response, static files and error pages included.

The headers are added by an ASGI middleware rather than in each view so that redirects, 403
pages from exception handlers and files from ``/static`` get them too. It leaves the REST API
alone: ``/docs`` loads Swagger UI from a CDN, which ``default-src 'self'`` would block.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; "
    "object-src 'none'"
)

HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


class SecurityHeaders:
    """Add :data:`HEADERS` to responses for requests that ``applies`` to; pages (not static
    files) also get ``Cache-Control: no-store`` so a shared machine's back button shows no
    signed-in content after logout."""

    def __init__(
        self, app: ASGIApp, applies: Callable[[Scope], bool], static_prefix: str = "/static/"
    ) -> None:
        self.app = app
        self.applies = applies
        self.static_prefix = static_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies(scope):
            await self.app(scope, receive, send)
            return
        is_static = str(scope.get("path", "")).startswith(self.static_prefix)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
                if not is_static and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)
