"""One batch of usage through the rating rules, one message at a time, in log order.

The batch arrives as rows already joined with subscriptions and contracts
(:func:`satiot.bss.rating_sql.fetch`). :class:`RatingPass` first names each message's month,
tariff, billable bytes and allowance buckets (:meth:`RatingPass.plan`), so that the counters of
those buckets can be created and read in one statement; then :meth:`RatingPass.apply` takes
the messages in order against the counters, as the rules in docs/bss.md say:

- the contract's quota counts the device's own messages and billable bytes; when enforced
  (``suspend`` or ``throttle``), a message that would go over it is refused, and so is every
  later one of that month (the counter remembers the 100 % notice);
- the allowance (the device's own, or its pool's) makes a message free of its per-message
  price while messages are left, and its bytes free up to the bytes left;
- 50, 80 and 100 % of an allowance or a quota are announced at the message that reached them.

Nothing here touches the database: the caller writes what the pass returns. The loop is kept
plain on purpose: each message costs a few dictionary look-ups and integer comparisons, and a
threshold check is one comparison against the count at which the next threshold falls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from satiot.bss.rating_rules import THRESHOLDS, Tariff, newly_crossed, share
from satiot.bss.rating_sql import UPLINK, PoolMonth
from satiot.core.bulk import sqlite_timestamp

NEVER = 1 << 62  # a count no bucket reaches


def _needed(notified: int, limit: int) -> int:
    """The count at which the next threshold above ``notified`` falls (``NEVER`` without a
    limit or once 100 % is announced): share >= t  <=>  count * 100 >= t * limit."""
    if limit <= 0:
        return NEVER
    for t in THRESHOLDS:
        if t > notified:
            return -(-t * limit // 100)
    return NEVER


class Bucket:
    """One counter during a batch: running totals, limits and what was announced."""

    __slots__ = (
        "b",
        "id",
        "key",
        "lb",
        "lm",
        "n",
        "need_b",
        "need_n",
        "notified",
        "period",
        "q_start",
        "qb",
        "qm",
        "qneed_b",
        "qneed_n",
        "qnotified",
        "tenant_id",
    )

    def __init__(self, key: str, period: str, tenant_id: Any, lm: int, lb: int) -> None:
        self.key, self.period, self.tenant_id = key, period, tenant_id
        self.lm, self.lb = lm, lb  # allowance: messages, bytes (0: none)
        self.qm = self.qb = 0  # the contract's quota (own buckets)
        self.id: Any = None
        self.n = self.b = self.notified = self.qnotified = self.q_start = 0
        self.need_n = self.need_b = self.qneed_n = self.qneed_b = NEVER

    def load(self, stored: tuple[Any, int, int, int, int]) -> None:
        self.id, self.n, self.b, self.notified, self.qnotified = stored
        self.begin()

    def begin(self) -> None:
        """Start a batch on what the bucket holds (its limits set for this batch)."""
        self.q_start = self.qnotified
        self.aim()

    def aim(self) -> None:
        """Where the next allowance and quota thresholds fall."""
        if not (self.lm or self.lb or self.qm or self.qb):
            return  # no limits: nothing to announce (the counts stay NEVER)
        self.need_n, self.need_b = _needed(self.notified, self.lm), _needed(self.notified, self.lb)
        self.qneed_n = _needed(self.qnotified, self.qm)
        self.qneed_b = _needed(self.qnotified, self.qb)


@dataclass(frozen=True)
class Price:
    """A tariff as the loop reads it, per direction (0 uplink, 1 downlink)."""

    per_message: tuple[int, int]
    per_byte: tuple[int, int]
    min_bytes: tuple[int, int]
    allowance_messages: int
    allowance_bytes: int
    pooled: bool

    @classmethod
    def of(cls, t: Tariff) -> Price:
        def pair(m: Any) -> tuple[int, int]:
            return (m.get("uplink", 0), m.get("downlink", 0))

        return cls(
            pair(t.per_message),
            pair(t.per_byte),
            pair(t.min_bytes),
            t.allowance_messages,
            t.allowance_bytes,
            t.pooled,
        )


@dataclass(frozen=True)
class Crossing:
    """A threshold reached at a message (announced by the caller as ``usage.threshold``)."""

    bucket: str
    measure: str  # allowance | quota
    pcts: list[int]
    totals: tuple[int, int]
    limits: tuple[int, int]
    sub_id: Any
    account_id: Any
    tenant_id: Any
    dev_eui: str
    period: str
    used_at: Any


@dataclass
class Result:
    """What a batch's pass decided: rows to write and effects for the caller."""

    usage: list[tuple[Any, ...]] = field(default_factory=list)
    counters: list[tuple[Any, ...]] = field(default_factory=list)
    crossings: list[Crossing] = field(default_factory=list)
    capped: dict[Any, tuple[str, Any]] = field(default_factory=dict)  # sub -> (action, at)
    release: set[Any] = field(default_factory=set)  # throttled subscriptions to free
    charges: dict[Any, int] = field(default_factory=dict)  # account -> charged micros
    rated: int = 0
    rejected: int = 0
    skipped: int = 0
    charged: int = 0
    last_at: Any = None


