"""Rating (TMF635): accepted uplinks and sent downlinks become charged usage records.

The consumer ``bss.rating`` (entry point ``satiot.consumers``) reads ``uplink.accepted`` and
``downlink.sent``. It takes each batch as a range of the event log and rates it set-based, in
the database (:mod:`satiot.bss.rating_sql`): a fixed number of statements whatever the batch's
size, and no Python per event. The usage records, counters, balance debits, threshold events
and suspensions commit together with the consumer's cursor, so nothing is rated twice; a
usage record's id is its event's id (and ``UsageRecord.event_id`` is unique), so a re-read
range skips what it rated already.

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

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from satiot.bss import rating_store as store
from satiot.bss.models import Subscription
from satiot.bss.periods import DEFAULT_TZ, period_bounds, period_of
from satiot.bss.rating_rules import TariffCache, newly_crossed, share
from satiot.bss.rating_sql import Statements, statements
from satiot.core import events
from satiot.core.bulk import sqlite_timestamp
from satiot.core.config import Settings
from satiot.core.events import Consumer
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
    """Rates ranges of the event log; holds the tariff cache across batches."""

    def __init__(self, tz: str = DEFAULT_TZ) -> None:
        self.tz = tz
        self.tariffs = TariffCache()

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
        name = conn.dialect.name
        sql = statements(name)
        sqlite = name != "postgresql"

        def run(statement: str, params: Any = None) -> Any:
            return conn.execute(text(statement), params or {})

        for statement in sql.create:
            run(statement)
        for statement in sql.clear:
            run(statement)
        span = {"after": after, "last": last}
        run(sql.stage, span)
        first_at, last_at = run(sql.bounds).one()
        if first_at is not None:
            self._plan(session, run, sql, _instant(first_at), _instant(last_at), sqlite)
            for statement in sql.analyze:
                run(statement)
            for statement in (
                sql.own_buckets,
                sql.pool_buckets,
                sql.create_counters,
            ):
                run(statement)
            if not sqlite:
                run(sql.lock_counters)
            for statement in (
                sql.read_counters,
                sql.own_running,
                sql.quota_reject,
                sql.allowance_running,
                sql.price,
                sql.insert_usage,
                sql.bucket_totals,
                sql.write_counters,
                sql.mark_refused,
                sql.mark_crossings,
            ):
                run(statement)
        rated, rejected, charged, end_at, with_usage = run(sql.summary, span).one()
        out.rated, out.rejected = int(rated or 0), int(rejected or 0)
        out.charged_micros = int(charged or 0)
        out.skipped = int(with_usage) - out.rated - out.rejected
        if first_at is None:
            return out
        capped = self._announce(session, run, sql, out)
        release = {_uuid(r[0]) for r in run(sql.unthrottle)}
        _throttle(session, capped, release, out)
        debits = {_uuid(a): int(amount) for a, amount in run(sql.debits)}
        out.suspended += store.debit_prepaid(session, debits, _instant(end_at))
        suspend = [sid for sid, (action, _) in capped.items() if action == "suspend"]
        if suspend:
            at = max(at for _, at in capped.values())
            out.suspended += store.suspend(
                session, suspend, "monthly quota reached", at, origin="quota"
            )
        return out

    def _plan(
        self,
        session: Session,
        run: Any,
        sql: Statements,
        first: datetime,
        last: datetime,
        sqlite: bool,
    ) -> None:
        """Name each staged use's month and price it by its tariff (Python builds one tariff
        per distinct offering and add-on set; the rest stays in SQL)."""
        periods = [period_bounds(period_of(first, self.tz), self.tz)]
        while periods[-1].end <= last:
            periods.append(period_bounds(period_of(periods[-1].end, self.tz), self.tz))
        stored = sqlite_timestamp if sqlite else (lambda v: v)
        case, params = [], {}
        for i, p in enumerate(periods[:-1]):
            case.append(f"WHEN used_at < :end{i} THEN :p{i}")
            params[f"end{i}"], params[f"p{i}"] = stored(p.end), p.name
        params["plast"] = periods[-1].name
        name = f"CASE {' '.join(case)} ELSE :plast END" if case else ":plast"
        run(sql.set_period.format(case=name), params)
        run(
            sql.insert_periods,
            [{"period": p.name, "starts": stored(p.start), "ends": stored(p.end)} for p in periods],
        )
        keys = list(run(sql.tariff_keys))
        if not keys:
            return
        offering_ids = {_uuid(o) for o, _ in keys}
        for _, addons in keys:
            offering_ids.update(uuid.UUID(a) for a in _addons(addons))
        self.tariffs.load(session, offering_ids)
        rows = []
        for offering, addons in keys:
            t = self.tariffs.tariff(_uuid(offering), _addons(addons))
            rows.append(
                {
                    "offering_id": offering,
                    "addons": addons,
                    "msg_up": t.per_message.get("uplink", 0),
                    "msg_down": t.per_message.get("downlink", 0),
                    "byte_up": t.per_byte.get("uplink", 0),
                    "byte_down": t.per_byte.get("downlink", 0),
                    "min_up": t.min_bytes.get("uplink", 0),
                    "min_down": t.min_bytes.get("downlink", 0),
                    "allow_m": t.allowance_messages,
                    "allow_b": t.allowance_bytes,
                    "pooled": int(t.pooled) if sqlite else t.pooled,
                }
            )
        run(sql.insert_tariff, rows)
        run(sql.plan)

    def _announce(
        self, session: Session, run: Any, sql: Statements, out: Outcome
    ) -> dict[uuid.UUID, tuple[str, datetime]]:
        """Emit ``usage.threshold`` for every threshold newly reached, at the message that
        reached it, by replaying the rows of the few buckets that crossed one; return the
        subscriptions whose enforced quota is now at its cap (with the time it was reached)."""
        capped: dict[uuid.UUID, tuple[str, datetime]] = {}
        notified: dict[Any, list[int]] = {}  # counter id -> [allowance %, quota %]
        for row in run(sql.crossing_rows):
            (
                _seq, used_at, reason, billable, sub_id, account_id, dev_eui, tenant_id,
                period, action, own_bucket, own_n, own_b, alw_bucket, a_n, a_b,
                own_id, qm, qb, own_q, own_a, alw_id, alw_a, alw_am, alw_ab,
            ) = row  # fmt: skip
            at = _instant(used_at)
            sub = _Sub(_uuid(sub_id), _uuid(account_id), _uuid(tenant_id), dev_eui, period, at)
            own = notified.setdefault(own_id, [own_a, own_q])
            if reason is None:
                if alw_bucket is not None:
                    alw = notified.setdefault(alw_id, [alw_a, 0])
                    pct = share(a_n, a_b, alw_am, alw_ab)
                    crossed = newly_crossed(alw[0], pct)
                    if crossed:
                        alw[0] = crossed[-1]
                        self._emit(session, out, sub, alw_bucket, "allowance", crossed,
                                   (a_n, a_b), (alw_am, alw_ab))  # fmt: skip
                if qm or qb:
                    crossed = newly_crossed(own[1], share(own_n, own_b, qm, qb))
                    if crossed:
                        own[1] = crossed[-1]
                        self._emit(session, out, sub, own_bucket, "quota", crossed,
                                   (own_n, own_b), (qm, qb))  # fmt: skip
                        if 100 in crossed and action != "notify":
                            capped.setdefault(sub.id, (action, at))
            elif own[1] < 100:  # the first message refused by the quota: it is at its cap
                crossed = newly_crossed(own[1], 100)
                own[1] = 100
                self._emit(session, out, sub, own_bucket, "quota", crossed,
                           (own_n - 1, own_b - billable), (qm, qb))  # fmt: skip
                capped.setdefault(sub.id, (action, at))
        if notified:
            run(
                "UPDATE usage_counters SET notified_pct = :a, quota_notified_pct = :q "
                "WHERE id = :id",
                [{"id": cid, "a": a, "q": q} for cid, (a, q) in notified.items()],
            )
        return capped

    def _emit(
        self,
        session: Session,
        out: Outcome,
        sub: _Sub,
        bucket: str,
        measure: str,
        crossed: list[int],
        totals: tuple[int, int],
        limits: tuple[int, int],
    ) -> None:
        pool = bucket.startswith("pool:")
        for pct in crossed:
            payload = {
                "type": THRESHOLD_EVENT,
                "threshold_pct": pct,
                "measure": measure,
                "bucket": bucket,
                "period": sub.period,
                "subscription_id": None if pool else str(sub.id),
                "dev_eui": None if pool else sub.dev_eui,
                "billing_account_id": str(sub.account_id),
                "messages": int(totals[0]),
                "bytes": int(totals[1]),
                "limit_messages": limits[0] or None,
                "limit_bytes": limits[1] or None,
            }
            subject = (
                ("billing-account", str(sub.account_id)) if pool else ("subscription", str(sub.id))
            )
            events.emit(
                session,
                THRESHOLD_EVENT,
                at=sub.at,
                payload=payload,
                tenant_id=sub.tenant_id,
                subject=subject,
            )
            out.thresholds.append(payload)


@dataclass(frozen=True)
class _Sub:
    """Who a crossing row's message belongs to."""

    id: uuid.UUID
    account_id: uuid.UUID
    tenant_id: uuid.UUID
    dev_eui: str
    period: str
    at: datetime


def _addons(text_value: str | None) -> tuple[str, ...]:
    return tuple(json.loads(text_value)) if text_value else ()


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
