"""The product catalog (TMF620 productOffering with nested productOfferingPrice).

Field names follow TMF620 (``lifecycleStatus``, ``productOfferingPrice``, ``version``);
amounts are given in yuan (``price.value``, a decimal string) and returned in yuan and in
exact micro-yuan (``amountMicros``). The operator's staff design, revise, launch and retire;
customers read what is launched (``Active``) and what they may still be billed on
(``Retired``), never an offering still in design.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel
from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.api import problems
from satiot.api.common import (
    CursorParam,
    IdempotencyKey,
    Input,
    LimitParam,
    Output,
    Page,
    create_idempotently,
    page_response,
)
from satiot.api.deps import Call, requires
from satiot.bss import catalog
from satiot.bss.models import ProductOffering, ProductOfferingPrice
from satiot.bss.money import to_micros, to_yuan
from satiot.core.auth.principal import Principal
from satiot.core.pagination import paginate

router = APIRouter(prefix="/product-offerings", tags=["catalog"])
Reader = Annotated[Call, Depends(requires("catalog:read"))]
Writer = Annotated[Call, Depends(requires("catalog:write"))]
PriceKind = Literal["recurring", "one-time", "per-message", "per-byte"]
Status = Literal["In design", "Active", "Retired"]

problems.CATALOG.setdefault(
    catalog.OfferingNotFound.slug,
    (catalog.OfferingNotFound.title, "No offering version with this id is visible to you."),
)

_PRICE_TYPE = {
    "recurring": ("recurring", "device-month"),
    "one-time": ("oneTime", "once"),
    "per-message": ("usage", "message"),
    "per-byte": ("usage", "byte"),
}


class CamelIn(Input):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class CamelOut(Output):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Money(CamelIn):
    value: Decimal = Field(
        ge=0, max_digits=18, decimal_places=6, description="Yuan, e.g. '0.05'", examples=["0.05"]
    )
    unit: Literal["CNY"] = "CNY"


class PriceIn(CamelIn):
    name: str = Field(min_length=1, max_length=200, examples=["Uplink message"])
    kind: PriceKind
    price: Money
    min_billable_bytes: int = Field(default=0, ge=0, le=catalog.MAX_MIN_BILLABLE_BYTES)
    allowance_messages: int = Field(default=0, ge=0, le=catalog.MAX_ALLOWANCE_MESSAGES)
    allowance_bytes: int = Field(default=0, ge=0, le=catalog.MAX_ALLOWANCE_BYTES)
    pooled: bool = False
    applies_to: Literal["all", "uplink", "downlink"] = "all"
    priority: bool = False

    def spec(self) -> catalog.PriceSpec:
        return catalog.PriceSpec(
            name=self.name,
            kind=self.kind,
            amount_micros=to_micros(self.price.value),
            min_billable_bytes=self.min_billable_bytes,
            allowance_messages=self.allowance_messages,
            allowance_bytes=self.allowance_bytes,
            pooled=self.pooled,
            applies_to=self.applies_to,
            priority=self.priority,
        )


class OfferingIn(CamelIn):
    code: str = Field(pattern=catalog.CODE_RE.pattern, examples=["SAT-BUNDLE-100"])
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    is_add_on: bool = False
    product_offering_price: list[PriceIn] = Field(min_length=1, max_length=20)

    def spec(self) -> catalog.OfferingSpec:
        return catalog.OfferingSpec(
            code=self.code,
            name=self.name,
            description=self.description,
            is_add_on=self.is_add_on,
            prices=tuple(p.spec() for p in self.product_offering_price),
        )


class OfferingChanges(CamelIn):
    """Changes over the current version; what is left out is copied."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    is_add_on: bool | None = None
    product_offering_price: list[PriceIn] | None = Field(default=None, min_length=1, max_length=20)
    reason: str | None = Field(default=None, max_length=500)

    def over(self, base: catalog.OfferingSpec) -> catalog.OfferingSpec:
        return catalog.OfferingSpec(
            code=base.code,
            name=self.name if self.name is not None else base.name,
            description=self.description if self.description is not None else base.description,
            is_add_on=self.is_add_on if self.is_add_on is not None else base.is_add_on,
            prices=(
                tuple(p.spec() for p in self.product_offering_price)
                if self.product_offering_price is not None
                else base.prices
            ),
        )


class LifecycleIn(CamelIn):
    lifecycle_status: Literal["Active", "Retired"]
    reason: str | None = Field(default=None, max_length=500)


class MoneyOut(CamelOut):
    value: str
    unit: str = "CNY"


