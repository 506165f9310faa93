"""Product orders (TMF622), including bulk orders uploaded as CSV.

``POST /product-orders`` checks the whole order first: any bad item refuses it with a 422
``order-rejected`` problem whose ``errors`` name each item (its index), field and reason, and
nothing is stored. An accepted order is answered ``acknowledged`` (201) and fulfilled right
after the answer, item by item (``GET`` it to follow ``inProgress`` → ``completed`` |
``partial`` | ``failed``; each item says its own state and, if it failed, why). With a future
``requestedStartDate`` it waits ``pending`` and may be cancelled until then.

``POST /product-orders/csv`` takes the same order as a CSV file (multipart field ``file``, or a
``text/csv`` body; the columns are in :mod:`satiot.bss.order_csv`): any bad row refuses the file
with ``errors`` of ``{line, column, reason}``; all good rows make one order, one item per row.
The body limit (``SATIOT_MAX_BODY_BYTES``, 1 MiB by default: about 8,000 rows carrying session
keys) applies; the CLI (``satiot orders import``) takes files of up to 10,000 rows.
``GET /product-orders/csv-template`` is an empty file to fill in: the header with every column.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from satiot.api import problems
from satiot.api.catalog import CamelIn, CamelOut
from satiot.api.common import (
    CursorParam,
    IdempotencyKey,
    LimitParam,
    Page,
    create_idempotently,
    page_response,
)
from satiot.api.context import AppContext
from satiot.api.csv_files import (
    CSV_415,
    CSV_BODY,
    CSV_FILE,
    EncodingParam,
    file_response,
    read_csv,
)
from satiot.api.deps import Call, requires
from satiot.bss import order_csv, orders
from satiot.bss.activation import ActivationConfig
from satiot.bss.models import ProductOrder, ProductOrderItem
from satiot.bss.order_fulfilment import fulfil_and_register
from satiot.bss.order_items import ItemError, ItemIn, OrderIn, OrderRejected, TerminalIn
from satiot.core.pagination import paginate
from satiot.oss.handle_client import NodeConfig

router = APIRouter(prefix="/product-orders", tags=["orders"])
Reader = Annotated[Call, Depends(requires("orders:read"))]
Writer = Annotated[Call, Depends(requires("orders:write"))]
OrderState = Literal[
    "acknowledged",
    "rejected",
    "pending",
    "held",
    "inProgress",
    "cancelled",
    "completed",
    "failed",
    "partial",
]
MAX_JSON_ITEMS = 1000

problems.CATALOG.setdefault(
    OrderRejected.slug,
    (
        OrderRejected.title,
        "One or more items (or CSV lines) cannot be accepted; nothing was applied. The errors "
        "member lists each one: item (index) or line, field or column, and reason.",
    ),
)
problems.CATALOG.setdefault(
    orders.OrderNotFound.slug, (orders.OrderNotFound.title, "No such order visible to you.")
)

#: Where each checked field sits in a JSON order item.
JSON_FIELDS = {
    "imei": "terminal.imei",
    "dev_eui": "terminal.devEui",
    "terminal_model": "terminal.terminalModel",
    "scenario": "terminal.scenario",
    "iccid": "terminal.iccid",
    "imsi": "terminal.imsi",
    "name": "terminal.name",
    "dev_addr": "terminal.devAddr",
    "nwk_s_key": "terminal.nwkSKey",
    "app_s_key": "terminal.appSKey",
    "offering": "productOffering.id",
    "add_ons": "addOns",
    "subscription_id": "subscriptionId",
}


#: A stored item's terminal fields as the API names them.
_TERMINAL_OUT = {"dev_eui": "devEui", "terminal_model": "terminalModel", "dev_addr": "devAddr"}


class TerminalBody(CamelIn):
    dev_eui: str = Field(max_length=32, examples=["70B3D57ED0000001"])
    terminal_model: str = Field(max_length=100, examples=["TQ-M100"])
    imei: str | None = Field(default=None, max_length=32, examples=["354178036859789"])
    scenario: str | None = Field(default=None, max_length=64)
    iccid: str | None = Field(default=None, max_length=32)
    imsi: str | None = Field(default=None, max_length=32)
    name: str = Field(default="", max_length=100)
    dev_addr: str | None = Field(default=None, max_length=8, description="ABP DevAddr (new)")
    nwk_s_key: str | None = Field(default=None, max_length=32, description="Never returned")
    app_s_key: str | None = Field(default=None, max_length=32, description="Never returned")


class Ref(CamelIn):
    id: str = Field(min_length=1, max_length=64, description="An offering version id or code")


class OrderItemBody(CamelIn):
    action: Literal["add", "modify", "delete"]
    product_offering: Ref | None = None
    add_ons: list[Ref] | None = Field(default=None, max_length=10)
    terminal: TerminalBody | None = None
    subscription_id: uuid.UUID | None = None
    reason: str | None = Field(default=None, max_length=500)

    def item(self, index: int) -> ItemIn:
        t = self.terminal
        return ItemIn(
            action=self.action,
            line=index,
            offering=self.product_offering.id if self.product_offering else None,
            add_ons=tuple(a.id for a in self.add_ons) if self.add_ons is not None else None,
            terminal=TerminalIn(**t.model_dump()) if t is not None else None,
            subscription_id=self.subscription_id,
            reason=self.reason,
        )


class OrderBody(CamelIn):
    customer_id: uuid.UUID | None = Field(default=None, description="Operator staff only")
    billing_account_id: uuid.UUID | None = None
    external_id: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=2000)
    requested_start_date: AwareDatetime | None = Field(
        default=None, description="ISO-8601 with a zone"
    )
    product_order_item: list[OrderItemBody] = Field(min_length=1, max_length=MAX_JSON_ITEMS)

    def order(self) -> OrderIn:
        return OrderIn(
            items=tuple(i.item(n) for n, i in enumerate(self.product_order_item)),
            customer_id=self.customer_id,
            billing_account_id=self.billing_account_id,
            external_id=self.external_id,
            note=self.note,
            requested_start_at=self.requested_start_date,
        )


class CancelBody(CamelIn):
    reason: str | None = Field(default=None, max_length=500)


class ItemErrorOut(CamelOut):
    field: str | None
    reason: str


class OrderItemOut(CamelOut):
    id: uuid.UUID
    index: int
    action: str
    state: str
    product_offering_id: uuid.UUID | None
    add_on_ids: list[str]
    subscription_id: uuid.UUID | None
    terminal: dict[str, Any]
    reason: str | None
    error: ItemErrorOut | None

    @classmethod
    def of(cls, item: ProductOrderItem, source: str) -> OrderItemOut:
        error = None
        if item.error:
            field = item.error_field
            if field and source == "api":
                field = JSON_FIELDS.get(field, field)
            error = ItemErrorOut(field=field, reason=item.error)
        terminal = {
            _TERMINAL_OUT.get(k, k): v for k, v in item.terminal.items() if k != orders.SEALED
        }
        return cls(
            id=item.id,
            index=item.line,
            action=item.action,
            state=item.state,
            product_offering_id=item.offering_id,
            add_on_ids=list(item.add_on_ids),
            subscription_id=item.subscription_id,
            terminal=terminal,
            reason=item.reason,
            error=error,
        )


class OrderOut(CamelOut):
    id: uuid.UUID
    href: str
    state: str
    source: str
    external_id: str | None
    note: str | None
    customer_id: uuid.UUID
    contract_id: uuid.UUID
    billing_account_id: uuid.UUID
    placed_by: str
    requested_start_date: datetime | None
    order_date: datetime
    completion_date: datetime | None
    item_states: dict[str, int]
    product_order_item: list[OrderItemOut] | None

    @classmethod
    def of(cls, found: orders.Order, *, with_items: bool = True) -> OrderOut:
        o = found.order
        states: dict[str, int] = {}
        for item in found.items:
            states[item.state] = states.get(item.state, 0) + 1
        return cls(
            id=o.id,
            href=f"/api/v1/product-orders/{o.id}",
            state=o.state,
            source=o.source,
            external_id=o.external_id,
            note=o.note,
            customer_id=o.customer_id,
            contract_id=o.contract_id,
            billing_account_id=o.billing_account_id,
            placed_by=o.placed_by,
            requested_start_date=o.requested_start_at,
            order_date=o.created_at,
            completion_date=o.completed_at,
            item_states=states,
            product_order_item=[OrderItemOut.of(i, o.source) for i in found.items]
            if with_items
            else None,
        )


def fulfil_in_background(ctx: AppContext, order_id: uuid.UUID) -> BackgroundTask:
    """A task that fulfils an order after its answer was sent, then registers the handles it
    minted at the identification node."""
    return BackgroundTask(
        fulfil_and_register,
        ctx.db,
        order_id,
        clock=ctx.clock,
        config=ActivationConfig.from_settings(ctx.settings, ctx.kek),
        node=NodeConfig.from_settings(ctx.settings),
    )


def _json_rejection(exc: OrderRejected) -> OrderRejected:
    mapped = [ItemError(e.item, JSON_FIELDS.get(e.field, e.field), e.reason) for e in exc.errors]
    return OrderRejected(mapped)


def _answer(call: Call, response: JSONResponse, placed: list[uuid.UUID]) -> JSONResponse:
    if placed:
        response.background = fulfil_in_background(call.ctx, placed[0])
    return response


@router.get("", response_model=Page[OrderOut], summary="List product orders, newest first")
def list_orders(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
    state: Annotated[OrderState | None, Query()] = None,
    customer_id: Annotated[uuid.UUID | None, Query(alias="customerId")] = None,
) -> Page[OrderOut]:
    stmt = select(ProductOrder)
    if state is not None:
        stmt = stmt.where(ProductOrder.state == state)
    if customer_id is not None:
        stmt = stmt.where(ProductOrder.customer_id == customer_id)
    with call.read() as session:
        page = paginate(session, stmt, ProductOrder.id, cursor=cursor, limit=limit, descending=True)
        counts = _item_counts(session, [o.id for o in page.items])
        return page_response(
            request,
            response,
            page,
            lambda o: OrderOut.of(orders.Order(o, []), with_items=False).model_copy(
                update={"item_states": counts.get(o.id, {})}
            ),
        )


def _item_counts(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    out: dict[uuid.UUID, dict[str, int]] = {}
    if ids:
        rows = session.execute(
            select(ProductOrderItem.order_id, ProductOrderItem.state, func.count())
            .where(ProductOrderItem.order_id.in_(ids))
            .group_by(ProductOrderItem.order_id, ProductOrderItem.state)
        )
        for order_id, state, n in rows:
            out.setdefault(order_id, {})[state] = n
    return out


@router.post("", status_code=201, response_model=OrderOut, summary="Place an order")
def post_order(
    call: Writer, request: Request, body: OrderBody, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    placed: list[uuid.UUID] = []

    def create(session: Session) -> OrderOut:
        try:
            found = orders.place_order(
                session, call.principal, body.order(), at=call.now(), kek=call.ctx.kek
            )
        except OrderRejected as exc:
            raise _json_rejection(exc) from None
        placed.append(found.id)
        return OrderOut.of(found)

    return _answer(call, create_idempotently(call, request, idempotency_key, body, create), placed)


class _CsvUpload(CamelIn):
    """What identifies a CSV upload for Idempotency-Key (the file by its hash)."""

    sha256: str
    encoding: str
    customer_id: uuid.UUID | None
    billing_account_id: uuid.UUID | None
    external_id: str | None


def _place_csv(
    call: Call,
    request: Request,
    chunks: list[bytes],
    codec: str,
    params: dict[str, Any],
    key: str | None,
) -> JSONResponse:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    fingerprint = _CsvUpload(sha256=digest.hexdigest(), encoding=codec, **params)
    # Parsed before the writing transaction opens: only the database checks run inside it.
    parsed = order_csv.parse_order_csv(chunks, encoding=codec)
    order = order_csv.order_from_csv(parsed, **params)
    placed: list[uuid.UUID] = []

    def create(session: Session) -> OrderOut:
        found = orders.place_order(session, call.principal, order, at=call.now(), kek=call.ctx.kek)
        placed.append(found.id)
        return OrderOut.of(found)

    return _answer(call, create_idempotently(call, request, key, fingerprint, create), placed)


@router.get(
    "/csv-template",
    summary="An empty bulk-order file to fill in: the header line with every column",
    response_class=Response,
    responses=CSV_FILE,
)
def get_csv_template(call: Reader) -> Response:
    return file_response(order_csv.template(), order_csv.TEMPLATE_NAME)


@router.post(
    "/csv",
    status_code=201,
    response_model=OrderOut,
    summary="Place a bulk order from a CSV file (multipart 'file', or a text/csv body)",
    responses=CSV_415,
    openapi_extra=CSV_BODY,
)
async def post_csv(
    call: Writer,
    request: Request,
    customer_id: Annotated[uuid.UUID | None, Query(alias="customerId")] = None,
    billing_account_id: Annotated[uuid.UUID | None, Query(alias="billingAccountId")] = None,
    external_id: Annotated[str | None, Query(alias="externalId", max_length=100)] = None,
    encoding: EncodingParam = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    chunks, codec = await read_csv(request, encoding)
    params = {
        "customer_id": customer_id,
        "billing_account_id": billing_account_id,
        "external_id": external_id,
    }
    return await run_in_threadpool(
        _place_csv, call, request, chunks, codec, params, idempotency_key
    )


@router.get("/{order_id}", response_model=OrderOut, summary="One order with its items")
def get_order(call: Reader, order_id: uuid.UUID) -> OrderOut:
    with call.read() as session:
        return OrderOut.of(orders.get_order(session, order_id))


#: A lifecycle move of an order (cancel, hold, release) as the domain offers it.
OrderMove = Callable[..., orders.Order]


def _move(call: Call, order_id: uuid.UUID, body: CancelBody, move: OrderMove) -> OrderOut:
    """Cancel, hold or release: one transaction, the caller as principal, the reason kept."""
    with call.write() as session:
        found = move(session, call.principal, order_id, at=call.now(), reason=body.reason)
        return OrderOut.of(found)


@router.post(
    "/{order_id}/cancel",
    response_model=OrderOut,
    summary="Cancel an order that is still acknowledged, pending or held",
)
def cancel(call: Writer, order_id: uuid.UUID, body: CancelBody) -> OrderOut:
    return _move(call, order_id, body, orders.cancel_order)


@router.post(
    "/{order_id}/hold",
    response_model=OrderOut,
    summary="Hold a pending order: it is not fulfilled when its start comes, until released",
)
def hold(call: Writer, order_id: uuid.UUID, body: CancelBody) -> OrderOut:
    return _move(call, order_id, body, orders.hold_order)


@router.post(
    "/{order_id}/release",
    response_model=OrderOut,
    summary="Release a held order back to pending",
)
def release(call: Writer, order_id: uuid.UUID, body: CancelBody) -> OrderOut:
    return _move(call, order_id, body, orders.release_order)
