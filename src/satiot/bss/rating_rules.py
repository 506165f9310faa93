"""Pricing rules of rating: tariffs and usage thresholds.

A :class:`Tariff` is everything an offering version (plus its add-ons) says about usage: the
per-message and per-byte prices for uplinks and downlinks, the minimum billable size of a
message, and the monthly allowance that a device's recurring fee includes (its own, or a share
of a pool across the account's devices on the same offering). Offering versions never change
once sold (a change makes a new version), so tariffs are cached for the life of the process.
The batch applies them in SQL (:mod:`satiot.bss.rating_sql`).

Rules (docs/bss.md, "Rating and usage"):

- billable bytes of a message = ``max(bytes, min_billable_bytes)`` of the per-byte prices
  that apply to its direction (its raw size when none applies);
- the allowance covers all of a subscription's usage, uplink and downlink; while the bucket
  has messages left a message costs no per-message price, and billable bytes are free up to
  the bytes left; the rest (the overage) is charged at the usage prices;
- all amounts are integer micro-yuan: nothing is rounded until an invoice line.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.bss.models import ProductOfferingPrice

KINDS: Final = ("uplink", "downlink")
THRESHOLDS: Final = (50, 80, 100)

#: Why a use is ``rejected`` (not charged), as the usage record's ``reason`` says, and what
#: that means for the people who read it (the console's Usage page explains each).
REJECTION_REASONS: Final[Mapping[str, str]] = {
    "no-subscription": "the device has no live subscription: never ordered, or its service ended",
    "not-active": "used before its subscription was activated",
    "tenant-mismatch": "the device's subscription belongs to another tenant",
    "quota-exceeded": "over the contract's monthly quota cap (suspend or throttle)",
}


@dataclass(frozen=True)
class Tariff:
    """Usage prices and allowance of one subscription's offering plus add-ons."""

    per_message: Mapping[str, int]  # kind -> micro-yuan per message
    per_byte: Mapping[str, int]  # kind -> micro-yuan per billable byte
    min_bytes: Mapping[str, int]  # kind -> minimum billable bytes of one message
    allowance_messages: int  # per device per month
    allowance_bytes: int
    pooled: bool

    @property
    def has_allowance(self) -> bool:
        return self.allowance_messages > 0 or self.allowance_bytes > 0

    def billable(self, kind: str, size: int) -> int:
        return max(size, self.min_bytes.get(kind, 0))


def share(messages: int, size: int, limit_messages: int, limit_bytes: int) -> int:
    """Highest share of two limits used, in whole percent (0 where neither is set)."""
    shares = []
    if limit_messages > 0:
        shares.append(messages * 100 // limit_messages)
    if limit_bytes > 0:
        shares.append(size * 100 // limit_bytes)
    return max(shares, default=0)


def newly_crossed(notified: int, pct: int) -> list[int]:
    return [t for t in THRESHOLDS if notified < t <= pct]


def _applies(applies_to: str, kind: str) -> bool:
    return applies_to in ("all", kind)


def build_tariff(prices: Iterable[ProductOfferingPrice]) -> Tariff:
    """The tariff of a set of prices (an offering's and its add-ons')."""
    per_message = dict.fromkeys(KINDS, 0)
    per_byte = dict.fromkeys(KINDS, 0)
    min_bytes = dict.fromkeys(KINDS, 0)
    allowance_messages = allowance_bytes = 0
    pooled = False
    for p in prices:
        if p.kind == "recurring":
            allowance_messages += p.allowance_messages
            allowance_bytes += p.allowance_bytes
            pooled = pooled or (p.pooled and (p.allowance_messages > 0 or p.allowance_bytes > 0))
            continue
        for kind in KINDS:
            if not _applies(p.applies_to, kind):
                continue
            if p.kind == "per-message":
                per_message[kind] += p.amount_micros
            elif p.kind == "per-byte":
                per_byte[kind] += p.amount_micros
                min_bytes[kind] = max(min_bytes[kind], p.min_billable_bytes)
    return Tariff(per_message, per_byte, min_bytes, allowance_messages, allowance_bytes, pooled)


class TariffCache:
    """Tariffs by (offering, add-ons), loaded once: sold offering versions never change."""

    def __init__(self, limit: int = 10_000) -> None:
        self._prices: dict[uuid.UUID, list[ProductOfferingPrice]] = {}
        self._tariffs: dict[tuple[uuid.UUID, tuple[str, ...]], Tariff] = {}
        self._limit = limit

    def load(self, session: Session, offering_ids: Iterable[uuid.UUID]) -> None:
        """Fetch the prices of the offerings not seen yet, in one query."""
        missing = {o for o in offering_ids if o not in self._prices}
        if not missing:
            return
        if len(self._prices) + len(missing) > self._limit:
            self._prices.clear()
            self._tariffs.clear()
        for oid in missing:
            self._prices[oid] = []
        for price in session.scalars(
            select(ProductOfferingPrice).where(ProductOfferingPrice.offering_id.in_(missing))
        ):
            session.expunge(price)
            self._prices[price.offering_id].append(price)

    def tariff(self, offering_id: uuid.UUID, add_ons: Iterable[str]) -> Tariff:
        key = (offering_id, tuple(sorted(add_ons)))
        found = self._tariffs.get(key)
        if found is None:
            prices = list(self._prices[offering_id])
            for add_on in key[1]:
                prices.extend(self._prices.get(uuid.UUID(add_on), ()))
            found = self._tariffs[key] = build_tariff(prices)
        return found
