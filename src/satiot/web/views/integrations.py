"""The Integrations page: where a customer's messages go, and what happened to each one.

A customer sees their webhooks and MQTT integrations, how many deliveries wait or have died,
and the delivery log newest first — every message with its attempts, last error and status.
Dead letters (deliveries that ran out of attempts) can be replayed one by one or all at once;
replays go through :mod:`satiot.network.integrations` in the caller's tenant-scoped write
session, so they are checked against the delivery lifecycle and audited exactly as through
the REST API. Operator staff see every tenant's integrations.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from satiot.core.errors import DomainError
from satiot.core.pagination import Page, paginate
from satiot.network import integrations as domain
from satiot.network.destinations import policies_of
from satiot.network.integration_targets import destination_state
from satiot.network.models import Delivery, DeliveryAttempt, DestinationPolicy, Integration
from satiot.web.flash import Flash, set_flash
from satiot.web.rendering import page
from satiot.web.session import ConsoleSession, Posted, SignedIn
from satiot.web.views.network_rows import clock_time, parse_uuid, tenant_names

router = APIRouter()

PATH = "/integrations"
LOG_PAGE = 50
STATUSES = ("pending", "delivered", "dead")


@dataclass(frozen=True)
class Query:
    integration: uuid.UUID | None = None
    status: str | None = None
    after: str | None = None

    def url(self, **changes: str | None) -> str:
        params = {
            "integration": str(self.integration) if self.integration else None,
            "status": self.status,
            "after": self.after,
        } | changes
        query = urlencode({k: v for k, v in params.items() if v})
        return f"{PATH}?{query}" if query else PATH


@dataclass(frozen=True)
class IntegrationRow:
    integration: Integration
    tenant: str
    pending: int
    dead: int
    #: Why the tenant's allow-list refuses the target by name, or that only its addresses
    #: (resolved when delivering) can decide; None when it is allowed or unrestricted.
    refusal: str | None = None
    by_address: bool = False


@dataclass(frozen=True)
class DeliveryRow:
    delivery: Delivery
    integration: str
    created: str
    last_code: int | None
    last_outcome: str | None


@dataclass
class IntegrationsView:
    query: Query
    integrations: list[IntegrationRow]
    log: list[DeliveryRow]
    next_url: str | None
    #: The signed-in customer's own allow-list (None: unrestricted, or operator staff).
    allow_list: DestinationPolicy | None = None


def _integration_rows(session: Session, staff: bool) -> list[IntegrationRow]:
    found = list(session.scalars(select(Integration).order_by(Integration.id)))
    counts: dict[tuple[uuid.UUID, str], int] = {}
    if found:
        rows = session.execute(
            select(Delivery.integration_id, Delivery.status, func.count(Delivery.id))
            .where(Delivery.status.in_(("pending", "dead")))
            .group_by(Delivery.integration_id, Delivery.status)
        )
        counts = {(iid, status): n for iid, status, n in rows}
    tenant_ids = {i.tenant_id for i in found}
    tenants = tenant_names(session, tenant_ids) if staff else {}
    policies = policies_of(session, tenant_ids)
    made: list[IntegrationRow] = []
    for i in found:
        judged = destination_state(policies.get(i.tenant_id), i.kind, i.url)
        made.append(
            IntegrationRow(
                i,
                tenants.get(i.tenant_id, ""),
                counts.get((i.id, "pending"), 0),
                counts.get((i.id, "dead"), 0),
                judged.reason,
                judged.state == "by-address",
            )
        )
    return made


def _log(
    session: Session, query: Query, names: dict[uuid.UUID, str]
) -> tuple[list[DeliveryRow], str | None]:
    stmt = select(Delivery)
    if query.integration:
        stmt = stmt.where(Delivery.integration_id == query.integration)
    if query.status:
        stmt = stmt.where(Delivery.status == query.status)
    found: Page[Delivery] = paginate(
        session, stmt, Delivery.id, cursor=query.after, limit=LOG_PAGE, descending=True
    )
    deliveries = list(found.items)
    last: dict[uuid.UUID, DeliveryAttempt] = {}
    if deliveries:
        attempts = session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_([d.id for d in deliveries]))
            .order_by(DeliveryAttempt.at)
        )
        last = {a.delivery_id: a for a in attempts}
    rows = [
        DeliveryRow(
            d,
            names.get(d.integration_id, "?"),
            clock_time(d.created_at),
            last[d.id].status_code if d.id in last else None,
            last[d.id].outcome if d.id in last else None,
        )
        for d in deliveries
    ]
    return rows, found.next_cursor


def load(session: Session, signed_in: ConsoleSession, query: Query) -> IntegrationsView:
    staff = signed_in.principal.all_tenants
    rows = _integration_rows(session, staff)
    names = {r.integration.id: r.integration.name or r.integration.kind for r in rows}
    log, cursor = _log(session, query, names)
    own = None
    if not staff:
        own = session.get(DestinationPolicy, signed_in.principal.tenant_id)
    return IntegrationsView(query, rows, log, query.url(after=cursor) if cursor else None, own)


def _query(integration: str | None, status: str | None, after: str | None) -> Query:
    return Query(
        parse_uuid(integration),
        status if status in STATUSES else None,
        after or None,
    )


@router.get(PATH)
def integrations_page(
    request: Request,
    signed_in: SignedIn,
    integration: str | None = None,
    status: str | None = None,
    after: str | None = None,
) -> Response:
    signed_in.require_any("integrations:read")
    query = _query(integration, status, after)
    flash, code = None, 200
    try:
        with signed_in.call.read() as session:
            view = load(session, signed_in, query)
    except DomainError as exc:  # a cursor this server did not issue
        query = Query(query.integration, query.status)
        with signed_in.call.read() as session:
            view = load(session, signed_in, query)
        flash, code = Flash("error", exc.detail), exc.status
    return page(
        request,
        signed_in,
        "integrations.html",
        {
            "title": "Integrations",
            "view": view,
            "statuses": STATUSES,
            "with_tenant": signed_in.principal.all_tenants,
        },
        flash=flash,
        status_code=code,
    )


def _back(signed_in: ConsoleSession, back: str, level: str, message: str) -> Response:
    target = back if back.startswith(PATH) and not back.startswith("//") else PATH
    response = RedirectResponse(target, status_code=303)
    flash = Flash("success" if level == "success" else "error", message)
    set_flash(response, flash, secure=signed_in.ctx.settings.cookie_secure)
    return response


@router.post(PATH + "/{integration_id}/deliveries/{delivery_id}/replay")
def replay_one(
    signed_in: Posted,
    integration_id: uuid.UUID,
    delivery_id: uuid.UUID,
    back: Annotated[str, Form()] = PATH,
) -> Response:
    signed_in.require_any("integrations:write")
    try:
        with signed_in.call.write() as session:
            delivery = domain.replay_delivery(
                session,
                signed_in.principal,
                integration_id,
                delivery_id,
                at=signed_in.now(),
                reason="replayed in the console",
            )
            message = delivery.message_id
    except DomainError as exc:
        return _back(signed_in, back, "error", exc.detail)
    return _back(signed_in, back, "success", f"Message {message} is queued for delivery again.")


@router.post(PATH + "/{integration_id}/dead-letters/replay")
def replay_all(
    signed_in: Posted,
    integration_id: uuid.UUID,
    back: Annotated[str, Form()] = PATH,
) -> Response:
    signed_in.require_any("integrations:write")
    try:
        with signed_in.call.write() as session:
            count = domain.replay_dead_letters(
                session,
                signed_in.principal,
                integration_id,
                at=signed_in.now(),
                reason="replayed in the console",
            )
    except DomainError as exc:
        return _back(signed_in, back, "error", exc.detail)
    noun = "dead letter" if count == 1 else "dead letters"
    return _back(signed_in, back, "success", f"{count} {noun} queued for delivery again.")