#: One message after planning: (row, period, price, billable, own bucket, allowance bucket).
_Planned = tuple[Sequence[Any], str, Price | None, int, Bucket | None, Bucket | None]


class RatingPass:
    """Rates one batch of fetched rows; see the module's docstring."""

    def __init__(
        self,
        rows: Sequence[Sequence[Any]],
        *,
        periods: Sequence[tuple[Any, str]],
        price_of: Callable[[Any, str | None], Price],
        id_text: Callable[[Any], str],
        kept: Mapping[tuple[str, str], Bucket] | None = None,
    ) -> None:
        """``periods``: (end, name) in order, each month ending at the stored instant ``end``
        (the last one open); ``price_of(offering_id, addons)``; ``id_text`` writes a stored
        id as ``str(uuid)`` does (bucket names are made of them); ``kept``: buckets as earlier
        batches left them, known to hold what is stored (``rating_cache.Counters``), taken
        up instead of being read again."""
        self.rows = rows
        self.periods = periods
        self.price_of = price_of
        self.id_text = id_text
        self.kept = kept or {}
        self.buckets: dict[tuple[str, str], Bucket] = {}
        self.pools: dict[tuple[str, str], tuple[Any, Any, int, int]] = {}
        self.planned: list[_Planned] = []
        self.result = Result()

    # -- planning ---------------------------------------------------------------------------

    def _period(self, used_at: Any) -> str:
        for end, name in self.periods:
            if end is None or used_at < end:
                return name
        raise AssertionError("the last period is open")

    def plan(self) -> None:
        """Name each message's month, price, billable size and buckets."""
        buckets, out = self.buckets, self.result
        sub_keys: dict[Any, str] = {}
        pool_keys: dict[tuple[Any, Any], str] = {}
        prices: dict[tuple[Any, str | None], Price] = {}
        single = self.periods[0][1] if len(self.periods) == 1 else None
        for row in self.rows:
            (_seq, _eid, tenant_id, _dev, kind, size, used_at, sub_id, account_id,
             offering_id, addons, _thr, qm, qb, _action, reason, rated) = row  # fmt: skip
            if rated:
                out.skipped += 1
                continue
            period = single or self._period(used_at)
            if reason is not None:
                self.planned.append((row, period, None, size, None, None))
                continue
            price = prices.get((offering_id, addons))
            if price is None:
                price = prices[(offering_id, addons)] = self.price_of(offering_id, addons)
            d = 0 if kind == "uplink" else 1
            minimum = price.min_bytes[d]
            billable = size if size >= minimum else minimum
            own_key = sub_keys.get(sub_id)
            if own_key is None:
                own_key = sub_keys[sub_id] = "sub:" + self.id_text(sub_id)
            own = buckets.get((own_key, period))
            if own is None:
                lm = 0 if price.pooled else price.allowance_messages
                lb = 0 if price.pooled else price.allowance_bytes
                own = self._bucket(own_key, period, tenant_id, lm, lb)
            own.qm, own.qb = int(qm), int(qb)
            alw: Bucket | None = None
            if price.pooled:
                pool_key = pool_keys.get((account_id, offering_id))
                if pool_key is None:
                    pool_key = pool_keys[(account_id, offering_id)] = (
                        f"pool:{self.id_text(account_id)}:{self.id_text(offering_id)}"
                    )
                alw = buckets.get((pool_key, period))
                if alw is None:
                    alw = self._bucket(pool_key, period, tenant_id, 0, 0)
                    self.pools[(pool_key, period)] = (
                        account_id,
                        offering_id,
                        price.allowance_messages,
                        price.allowance_bytes,
                    )
            elif price.allowance_messages > 0 or price.allowance_bytes > 0:
                alw = own
            self.planned.append((row, period, price, billable, own, alw))

    def _bucket(self, key: str, period: str, tenant_id: Any, lm: int, lb: int) -> Bucket:
        """The batch's bucket (key, period): the one kept, with this batch's allowance, or a
        new one to be loaded from the database."""
        bucket = self.kept.get((key, period))
        if bucket is None:
            bucket = Bucket(key, period, tenant_id, lm, lb)
        else:
            bucket.lm, bucket.lb = lm, lb
        self.buckets[(key, period)] = bucket
        return bucket

    def pool_months(self, bounds: Callable[[str], tuple[Any, Any]]) -> list[PoolMonth]:
        """The pools to count members of; ``bounds(period)`` gives its stored (start, end)."""
        out = []
        for (_, period), (account_id, offering_id, _, _) in self.pools.items():
            starts, ends = bounds(period)
            out.append(PoolMonth(account_id, offering_id, starts, ends))
        return out

    def set_members(self, counts: Sequence[int]) -> None:
        """Each pool's allowance: its per-device share times its devices (at least one)."""
        for (key, (_, _, am, ab)), count in zip(self.pools.items(), counts, strict=True):
            bucket = self.buckets[key]
            bucket.lm, bucket.lb = am * max(1, count), ab * max(1, count)

    def new_buckets(self) -> list[Bucket]:
        """The buckets to read from the database (not kept from an earlier batch)."""
        return [b for b in self.buckets.values() if b.id is None]

    def load(self, stored: dict[tuple[str, str], tuple[Any, int, int, int, int]]) -> None:
        """Fill the new buckets from ``stored``; start the batch on every bucket."""
        for key, bucket in self.buckets.items():
            if bucket.id is None:
                bucket.load(stored[key])
            else:
                bucket.begin()

    # -- applying the rules -----------------------------------------------------------------

    def apply(self) -> Result:
        out = self.result
        usage = out.usage
        charges = out.charges
        capped = out.capped
        for row, period, price, billable, own, alw in self.planned:
            (_seq, event_id, tenant_id, dev_eui, kind, size, used_at, sub_id, account_id,
             offering_id, _addons, throttled, _qm, _qb, action, reason, _rated) = row  # fmt: skip
            out.last_at = used_at
            if price is None or own is None:  # ``stage`` named why (and no other tenant's ids)
                out.rejected += 1
                usage.append(
                    (event_id, event_id, tenant_id, dev_eui, sub_id, account_id, offering_id,
                     kind, size, size, period, used_at, 0, "rejected", reason)
                )  # fmt: skip
                continue
            if throttled and not ((own.qm or own.qb) and own.q_start >= 100):
                out.release.add(sub_id)
            if (
                (own.qm or own.qb)
                and action != "notify"
                and (
                    own.qnotified >= 100
                    or (own.qm and own.n + 1 > own.qm)
                    or (own.qb and own.b + billable > own.qb)
                )
            ):
                if own.qnotified < 100:
                    self._crossed(own, "quota", newly_crossed(own.qnotified, 100),
                                  (own.n, own.b), (own.qm, own.qb), row, period)  # fmt: skip
                    own.qnotified = 100
                    own.aim()
                    capped.setdefault(sub_id, (action, used_at))
                out.rejected += 1
                usage.append(
                    (event_id, event_id, tenant_id, dev_eui, sub_id, account_id, offering_id,
                     kind, size, billable, period, used_at, 0, "rejected", "quota-exceeded")
                )  # fmt: skip
                continue
            d = 0 if kind == "uplink" else 1
            if alw is None:
                charge = price.per_message[d] + price.per_byte[d] * billable
            else:
                left = alw.lb - alw.b
                free = 0 if left <= 0 else (billable if billable < left else left)
                charge = (0 if alw.n < alw.lm else price.per_message[d]) + price.per_byte[d] * (
                    billable - free
                )
                alw.n += 1
                alw.b += billable
                if alw.n >= alw.need_n or alw.b >= alw.need_b:
                    pcts = newly_crossed(alw.notified, share(alw.n, alw.b, alw.lm, alw.lb))
                    if pcts:
                        alw.notified = pcts[-1]
                        self._crossed(alw, "allowance", pcts, (alw.n, alw.b),
                                      (alw.lm, alw.lb), row, period)  # fmt: skip
                    alw.aim()
            if alw is not own:
                own.n += 1
                own.b += billable
            if (own.qm or own.qb) and (own.n >= own.qneed_n or own.b >= own.qneed_b):
                pcts = newly_crossed(own.qnotified, share(own.n, own.b, own.qm, own.qb))
                if pcts:
                    own.qnotified = pcts[-1]
                    self._crossed(own, "quota", pcts, (own.n, own.b), (own.qm, own.qb),
                                  row, period)  # fmt: skip
                    if 100 in pcts and action != "notify":
                        capped.setdefault(sub_id, (action, used_at))
                own.aim()
            out.rated += 1
            out.charged += charge
            if charge:
                charges[account_id] = charges.get(account_id, 0) + charge
            usage.append(
                (event_id, event_id, tenant_id, dev_eui, sub_id, account_id, offering_id, kind,
                 size, billable, period, used_at, charge, "rated", None)
            )  # fmt: skip
        out.counters = [
            (b.n, b.b, b.lm, b.lb, b.notified, b.qnotified, b.id) for b in self.buckets.values()
        ]
        return out

    def _crossed(
        self,
        bucket: Bucket,
        measure: str,
        pcts: list[int],
        totals: tuple[int, int],
        limits: tuple[int, int],
        row: Sequence[Any],
        period: str,
    ) -> None:
        if not pcts:
            return
        self.result.crossings.append(
            Crossing(
                bucket=bucket.key,
                measure=measure,
                pcts=list(pcts),
                totals=totals,
                limits=limits,
                sub_id=row[7],
                account_id=row[8],
                tenant_id=row[2],
                dev_eui=row[3],
                period=period,
                used_at=row[6],
            )
        )


