"""Background work on the downlink queue: the planner and the expirer.

Each worker is a ``run_once``-style step taking the database (or a session) and "now", so
tests drive it with a manual clock, plus a factory returning a
:class:`~satiot.core.services.BackgroundService` that repeats the step until stopped.

- The **planner** (``downlink-planner``) schedules queued downlinks on the contact plan, and
  re-plans scheduled ones whose load window closed without a ``loaded`` receipt (scheduled →
  queued → scheduled, each move recorded). A downlink that finds no plan stays queued with the
  reason and is tried again after ``retry``. Plans are computed outside any writing
  transaction, so the embedded database's single writer is never held by orbit arithmetic.
  A run takes at most ``batch`` downlinks: that is where downlinks compete for the planner,
  so the queue is taken by device priority (``Device.priority``, the emergency-priority
  add-on), then in the order queued; the rest wait for the next run.
- The **expirer** (``downlink-expirer``) moves pending downlinks past ``expires_at`` to
  ``expired`` — one already on a satellite only ``receipt_grace`` later, because the satellite
  may have sent it just in time and its report comes down at the next station — and sent
  confirmed downlinks not acknowledged within ``ack_timeout`` to ``failed``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from satiot.core.clock import Clock
from satiot.core.config import Settings
from satiot.core.db import Database
from satiot.core.services import BackgroundService, periodic
from satiot.network.downlink_changes import station_names, system_actor, transition
from satiot.network.downlink_loads import LoadRules, current_loads
from satiot.network.downlink_plan import (
    NoPlan,
    Plan,
    Request,
    load_inventory,
    plan_batch,
    warm_up,
)
from satiot.network.downlinks import apply_plan
from satiot.network.messages import iso
from satiot.network.models import Device, Downlink
from satiot.network.states import DEVICE_TRAFFIC_STATES

log = logging.getLogger(__name__)

PLANNER = "downlink-planner"
EXPIRER = "downlink-expirer"
#: A station posts its load receipt soon after the pass; wait this long before re-planning.
LOAD_GRACE = timedelta(minutes=10)
#: How often a downlink that found no plan is tried again.
RETRY = timedelta(minutes=5)
#: A confirmed downlink not acknowledged this long after it was sent has failed.
ACK_TIMEOUT = timedelta(hours=12)
#: An on-satellite downlink expires this long after ``expires_at`` (see the module docstring).
RECEIPT_GRACE = timedelta(hours=2)
#: Downlinks a planner run takes at most (re-queued, then planned): the capacity for which
#: downlinks compete, taken by device priority first.
BATCH = 500


class _Context(Protocol):
    """What a worker needs from the application context (which lives above this layer)."""

    @property
    def db(self) -> Database: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def settings(self) -> Settings: ...


@dataclass(frozen=True)
class PlannerRun:
    requeued: int
    scheduled: int
    waiting: int


def requeue_lapsed(
    session: Session, now: datetime, *, grace: timedelta = LOAD_GRACE, batch: int = BATCH
) -> list[uuid.UUID]:
    """Put back in the queue the scheduled downlinks (at most ``batch``, priority devices'
    first) whose load window closed ``grace`` ago without a ``loaded`` receipt; the old plan is
    cleared (a late receipt for it is refused)."""
    rows = list(
        session.scalars(
            select(Downlink)
            .join(Device, Device.id == Downlink.device_id)
            .where(
                Downlink.status == "scheduled",
                Downlink.loaded_at.is_(None),
                Downlink.load_until <= now - grace,
            )
            .order_by(Device.priority.desc(), Downlink.id)
            .limit(batch)
            .with_for_update(of=Downlink)
        )
    )
    names = station_names(session, [dl.ground_station_id for dl in rows])
    for dl in rows:
        where = names.get(dl.ground_station_id) if dl.ground_station_id else None
        reason = (
            f"load window at {where} closed at {iso(dl.load_until)} without a load receipt; "
            "planning again"
        )
        dl.satellite = dl.ground_station_id = dl.load_at = dl.load_until = None
        dl.estimated_delivery_at = None
        transition(
            session,
            system_actor(dl.tenant_id, PLANNER),
            dl,
            "queued",
            at=now,
            reason=reason,
            station=None,
        )
    return [dl.id for dl in rows]


def _due(
    session: Session, now: datetime, retry: timedelta, fresh: set[uuid.UUID], batch: int
) -> list[Downlink]:
    """The queued downlinks to plan in this run: at most ``batch``, priority devices' first,
    then in the order they were queued (a device's own stay in queue order, since they share
    its priority)."""
    return list(
        session.scalars(
            select(Downlink)
            .join(Device, Device.id == Downlink.device_id)
            .where(
                Downlink.status == "queued",
                or_(Downlink.expires_at.is_(None), Downlink.expires_at > now),
                or_(Downlink.updated_at <= now - retry, Downlink.id.in_(fresh)),
            )
            .order_by(Device.priority.desc(), Downlink.created_at, Downlink.id)
            .limit(batch)
        )
    )


def _plans(
    session: Session, due: list[Downlink], now: datetime, rules: LoadRules | None = None
) -> dict[uuid.UUID, Plan | NoPlan]:
    """Plans for the due downlinks, a device's in queue order after its pending ones; the
    devices take the load windows' room in the order ``due`` gives (priority first)."""
    devices = {
        d.id: d
        for d in session.scalars(select(Device).where(Device.id.in_({dl.device_id for dl in due})))
    }
    latest = {
        device_id: when
        for device_id, when in session.execute(
            select(Downlink.device_id, func.max(Downlink.estimated_delivery_at))
            .where(
                Downlink.device_id.in_(devices),
                Downlink.status.in_(("scheduled", "on-satellite")),
            )
            .group_by(Downlink.device_id)
        )
    }
    by_device: dict[uuid.UUID, list[Downlink]] = {dl.device_id: [] for dl in due}  # in turn
    for dl in sorted(due, key=lambda dl: dl.id):  # a device's chain in queue (counter) order
        by_device[dl.device_id].append(dl)
    out: dict[uuid.UUID, Plan | NoPlan] = {}
    chains: list[tuple[list[Downlink], Request]] = []
    for device_id, items in by_device.items():
        device = devices[device_id]
        if device.status not in DEVICE_TRAFFIC_STATES:
            out |= {dl.id: NoPlan(f"device is {device.status}") for dl in items}
        elif device.lat is None or device.lon is None:
            out |= {dl.id: NoPlan("position unknown") for dl in items}
        else:
            request = Request(
                device.lat, device.lon, latest.get(device_id), len(items), device.priority
            )
            chains.append((items, request))
    if chains:
        inv = load_inventory(session)
        loads = current_loads(session, now, rules)
        answers_by_chain = plan_batch(inv, [r for _, r in chains], now, loads=loads)
        for (items, _), answers in zip(chains, answers_by_chain, strict=True):
            out |= {dl.id: plan for dl, plan in zip(items, answers, strict=True)}
    return out


