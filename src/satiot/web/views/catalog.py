"""The Catalog page: offerings and their prices, and for the operator's sales staff the
design → launch → retire workflow (a revision of a launched offering is a new version).

Customers see what they can order (``Active``) and never an offering still in design. Every
change goes through :mod:`satiot.bss.catalog`, checked against the offering lifecycle and
audited as through the API.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from satiot.bss import catalog
from satiot.bss.models import ProductOffering
from satiot.bss.money import to_micros
from satiot.core.errors import DomainError, InvalidInput
from satiot.web.flash import Flash, redirect_with
from satiot.web.forms import whole_number
from satiot.web.once import FormKey, Sent, redirect, submit_once
from satiot.web.rendering import page
from satiot.web.session import ConsoleSession, Posted, SignedIn

router = APIRouter()
PATH = "/catalog"
#: A price in yuan as the API takes it (18 digits, 6 of them decimals), in ASCII digits.
_AMOUNT_RE = re.compile(r"[0-9]{1,12}(?:\.[0-9]{0,6})?")


def _amount_micros(amount: str) -> int:
    text = amount.strip()
    if not _AMOUNT_RE.fullmatch(text):
        raise InvalidInput(
            f"price {amount!r} is not an amount in yuan (digits 0-9, at most 12 before the "
            "point and 6 after it)",
            field="amount",
        )
    return to_micros(Decimal(text))


def _size(text: str, field: str) -> int:
    """A size typed into the form; its bounds are the catalog's (``PriceSpec.validated``)."""
    return whole_number(text, field, required=False) or 0


def _back(signed_in: ConsoleSession, flash: Flash) -> Response:
    return redirect_with(PATH, flash, secure=signed_in.ctx.settings.cookie_secure)


@router.get(PATH)
def catalog_page(request: Request, signed_in: SignedIn) -> Response:
    signed_in.require_any("catalog:read")
    staff = signed_in.principal.all_tenants
    stmt = select(ProductOffering).order_by(ProductOffering.code, ProductOffering.version.desc())
    if not staff:
        stmt = stmt.where(ProductOffering.lifecycle_status == "Active")
    with signed_in.call.read() as session:
        offerings = list(session.scalars(stmt))
        prices = catalog.prices_of(session, [o.id for o in offerings])
    described = {
        oid: [(p.name, catalog.describe_price(p)) for p in ps] for oid, ps in prices.items()
    }
    return page(
        request,
        signed_in,
        "catalog.html",
        {
            "title": "Catalog",
            "offerings": offerings,
            "prices": described,
            "can_design": "catalog:write" in signed_in.principal.scopes,
            "kinds": catalog.PRICE_KINDS,
        },
    )


@router.post(PATH)
def design(
    signed_in: Posted,
    code: Annotated[str, Form()],
    name: Annotated[str, Form()],
    price_name: Annotated[str, Form()],
    kind: Annotated[str, Form()],
    amount: Annotated[str, Form()],
    description: Annotated[str, Form()] = "",
    is_add_on: Annotated[bool, Form()] = False,
    min_billable_bytes: Annotated[str, Form()] = "0",
    allowance_messages: Annotated[str, Form()] = "0",
    pooled: Annotated[bool, Form()] = False,
    priority: Annotated[bool, Form()] = False,
    form_key: FormKey = "",
) -> Response:
    """Design a new offering (version 1, in design) with its first price."""
    signed_in.require_any("catalog:write")
    try:
        price = catalog.PriceSpec(
            name=price_name,
            kind=kind,
            amount_micros=_amount_micros(amount),
            min_billable_bytes=_size(min_billable_bytes, "min_billable_bytes"),
            allowance_messages=_size(allowance_messages, "allowance_messages"),
            pooled=pooled,
            priority=priority,
        )
        spec = catalog.OfferingSpec(code, name, description, is_add_on, (price,))

        def work(session: Session) -> Sent:
            made = catalog.create_offering(session, signed_in.principal, spec, at=signed_in.now())
            done = f"{made.offering.code} version 1 is in design: launch it to sell it."
            return Sent(PATH, done)

        sent, _ = submit_once(signed_in, form_key, PATH, work)
    except DomainError as exc:
        return _back(signed_in, Flash("error", exc.detail))
    return redirect(signed_in, sent)


@router.post(PATH + "/{offering_id}/lifecycle")
def lifecycle(
    signed_in: Posted, offering_id: uuid.UUID, target: Annotated[str, Form()]
) -> Response:
    signed_in.require_any("catalog:write")
    try:
        with signed_in.call.write() as session:
            changed = catalog.set_lifecycle(
                session, signed_in.principal, offering_id, target, at=signed_in.now()
            )
            o = changed.offering
            message = f"{o.code} version {o.version} is {o.lifecycle_status}."
    except DomainError as exc:
        return _back(signed_in, Flash("error", exc.detail))
    return _back(signed_in, Flash("success", message))


@router.post(PATH + "/{offering_id}/versions")
def new_version(signed_in: Posted, offering_id: uuid.UUID, form_key: FormKey = "") -> Response:
    signed_in.require_any("catalog:write")

    def work(session: Session) -> Sent:
        made = catalog.new_version(
            session, signed_in.principal, offering_id, None, at=signed_in.now()
        )
        o = made.offering
        return Sent(
            PATH, f"{o.code} version {o.version} is in design (a copy): revise it, then launch."
        )

    try:
        sent, _ = submit_once(signed_in, form_key, f"{PATH}/{offering_id}/versions", work)
    except DomainError as exc:
        return _back(signed_in, Flash("error", exc.detail))
    return redirect(signed_in, sent)
