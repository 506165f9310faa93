"""Subscriptions (TMF637 products): the customer's devices, each bound one-to-one-to-one to an
IoT number and a handle, and the moves that stop or end their service.

``suspend`` stops the device's traffic at the network server (ingest refuses its frames as
``device-inactive``) and suspends its number; ``resume`` undoes that; ``terminate`` deactivates
the device, quarantines the number and retires the handle. Each needs a ``reason`` and is
audited; who may make which move is the subscription lifecycle's table.

``POST /subscriptions/status-csv`` suspends and resumes many devices from one CSV file, all or
none (:mod:`satiot.bss.status_import`): any bad line refuses the whole file, 422
``status-import-rejected`` with ``errors`` naming each ``{line, column, reason}``. A long file
is checked the same way, then answered 202 with a job that applies it in parts
(:mod:`satiot.bss.status_jobs`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask, BackgroundTasks
from starlette.responses import StreamingResponse

from satiot.api import problems
from satiot.api.catalog import CamelIn, CamelOut
from satiot.api.common import CursorParam, IdempotencyKey, LimitParam, Output, Page, page_response
from satiot.api.context import AppContext
from satiot.api.csv_files import (
    CSV_415,
    CSV_BODY,
    CSV_FILE,
    EncodingParam,
    file_response,
    import_file,
    streamed_download,
)
from satiot.api.deps import Call, requires
from satiot.api.jobs import RESPOND_ASYNC, JobOut, PreferHeader, job_out, wants_job
from satiot.bss import status_import, status_jobs, subscription_export, subscriptions
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
problems.CATALOG.setdefault(
    status_import.StatusImportRejected.slug,
    (
        status_import.StatusImportRejected.title,
        "One or more lines of the suspend/resume file cannot be applied; none was. The errors "
        "member lists each one: line (the header is 1), column and reason.",
    ),
)


class ReasonBody(CamelIn):
    reason: str = Field(min_length=1, max_length=500, examples=["device reported stolen"])


class SubscriptionOut(CamelOut):
    id: uuid.UUID
    href: str
    status: str
    status_reason: str | None
    suspended_by: Literal["customer", "operator", "quota", "balance"] | None = Field(
        description="Who suspended it (while suspended): a customer may resume only its own "
        "suspension; the quota's ends with the month, the balance's with a top-up"
    )
    suspended_at: datetime | None
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
            suspended_by=sub.suspended_by if sub.status == "suspended" else None,
            suspended_at=sub.suspended_at if sub.status == "suspended" else None,
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
SuspendedByParam = Annotated[
    Literal["customer", "operator", "quota", "balance"] | None,
    Query(
        alias="suspendedBy",
        description="Only subscriptions suspended by this origin (implies status suspended)",
    ),
]


def _filters(
    status: str | None,
    imei: str | None,
    dev_eui: str | None,
    iot_number: str | None,
    customer_id: uuid.UUID | None,
    origin: str | None = None,
) -> list[ColumnElement[bool]]:
    where = [] if origin is None else subscriptions.suspended_by(origin)
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
    suspended_by: SuspendedByParam = None,
) -> Page[SubscriptionOut]:
    where = _filters(status, imei, dev_eui, iot_number, customer_id, suspended_by)
    stmt = select(Subscription).where(*where)
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
    suspended_by: SuspendedByParam = None,
) -> StreamingResponse:
    """One line per device with its binding (IMEI, DevEUI, IoT number, handle), offering,
    status and dates (China time), oldest first; the columns are in
    :mod:`satiot.bss.subscription_export`."""
    where = _filters(status, imei, dev_eui, iot_number, customer_id, suspended_by)
    return streamed_download(
        call.read,
        lambda session: subscription_export.export_subscriptions(session, where),
        subscription_export.file_name(call.now()),
    )


class StatusImportOut(Output):
    suspended: int = Field(description="Devices suspended now")
    resumed: int = Field(description="Devices resumed now")
    already: int = Field(description="Lines whose device was already as the line asks")


@router.get(
    "/status-csv-template",
    summary="An empty suspend/resume file to fill in: the header line",
    response_class=Response,
    responses=CSV_FILE,
)
def get_status_csv_template(call: Writer) -> Response:
    return file_response(status_import.template(), status_import.TEMPLATE_NAME)


#: The 202 answer of a long file (or one sent with ``Prefer: respond-async``).
STATUS_FILE_QUEUED: Final[dict[int | str, dict[str, Any]]] = {
    202: {
        "model": JobOut,
        "description": f"More than {status_import.MAX_ROWS:,} lines, or Prefer: respond-async: "
        "checked whole, then queued as a job (at Location) that applies it in parts",
    }
}


@router.post(
    "/status-csv",
    response_model=StatusImportOut,
    summary="Suspend and resume devices from a CSV file, all or none (multipart 'file', or a "
    "text/csv body); a long file as a job",
    responses={**CSV_415, **STATUS_FILE_QUEUED},
    openapi_extra=CSV_BODY,
)
async def post_status_csv(
    call: Writer,
    request: Request,
    encoding: EncodingParam = None,
    idempotency_key: IdempotencyKey = None,
    prefer: PreferHeader = None,
) -> JSONResponse:
    """Columns ``device`` (DevEUI, IMEI, IoT number or subscription id), ``action``
    (``suspend`` or ``resume``) and ``reason``. Each device moves as ``POST
    /subscriptions/{id}/suspend`` or ``/resume`` moves it, all in one transaction; a device
    already as its line asks counts as ``already``. A file of more than 5,000 lines (up to
    100,000), or any file sent with ``Prefer: respond-async``, is checked whole in the request
    (a bad line refuses it with nothing changed) and answered 202 with a job that applies it
    5,000 lines to a transaction (:mod:`satiot.bss.status_jobs`)."""
    changed: list[uuid.UUID] = []
    queued: list[bool] = []

    def load(session: Session, data: bytes, codec: str) -> StatusImportOut | JobOut:
        lines = status_import.read_lines(
            data, encoding=codec, max_rows=status_import.MAX_ROWS_IN_PARTS
        )
        if wants_job(prefer) or len(lines.lines) > status_import.MAX_ROWS:
            queued.append(True)
            return job_out(status_jobs.queue_file(session, call.principal, lines, at=call.now()))
        done = status_import.apply_lines(session, call.principal, lines, at=call.now())
        changed.extend(done.subscription_ids)
        return StatusImportOut(suspended=done.suspended, resumed=done.resumed, already=done.already)

    response = await import_file(
        call, request, encoding, idempotency_key, load, status_code=lambda: 202 if queued else 200
    )
    if response.status_code == 202:  # fresh or replayed: the job is where its id says
        job_id = json.loads(bytes(response.body))["id"]
        response.headers["Location"] = f"/api/v1/jobs/{job_id}"
        if wants_job(prefer):
            response.headers["Preference-Applied"] = RESPOND_ASYNC
    if changed:
        response.background = push_handles_in_background(call.ctx, call.now())
    return response


@router.get("/{subscription_id}", response_model=SubscriptionOut, summary="One subscription")
def get_subscription(call: Reader, subscription_id: uuid.UUID) -> SubscriptionOut:
    with call.read() as session:
        return SubscriptionOut.of(subscriptions.get_subscription(session, subscription_id))


def push_handles_in_background(ctx: AppContext, at: datetime) -> BackgroundTask | None:
    """A task that registers the handles a move changed at the identification node after the
    answer was sent (None when handles stay local): the node's copy says what the device's
    status is, so every move that changes one pushes it, from the API and the console."""
    node = NodeConfig.from_settings(ctx.settings)
    if node is None:
        return None
    return BackgroundTask(register_pending_handles, ctx.db, node, at=at)


Move = Callable[[Session, Call, uuid.UUID, str], Subscription]


def _move(
    call: Call, background: BackgroundTasks, subscription_id: uuid.UUID, reason: str, move: Move
) -> SubscriptionOut:
    with call.write() as session:
        out = SubscriptionOut.of(move(session, call, subscription_id, reason))
    task = push_handles_in_background(call.ctx, call.now())
    if task is not None:  # the handle's status changed: update the node's copy
        background.add_task(task)
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
