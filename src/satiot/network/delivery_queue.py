"""The delivery queue the dispatcher works from: claim, send elsewhere, settle.

The dispatcher (``network.webhooks``) works in three steps: :func:`claim` the sendable
deliveries of one integration under a lease, send them (outside any transaction), and
:func:`settle` the outcomes: delivered, retry later (exponential backoff with full jitter), or
dead. A device's messages go out in event order: a delivery waits while an earlier one of the
same device and integration is still pending, and only that device's lane waits.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session, aliased

from satiot.core import events
from satiot.core.db import Database
from satiot.network.destinations import Policy, policy_of
from satiot.network.models import Delivery, DeliveryAttempt, Integration
from satiot.network.states import DELIVERY

#: Emitted (tenant-tagged) when a delivery runs out of attempts.
DEAD_EVENT = "delivery.dead"
#: Emitted when the tenant's allow-list starts refusing an integration's target (or refuses
#: it for another reason), and when a round is let through again: what a fraud watch reads
#: for "destinations outside the allow-list".
REFUSED_EVENT = "integration.destination-refused"
ALLOWED_AGAIN_EVENT = "integration.destination-allowed"


@dataclass(frozen=True)
class Target:
    """An integration as the dispatcher needs it (read once per round)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    kind: str
    url: str | None
    secret_sealed: bytes | None
    max_attempts: int
    username: str | None = None
    password_sealed: bytes | None = None
    ca_pem: str | None = None
    #: The tenant's destination allow-list as it stands this round (None: unrestricted).
    allowed: Policy | None = None


@dataclass(frozen=True)
class Claimed:
    """One delivery leased to this dispatcher for one round."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    event_type: str
    event_seq: int
    message_id: str
    dev_eui: str | None
    body: dict[str, Any]
    attempts: int
    due_at: datetime

    @property
    def lane(self) -> str | uuid.UUID:
        """What orders this delivery: its device, or (with no device) nothing but itself."""
        return self.dev_eui if self.dev_eui is not None else self.id


@dataclass(frozen=True)
class Outcome:
    """How one attempt went (``ok`` means delivered: a 2xx, or a PUBACK)."""

    ok: bool
    status_code: int | None = None
    error: str | None = None
    duration_ms: float = 0.0
    #: Not sent at all: the tenant's destination allow-list refused the target.
    refused: bool = False


@dataclass(frozen=True)
class Result:
    """An attempt: started ``at`` (the log's time), ended ``done_at`` (backoff counts from
    there, so a timed-out attempt does not fall due again the moment it ends)."""

    item: Claimed
    outcome: Outcome
    at: datetime
    done_at: datetime


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: the n-th failure waits a uniform random time in
    ``[0, min(cap, base * 2**(n-1))]``, so endpoints coming back are not hit by every retry
    at once. The 10 s base (not 1-2 s) is what lets 12 attempts ride out an outage: full
    jitter makes some waits short, and with this base 11 waits add up to less than 10 minutes
    about once in 2,000 (about 30 minutes on average); see docs/network-server.md."""

    base_s: float = 10.0
    cap_s: float = 600.0

    def ceiling(self, failures: int) -> float:
        return float(min(self.cap_s, self.base_s * 2 ** max(0, failures - 1)))

    def delay(self, failures: int, rng: random.Random) -> float:
        return rng.uniform(0.0, self.ceiling(failures))


@dataclass
class Settled:
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    released: int = 0
    dead_ids: list[uuid.UUID] = field(default_factory=list)


def due_integrations(
    db: Database, now: datetime, *, exclude: Collection[uuid.UUID] = (), limit: int = 1000
) -> list[uuid.UUID]:
    """Active integrations with at least one delivery due (one index probe each)."""
    due = exists().where(
        Delivery.integration_id == Integration.id,
        Delivery.status == "pending",
        Delivery.next_attempt_at <= now,
    )
    stmt = select(Integration.id).where(Integration.status == "active", due)
    if exclude:
        stmt = stmt.where(Integration.id.not_in(list(exclude)))
    with db.read() as session:
        return list(session.scalars(stmt.order_by(Integration.id).limit(limit)))