#: ISO-8601 as the network writes it for UTC (no decimals, or six), read without parsing;
#: ASCII digits only (``\d`` alone also takes other scripts' digits).
_UTC_TEXT = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d{6})?(?:Z|\+00:00)", re.ASCII)
#: Any ISO-8601 instant with a zone that rating accepts.
_ISO_TEXT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)", re.ASCII)


def _iso_instant(text: Any) -> datetime | None:
    """The instant an ISO-8601 text with a zone names, or None for anything else."""
    if type(text) is not str or not _ISO_TEXT.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:  # matches the form but names no real day or time
        return None


def sqlite_instant(text: Any, occurred_at: str) -> str:
    """The payload's time as SQLite stores instants (naive UTC text); the event's own time
    where the payload has none, or none that is an ISO-8601 instant with a zone."""
    m = _UTC_TEXT.fullmatch(text) if type(text) is str else None
    if m:  # the network's own UTC form, rewritten without parsing
        day, clock = m[1], m[2]
        if _is_date(day) and clock[:2] <= "23" and clock[3] <= "5" and clock[6] <= "5":
            return f"{day} {clock}{m[3] or '.000000'}"
        return occurred_at
    when = _iso_instant(text)
    return occurred_at if when is None else sqlite_timestamp(when)


@lru_cache(maxsize=1024)
def _is_date(text: str) -> bool:
    """Whether YYYY-MM-DD names a real day (a batch's times fall on few days)."""
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def pg_instant(text: Any, occurred_at: datetime) -> datetime:
    """:func:`sqlite_instant` for PostgreSQL, where instants are aware datetimes."""
    when = _iso_instant(text)
    return occurred_at if when is None else when


