"""Rating (TMF635): accepted uplinks and sent downlinks become charged usage records.

The consumer ``bss.rating`` (entry point ``satiot.consumers``) reads ``uplink.accepted`` and
``downlink.sent``. It takes each batch as a range of the event log: one query reads the
range's usage events joined with their subscriptions and contracts
(:mod:`satiot.bss.rating_sql`), the rules run over them one message at a time in log order
(:mod:`satiot.bss.rating_pass`), and usage records and counters go back in one bulk write
each: a fixed number of statements whatever the batch's size. The usage records, counters,
balance debits, threshold events and suspensions commit together with the consumer's cursor,
so nothing is rated twice; a usage record's id is its event's id (a check keeps
``UsageRecord.event_id`` equal to it), so a re-read range skips what it rated already. A rater
keeps pool sizes and the counters it wrote between batches while the database says nothing
changed them (:mod:`satiot.bss.rating_cache`).

What happens to each message (docs/bss.md, "Rating and usage"):

- no live, activated subscription for its device → a ``rejected`` record, no charge;
- otherwise it is priced by the rules of :mod:`satiot.bss.rating_rules` against its
  subscription's offering version, consuming the monthly allowance (the device's or its
  pool's) in the order of the event log;
- a contract's monthly quota per device (messages and/or billable bytes, the measure the
  bill uses) is counted in the device's own bucket. With ``quota_action`` ``suspend`` or
  ``throttle``, a message that would go over the cap is ``rejected`` (not charged), and so is
  every later one in that month; at the cap, ``suspend`` suspends the subscription and
  ``throttle`` sets ``Subscription.throttled`` (cleared by the first usage of a later month).
  ``notify`` only announces;
- 50, 80 and 100 % of an allowance or a quota emit ``usage.threshold`` (tenant-tagged), each
  at the message that reached it;
- a prepaid account is debited as usage is rated; at a balance of zero or less, the active
  subscriptions whose contract says ``stop_at_zero_balance`` are suspended.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from satiot.bss import rating_sql
from satiot.bss import rating_store as store
from satiot.bss.models import Subscription
from satiot.bss.periods import DEFAULT_TZ, Period, period_bounds, period_of
from satiot.bss.rating_cache import Counters, PoolSizes
from satiot.bss.rating_pass import (
    Crossing,
    Price,
    RatingPass,
    addon_ids,
    pg_instant,
    sqlite_instant,
    stage,
)
from satiot.bss.rating_rules import TariffCache
from satiot.core import events
from satiot.core.bulk import sqlite_timestamp
from satiot.core.config import Settings
from satiot.core.events import Consumer
from satiot.core.ids import id_text
from satiot.core.models import Event
from satiot.network.messages import UPLINK_ACCEPTED
from satiot.network.models import Device

CONSUMER_NAME: Final = "bss.rating"
DOWNLINK_SENT: Final = "downlink.sent"
RATED_TYPES: Final = frozenset({UPLINK_ACCEPTED, DOWNLINK_SENT})
THRESHOLD_EVENT: Final = "usage.threshold"
#: A throttled device (quota reached, ``quota_action`` ``throttle``) may send one new message
#: per hour until the month ends; the contract's text says so (contract_terms.QUOTA_ACTIONS).
THROTTLE_GAP_S: Final = 3600


@dataclass
class Outcome:
    """What one batch did (for tests, logs and the benchmark)."""

    rated: int = 0
    rejected: int = 0
    skipped: int = 0
    charged_micros: int = 0
    thresholds: list[dict[str, Any]] = field(default_factory=list)
    suspended: list[uuid.UUID] = field(default_factory=list)
    throttled: list[uuid.UUID] = field(default_factory=list)


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(hex=value)


def _instant(value: Any) -> datetime:
    """A stored instant as read by plain SQL (text on SQLite)."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