def next_due(db: Database, integration_id: uuid.UUID, now: datetime) -> datetime | None:
    """When the earliest backed-off (or leased) delivery of the integration falls due."""
    with db.read() as session:
        found: datetime | None = session.scalar(
            select(func.min(Delivery.next_attempt_at)).where(
                Delivery.status == "pending",
                Delivery.next_attempt_at > now,
                Delivery.integration_id == integration_id,
            )
        )
        return found


def claim(
    db: Database,
    integration_id: uuid.UUID,
    now: datetime,
    *,
    limit: int,
    timeout_s: float,
    concurrency: int = 8,
) -> tuple[Target | None, list[Claimed]]:
    """Lease up to ``limit`` sendable deliveries of one active integration, oldest first.

    Sendable: pending, due, and no earlier pending delivery of the same device waits for a
    later attempt. The lease (``next_attempt_at`` moved past the longest this round can take)
    hides them, and the rest of their lanes, from any other dispatcher; a dispatcher that dies
    mid-round leaves leases that lapse, and the deliveries are sent again (at least once).
    """
    with db.write() as session:
        integration = session.get(Integration, integration_id)
        if integration is None or integration.status != "active":
            return None, []
        if db.engine.dialect.name == "postgresql":
            # Claims of one integration take turns, so two dispatchers never lease one lane.
            session.execute(select(func.pg_advisory_xact_lock(func.hashtext(str(integration_id)))))
        target = Target(
            id=integration.id,
            tenant_id=integration.tenant_id,
            kind=integration.kind,
            url=integration.url,
            secret_sealed=integration.secret_sealed,
            max_attempts=integration.max_attempts,
            username=integration.username,
            password_sealed=integration.password_sealed,
            ca_pem=integration.ca_pem,
            allowed=policy_of(session, integration.tenant_id),
        )
        earlier = aliased(Delivery)
        blocked = exists().where(
            earlier.integration_id == Delivery.integration_id,
            earlier.status == "pending",
            earlier.dev_eui == Delivery.dev_eui,
            earlier.event_seq < Delivery.event_seq,
            earlier.next_attempt_at > now,
        )
        rows = session.execute(
            select(
                Delivery.id,
                Delivery.event_type,
                Delivery.event_seq,
                Delivery.message_id,
                Delivery.dev_eui,
                Delivery.body,
                Delivery.attempts,
                Delivery.next_attempt_at,
            )
            .where(
                Delivery.integration_id == integration_id,
                Delivery.status == "pending",
                Delivery.next_attempt_at <= now,
                ~blocked,
            )
            .order_by(Delivery.event_seq)
            .limit(limit)
        ).all()
        items = [
            Claimed(
                id=r.id,
                tenant_id=target.tenant_id,
                event_type=r.event_type,
                event_seq=r.event_seq,
                message_id=r.message_id,
                dev_eui=r.dev_eui,
                body=r.body,
                attempts=r.attempts,
                due_at=r.next_attempt_at,
            )
            for r in rows
        ]
        if items:
            lease = timedelta(seconds=lease_s(items, timeout_s, concurrency))
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_([i.id for i in items]))
                .values(next_attempt_at=now + lease)
                .execution_options(synchronize_session=False)
            )
        return target, items