def plan_queued(
    db: Database,
    now: datetime,
    *,
    load_grace: timedelta = LOAD_GRACE,
    retry: timedelta = RETRY,
    batch: int = BATCH,
    rules: LoadRules | None = None,
) -> PlannerRun:
    """One planner step: re-queue lapsed plans, then plan what is due, at most ``batch`` of
    each, priority devices' first (see the module), each on a load window with room."""
    with db.write() as session:
        fresh = set(requeue_lapsed(session, now, grace=load_grace, batch=batch))
    with db.read() as session:
        due = _due(session, now, retry, fresh, batch)
        plans = _plans(session, due, now, rules) if due else {}
    scheduled = waiting = 0
    if not plans:
        return PlannerRun(len(fresh), 0, 0)
    with db.write() as session:
        loads = current_loads(session, now, rules)  # as it stands now, under the writer
        rows = session.execute(
            select(Downlink, Device.priority)
            .join(Device, Device.id == Downlink.device_id)
            .where(Downlink.id.in_(plans), Downlink.status == "queued")
            .order_by(Device.priority.desc(), Downlink.id)
            .with_for_update(of=Downlink)
            .execution_options(populate_existing=True)
        )
        for dl, priority in rows:
            actor = system_actor(dl.tenant_id, PLANNER)
            if apply_plan(session, actor, dl, plans[dl.id], at=now, loads=loads, priority=priority):
                scheduled += 1
            else:
                waiting += 1
    return PlannerRun(len(fresh), scheduled, waiting)


