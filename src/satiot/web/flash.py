"""One-shot messages that survive the redirect after a successful POST.

After a change the console redirects (POST-redirect-GET, so a reload does not repeat it) and
the message rides along in a short-lived cookie that the next page reads and clears. The text
is always rendered escaped, so a forged cookie can at worst show a silly message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

COOKIE_NAME = "satiot_flash"
Level = Literal["success", "error", "info"]


@dataclass(frozen=True)
class Flash:
    level: Level
    message: str


def set_flash(response: Response, flash: Flash, *, secure: bool) -> None:
    value = quote(json.dumps({"level": flash.level, "message": flash.message[:500]}))
    response.set_cookie(
        COOKIE_NAME, value, max_age=60, path="/", httponly=True, samesite="lax", secure=secure
    )


def redirect_with(location: str, flash: Flash, *, secure: bool) -> RedirectResponse:
    """The 303 after a POST, carrying its message to the page it leads to."""
    response = RedirectResponse(location, status_code=303)
    set_flash(response, flash, secure=secure)
    return response


def read_flash(request: Request) -> Flash | None:
    """The pending message, if any (the page that shows it calls :func:`forget_flash`)."""
    raw = request.cookies.get(COOKIE_NAME)
    if raw is None:
        return None
    try:
        data = json.loads(unquote(raw))
        level, message = data["level"], str(data["message"])
    except (ValueError, KeyError, TypeError):
        return None
    if level not in ("success", "error", "info"):
        return None
    return Flash(level, message)


def forget_flash(request: Request, response: Response) -> None:
    if COOKIE_NAME in request.cookies:
        response.delete_cookie(COOKIE_NAME, path="/")