def lease_s(items: Sequence[Claimed], timeout_s: float, concurrency: int) -> float:
    """An upper bound on how long a round over ``items`` can take, plus a minute: every
    attempt timing out (an MQTT attempt may wait four timeouts: connect, TLS handshake,
    CONNACK, PUBACK),
    ``concurrency`` at a time, and the longest lane one after another."""
    lengths: dict[str | uuid.UUID, int] = {}
    for item in items:
        lengths[item.lane] = lengths.get(item.lane, 0) + 1
    waves = -(-len(items) // max(1, concurrency)) + max(lengths.values(), default=0)
    return 4 * timeout_s * waves + 60


def lanes(items: Sequence[Claimed]) -> list[list[Claimed]]:
    """Claimed deliveries grouped by device lane, each lane in event order."""
    grouped: dict[str | uuid.UUID, list[Claimed]] = {}
    for item in sorted(items, key=lambda i: i.event_seq):
        grouped.setdefault(item.lane, []).append(item)
    return list(grouped.values())


def settle(
    db: Database,
    target: Target,
    results: Sequence[Result],
    unsent: Sequence[Claimed],
    *,
    policy: RetryPolicy,
    rng: random.Random,
) -> Settled:
    """Record a round: one attempt row per try; delivered, backed off, or dead (with a
    ``delivery.dead`` event); deliveries not tried this round return to when they were due."""
    out = Settled()
    by_id = {r.item.id: r for r in results}
    back = {i.id: i.due_at for i in unsent}
    with db.write() as session:
        rows = session.scalars(
            select(Delivery).where(Delivery.id.in_([*by_id, *back])).order_by(Delivery.event_seq)
        ).all()
        for delivery in rows:
            if delivery.status != "pending":
                continue
            if delivery.id in back:
                delivery.next_attempt_at = back[delivery.id]
                out.released += 1
                continue
            result = by_id[delivery.id]
            _record(session, delivery, result, target, policy, rng, out)
        if results:
            _note_refusal(session, target, results)
    return out


def _note_refusal(session: Session, target: Target, results: Sequence[Result]) -> None:
    """Keep the integration's ``destination_refused`` in step with this round, and record
    each change as an event (not one per round: a refused integration is retried for hours)."""
    integration = session.get(Integration, target.id)
    if integration is None:
        return
    refused = next((r for r in results if r.outcome.refused), None)
    reason = refused.outcome.error if refused is not None else None
    if reason == integration.destination_refused:
        return
    was = integration.destination_refused
    integration.destination_refused = reason
    at = (refused or results[0]).at
    payload = {
        "integration_id": str(integration.id),
        "kind": integration.kind,
        "url": integration.url,
    }
    if reason is not None:
        payload["reason"] = reason
    else:
        payload["refused_before"] = was
    events.emit(
        session,
        REFUSED_EVENT if reason is not None else ALLOWED_AGAIN_EVENT,
        at=at,
        tenant_id=integration.tenant_id,
        subject=("integration", str(integration.id)),
        payload=payload,
    )


def _record(
    session: Session,
    delivery: Delivery,
    result: Result,
    target: Target,
    policy: RetryPolicy,
    rng: random.Random,
    out: Settled,
) -> None:
    outcome, at = result.outcome, result.at
    session.add(
        DeliveryAttempt(
            tenant_id=delivery.tenant_id,
            delivery_id=delivery.id,
            at=at,
            outcome="delivered" if outcome.ok else "failed",
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=round(outcome.duration_ms, 3),
        )
    )
    delivery.attempts += 1
    if outcome.ok:
        DELIVERY.check(delivery.status, "delivered")
        delivery.status = "delivered"
        delivery.delivered_at = at
        delivery.last_error = None
        out.delivered += 1
        return
    delivery.last_error = outcome.error
    if delivery.attempts < target.max_attempts:
        delay = timedelta(seconds=policy.delay(delivery.attempts, rng))
        delivery.next_attempt_at = result.done_at + delay
        out.retrying += 1
        return
    DELIVERY.check(delivery.status, "dead")
    delivery.status = "dead"
    out.dead += 1
    out.dead_ids.append(delivery.id)
    events.emit(
        session,
        DEAD_EVENT,
        at=at,
        tenant_id=delivery.tenant_id,
        subject=("delivery", str(delivery.id)),
        payload={
            "delivery_id": str(delivery.id),
            "integration_id": str(delivery.integration_id),
            "message_id": delivery.message_id,
            "event_type": delivery.event_type,
            "dev_eui": delivery.dev_eui,
            "attempts": delivery.attempts,
            "last_error": delivery.last_error,
        },
    )