def stage(
    raw: Sequence[Sequence[Any]], instant: Callable[[Any, Any], Any]
) -> list[tuple[Any, ...]]:
    """Fetched events (``rating_sql.FETCHED``) as the pass reads them: direction, decoded size
    from the base64 text, the time of use (``instant``) and why a message cannot be rated
    (no live subscription, another tenant's device, not yet active at that time)."""
    out = []
    for row in raw:
        (seq, event_id, tenant_id, dev_eui, type_, b64, when, occurred_at, sub_id, sub_tenant,
         account_id, offering_id, addons, throttled, activated_at, qm, qb, action,
         rated) = row  # fmt: skip
        kind = "uplink" if type_ == UPLINK else "downlink"
        text = b64 if type(b64) is str else ("" if b64 is None else str(b64))
        size = len(text) * 3 // 4 - (2 if text[-2:] == "==" else 1 if text[-1:] == "=" else 0)
        used_at = instant(when, occurred_at)
        reason = None
        if sub_id is None:
            reason = "no-subscription"
        elif sub_tenant != tenant_id:
            reason = "tenant-mismatch"
            sub_id = account_id = offering_id = None
        elif activated_at is None or activated_at > used_at:
            reason = "not-active"
        out.append(
            (seq, event_id, tenant_id, dev_eui, kind, size, used_at, sub_id, account_id,
             offering_id, addons, throttled, qm, qb, action, reason, rated)
        )  # fmt: skip
    return out


def addon_ids(text_value: str | None) -> tuple[str, ...]:
    """A subscription's add-on ids as stored (a JSON list)."""
    return tuple(json.loads(text_value)) if text_value else ()