@dataclass(frozen=True)
class ExpirerRun:
    expired: int
    failed: int


def expire_due(
    session: Session,
    now: datetime,
    *,
    ack_timeout: timedelta = ACK_TIMEOUT,
    receipt_grace: timedelta = RECEIPT_GRACE,
) -> ExpirerRun:
    """One expirer step in the caller's transaction (see the module docstring)."""
    expiring = list(
        session.scalars(
            select(Downlink)
            .where(
                or_(
                    Downlink.status.in_(("queued", "scheduled")) & (Downlink.expires_at <= now),
                    (Downlink.status == "on-satellite")
                    & (Downlink.expires_at <= now - receipt_grace),
                )
            )
            .order_by(Downlink.id)
            .limit(BATCH)
            .with_for_update()
        )
    )
    unacked = list(
        session.scalars(
            select(Downlink)
            .where(
                Downlink.status == "sent",
                Downlink.confirmed.is_(True),
                Downlink.sent_at <= now - ack_timeout,
            )
            .order_by(Downlink.id)
            .limit(BATCH)
            .with_for_update()
        )
    )
    names = station_names(session, [dl.ground_station_id for dl in expiring + unacked])
    for dl in expiring:
        if dl.status == "on-satellite":
            reason = f"on satellite {dl.satellite} and not reported sent by {iso(dl.expires_at)}"
        else:
            reason = f"expired at {iso(dl.expires_at)} before it could be sent"
        transition(
            session,
            system_actor(dl.tenant_id, EXPIRER),
            dl,
            "expired",
            at=now,
            reason=reason,
            station=names.get(dl.ground_station_id) if dl.ground_station_id else None,
        )
    hours = ack_timeout.total_seconds() / 3600
    for dl in unacked:
        transition(
            session,
            system_actor(dl.tenant_id, EXPIRER),
            dl,
            "failed",
            at=now,
            reason=f"sent at {iso(dl.sent_at)} and not acknowledged within {hours:g} h",
            station=names.get(dl.ground_station_id) if dl.ground_station_id else None,
        )
    return ExpirerRun(len(expiring), len(unacked))


def _service(
    name: str,
    interval_s: float,
    step: Callable[[_Context, datetime], object],
    start: Callable[[_Context], None] | None = None,
) -> BackgroundService:
    return periodic(name, interval_s, lambda ctx: step(ctx, ctx.clock.now()), start)


def downlink_planner(
    *,
    interval_s: float = 30.0,
    load_grace: timedelta = LOAD_GRACE,
    retry: timedelta = RETRY,
    batch: int = BATCH,
) -> BackgroundService:
    """The ``downlink-planner`` service: :func:`plan_queued` every ``interval_s``."""

    def step(ctx: _Context, now: datetime) -> PlannerRun:
        rules = LoadRules.from_settings(ctx.settings)
        return plan_queued(
            ctx.db, now, load_grace=load_grace, retry=retry, batch=batch, rules=rules
        )

    def start(ctx: _Context) -> None:
        with ctx.db.read() as session:
            tles = load_inventory(session).tles
        if tles:
            warm_up(tles[0], ctx.clock.now())

    return _service(PLANNER, interval_s, step, start)


def downlink_expirer(
    *,
    interval_s: float = 30.0,
    ack_timeout: timedelta = ACK_TIMEOUT,
    receipt_grace: timedelta = RECEIPT_GRACE,
) -> BackgroundService:
    """The ``downlink-expirer`` service: :func:`expire_due` every ``interval_s``."""

    def step(ctx: _Context, now: datetime) -> ExpirerRun:
        with ctx.db.write() as session:
            return expire_due(session, now, ack_timeout=ack_timeout, receipt_grace=receipt_grace)

    return _service(EXPIRER, interval_s, step)
