"""The default catalog a new operator starts from (``satiot catalog seed``).

Prices are in yuan and sit where the peers do (REFERENCE §7): Swarm sold 750 packets a month
for US$5 (about ¥0.05 a packet), Iridium SBD and Skylo bill by size with a minimum per
message. They are a starting point an operator edits (a revision makes a new version), not
constants: nothing else in the code depends on these figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.bss.catalog import OfferingSpec, PriceSpec, create_offering, set_lifecycle
from satiot.bss.models import ProductOffering
from satiot.bss.money import to_micros
from satiot.core.auth.principal import Principal


def _line_rental(yuan: str) -> PriceSpec:
    return PriceSpec("Line rental", "recurring", to_micros(yuan))


DEFAULT_CATALOG: tuple[OfferingSpec, ...] = (
    OfferingSpec(
        code="SAT-MSG",
        name="Satellite messaging, pay per message",
        description="A monthly line rental plus a price per message; downlinks cost more "
        "because they take scheduled satellite capacity.",
        prices=(
            _line_rental("2.00"),
            PriceSpec("Uplink message", "per-message", to_micros("0.05"), applies_to="uplink"),
            PriceSpec("Downlink message", "per-message", to_micros("0.10"), applies_to="downlink"),
        ),
    ),
    OfferingSpec(
        code="SAT-BYTE",
        name="Satellite data, pay per byte",
        description="A monthly line rental plus a price per byte, at least 10 bytes billed "
        "per message (so a 2-byte heartbeat costs what 10 bytes do).",
        prices=(
            _line_rental("2.00"),
            PriceSpec("Data", "per-byte", to_micros("0.0005"), min_billable_bytes=10),
        ),
    ),
    OfferingSpec(
        code="SAT-BUNDLE-100",
        name="100 messages per device per month, pooled",
        description="Each device brings 100 messages a month into a pool shared by all the "
        "customer's devices on this offering; messages beyond the pool are billed singly.",
        prices=(
            PriceSpec(
                "Monthly bundle",
                "recurring",
                to_micros("6.00"),
                allowance_messages=100,
                pooled=True,
            ),
            PriceSpec("Message beyond the bundle", "per-message", to_micros("0.04")),
        ),
    ),
    OfferingSpec(
        code="EMERGENCY-PRIORITY",
        name="Emergency priority",
        description="An add-on: the device's messages go first in on-board storage and "
        "downlink scheduling, and it may use the capacity reserved for emergencies.",
        is_add_on=True,
        prices=(PriceSpec("Priority", "recurring", to_micros("3.00"), priority=True),),
    ),
)


@dataclass
class SeedResult:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


def seed_catalog(
    session: Session,
    principal: Principal,
    *,
    at: datetime,
    specs: tuple[OfferingSpec, ...] = DEFAULT_CATALOG,
) -> SeedResult:
    """Create and launch each offering whose code is not in the catalog yet (any version);
    leave known codes alone, so running it again changes nothing."""
    result = SeedResult()
    known = set(session.scalars(select(ProductOffering.code).distinct()))
    for spec in specs:
        if spec.code in known:
            result.existing.append(spec.code)
            continue
        made = create_offering(session, principal, spec, at=at)
        set_lifecycle(session, principal, made.id, "Active", at=at, reason="default catalog")
        result.created.append(spec.code)
    return result
