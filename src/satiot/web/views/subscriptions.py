"""The Subscriptions page: each device's binding (IMEI ↔ DevEUI ↔ IoT number ↔ handle), its
offering and status, and the moves a person may make on it (suspend, resume, terminate).

The moves call :mod:`satiot.bss.subscriptions` in the person's tenant-scoped write session, so
they are checked against the subscription lifecycle and audited exactly as through the API.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import ColumnElement, or_, select
from starlette.responses import Response

from satiot.api.csv_files import streamed_download
from satiot.api.subscriptions import push_handles_in_background
from satiot.bss import subscription_export
from satiot.bss import subscriptions as domain
from satiot.bss.models import Customer, ProductOffering, Subscription
from satiot.bss.states import SUBSCRIPTION
from satiot.core.auth.roles import ROLES
from satiot.core.errors import DomainError
from satiot.core.pagination import paginate
from satiot.web.flash import Flash, set_flash
from satiot.web.rendering import page
from satiot.web.session import Posted, SignedIn
from satiot.web.views.network_rows import parse_uuid

router = APIRouter()
PATH = "/subscriptions"
PAGE = 50
MOVES = {"suspend": "suspended", "resume": "active", "terminate": "pendingTerminate"}


@dataclass(frozen=True)
class Row:
    sub: Subscription
    offering: str
    customer: str
    moves: list[str]


def _moves(sub: Subscription, role: str, *, customer: bool) -> list[str]:
    """The moves to offer: the lifecycle's, less resuming a suspension a customer did not make
    (the domain would refuse it: the button would only lead to an error)."""
    allowed = []
    for move, target in MOVES.items():
        roles = SUBSCRIPTION.transitions.get((sub.status, target))
        if roles is not None and (role in roles or role == "operator-admin"):
            allowed.append(move)
    if customer and not domain.customer_may_resume(sub):
        return [move for move in allowed if move != "resume"]
    return allowed


def _where(
    q: str, status: str, wanted: uuid.UUID | None = None, by: str = ""
) -> list[ColumnElement[bool]]:
    """What the search box, the status choice, who suspended (``by``, one of
    ``SUSPENSION_ORIGINS``; anything else is ignored) and a linked id keep."""
    where = domain.suspended_by(by) if by in domain.SUSPENSION_ORIGINS else []
    if wanted is not None:
        where.append(Subscription.id == wanted)
    if q:
        like = f"{q.upper()}%"
        where.append(
            or_(
                Subscription.imei.like(like),
                Subscription.dev_eui.like(like),
                Subscription.iot_number.like(like),
                Subscription.handle.like(f"%{q}%"),
            )
        )
    if status in SUBSCRIPTION.states:
        where.append(Subscription.status == status)
    return where


@router.get(PATH + "/export.csv")
def export_csv(signed_in: SignedIn, q: str = "", status: str = "", by: str = "") -> Response:
    """Every subscription the page's search keeps, as a spreadsheet (all pages, not one)."""
    signed_in.require_any("subscriptions:read")
    where = _where(q.strip()[:40], status, by=by)
    return streamed_download(
        signed_in.call.read,
        lambda session: subscription_export.export_subscriptions(session, where),
        subscription_export.file_name(signed_in.now()),
    )


@router.get(PATH)
def subscriptions_page(
    request: Request,
    signed_in: SignedIn,
    q: str = "",
    status: str = "",
    by: str = "",
    after: str | None = None,
    id: str | None = None,
) -> Response:
    signed_in.require_any("subscriptions:read")
    q = q.strip()[:40]
    by = by if by in domain.SUSPENSION_ORIGINS else ""
    stmt = select(Subscription).where(*_where(q, status, parse_uuid(id), by))
    writer = "subscriptions:write" in signed_in.principal.scopes
    flash = None
    with signed_in.call.read() as session:
        try:
            found = paginate(session, stmt, Subscription.id, cursor=after, limit=PAGE)
        except DomainError as exc:
            found = paginate(session, stmt, Subscription.id, cursor=None, limit=PAGE)
            flash = Flash("error", exc.detail)
        offerings = {
            o.id: f"{o.code} v{o.version}"
            for o in session.scalars(
                select(ProductOffering).where(
                    ProductOffering.id.in_({s.offering_id for s in found.items})
                )
            )
        }
        customers = {
            c.id: c.name
            for c in session.scalars(
                select(Customer).where(Customer.id.in_({s.customer_id for s in found.items}))
            )
        }
    role = str(signed_in.principal.role)
    customer = not ROLES[signed_in.principal.role].operator_staff
    rows = [
        Row(
            s,
            offerings.get(s.offering_id, "?"),
            customers.get(s.customer_id, ""),
            _moves(s, role, customer=customer) if writer else [],
        )
        for s in found.items
    ]
    params = {"q": q, "status": status if status in SUBSCRIPTION.states else "", "by": by}
    kept = {k: v for k, v in params.items() if v}
    next_url = None
    if found.next_cursor:
        query = kept | {"after": found.next_cursor}
        next_url = f"{PATH}?{urlencode(query)}"
    return page(
        request,
        signed_in,
        "subscriptions.html",
        {
            "title": "Subscriptions",
            "rows": rows,
            "q": q,
            "status": status,
            "statuses": SUBSCRIPTION.states,
            "staff": signed_in.principal.all_tenants,
            "writer": writer,
            "suspended_by": domain.SUSPENDED_BY_TEXT,
            "by": by,
            "origins": {o: f"suspended {t}" for o, t in domain.SUSPENDED_BY_LABEL.items()},
            "next_url": next_url,
            "export_url": f"{PATH}/export.csv?{urlencode(kept)}".rstrip("?"),
        },
        flash=flash,
    )


@router.post(PATH + "/{subscription_id}/{move}")
def move_subscription(
    signed_in: Posted,
    subscription_id: uuid.UUID,
    move: str,
    reason: Annotated[str, Form()] = "",
) -> Response:
    signed_in.require_any("subscriptions:write")
    response = RedirectResponse(f"{PATH}?id={subscription_id}", status_code=303)
    principal, now = signed_in.principal, signed_in.now()
    try:
        with signed_in.call.write() as session:
            if move == "suspend":
                domain.suspend_subscription(session, principal, subscription_id, reason, now)
            elif move == "resume":
                domain.resume_subscription(session, principal, subscription_id, reason, now)
            elif move == "terminate":
                days = signed_in.ctx.settings.number_quarantine_days
                domain.terminate_subscription(
                    session, principal, subscription_id, reason, now, quarantine_days=days
                )
            else:
                raise domain.SubscriptionNotFound(f"no move {move!r}")
        done = {"suspend": "suspended", "resume": "resumed", "terminate": "terminated"}[move]
        flash = Flash("success", f"Subscription {done}.")
        # the handle's status changed: update the node's copy, as the API does
        response.background = push_handles_in_background(signed_in.ctx, now)
    except DomainError as exc:
        flash = Flash("error", exc.detail)
    set_flash(response, flash, secure=signed_in.ctx.settings.cookie_secure)
    return response
