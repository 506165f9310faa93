"""The Messages page: the newest uplinks as they arrive, for the NOC and for customers.

The page is rendered complete on the server (it works with scripts off), then
``/static/messages.js`` asks ``/messages/feed?after=<newest id>`` every few seconds for what
arrived since and adds it on top — a same-origin fetch, so the console's
``default-src 'self'`` policy holds. Operator staff see every tenant's messages with a tenant
column; a customer's session sees only its own tenant's.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from satiot.web.rendering import page
from satiot.web.session import SignedIn
from satiot.web.views.network_rows import message_rows, newest_uplinks, parse_uuid, traffic

router = APIRouter()

PATH = "/messages"
#: Rows on the page when it loads, and at most per feed answer.
PAGE_ROWS = 50
#: How often the browser asks for new messages.
REFRESH_S = 3


@router.get(PATH)
def messages_page(request: Request, signed_in: SignedIn) -> Response:
    signed_in.require_any("uplinks:read")
    staff = signed_in.principal.all_tenants
    with signed_in.call.read() as session:
        uplinks = newest_uplinks(session, limit=PAGE_ROWS)
        rows = message_rows(session, uplinks, with_tenant=staff)
        figures = traffic(session, signed_in.now())
    return page(
        request,
        signed_in,
        "messages.html",
        {
            "title": "Messages",
            "rows": rows,
            "figures": figures,
            "newest": rows[0].id if rows else "",
            "with_tenant": staff,
            "refresh_ms": REFRESH_S * 1000,
            "page_rows": PAGE_ROWS,
        },
    )


@router.get(f"{PATH}/feed")
def messages_feed(signed_in: SignedIn, after: str | None = None) -> Response:
    """New messages since ``after`` (newest first) and the traffic figures, as JSON."""
    signed_in.require_any("uplinks:read")
    staff = signed_in.principal.all_tenants
    with signed_in.call.read() as session:
        uplinks = newest_uplinks(session, limit=PAGE_ROWS, after=parse_uuid(after))
        rows = message_rows(session, uplinks, with_tenant=staff)
        figures = traffic(session, signed_in.now())
    return JSONResponse(
        {
            "rows": [r.to_json() for r in rows],
            "newest": rows[0].id if rows else after or "",
            "figures": figures.to_json(),
            "with_tenant": staff,
        }
    )
