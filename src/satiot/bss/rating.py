"""Rating (TMF635): accepted uplinks and sent downlinks become charged usage records.

The consumer ``bss.rating`` (entry point ``satiot.consumers``) reads ``uplink.accepted`` and
``downlink.sent``. Its handler only collects the batch's events on the session; the batch is
rated when the consumer's transaction commits (a ``before_commit`` hook), so that a batch of
any size costs a fixed number of queries: one for the subscriptions of all its devices, one
each for their contracts and accounts, one for its counters (locked), and bulk writes. The
usage records, counters, balance debits, threshold events and suspensions therefore commit
together with the consumer's processed marks and cursor: nothing is rated twice, and
``UsageRecord.event_id`` is unique besides.

What happens to each message (docs/bss.md, "Rating and usage"):

- no live, activated subscription for its device → a ``rejected`` record, no charge;
- otherwise it is priced by :mod:`satiot.bss.rating_rules` against its subscription's
  offering version, consuming the monthly allowance (the device's or its pool's);
- a contract's monthly quota per device (messages and/or billable bytes, the measure the
  bill uses) is counted in the device's own bucket. With ``quota_action`` ``suspend`` or
  ``throttle``, a message that would go over the cap is ``rejected`` (not charged), and so is
  every later one in that month; at the cap, ``suspend`` suspends the subscription and
  ``throttle`` sets ``Subscription.throttled`` (cleared by the first usage of a later month).
  ``notify`` only announces;
- 50, 80 and 100 % of an allowance or a quota emit ``usage.threshold`` (tenant-tagged);
- a prepaid account is debited as usage is rated; at a balance of zero or less, the active
  subscriptions whose contract says ``stop_at_zero_balance`` are suspended.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import event as sa_event
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from satiot.bss import rating_store as store
from satiot.bss.models import Subscription
from satiot.bss.periods import DEFAULT_TZ, PeriodFinder
from satiot.bss.rating_rules import Bucket, Tariff, TariffCache, charge
from satiot.core import events
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

_PENDING: Final = "satiot.rating.pending"


@dataclass(frozen=True)
class Usage:
    """One chargeable use read from an event."""

    event_id: uuid.UUID
    tenant_id: uuid.UUID
    dev_eui: str
    kind: str  # uplink | downlink
    size: int  # application payload bytes
    at: datetime
    period: str


def _b64_len(text: str) -> int:
    """Decoded length of base64 text, without decoding it."""
    n = len(text)
    if n == 0:
        return 0
    return n * 3 // 4 - (2 if text.endswith("==") else 1 if text.endswith("=") else 0)


def _parse_time(value: Any, fallback: datetime) -> datetime:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return fallback
    return fallback


def read_usage(ev: Event, periods: PeriodFinder) -> Usage | None:
    """The usage an event describes, or None if it is not chargeable."""
    if ev.tenant_id is None or ev.type not in RATED_TYPES:
        return None
    p = ev.payload
    dev_eui = p.get("dev_eui")
    if not isinstance(dev_eui, str):
        return None
    if ev.type == UPLINK_ACCEPTED:
        kind, when = "uplink", _parse_time(p.get("received_at"), ev.occurred_at)
    else:
        kind, when = "downlink", _parse_time(p.get("sent_at"), ev.occurred_at)
    size = _b64_len(str(p.get("payload") or ""))
    return Usage(ev.id, ev.tenant_id, dev_eui.upper(), kind, size, when, periods(when))


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


class Rater:
    """Rates batches of usage; holds the tariff cache across batches."""

    def __init__(self, tz: str = DEFAULT_TZ) -> None:
        self.tz = tz
        self.tariffs = TariffCache()

    # -- the consumer ----------------------------------------------------------------------

    def collect(self, session: Session, ev: Event) -> None:
        """Consumer handler: keep the event; the batch is rated when the session commits."""
        pending: tuple[Rater, list[Event]] | None = session.info.get(_PENDING)
        if pending is None:
            pending = session.info[_PENDING] = (self, [])
        pending[1].append(ev)

    # -- rating ----------------------------------------------------------------------------

    def rate_events(self, session: Session, evs: Sequence[Event]) -> Outcome:
        periods = PeriodFinder(self.tz)
        usages = [u for u in (read_usage(ev, periods) for ev in evs) if u is not None]
        return self.rate(session, usages)

    def rate(self, session: Session, usages: Sequence[Usage]) -> Outcome:
        """Rate ``usages`` (in order) and write everything in ``session``'s transaction."""
        out = Outcome()
        if not usages:
            return out
        seen = store.already_rated(session, [u.event_id for u in usages])
        if seen:
            out.skipped = len(seen)
            usages = [u for u in usages if u.event_id not in seen]
            if not usages:
                return out
        ctx = store.load_context(session, self.tariffs, usages)
        rows: list[tuple[Any, ...]] = []
        debits: dict[uuid.UUID, int] = {}
        capped: dict[uuid.UUID, tuple[str, datetime]] = {}
        unthrottle: set[uuid.UUID] = set()
        for u in usages:
            sub = ctx.subs.get(u.dev_eui)
            reason = _reject_reason(sub, u)
            if sub is None or reason is not None:
                rows.append(store.usage_row(u, sub, 0, u.size, "rejected", reason))
                out.rejected += 1
                continue
            tariff = ctx.tariff(sub)
            billable = tariff.billable(u.kind, u.size)
            own = ctx.buckets[("sub:" + str(sub.id), u.period)]
            terms = ctx.contracts[sub.contract_id]
            quota = terms.quota_messages > 0 or terms.quota_bytes > 0
            if sub.throttled and not (quota and own.quota_notified_pct >= 100):
                unthrottle.add(sub.id)  # a new month: the cap of the last one no longer holds
            enforced = quota and terms.quota_action != "notify"
            if enforced and (own.quota_notified_pct >= 100 or _exceeds(own, terms, billable)):
                if self._announce(out, own, ctx, sub, u, "quota", terms, cap=True):
                    capped.setdefault(sub.id, (terms.quota_action, u.at))  # newly capped: act once
                rows.append(store.usage_row(u, sub, 0, billable, "rejected", "quota-exceeded"))
                out.rejected += 1
                continue
            allowance = _allowance_bucket(ctx, sub, tariff, u.period)
            amount = charge(tariff, u.kind, billable, allowance)
            if own is not allowance:
                own.add(billable)
            if allowance is not None:
                self._announce(out, allowance, ctx, sub, u, "allowance")
            if quota and 100 in self._announce(out, own, ctx, sub, u, "quota", terms) and enforced:
                capped.setdefault(sub.id, (terms.quota_action, u.at))
            rows.append(store.usage_row(u, sub, amount, billable, "rated", None))
            out.rated += 1
            out.charged_micros += amount
            if amount and ctx.accounts[sub.billing_account_id].prepaid:
                debits[sub.billing_account_id] = debits.get(sub.billing_account_id, 0) + amount
        store.write_usage(session, rows)
        store.write_counters(session, ctx.buckets.values())
        _throttle(session, capped, unthrottle, out)
        out.suspended += store.debit_prepaid(session, debits, usages[-1].at)
        suspend = [sid for sid, (action, _) in capped.items() if action == "suspend"]
        if suspend:
            at = max(at for _, at in capped.values())
            out.suspended += store.suspend(
                session, suspend, "monthly quota reached", at, origin="quota"
            )
        return out

    def _announce(
        self,
        out: Outcome,
        bucket: Bucket,
        ctx: store.Context,
        sub: store.Sub,
        u: Usage,
        what: str,
        terms: store.Terms | None = None,
        *,
        cap: bool = False,
    ) -> list[int]:
        """Emit ``usage.threshold`` for every threshold newly reached: of ``bucket``'s
        allowance, or (``what="quota"``) of the contract ``terms``' quota (``cap``: the quota
        is at its cap now, whatever the totals say)."""
        if what == "quota":
            assert terms is not None
            crossed = bucket.quota_crossed(terms.quota_messages, terms.quota_bytes, cap=cap)
            limits = (terms.quota_messages, terms.quota_bytes)
        else:
            crossed = bucket.crossed()
            limits = (bucket.allowance_messages, bucket.allowance_bytes)
        if not crossed:
            return crossed
        key = ctx.bucket_keys[bucket.id]
        for pct in crossed:
            payload = {
                "type": THRESHOLD_EVENT,
                "threshold_pct": pct,
                "measure": what,
                "bucket": key,
                "period": u.period,
                "subscription_id": None if key.startswith("pool:") else str(sub.id),
                "dev_eui": None if key.startswith("pool:") else sub.dev_eui,
                "billing_account_id": str(sub.billing_account_id),
                "messages": bucket.messages,
                "bytes": bucket.bytes,
                "limit_messages": limits[0] or None,
                "limit_bytes": limits[1] or None,
            }
            subject = (
                ("billing-account", str(sub.billing_account_id))
                if key.startswith("pool:")
                else ("subscription", str(sub.id))
            )
            events.emit(
                ctx.session,
                THRESHOLD_EVENT,
                at=u.at,
                payload=payload,
                tenant_id=sub.tenant_id,
                subject=subject,
            )
            out.thresholds.append(payload)
        return crossed


