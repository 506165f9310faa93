"""Subscriptions (TMF637 products): the customer's devices, each bound one-to-one-to-one to an
IoT number and a handle, and the moves that stop or end their service.

``suspend`` stops the device's traffic at the network server (ingest refuses its frames as
``device-inactive``) and suspends its number; ``resume`` undoes that; ``terminate`` deactivates
the device, quarantines the number and retires the handle. Each needs a ``reason`` and is
audited; who may make which move is the subscription lifecycle's table.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session
from starlette.background import BackgroundTasks
from starlette.responses import StreamingResponse

from satiot.api import problems
from satiot.api.catalog import CamelIn, CamelOut
from satiot.api.common import CursorParam, LimitParam, Page, page_response
from satiot.api.csv_files import CSV_FILE, streamed_download
from satiot.api.deps import Call, requires
from satiot.bss import subscription_export, subscriptions
from satiot.bss.activation import register_pending_handles
from satiot.bss.models import Subscription
from satiot.core.pagination import paginate
from satiot.oss.handle_client import NodeConfig

router = APIRouter(prefix="/subscriptions", tags=["subscriptions"])
Reader = Annotated[Call, Depends(requires("subscriptions:read"))]
Writer = Annotated[Call, Depends(requires("subscriptions:write"))]
Status = Literal[
    "created",
    "pendingActive",
    "active",
    "suspended",
    "pendingTerminate",
    "terminated",
    "cancelled",
    "aborted",
]

problems.CATALOG.setdefault(
    subscriptions.SubscriptionNotFound.slug,
    (subscriptions.SubscriptionNotFound.title, "No such subscription visible to you."),
)


class ReasonBody(CamelIn):
    reason: str = Field(min_length=1, max_length=500, examples=["device reported stolen"])


class SubscriptionOut(CamelOut):
    id: uuid.UUID
    href: str
    status: str
    status_reason: str | None
    customer_id: uuid.UUID
    billing_account_id: uuid.UUID
    contract_id: uuid.UUID
    product_offering_id: uuid.UUID
    add_on_ids: list[str]
    imei: str | None
    dev_eui: str
    terminal_model: str
    iot_number: str | None
    handle: str | None
    throttled: bool
    created_at: datetime
    start_date: datetime | None
    termination_date: datetime | None

    @classmethod
    def of(cls, sub: Subscription) -> SubscriptionOut:
        return cls(
            id=sub.id,
            href=f"/api/v1/subscriptions/{sub.id}",
            status=sub.status,
            status_reason=sub.status_reason,
            customer_id=sub.customer_id,
            billing_account_id=sub.billing_account_id,
            contract_id=sub.contract_id,
            product_offering_id=sub.offering_id,
            add_on_ids=list(sub.add_on_ids),
            imei=sub.imei,
            dev_eui=sub.dev_eui,
            terminal_model=sub.terminal_model,
            iot_number=sub.iot_number,
            handle=sub.handle,
            throttled=sub.throttled,
            created_at=sub.created_at,
            start_date=sub.activated_at,
            termination_date=sub.terminated_at,
        )


StatusParam = Annotated[Status | None, Query()]
ImeiParam = Annotated[str | None, Query(max_length=32)]
DevEuiParam = Annotated[str | None, Query(alias="devEui", max_length=32)]
IotNumberParam = Annotated[str | None, Query(alias="iotNumber", max_length=13)]
CustomerParam = Annotated[uuid.UUID | None, Query(alias="customerId")]


def _filters(
    status: str | None,
    imei: str | None,
    dev_eui: str | None,
    iot_number: str | None,
    customer_id: uuid.UUID | None,
) -> list[ColumnElement[bool]]:
    where = []
    if status is not None:
        where.append(Subscription.status == status)
    if imei is not None:
        where.append(Subscription.imei == imei)
    if dev_eui is not None:
        where.append(Subscription.dev_eui == dev_eui.upper())
    if iot_number is not None:
        where.append(Subscription.iot_number == iot_number)
    if customer_id is not None:
        where.append(Subscription.customer_id == customer_id)
    return where


@router.get("", response_model=Page[SubscriptionOut], summary="List subscriptions")
def list_subscriptions(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
    status: StatusParam = None,
    imei: ImeiParam = None,
    dev_eui: DevEuiParam = None,
    iot_number: IotNumberParam = None,
    customer_id: CustomerParam = None,
) -> Page[SubscriptionOut]:
    stmt = select(Subscription).where(*_filters(status, imei, dev_eui, iot_number, customer_id))
    with call.read() as session:
        page = paginate(session, stmt, Subscription.id, cursor=cursor, limit=limit)
        return page_response(request, response, page, SubscriptionOut.of)


@router.get(
    "/csv",
    summary="Every subscription the list's filters keep, as one CSV file (streamed)",
    response_class=StreamingResponse,
    responses=CSV_FILE,
)
def export_csv(
    call: Reader,
    status: StatusParam = None,
    imei: ImeiParam = None,
    dev_eui: DevEuiParam = None,
    iot_number: IotNumberParam = None,
    customer_id: CustomerParam = None,
) -> StreamingResponse:
    """One line per device with its binding (IMEI, DevEUI, IoT number, handle), offering,
    status and dates (China time), oldest first; the columns are in
    :mod:`satiot.bss.subscription_export`."""
    where = _filters(status, imei, dev_eui, iot_number, customer_id)
    return streamed_download(
        call.read,
        lambda session: subscription_export.export_subscriptions(session, where),
        subscription_export.file_name(call.now()),
    )


@router.get("/{subscription_id}", response_model=SubscriptionOut, summary="One subscription")
def get_subscription(call: Reader, subscription_id: uuid.UUID) -> SubscriptionOut:
    with call.read() as session:
        return SubscriptionOut.of(subscriptions.get_subscription(session, subscription_id))


Move = Callable[[Session, Call, uuid.UUID, str], Subscription]


def _move(
    call: Call, background: BackgroundTasks, subscription_id: uuid.UUID, reason: str, move: Move
) -> SubscriptionOut:
    with call.write() as session:
        out = SubscriptionOut.of(move(session, call, subscription_id, reason))
    node = NodeConfig.from_settings(call.ctx.settings)
    if node is not None:  # the handle's status changed: update the node's copy
        background.add_task(register_pending_handles, call.ctx.db, node, at=call.now())
    return out


@router.post(
    "/{subscription_id}/suspend",
    response_model=SubscriptionOut,
    summary="Suspend: stop the device's traffic and suspend its number",
)
def suspend(
    call: Writer, background: BackgroundTasks, subscription_id: uuid.UUID, body: ReasonBody
) -> SubscriptionOut:
    return _move(
        call,
        background,
        subscription_id,
        body.reason,
        lambda s, c, i, r: subscriptions.suspend_subscription(s, c.principal, i, r, c.now()),
    )


@router.post(
    "/{subscription_id}/resume",
    response_model=SubscriptionOut,
    summary="Resume a suspended subscription",
)
def resume(
    call: Writer, background: BackgroundTasks, subscription_id: uuid.UUID, body: ReasonBody
) -> SubscriptionOut:
    return _move(
        call,
        background,
        subscription_id,
        body.reason,
        lambda s, c, i, r: subscriptions.resume_subscription(s, c.principal, i, r, c.now()),
    )


@router.post(
    "/{subscription_id}/terminate",
    response_model=SubscriptionOut,
    summary="Terminate: deactivate the device, quarantine the number, retire the handle",
)
def terminate(
    call: Writer, background: BackgroundTasks, subscription_id: uuid.UUID, body: ReasonBody
) -> SubscriptionOut:
    days = call.ctx.settings.number_quarantine_days
    return _move(
        call,
        background,
        subscription_id,
        body.reason,
        lambda s, c, i, r: subscriptions.terminate_subscription(
            s, c.principal, i, r, c.now(), quarantine_days=days
        ),
    )
