"""The product catalog (TMF620): offerings, their prices, their versions and their lifecycle.

An offering is identified to people by its ``code`` (``SAT-BUNDLE-100``) and to the system by
the id of one *version*. Subscriptions point at a version id, so what a subscriber bought never
changes under them: revising an offering that is ``Active`` makes version n+1 ``In design``
(only a version still in design is edited in place); launching n+1 retires n for new orders,
while existing subscribers stay on n and are billed by n's prices until they change offering.

Prices (:class:`PriceSpec`) are micro-yuan integers (:mod:`satiot.bss.money`): ``recurring``
(per device per month, with optional allowances of messages/bytes per device, ``pooled``
across a customer's devices on the same offering), ``one-time``, ``per-message`` and
``per-byte`` (with a minimum billable size per message). An emergency-priority add-on is an
offering with ``is_add_on`` and a recurring price with ``priority``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.bss.models import ProductOffering, ProductOfferingPrice
from satiot.bss.money import to_yuan
from satiot.bss.states import OFFERING
from satiot.core.auth.principal import Principal
from satiot.core.changes import record_change
from satiot.core.errors import Conflict, InvalidInput, NotFound
from satiot.core.lengths import plain_text

CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,63}$")
PRICE_KINDS = ("recurring", "one-time", "per-message", "per-byte")
USAGE_KINDS = frozenset({"per-message", "per-byte"})
#: The largest sizes a price may name (the API's bounds too).
MAX_MIN_BILLABLE_BYTES = 1_000_000
MAX_ALLOWANCE_MESSAGES = 10**12
MAX_ALLOWANCE_BYTES = 10**15
APPLIES_TO = ("all", "uplink", "downlink")
#: Offering states a customer may see: launched ones, and retired ones (still billed).
CUSTOMER_VISIBLE = ("Active", "Retired")


class OfferingNotFound(NotFound):
    slug = "offering-not-found"
    title = "Product offering not found"


@dataclass(frozen=True)
class PriceSpec:
    """One price of an offering (see :class:`~satiot.bss.models.ProductOfferingPrice`)."""

    name: str
    kind: str
    amount_micros: int
    min_billable_bytes: int = 0
    allowance_messages: int = 0
    allowance_bytes: int = 0
    pooled: bool = False
    applies_to: str = "all"
    priority: bool = False

    def validated(self, index: int) -> PriceSpec:
        """The spec trimmed; InvalidInput names the price (by index) and the field."""

        def bad(name: str, why: str) -> InvalidInput:
            return InvalidInput(f"price {index}: {why}", field=f"prices[{index}].{name}")

        try:
            name = plain_text(self.name, ProductOfferingPrice.name, "name")
        except InvalidInput as exc:
            raise bad("name", str(exc)) from None
        if self.kind not in PRICE_KINDS:
            raise bad("kind", f"kind must be one of {', '.join(PRICE_KINDS)}")
        if self.amount_micros < 0:
            raise bad("amount_micros", "an amount must not be negative")
        if self.applies_to not in APPLIES_TO:
            raise bad("applies_to", f"applies_to must be one of {', '.join(APPLIES_TO)}")
        if self.min_billable_bytes < 0 or self.allowance_messages < 0 or self.allowance_bytes < 0:
            raise bad("allowance_messages", "sizes and allowances must not be negative")
        for size, value, most in (
            ("min_billable_bytes", self.min_billable_bytes, MAX_MIN_BILLABLE_BYTES),
            ("allowance_messages", self.allowance_messages, MAX_ALLOWANCE_MESSAGES),
            ("allowance_bytes", self.allowance_bytes, MAX_ALLOWANCE_BYTES),
        ):
            if value > most:
                raise bad(size, f"{size} must be at most {most:,}")
        if self.min_billable_bytes and self.kind != "per-byte":
            raise bad("min_billable_bytes", "a minimum billable size applies to per-byte prices")
        has_allowance = bool(self.allowance_messages or self.allowance_bytes)
        if has_allowance and self.kind != "recurring":
            raise bad("allowance_messages", "only a recurring price includes allowances")
        if self.pooled and not has_allowance:
            raise bad("pooled", "only an allowance can be pooled")
        if self.priority and self.kind != "recurring":
            raise bad("priority", "emergency priority is sold as a recurring price")
        if self.kind not in USAGE_KINDS and self.applies_to != "all":
            raise bad("applies_to", "only usage prices apply to one direction")
        return replace(self, name=name)


@dataclass(frozen=True)
class OfferingSpec:
    """What an offering version says: its code, names, whether it is an add-on, its prices."""

    code: str
    name: str
    description: str = ""
    is_add_on: bool = False
    prices: tuple[PriceSpec, ...] = field(default_factory=tuple)

    def validated(self) -> OfferingSpec:
        code = self.code.strip().upper()
        if not CODE_RE.fullmatch(code):
            raise InvalidInput(
                f"code {self.code!r} must be 2-64 upper-case letters, digits or '-'",
                field="code",
            )
        name = plain_text(self.name, ProductOffering.name, "name")
        if not self.prices:
            raise InvalidInput("an offering needs at least one price", field="prices")
        prices = tuple(p.validated(i) for i, p in enumerate(self.prices))
        if len({p.name for p in prices}) != len(prices):
            raise InvalidInput("price names must differ within an offering", field="prices")
        return OfferingSpec(code, name, self.description.strip(), self.is_add_on, prices)


@dataclass(frozen=True)
class Offering:
    """An offering version with its prices, as callers read it."""

    offering: ProductOffering
    prices: list[ProductOfferingPrice]

    @property
    def id(self) -> uuid.UUID:
        return self.offering.id


def price_view(price: ProductOfferingPrice | PriceSpec) -> dict[str, Any]:
    view = {
        "name": price.name,
        "kind": price.kind,
        "amount_micros": price.amount_micros,
        "min_billable_bytes": price.min_billable_bytes,
        "allowance_messages": price.allowance_messages,
        "allowance_bytes": price.allowance_bytes,
        "pooled": price.pooled,
        "applies_to": price.applies_to,
        "priority": price.priority,
    }
    return view


def offering_view(
    offering: ProductOffering, prices: Iterable[ProductOfferingPrice]
) -> dict[str, Any]:
    """What the audit log and events record of an offering version."""
    return {
        "id": str(offering.id),
        "code": offering.code,
        "version": offering.version,
        "name": offering.name,
        "lifecycle_status": offering.lifecycle_status,
        "is_add_on": offering.is_add_on,
        "prices": [price_view(p) for p in prices],
    }


def yuan_text(micros: int) -> str:
    """``¥0.05``, ``¥6.00``, ``¥0.0005``: whole fen with two decimals, finer rates exactly."""
    value = to_yuan(micros)
    fen = value.quantize(Decimal("0.01"))
    return f"¥{fen:,.2f}" if fen == value else f"¥{value.normalize():,f}"


def describe_price(price: ProductOfferingPrice) -> str:
    """A price for people: ``¥5.00 per device per month, 100 messages included (pooled)``."""
    money = yuan_text(price.amount_micros)
    text = {
        "recurring": f"{money} per device per month",
        "one-time": f"{money} once",
        "per-message": f"{money} per message",
        "per-byte": f"{money} per byte",
    }[price.kind]
    if price.min_billable_bytes:
        text += f" (at least {price.min_billable_bytes} B per message)"
    if price.applies_to != "all":
        text += f", {price.applies_to} only"
    included = [
        f"{n:,} {unit}"
        for n, unit in ((price.allowance_messages, "messages"), (price.allowance_bytes, "bytes"))
        if n
    ]
    if included:
        text += f", {' and '.join(included)} per device included"
        text += " (pooled across the customer's devices)" if price.pooled else ""
    if price.priority:
        text += ", emergency priority"
    return text


def prices_of(
    session: Session, offering_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ProductOfferingPrice]]:
    """The prices of several offering versions in one query, in the order they were given."""
    found: dict[uuid.UUID, list[ProductOfferingPrice]] = {oid: [] for oid in offering_ids}
    if offering_ids:
        rows = session.scalars(
            select(ProductOfferingPrice)
            .where(ProductOfferingPrice.offering_id.in_(list(offering_ids)))
            .order_by(ProductOfferingPrice.offering_id, ProductOfferingPrice.position)
        )
        for price in rows:
            found[price.offering_id].append(price)
    return found


def get_offering(
    session: Session, offering_id: uuid.UUID, *, states: Iterable[str] | None = None
) -> Offering:
    """One offering version with its prices; OfferingNotFound unless it is in ``states``
    (when given: a customer never learns of an offering still in design)."""
    offering = session.get(ProductOffering, offering_id)
    if offering is None or (states is not None and offering.lifecycle_status not in set(states)):
        raise OfferingNotFound(f"product offering {offering_id} not found", field="offering_id")
    return Offering(offering, prices_of(session, [offering.id])[offering.id])


def current_version(session: Session, code: str) -> ProductOffering:
    """The Active version of ``code`` (what new orders get); OfferingNotFound if none."""
    row = session.scalar(
        select(ProductOffering).where(
            ProductOffering.code == code.strip().upper(),
            ProductOffering.lifecycle_status == "Active",
        )
    )
    if row is None:
        raise OfferingNotFound(f"no Active offering with code {code!r}", field="offering")
    return row


def _latest(session: Session, code: str) -> ProductOffering | None:
    return session.scalar(
        select(ProductOffering)
        .where(ProductOffering.code == code)
        .order_by(ProductOffering.version.desc())
        .limit(1)
    )


def _add_prices(session: Session, offering: ProductOffering, prices: Sequence[PriceSpec]) -> None:
    for position, spec in enumerate(prices):
        session.add(
            ProductOfferingPrice(offering_id=offering.id, position=position, **asdict(spec))
        )
    session.flush()


def _record(
    session: Session,
    principal: Principal,
    offering: ProductOffering,
    action: str,
    *,
    at: datetime,
    before: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    after = offering_view(offering, prices_of(session, [offering.id])[offering.id])
    record_change(
        session,
        principal,
        at=at,
        action=action,
        target=("product-offering", offering.id),
        tenant_id=None,
        before=before,
        after=after,
        reason=reason,
    )


def _insert_version(
    session: Session, principal: Principal, spec: OfferingSpec, version: int, at: datetime
) -> ProductOffering:
    offering = ProductOffering(
        code=spec.code,
        version=version,
        name=spec.name,
        description=spec.description,
        lifecycle_status=OFFERING.initial,
        is_add_on=spec.is_add_on,
        created_at=at,
    )
    session.add(offering)
    session.flush()
    _add_prices(session, offering, spec.prices)
    return offering


def create_offering(
    session: Session, principal: Principal, spec: OfferingSpec, *, at: datetime
) -> Offering:
    """Design a new offering: version 1, ``In design`` until launched."""
    spec = spec.validated()
    if _latest(session, spec.code) is not None:
        raise Conflict(
            f"an offering with code {spec.code} exists: revise it or add a version", field="code"
        )
    offering = _insert_version(session, principal, spec, 1, at)
    _record(session, principal, offering, "offering.created", at=at)
    return get_offering(session, offering.id)


def spec_of(found: Offering) -> OfferingSpec:
    """The spec an existing version was made from (to copy it into a new version)."""
    o = found.offering
    return OfferingSpec(
        code=o.code,
        name=o.name,
        description=o.description,
        is_add_on=o.is_add_on,
        prices=tuple(PriceSpec(**price_view(p)) for p in found.prices),
    )


def new_version(
    session: Session,
    principal: Principal,
    offering_id: uuid.UUID,
    spec: OfferingSpec | None,
    *,
    at: datetime,
    reason: str | None = None,
) -> Offering:
    """Version n+1 of the offering's code, ``In design``: a copy of ``offering_id`` when
    ``spec`` is None. Only one version of a code may be in design at a time."""
    base = get_offering(session, offering_id)
    latest = _latest(session, base.offering.code)
    assert latest is not None
    if latest.lifecycle_status == "In design":
        raise Conflict(
            f"version {latest.version} of {latest.code} is still in design: edit that one",
            field="offering_id",
            in_design_id=str(latest.id),
        )
    wanted = (spec or spec_of(base)).validated()
    if wanted.code != base.offering.code:
        raise InvalidInput("a new version keeps the offering's code", field="code")
    offering = _insert_version(session, principal, wanted, latest.version + 1, at)
    _record(session, principal, offering, "offering.version-created", at=at, reason=reason)
    return get_offering(session, offering.id)


def revise_offering(
    session: Session,
    principal: Principal,
    offering_id: uuid.UUID,
    spec: OfferingSpec,
    *,
    at: datetime,
    reason: str | None = None,
) -> Offering:
    """Edit an offering: a version in design changes in place; an Active one gets version n+1
    (in design) so its subscribers keep what they bought; a Retired one cannot change."""
    found = get_offering(session, offering_id)
    status = found.offering.lifecycle_status
    if status == "Active":
        return new_version(session, principal, offering_id, spec, at=at, reason=reason)
    if status != "In design":
        raise Conflict(
            f"{found.offering.code} version {found.offering.version} is {status}: "
            "add a new version instead",
            field="offering_id",
        )
    spec = spec.validated()
    if spec.code != found.offering.code:
        raise InvalidInput("an offering's code cannot change", field="code")
    offering = found.offering
    before = offering_view(offering, found.prices)
    offering.name, offering.description = spec.name, spec.description
    offering.is_add_on = spec.is_add_on
    for price in found.prices:
        session.delete(price)
    session.flush()
    _add_prices(session, offering, spec.prices)
    _record(session, principal, offering, "offering.revised", at=at, before=before, reason=reason)
    return get_offering(session, offering.id)


def set_lifecycle(
    session: Session,
    principal: Principal,
    offering_id: uuid.UUID,
    target: str,
    *,
    at: datetime,
    reason: str | None = None,
) -> Offering:
    """Launch (``In design → Active``) or retire (``Active → Retired``) a version, audited.

    Launching a version retires the code's previously Active version for new orders; its
    subscribers keep it (their subscriptions point at its id and it stays billable).
    """
    found = get_offering(session, offering_id)
    offering = found.offering
    OFFERING.check(offering.lifecycle_status, target, principal.role)
    if target == "Active":
        previous = session.scalars(
            select(ProductOffering).where(
                ProductOffering.code == offering.code,
                ProductOffering.lifecycle_status == "Active",
                ProductOffering.id != offering.id,
            )
        ).all()
        for old in previous:
            OFFERING.check(old.lifecycle_status, "Retired")
            before = offering_view(old, prices_of(session, [old.id])[old.id])
            old.lifecycle_status = "Retired"
            _record(
                session,
                principal,
                old,
                "offering.retired",
                at=at,
                before=before,
                reason=f"superseded by version {offering.version}",
            )
    before = offering_view(offering, found.prices)
    offering.lifecycle_status = target
    action = "offering.launched" if target == "Active" else "offering.retired"
    _record(session, principal, offering, action, at=at, before=before, reason=reason)
    return get_offering(session, offering.id)