class PriceOut(CamelOut):
    id: uuid.UUID
    name: str
    kind: str
    price_type: str
    unit_of_measure: str
    price: MoneyOut
    amount_micros: int
    min_billable_bytes: int
    allowance_messages: int
    allowance_bytes: int
    pooled: bool
    applies_to: str
    priority: bool
    description: str

    @classmethod
    def of(cls, p: ProductOfferingPrice) -> PriceOut:
        price_type, unit = _PRICE_TYPE[p.kind]
        return cls(
            id=p.id,
            name=p.name,
            kind=p.kind,
            price_type=price_type,
            unit_of_measure=unit,
            price=MoneyOut(value=f"{to_yuan(p.amount_micros).normalize():f}"),
            amount_micros=p.amount_micros,
            min_billable_bytes=p.min_billable_bytes,
            allowance_messages=p.allowance_messages,
            allowance_bytes=p.allowance_bytes,
            pooled=p.pooled,
            applies_to=p.applies_to,
            priority=p.priority,
            description=catalog.describe_price(p),
        )


class OfferingOut(CamelOut):
    id: uuid.UUID
    href: str
    code: str
    version: int
    name: str
    description: str
    lifecycle_status: str
    is_add_on: bool
    product_offering_price: list[PriceOut]
    created_at: datetime

    @classmethod
    def of(cls, found: catalog.Offering) -> OfferingOut:
        o = found.offering
        return cls(
            id=o.id,
            href=f"/api/v1/product-offerings/{o.id}",
            code=o.code,
            version=o.version,
            name=o.name,
            description=o.description,
            lifecycle_status=o.lifecycle_status,
            is_add_on=o.is_add_on,
            product_offering_price=[PriceOut.of(p) for p in found.prices],
            created_at=o.created_at,
        )


def visible_states(principal: Principal) -> tuple[str, ...] | None:
    """What a caller may see: staff everything, customers the launched and retired ones."""
    return None if principal.all_tenants else catalog.CUSTOMER_VISIBLE


@router.get("", response_model=Page[OfferingOut], summary="List product offerings")
def list_offerings(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
    lifecycle_status: Annotated[Status | None, Query(alias="lifecycleStatus")] = None,
    code: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[OfferingOut]:
    stmt = select(ProductOffering)
    allowed = visible_states(call.principal)
    if allowed is not None:
        stmt = stmt.where(ProductOffering.lifecycle_status.in_(allowed))
    if lifecycle_status is not None:
        stmt = stmt.where(ProductOffering.lifecycle_status == lifecycle_status)
    if code is not None:
        stmt = stmt.where(ProductOffering.code == code.strip().upper())
    with call.read() as session:
        page = paginate(session, stmt, ProductOffering.id, cursor=cursor, limit=limit)
        prices = catalog.prices_of(session, [o.id for o in page.items])
        return page_response(
            request,
            response,
            page,
            lambda o: OfferingOut.of(catalog.Offering(o, prices[o.id])),
        )


@router.post(
    "", status_code=201, response_model=OfferingOut, summary="Design an offering (version 1)"
)
def post_offering(
    call: Writer, request: Request, body: OfferingIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    def create(session: Session) -> OfferingOut:
        made = catalog.create_offering(session, call.principal, body.spec(), at=call.now())
        return OfferingOut.of(made)

    return create_idempotently(call, request, idempotency_key, body, create)


@router.get("/{offering_id}", response_model=OfferingOut, summary="One offering version")
def get_offering(call: Reader, offering_id: uuid.UUID) -> OfferingOut:
    with call.read() as session:
        found = catalog.get_offering(session, offering_id, states=visible_states(call.principal))
        return OfferingOut.of(found)


@router.patch(
    "/{offering_id}",
    response_model=OfferingOut,
    summary="Revise an offering: in place while in design, else as version n+1 (in design)",
)
def patch_offering(call: Writer, offering_id: uuid.UUID, body: OfferingChanges) -> OfferingOut:
    with call.write() as session:
        base = catalog.spec_of(catalog.get_offering(session, offering_id))
        revised = catalog.revise_offering(
            session,
            call.principal,
            offering_id,
            body.over(base),
            at=call.now(),
            reason=body.reason,
        )
        return OfferingOut.of(revised)


@router.post(
    "/{offering_id}/versions",
    status_code=201,
    response_model=OfferingOut,
    summary="Start version n+1 (in design) from this version, with optional changes",
)
def post_version(
    call: Writer,
    request: Request,
    offering_id: uuid.UUID,
    body: OfferingChanges,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create(session: Session) -> OfferingOut:
        base = catalog.spec_of(catalog.get_offering(session, offering_id))
        made = catalog.new_version(
            session, call.principal, offering_id, body.over(base), at=call.now(), reason=body.reason
        )
        return OfferingOut.of(made)

    return create_idempotently(call, request, idempotency_key, body, create)


@router.post(
    "/{offering_id}/lifecycle",
    response_model=OfferingOut,
    summary="Launch (Active) or retire (Retired) an offering version",
)
def post_lifecycle(call: Writer, offering_id: uuid.UUID, body: LifecycleIn) -> OfferingOut:
    with call.write() as session:
        changed = catalog.set_lifecycle(
            session,
            call.principal,
            offering_id,
            body.lifecycle_status,
            at=call.now(),
            reason=body.reason,
        )
        return OfferingOut.of(changed)
