"""Turning a view's data into an HTML page inside the console layout.

Every page needs the same frame: who is signed in, their menu, the CSRF token for the logout
button and any flash message. :func:`page` supplies it so views pass only their own data.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.templating import Jinja2Templates

from satiot.bss.money import format_cny
from satiot.web.flash import Flash, forget_flash, read_flash
from satiot.web.navigation import NAVIGATION, SECTION_LABELS, visible_items
from satiot.web.once import new_form_key
from satiot.web.session import CSRF_FIELD, ConsoleSession

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
NAV_PATHS = frozenset(item.path for item in NAVIGATION)


def _when(value: datetime | None) -> str:
    """Timestamps are shown in UTC to the minute: operators compare them with logs."""
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


templates.env.filters["when"] = _when
templates.env.filters["cny"] = format_cny
#: A fresh key for each rendering of a form that creates something (see :mod:`satiot.web.once`).
templates.env.globals["form_key"] = new_form_key


def _existing_paths(request: Request, candidates: Iterable[str]) -> set[str]:
    """Which of ``candidates`` some route of the running app answers with a GET."""
    routes: list[BaseRoute] = request.app.routes

    def served(path: str) -> bool:
        scope = {"type": "http", "method": "GET", "path": path, "root_path": ""}
        return any(route.matches(scope)[0] is Match.FULL for route in routes)

    return {path for path in candidates if served(path)}


def page(
    request: Request,
    signed_in: ConsoleSession,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    flash: Flash | None = None,
) -> Response:
    """Render ``template`` in the layout for ``signed_in``; ``flash`` overrides a pending one."""
    principal = signed_in.principal
    data: dict[str, Any] = {
        "me": signed_in,
        "nav": visible_items(principal, _existing_paths(request, NAV_PATHS)),
        "section_label": SECTION_LABELS[signed_in.audience],
        "audience": signed_in.audience,
        "current_path": request.url.path,
        "csrf_field": CSRF_FIELD,
        "csrf_token": signed_in.csrf_token,
        "now": signed_in.now(),
    }
    data.update(context or {})
    data["flash"] = flash or read_flash(request)
    response = templates.TemplateResponse(request, template, data, status_code=status_code)
    forget_flash(request, response)
    return response


def bare_page(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> Response:
    """A page outside the signed-in layout (the login form)."""
    return templates.TemplateResponse(request, template, context or {}, status_code=status_code)