def _reject_reason(sub: store.Sub | None, u: Usage) -> str | None:
    if sub is None:
        return "no-subscription"
    if sub.tenant_id != u.tenant_id:
        return "tenant-mismatch"
    if sub.activated_at is None or sub.activated_at > u.at:
        return "not-active"
    return None


def _exceeds(own: Bucket, terms: store.Terms, billable: int) -> bool:
    """Would one more message of ``billable`` bytes take the device over its quota?"""
    if terms.quota_messages and own.messages + 1 > terms.quota_messages:
        return True
    return bool(terms.quota_bytes and own.bytes + billable > terms.quota_bytes)


def _allowance_bucket(
    ctx: store.Context, sub: store.Sub, tariff: Tariff, period: str
) -> Bucket | None:
    if not tariff.has_allowance:
        return None
    if tariff.pooled:
        return ctx.buckets[(store.pool_key(sub), period)]
    return ctx.buckets[("sub:" + str(sub.id), period)]


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


# -- the consumer's commit hook ------------------------------------------------------------


@sa_event.listens_for(Session, "before_commit", insert=True)
def _rate_pending(session: Session) -> None:
    # insert=True: run before the event log's own hook, so threshold and suspension events
    # queued while rating are numbered and written in this same commit.
    if session.in_nested_transaction():
        return
    pending = session.info.pop(_PENDING, None)
    if pending:
        rater, evs = pending
        rater.rate_events(session, evs)


@sa_event.listens_for(Session, "after_soft_rollback")
def _forget_pending(session: Session, previous: Any) -> None:
    if not previous.nested:
        session.info.pop(_PENDING, None)


def consumer() -> Consumer:
    """The rating consumer (entry point ``satiot.consumers``: ``bss.rating``)."""
    rater = Rater(Settings().business_timezone)
    return Consumer(CONSUMER_NAME, rater.collect, RATED_TYPES, batch_size=2000)