class Rater:
    """Rates ranges of the event log; holds tariffs, pool sizes and counters across batches."""

    def __init__(self, tz: str = DEFAULT_TZ) -> None:
        self.tz = tz
        self.tariffs = TariffCache()
        self.pool_sizes = PoolSizes()
        self.counters = Counters()

    # -- the consumer ----------------------------------------------------------------------

    def apply_range(self, session: Session, after: int, last: int) -> None:
        self.rate_range(session, after, last)

    def apply_one(self, session: Session, ev: Event) -> None:
        """One event at a time (the message-bus workers): the range of that one event."""
        self.rate_range(session, ev.seq - 1, ev.seq)

    # -- rating ----------------------------------------------------------------------------

    def rate_range(self, session: Session, after: int, last: int) -> Outcome:
        """Rate the log's usage events with ``after < seq <= last`` in ``session``'s
        transaction; events already rated are skipped."""
        out = Outcome()
        conn = session.connection()
        pg = conn.dialect.name == "postgresql"
        rows = stage(rating_sql.fetch(conn, after, last), pg_instant if pg else sqlite_instant)
        fresh = [r for r in rows if not r[-1]]
        if not fresh:
            out.skipped = len(rows)
            return out
        stored = (lambda v: v) if pg else sqlite_timestamp
        periods = self._periods(fresh)
        bounds = {p.name: (stored(p.start), stored(p.end)) for p in periods}
        ends = [(stored(p.end), p.name) for p in periods[:-1]] + [(None, periods[-1].name)]
        batch = RatingPass(
            rows,
            periods=ends,
            price_of=self._pricer(session),
            id_text=id_text,  # ids as read, in str(uuid)'s form (bucket names are built of them)
            kept=self.counters.begin(conn),
        )
        batch.plan()
        pools = batch.pool_months(lambda name: bounds[name])
        batch.set_members(self.pool_sizes.counts(conn, pools))
        batch.load(rating_sql.counters(conn, batch.new_buckets()))
        result = batch.apply()
        rating_sql.insert_usage(session, conn, result.usage)
        rating_sql.write_counters(conn, result.counters)
        self.counters.wrote(conn, batch.buckets)
        out.rated, out.rejected, out.skipped = result.rated, result.rejected, result.skipped
        out.charged_micros = result.charged
        for crossing in result.crossings:
            self._emit(session, out, crossing)
        capped = {_uuid(sub): (action, _instant(at)) for sub, (action, at) in result.capped.items()}
        _throttle(session, capped, {_uuid(s) for s in result.release}, out)
        paying = rating_sql.prepaid(conn, list(result.charges))
        debits = {_uuid(a): amount for a, amount in result.charges.items() if a in paying}
        out.suspended += store.debit_prepaid(session, debits, _instant(result.last_at), tz=self.tz)
        suspend = [sid for sid, (action, _) in capped.items() if action == "suspend"]
        if suspend:
            at = max(at for _, at in capped.values())
            out.suspended += store.suspend(
                session, suspend, "monthly quota reached", at, origin="quota"
            )
        return out

    def _periods(self, rows: Sequence[Any]) -> list[Period]:
        """The business months from the batch's first use to its last."""
        used = [r[6] for r in rows]
        first, last = _instant(min(used)), _instant(max(used))
        periods = [period_bounds(period_of(first, self.tz), self.tz)]
        while periods[-1].end <= last:
            periods.append(period_bounds(period_of(periods[-1].end, self.tz), self.tz))
        return periods

    def _pricer(self, session: Session) -> Callable[[Any, str | None], Price]:
        """The price of (offering, add-ons as stored), from the cached tariffs (the pass asks
        once per distinct pair in a batch)."""

        def price_of(offering_id: Any, addons: str | None) -> Price:
            offering = _uuid(offering_id)
            extra = addon_ids(addons)
            self.tariffs.load(session, {offering, *(uuid.UUID(a) for a in extra)})
            return Price.of(self.tariffs.tariff(offering, extra))

        return price_of

    def _emit(self, session: Session, out: Outcome, crossing: Crossing) -> None:
        pool = crossing.bucket.startswith("pool:")
        sub_id, account_id = _uuid(crossing.sub_id), _uuid(crossing.account_id)
        for pct in crossing.pcts:
            payload = {
                "type": THRESHOLD_EVENT,
                "threshold_pct": pct,
                "measure": crossing.measure,
                "bucket": crossing.bucket,
                "period": crossing.period,
                "subscription_id": None if pool else str(sub_id),
                "dev_eui": None if pool else crossing.dev_eui,
                "billing_account_id": str(account_id),
                "messages": int(crossing.totals[0]),
                "bytes": int(crossing.totals[1]),
                "limit_messages": crossing.limits[0] or None,
                "limit_bytes": crossing.limits[1] or None,
            }
            subject = (
                ("billing-account", str(account_id)) if pool else ("subscription", str(sub_id))
            )
            events.emit(
                session,
                THRESHOLD_EVENT,
                at=_instant(crossing.used_at),
                payload=payload,
                tenant_id=_uuid(crossing.tenant_id),
                subject=subject,
            )
            out.thresholds.append(payload)


def _throttle(
    session: Session,
    capped: dict[uuid.UUID, tuple[str, datetime]],
    unthrottle: set[uuid.UUID],
    out: Outcome,
) -> None:
    throttle = [sid for sid, (action, _) in capped.items() if action == "throttle"]
    release = list(unthrottle - set(throttle))
    for ids, value in ((throttle, True), (release, False)):
        if ids:
            session.execute(
                update(Subscription)
                .where(Subscription.id.in_(ids))
                .values(throttled=value)
                .execution_options(synchronize_session=False)
            )
            # The network server enforces it: one new message per THROTTLE_GAP_S.
            devices = select(Subscription.device_id).where(Subscription.id.in_(ids))
            session.execute(
                update(Device)
                .where(Device.id.in_(devices.scalar_subquery()))
                .values(throttle_gap_s=THROTTLE_GAP_S if value else None, throttle_next_at=None)
                .execution_options(synchronize_session=False)
            )
    out.throttled += throttle


def consumer(batch_size: int = 5000) -> Consumer:
    """The rating consumer (entry point ``satiot.consumers``: ``bss.rating``)."""
    rater = Rater(Settings().business_timezone)
    return Consumer(
        CONSUMER_NAME,
        rater.apply_one,
        RATED_TYPES,
        batch_size=batch_size,
        apply_range=rater.apply_range,
    )
