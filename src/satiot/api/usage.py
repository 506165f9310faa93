"""Usage (TMF635): rated and rejected usage records, monthly counters, thresholds reached.

``/usage/csv`` streams one account's or one subscription's records of a month as a file, one
line per message (:mod:`satiot.bss.usage_export`).

Customers see their own. Thresholds (50/80/100 % of an allowance or a contract quota) are the
``usage.threshold`` events of the caller's tenant, readable here with a position to poll from.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import Field
from sqlalchemy import select

from satiot.api.common import CursorParam, LimitParam, Output, Page, page_response
from satiot.api.csv_files import CSV_FILE, streamed_download
from satiot.api.deps import Call, requires
from satiot.bss import usage_export
from satiot.bss.models import Contract, Subscription, UsageCounter, UsageRecord
from satiot.bss.periods import PERIOD_PATTERN
from satiot.bss.rating import THRESHOLD_EVENT
from satiot.core.errors import NotFound
from satiot.core.models import Event
from satiot.core.pagination import paginate

router = APIRouter(prefix="/usage", tags=["usage"])
Reader = Annotated[Call, Depends(requires("usage:read"))]
Period = Annotated[str | None, Query(pattern=PERIOD_PATTERN, examples=["2026-11"])]
#: A usage record's state (TMF635), as ``usage_export.STATES`` lists them.
StateParam = Annotated[Literal["rated", "billed", "rejected"] | None, Query()]


class UsageOut(Output):
    id: uuid.UUID
    event_id: uuid.UUID = Field(description="The uplink or downlink event it was rated from")
    dev_eui: str
    subscription_id: uuid.UUID | None
    billing_account_id: uuid.UUID | None
    offering_id: uuid.UUID | None
    kind: str
    bytes: int
    billable_bytes: int
    period: str
    occurred_at: datetime
    charge_micros: int
    state: str = Field(description="rated, billed or rejected (TMF635)")
    reason: str | None = Field(description="Why a record was rejected")
    bill_id: uuid.UUID | None


class CounterOut(Output):
    bucket: str = Field(
        description="sub:<subscription>, quota:<subscription> or pool:<account>:<offering>"
    )
    measure: str = Field(
        description="usage (no allowance), allowance (the device's own), pool, or quota (the "
        "contract's monthly cap on the device, counting messages and billable bytes)"
    )
    period: str
    messages: int
    bytes: int
    allowance_messages: int
    allowance_bytes: int
    percent: int = Field(description="Highest share of the allowance or quota used")
    notified_pct: int = Field(description="Highest threshold (50/80/100) announced so far")


def _counter_out(
    c: UsageCounter, measure: str, limits: tuple[int, int], notified: int
) -> CounterOut:
    shares = []
    if limits[0]:
        shares.append(c.messages * 100 // limits[0])
    if limits[1]:
        shares.append(c.bytes * 100 // limits[1])
    return CounterOut(
        bucket=c.bucket,
        measure=measure,
        period=c.period,
        messages=c.messages,
        bytes=c.bytes,
        allowance_messages=limits[0],
        allowance_bytes=limits[1],
        percent=max(shares, default=0),
        notified_pct=notified,
    )


def _views(c: UsageCounter, quota: tuple[int, int]) -> list[CounterOut]:
    """A counter as people read it: usage or allowance, pool, and the quota it carries."""
    own = (c.allowance_messages, c.allowance_bytes)
    if c.bucket.startswith("pool:"):
        return [_counter_out(c, "pool", own, c.notified_pct)]
    out = [_counter_out(c, "allowance" if any(own) else "usage", own, c.notified_pct)]
    if any(quota):
        out.append(_counter_out(c, "quota", quota, c.quota_notified_pct))
    return out


@router.get("", response_model=Page[UsageOut], summary="Usage records, newest first")
def list_usage(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 100,
    subscription_id: Annotated[uuid.UUID | None, Query()] = None,
    billing_account_id: Annotated[uuid.UUID | None, Query()] = None,
    period: Period = None,
    state: StateParam = None,
) -> Page[UsageOut]:
    stmt = select(UsageRecord)
    if subscription_id is not None:
        stmt = stmt.where(UsageRecord.subscription_id == subscription_id)
    if billing_account_id is not None:
        stmt = stmt.where(UsageRecord.billing_account_id == billing_account_id)
    if period is not None:
        stmt = stmt.where(UsageRecord.period == period)
    if state is not None:
        stmt = stmt.where(UsageRecord.state == state)
    with call.read() as session:
        page = paginate(session, stmt, UsageRecord.id, cursor=cursor, limit=limit, descending=True)
        return page_response(request, response, page, UsageOut.model_validate)


@router.get(
    "/csv",
    summary="A month's usage records of one billing account, subscription or customer as a CSV "
    "file, one line per message, in the order they were logged (a customer's: account by "
    "account, then those no account was charged for; streamed)",
    response_class=StreamingResponse,
    responses=CSV_FILE,
)
def get_usage_csv(
    call: Reader,
    period: Annotated[str, Query(pattern=PERIOD_PATTERN, examples=["2026-11"])],
    billing_account_id: Annotated[uuid.UUID | None, Query()] = None,
    subscription_id: Annotated[uuid.UUID | None, Query()] = None,
    customer_id: Annotated[uuid.UUID | None, Query()] = None,
    state: StateParam = None,
) -> StreamingResponse:
    with call.read() as session:
        chosen = usage_export.selection(
            session,
            period,
            billing_account_id=billing_account_id,
            subscription_id=subscription_id,
            customer_id=customer_id,
            state=state,
        )
    tz = call.ctx.settings.business_timezone
    return streamed_download(
        call.read,
        lambda session: usage_export.export_records(session, chosen, tz),
        usage_export.file_name(chosen),
    )


class ThresholdOut(Output):
    seq: int = Field(description="Position in the event log; pass as ?after= to read on")
    id: uuid.UUID
    occurred_at: datetime
    threshold_pct: int = Field(description="50, 80 or 100")
    measure: str = Field(description="allowance (the device's own or its pool) or quota")
    bucket: str
    period: str
    subscription_id: uuid.UUID | None
    dev_eui: str | None
    billing_account_id: uuid.UUID
    messages: int
    bytes: int
    limit_messages: int | None
    limit_bytes: int | None


@router.get(
    "/thresholds",
    response_model=list[ThresholdOut],
    summary="Thresholds reached (usage.threshold events), oldest first after a position",
)
def list_thresholds(
    call: Reader,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="Events after this seq")] = 0,
    limit: LimitParam = 100,
) -> list[ThresholdOut]:
    stmt = (
        select(Event)
        .where(Event.type == THRESHOLD_EVENT, Event.seq > after)
        .order_by(Event.seq)
        .limit(limit)
    )
    with call.read() as session:
        return [
            ThresholdOut.model_validate(
                {k: v for k, v in ev.payload.items() if k in ThresholdOut.model_fields}
                | {"seq": ev.seq, "id": ev.id, "occurred_at": ev.occurred_at}
            )
            for ev in session.scalars(stmt)
        ]


@router.get(
    "/counters",
    response_model=list[CounterOut],
    summary="A subscription's monthly counters: its usage or allowance, its quota, its pool",
)
def list_counters(
    call: Reader,
    subscription_id: Annotated[uuid.UUID, Query()],
    period: Period = None,
) -> list[CounterOut]:
    with call.read() as session:
        sub = session.get(Subscription, subscription_id)
        if sub is None:
            raise NotFound(f"no subscription {subscription_id}")
        buckets = [f"sub:{sub.id}", f"pool:{sub.billing_account_id}:{sub.offering_id}"]
        contract = session.get(Contract, sub.contract_id)
        quota = (
            (contract.monthly_messages_per_device or 0, contract.monthly_bytes_per_device or 0)
            if contract is not None
            else (0, 0)
        )
        stmt = select(UsageCounter).where(UsageCounter.bucket.in_(buckets))
        if period is not None:
            stmt = stmt.where(UsageCounter.period == period)
        stmt = stmt.order_by(UsageCounter.period.desc(), UsageCounter.bucket)
        return [view for c in session.scalars(stmt) for view in _views(c, quota)]


# Declared last: the fixed paths above (csv, thresholds, counters) must match before this one.
@router.get(
    "/{usage_id}",
    response_model=UsageOut,
    summary="One usage record, by its id (its event's): what a webhook or a file line names",
)
def get_usage(call: Reader, usage_id: uuid.UUID) -> UsageOut:
    with call.read() as session:
        record = session.get(UsageRecord, usage_id)
        if record is None:
            raise NotFound(f"no usage record {usage_id}")
        return UsageOut.model_validate(record)
