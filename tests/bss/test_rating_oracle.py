"""Batch rating against a plain one-message-at-a-time reading of the rules.

Rating reads a whole batch in one query, keeps running totals per bucket and writes in bulk,
with counters carried from batch to batch. These scenarios draw random
tariffs, quotas, traffic and batch sizes (seeded, so a failure names its scenario) and check
that every usage record, counter and threshold notice is what the rules of docs/bss.md give
when the messages are taken one by one in the order of the event log.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from satiot.bss.models import UsageCounter, UsageRecord
from satiot.bss.periods import period_of
from satiot.bss.rating_rules import newly_crossed, share
from satiot.core.models import Event
from tests.bss.billing_world import downlink_sent, offering, price, rate_all, shop, uplink

T = datetime(2026, 11, 20, tzinfo=UTC)
DEVICES = 3


@dataclass
class Plan:
    pooled: bool
    allow_m: int
    allow_b: int
    msg: int
    byte: dict[str, int]
    min_bytes: dict[str, int]
    quota_m: int
    quota_b: int
    action: str


@dataclass
class Bucket:
    n: int = 0
    b: int = 0
    notified: int = 0
    quota_notified: int = 0


def _draw(rng: random.Random) -> Plan:
    quota = rng.choice(["none", "messages", "bytes", "both"])
    return Plan(
        pooled=rng.random() < 0.5,
        allow_m=rng.choice([0, 2, 3, 5]),
        allow_b=rng.choice([0, 200, 500]),
        msg=rng.choice([0, 10_000, 10_000]),
        byte={"uplink": rng.choice([0, 100]), "downlink": rng.choice([0, 300])},
        min_bytes={"uplink": rng.choice([0, 50]), "downlink": 0},
        quota_m=rng.choice([4, 8]) if quota in ("messages", "both") else 0,
        quota_b=rng.choice([150, 300]) if quota in ("bytes", "both") else 0,
        action=rng.choice(["notify", "suspend", "throttle"]),
    )


def _expected(plan: Plan, traffic: list[tuple[int, str, int, datetime]]):
    """Records, counters and notices, one message at a time."""
    buckets: dict[tuple[str, str], Bucket] = defaultdict(Bucket)
    has_allowance = plan.allow_m > 0 or plan.allow_b > 0
    quota = plan.quota_m > 0 or plan.quota_b > 0
    enforced = quota and plan.action != "notify"
    records, notices = [], []
    for dev, kind, size, at in traffic:
        period = period_of(at)
        billable = max(size, plan.min_bytes[kind])
        own = buckets[(f"sub{dev}", period)]
        share_of = DEVICES if plan.pooled else 1
        allowance = None if not has_allowance else buckets[("pool", period)] if plan.pooled else own
        limits = (plan.allow_m * share_of, plan.allow_b * share_of)
        full = (plan.quota_m and own.n + 1 > plan.quota_m) or (
            plan.quota_b and own.b + billable > plan.quota_b
        )
        if enforced and (own.quota_notified >= 100 or full):
            for pct in newly_crossed(own.quota_notified, 100):
                notices.append(("quota", pct, "sub", own.n, own.b))
            own.quota_notified = 100
            records.append(("rejected", billable, 0))
            continue
        if allowance is None:
            charge = plan.msg + plan.byte[kind] * billable
        else:
            free_msg = allowance.n < limits[0]
            free_bytes = min(billable, max(0, limits[1] - allowance.b))
            allowance.n += 1
            allowance.b += billable
            charge = (0 if free_msg else plan.msg) + plan.byte[kind] * (billable - free_bytes)
        if allowance is not own:
            own.n += 1
            own.b += billable
        if allowance is not None:
            crossed = newly_crossed(allowance.notified, share(allowance.n, allowance.b, *limits))
            if crossed:
                allowance.notified = crossed[-1]
            key = "pool" if plan.pooled else "sub"
            notices += [("allowance", p, key, allowance.n, allowance.b) for p in crossed]
        if quota:
            crossed = newly_crossed(
                own.quota_notified, share(own.n, own.b, plan.quota_m, plan.quota_b)
            )
            if crossed:
                own.quota_notified = crossed[-1]
            notices += [("quota", p, "sub", own.n, own.b) for p in crossed]
        records.append(("rated", billable, charge))
    counters = {k: (v.n, v.b) for k, v in buckets.items() if v.n or v.b}
    return records, counters, notices


@pytest.mark.parametrize("seed", range(16))
def test_batch_rating_matches_the_rules_taken_one_message_at_a_time(world, seed):
    rng = random.Random(seed)
    plan = _draw(rng)
    ctx = world.ctx
    s = shop(
        world,
        quota_messages=plan.quota_m or None,
        quota_bytes=plan.quota_b or None,
        quota_action=plan.action,
    )
    prices = [
        price(
            "recurring",
            1_000_000,
            allowance_messages=plan.allow_m,
            allowance_bytes=plan.allow_b,
            pooled=plan.pooled,
        ),
        price("per-byte", plan.byte["uplink"], applies_to="uplink", min_billable_bytes=50)
        if plan.min_bytes["uplink"]
        else price("per-byte", plan.byte["uplink"], applies_to="uplink"),
        price("per-byte", plan.byte["downlink"], applies_to="downlink"),
    ]
    if plan.msg:
        prices.append(price("per-message", plan.msg))
    off = offering(ctx, f"Oracle {seed}", prices)
    subs = [s.device(off, T - timedelta(days=40)) for _ in range(DEVICES)]
    traffic = []
    for i in range(36):
        # mostly November, some December, now and then late (store-and-forward)
        at = T + timedelta(hours=rng.choice([i, i, i, 300 + i, max(0, i - 20)]))
        traffic.append(
            (rng.randrange(DEVICES), rng.choice(["uplink", "downlink"]), rng.randrange(121), at)
        )
    for dev, kind, size, at in traffic:
        emit = uplink if kind == "uplink" else downlink_sent
        emit(ctx, subs[dev], size, at)
    rate_all(ctx, batch_size=rng.choice([1, 4, 7, 50]))

    records, counters, notices = _expected(plan, traffic)
    with ctx.db.read() as r:
        got = r.execute(
            select(UsageRecord.state, UsageRecord.billable_bytes, UsageRecord.charge_micros)
            .join(Event, Event.id == UsageRecord.event_id)
            .where(UsageRecord.tenant_id == s.tenant.id)
            .order_by(Event.seq)
        ).all()
        stored = {
            (c.bucket, c.period): (c.messages, c.bytes)
            for c in r.scalars(select(UsageCounter).where(UsageCounter.tenant_id == s.tenant.id))
            if c.messages or c.bytes
        }
        told = [
            e.payload
            for e in r.scalars(
                select(Event)
                .where(Event.type == "usage.threshold", Event.tenant_id == s.tenant.id)
                .order_by(Event.seq)
            )
        ]
    assert [tuple(row) for row in got] == records, plan
    names = {f"sub:{sub.id}": f"sub{i}" for i, sub in enumerate(subs)}
    assert {
        (names.get(bucket, "pool"), period): value for (bucket, period), value in stored.items()
    } == counters, plan
    assert [
        (
            n["measure"],
            n["threshold_pct"],
            "pool" if n["bucket"].startswith("pool:") else "sub",
            n["messages"],
            n["bytes"],
        )
        for n in told
    ] == notices, plan
