"""The Orders pages: every order with its state, one order's items, and the CSV upload.

A customer administrator (and the operator's sales staff, for a customer they pick) uploads a
bulk order as CSV; a file with bad rows is shown back with each bad row's line, column and
reason, and nothing is applied. An accepted file becomes one order, fulfilled right after the
answer; its page shows each item's state and, for a failed one, why. Everything goes through
the same domain functions as the API, in the person's tenant-scoped session.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.responses import Response

from satiot.api.csv_files import file_response
from satiot.bss import order_csv, orders
from satiot.bss.activation import ActivationConfig
from satiot.bss.customers import customer_of_tenant
from satiot.bss.models import Customer, ProductOffering, ProductOrder, ProductOrderItem
from satiot.bss.order_fulfilment import fulfil_and_register
from satiot.bss.order_items import OrderRejected
from satiot.bss.risk import order_blocker
from satiot.bss.states import ORDER
from satiot.core.errors import DomainError, InvalidInput
from satiot.core.pagination import paginate
from satiot.oss.handle_client import NodeConfig
from satiot.web.flash import Flash, set_flash
from satiot.web.once import FormKey, Sent, redirect, submit_once
from satiot.web.rendering import page
from satiot.web.session import ConsoleSession, Posted, SignedIn
from satiot.web.views.network_rows import parse_uuid

router = APIRouter()
PATH = "/orders"
PAGE = 50


@dataclass(frozen=True)
class OrderRow:
    order: ProductOrder
    customer: str
    states: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.states.values())


def _customers(session: Session, ids: set[uuid.UUID] | None = None) -> dict[uuid.UUID, str]:
    stmt = select(Customer.id, Customer.name).order_by(Customer.name)
    if ids is not None:
        stmt = stmt.where(Customer.id.in_(ids))
    return {cid: name for cid, name in session.execute(stmt)}


def _orderers(session: Session) -> list[tuple[uuid.UUID, str, str | None]]:
    """Every customer for the upload form, with why it may not order yet (None: it may):
    the form offers those that may and shows the others greyed, with the reason."""
    rows = session.execute(
        select(Customer.id, Customer.name, Customer.status, Customer.risk_status).order_by(
            Customer.name
        )
    )
    return [(cid, name, order_blocker(status, risk)) for cid, name, status, risk in rows]


def _listing(signed_in: ConsoleSession, after: str | None) -> tuple[list[OrderRow], str | None]:
    with signed_in.call.read() as session:
        found = paginate(
            session,
            select(ProductOrder),
            ProductOrder.id,
            cursor=after,
            limit=PAGE,
            descending=True,
        )
        ids = [o.id for o in found.items]
        counts: dict[uuid.UUID, dict[str, int]] = {}
        if ids:
            rows = session.execute(
                select(ProductOrderItem.order_id, ProductOrderItem.state, func.count())
                .where(ProductOrderItem.order_id.in_(ids))
                .group_by(ProductOrderItem.order_id, ProductOrderItem.state)
            )
            for order_id, state, n in rows:
                counts.setdefault(order_id, {})[state] = n
        names = _customers(session, {o.customer_id for o in found.items})
        out = [OrderRow(o, names.get(o.customer_id, ""), counts.get(o.id, {})) for o in found.items]
        return out, found.next_cursor


def _list_page(
    request: Request,
    signed_in: ConsoleSession,
    *,
    after: str | None = None,
    csv_errors: list[dict[str, object]] | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    rows, cursor = _listing(signed_in, after)
    staff = signed_in.principal.all_tenants
    customers: list[tuple[uuid.UUID, str, str | None]] = []
    own_blocker: str | None = None
    if "orders:write" in signed_in.principal.scopes:
        with signed_in.call.read() as session:
            if staff:
                customers = _orderers(session)
            else:  # a customer's own record: why it may not order yet, if so
                own = customer_of_tenant(session, signed_in.principal.tenant_id)
                own_blocker = (
                    "no customer record yet"
                    if own is None
                    else order_blocker(own.status, own.risk_status)
                )
    return page(
        request,
        signed_in,
        "orders.html",
        {
            "title": "Orders",
            "rows": rows,
            "next_url": f"{PATH}?after={cursor}" if cursor else None,
            "staff": staff,
            "customers": customers,
            "own_blocker": own_blocker,
            "csv_errors": csv_errors or [],
            "problem": problem,
            "columns": order_csv.COLUMNS,
        },
        flash=Flash("error", problem) if problem else None,
        status_code=status_code,
    )


@router.get(PATH)
def orders_page(request: Request, signed_in: SignedIn, after: str | None = None) -> Response:
    signed_in.require_any("orders:read")
    try:
        return _list_page(request, signed_in, after=after)
    except DomainError as exc:  # a cursor this server did not issue
        return _list_page(request, signed_in, problem=exc.detail, status_code=exc.status)


def _fulfil(signed_in: ConsoleSession, order_id: uuid.UUID) -> BackgroundTask:
    """Fulfil the order once the answer is sent (as the API does)."""
    ctx = signed_in.ctx
    return BackgroundTask(
        fulfil_and_register,
        ctx.db,
        order_id,
        clock=ctx.clock,
        config=ActivationConfig.from_settings(ctx.settings, ctx.kek),
        node=NodeConfig.from_settings(ctx.settings),
    )


@router.get(PATH + "/template.csv")
def order_template(signed_in: SignedIn) -> Response:
    """An empty bulk order to fill in (every column; see :func:`order_csv.template`)."""
    signed_in.require_any("orders:read")
    return file_response(order_csv.template(), order_csv.TEMPLATE_NAME)


@router.post(PATH + "/upload")
def upload(
    request: Request,
    signed_in: Posted,
    file: Annotated[UploadFile, File()],
    customer_id: Annotated[str, Form()] = "",
    encoding: Annotated[str, Form()] = "utf-8",
    form_key: FormKey = "",
) -> Response:
    signed_in.require_any("orders:write")
    chunks = list(iter(lambda: file.file.read(64 * 1024), b""))
    placed: list[uuid.UUID] = []

    def work(session: Session) -> Sent:
        made = orders.place_order(
            session, signed_in.principal, order, at=signed_in.now(), kek=signed_in.ctx.kek
        )
        placed.append(made.id)
        message = f"Order accepted: {len(made.items)} items, fulfilled one by one."
        return Sent(f"{PATH}/{made.id}", message)

    try:
        try:
            parsed = order_csv.parse_order_csv(chunks, encoding=encoding)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="encoding") from None
        order = order_csv.order_from_csv(parsed, customer_id=parse_uuid(customer_id))
        sent, _ = submit_once(signed_in, form_key, request.url.path, work)
    except OrderRejected as exc:
        return _list_page(
            request,
            signed_in,
            csv_errors=[e.as_dict("line", "column") for e in exc.errors],
            problem=exc.detail,
            status_code=422,
        )
    except DomainError as exc:
        return _list_page(request, signed_in, problem=exc.detail, status_code=exc.status)
    response = redirect(signed_in, sent)
    if placed:  # not when this form was sent already: that order is being fulfilled
        response.background = _fulfil(signed_in, placed[0])
    return response


@router.get(PATH + "/{order_id}")
def order_page(request: Request, signed_in: SignedIn, order_id: str) -> Response:
    signed_in.require_any("orders:read")
    wanted = parse_uuid(order_id)
    try:
        if wanted is None:
            raise orders.OrderNotFound(f"product order {order_id} not found")
        with signed_in.call.read() as session:
            found = orders.get_order(session, wanted)
            ids = {i.offering_id for i in found.items if i.offering_id}
            codes = {
                o.id: f"{o.code} v{o.version}"
                for o in session.scalars(select(ProductOffering).where(ProductOffering.id.in_(ids)))
            }
            customer = _customers(session, {found.order.customer_id}).get(found.order.customer_id)
    except DomainError as exc:
        context = {"title": "Order not found", "message": exc.detail}
        return page(request, signed_in, "not_found.html", context, status_code=404)
    cancellable = bool(
        ("cancelled" in ORDER.targets(found.order.state))
        and "orders:write" in signed_in.principal.scopes
    )
    return page(
        request,
        signed_in,
        "order.html",
        {
            "title": f"Order {str(found.id)[:8]}",
            "found": found,
            "codes": codes,
            "customer": customer,
            "cancellable": cancellable,
        },
    )


@router.post(PATH + "/{order_id}/cancel")
def cancel(signed_in: Posted, order_id: uuid.UUID, reason: Annotated[str, Form()] = "") -> Response:
    signed_in.require_any("orders:write")
    response = RedirectResponse(f"{PATH}/{order_id}", status_code=303)
    try:
        with signed_in.call.write() as session:
            orders.cancel_order(
                session, signed_in.principal, order_id, at=signed_in.now(), reason=reason or None
            )
        flash = Flash("success", "Order cancelled.")
    except DomainError as exc:
        flash = Flash("error", exc.detail)
    set_flash(response, flash, secure=signed_in.ctx.settings.cookie_secure)
    return response
