"""The landing page: what each kind of person needs to know at a glance, from live data.

Operator staff see the size of the platform and whether its machinery is healthy (event-log
consumers keeping up, audit chain intact), and the business work waiting for someone
(customers to verify, drafts to sign, orders gone wrong, invoices unpaid); a customer sees
their own account, orders, subscriptions and what they owe; the regulator sees the number of
tenants under supervision and whether the audit trail can be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from satiot.core import events
from satiot.core.audit_watch import Watched
from satiot.core.models import ApiKey, Tenant, User
from satiot.web.rendering import page
from satiot.web.session import ConsoleSession, SignedIn
from satiot.web.views import business_figures, network_figures
from satiot.web.views.figures import Figure, counted

router = APIRouter()


@dataclass
class Dashboard:
    figures: list[Figure] = field(default_factory=list)
    business: list[Figure] = field(default_factory=list)
    tenant: Tenant | None = None
    event_head: int | None = None
    consumers: list[events.ConsumerStatus] | None = None
    audit: Watched | None = None


def _count(session: Session, stmt: Any) -> int:
    return int(session.scalar(stmt) or 0)


def _active_keys(session: Session, signed_in: ConsoleSession) -> int:
    now = signed_in.now()
    return _count(
        session,
        select(func.count(ApiKey.id)).where(
            ApiKey.revoked_at.is_(None),
            (ApiKey.expires_at.is_(None)) | (ApiKey.expires_at > now),
        ),
    )


def build(session: Session, signed_in: ConsoleSession) -> Dashboard:
    """Gather the figures for ``signed_in``'s audience through its tenant-scoped session.

    The counts are aggregates of what the session may see (a customer's session sees only its
    own tenant); links go only where the person's scopes open a page.
    """
    audience = signed_in.audience
    access = "/access" if {"users:read", "api-keys:read"} & signed_in.principal.scopes else None
    board = Dashboard()
    if audience == "customer":
        board.tenant = session.get(Tenant, signed_in.principal.tenant_id)
    else:
        tenants = _count(session, select(func.count(Tenant.id)))
        customers = _count(session, select(func.count(Tenant.id)).where(Tenant.kind == "customer"))
        board.figures.append(Figure("Tenants", tenants, note=counted(customers, "customer")))
    if audience in ("operator", "customer"):
        users = _count(session, select(func.count(User.id)))
        active = _count(session, select(func.count(User.id)).where(User.status == "active"))
        board.figures.append(Figure("Users", users, access, note=f"{active} active"))
        board.figures.append(Figure("Active API keys", _active_keys(session, signed_in), access))
    board.figures.extend(network_figures.figures(session, signed_in))
    board.business = business_figures.figures(session, signed_in)
    if audience == "operator":
        board.event_head = events.head(session)
        board.consumers = events.status(session)
    if audience in ("operator", "regulator"):
        # The entries since the last intact walk; the whole chain every few minutes.
        board.audit = signed_in.ctx.audit_watch.current(session, signed_in.now())
    return board


@router.get("/")
def dashboard(request: Request, signed_in: SignedIn) -> Response:
    with signed_in.call.read() as session:
        board = build(session, signed_in)
    return page(request, signed_in, "dashboard.html", {"board": board, "title": "Dashboard"})
