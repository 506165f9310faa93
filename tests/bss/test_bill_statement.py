"""A bill's device statement: each device's fees and usage on that bill, adding up to the
bill's lines, in pages by device whose statements do not grow with the bill, only what the
reader may see."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from satiot.api.context import AppContext
from satiot.api.deps import scope_session
from satiot.bss.bill_statement import (
    COLUMNS,
    device_count,
    device_usage,
    export_statement,
    file_name,
    statement_page,
)
from satiot.bss.billing import RunSettings, run_bills
from satiot.bss.models import BillLine, CustomerBill, Subscription, UsageRecord
from satiot.bss.money import prorate, round_to_fen
from satiot.core.errors import InvalidInput
from tests.bss.billing_world import (
    USCCS,
    Shop,
    downlink_sent,
    offering,
    price,
    rate_all,
    shop,
    uplink,
)
from tests.factories import World
from tests.performance.test_query_counts import count_queries

SETTINGS = RunSettings(600, "SAT", 30, "Asia/Shanghai")
OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV_5 = datetime(2026, 11, 5, 4, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, 2, tzinfo=UTC)  # November is over in China


def _plan(ctx: AppContext):  # type: ignore[no-untyped-def]
    """¥0.02 a message each way, ¥0.0001 a byte up with 50 B billable at least, ¥0.0003 a
    byte down: charges that do not round to the fen one device at a time."""
    return offering(
        ctx,
        "Metered",
        [
            price("recurring", 1_000_000),
            price("per-message", 20_000),
            price("per-byte", 100, min_billable_bytes=50, applies_to="uplink"),
            price("per-byte", 300, applies_to="downlink"),
        ],
    )


def _bill(ctx: AppContext, world: World, owner: Shop, period: str = "2026-11", at=DEC_1):  # type: ignore[no-untyped-def]
    with ctx.db.write() as s:
        run = run_bills(
            s, world.system, period, at=at, settings=SETTINGS, accounts=[owner.account_id]
        )
        bill = s.scalar(select(CustomerBill).where(CustomerBill.bill_run_id == run.id))
        assert bill is not None
        s.expunge(bill)
    return bill


def test_each_device_on_the_bill_with_its_traffic_and_exact_charge(ctx: AppContext, world: World):
    owner, other = shop(world), shop(world, uscc=USCCS[1], name="Other Co")
    plan = _plan(ctx)
    busy, quiet, idle = (owner.device(plan, OCT) for _ in range(3))
    elsewhere = other.device(plan, OCT)
    with ctx.db.write() as s:
        s.execute(
            update(Subscription)
            .where(Subscription.id == busy.id)
            .values(imei="354178036859789", iot_number="1410123400001")
        )
    for minute, size in enumerate((10, 80, 3)):  # billable 50, 80, 50
        uplink(ctx, busy, size, NOV_5 + timedelta(minutes=minute))
    downlink_sent(ctx, busy, 7, NOV_5 + timedelta(hours=1))
    uplink(ctx, quiet, 60, NOV_5)
    uplink(ctx, elsewhere, 60, NOV_5)
    rate_all(ctx)
    bill = _bill(ctx, world, owner)
    _bill(ctx, world, other)

    with ctx.db.read() as s:
        lines = device_usage(s, bill.id)
        usage_lines = s.scalars(
            select(BillLine.amount_micros).where(
                BillLine.bill_id == bill.id, BillLine.kind == "usage"
            )
        ).all()
        assert device_count(s, bill.id) == 3
    by_id = {d.subscription_id: d for d in lines}
    assert [d.subscription_id for d in lines] == sorted(by_id)
    assert set(by_id) == {busy.id, quiet.id, idle.id}, "the idle device paid its monthly fee"
    i = by_id[idle.id]
    assert (i.uplink_messages, i.downlink_messages, i.charge_micros) == (0, 0, 0)
    assert (i.dev_eui, i.service_days, i.recurring_micros, i.total_micros) == (
        idle.dev_eui,
        30,
        1_000_000,
        1_000_000,
    )
    assert all((d.first_day, d.last_day, d.recurring_micros) == (1, 30, 1_000_000) for d in lines)
    assert sum(d.recurring_micros for d in lines) == bill.recurring_micros == 3_000_000
    b = by_id[busy.id]
    assert (b.dev_eui, b.imei, b.iot_number) == (busy.dev_eui, "354178036859789", "1410123400001")
    assert (b.uplink_messages, b.downlink_messages, b.bytes, b.billable_bytes) == (3, 1, 100, 187)
    # uplinks 3 x ¥0.02 + 180 B x ¥0.0001, the downlink ¥0.02 + 7 B x ¥0.0003
    assert b.charge_micros == 3 * 20_000 + 180 * 100 + 20_000 + 7 * 300 == 100_100
    assert b.charge_yuan == "0.100100"
    q = by_id[quiet.id]
    assert (q.imei, q.iot_number, q.charge_micros) == (None, None, 20_000 + 60 * 100)
    # the bill rounds each usage line to the fen; the statement adds up to what it rounded
    assert sum(d.charge_micros for d in lines) == 126_100
    assert sum(usage_lines) == bill.usage_micros == 100_000 + 20_000


def test_late_usage_is_on_the_statement_of_the_bill_that_charged_it(ctx: AppContext, world: World):
    owner = shop(world)
    plan = _plan(ctx)
    sub = owner.device(plan, OCT)
    uplink(ctx, sub, 60, NOV_5)
    rate_all(ctx)
    november = _bill(ctx, world, owner)
    uplink(ctx, sub, 70, datetime(2026, 11, 30, 15, tzinfo=UTC))  # 23:00 in China, rated late
    uplink(ctx, sub, 60, datetime(2026, 12, 3, tzinfo=UTC))
    rate_all(ctx)
    december = _bill(ctx, world, owner, "2026-12", datetime(2027, 1, 1, tzinfo=UTC))
    with ctx.db.read() as s:
        (nov,) = device_usage(s, november.id)
        (dec,) = device_usage(s, december.id)
    assert (nov.uplink_messages, nov.bytes, nov.service_days) == (1, 60, 30)
    assert (dec.uplink_messages, dec.bytes, dec.service_days) == (2, 130, 31)


def test_rejected_usage_is_not_on_the_statement(ctx: AppContext, world: World):
    owner = shop(world, quota_messages=1, quota_action="suspend")
    plan = _plan(ctx)
    sub = owner.device(plan, OCT)
    uplink(ctx, sub, 60, NOV_5)
    uplink(ctx, sub, 60, NOV_5 + timedelta(minutes=1))  # over the quota: rejected
    rate_all(ctx)
    bill = _bill(ctx, world, owner)
    with ctx.db.read() as s:
        states = sorted(s.scalars(select(UsageRecord.state)).all())
        (line,) = device_usage(s, bill.id)
    assert states == ["billed", "rejected"]
    assert line.uplink_messages == 1


def test_fees_are_prorated_per_device_and_add_up_to_the_bills_fee_lines(
    ctx: AppContext, world: World
):
    """A device that joined or left during the month pays for its days of service, its add-on
    too; one activated in the month pays the activation fee; the bill's fee lines are the sum
    of its devices' fees, each rounded to the fen once."""
    owner = shop(world)
    plan = offering(
        ctx,
        "Monthly",
        [price("recurring", 1_000_003), price("one-time", 5_000_000, name="activation")],
    )
    extra = offering(ctx, "Priority", [price("recurring", 333_333)], add_on=True)
    old = owner.device(plan, OCT)
    joined = owner.device(plan, datetime(2026, 11, 20, 16, tzinfo=UTC), add_ons=[str(extra)])
    left = owner.device(plan, OCT, terminated_at=datetime(2026, 11, 10, 16, tzinfo=UTC))
    by_use = offering(ctx, "By use", [price("per-message", 20_000)])
    only_add_on = owner.device(by_use, OCT, add_ons=[str(extra)])  # the add-on's fee alone
    bill = _bill(ctx, world, owner)
    with ctx.db.read() as s:
        lines = {d.subscription_id: d for d in device_usage(s, bill.id)}
        fee_lines = s.execute(
            select(BillLine.kind, BillLine.amount_micros).where(
                BillLine.bill_id == bill.id, BillLine.kind.in_(("recurring", "one-time"))
            )
        ).all()
    o, j, t = lines[old.id], lines[joined.id], lines[left.id]
    a = lines[only_add_on.id]
    assert (a.service_days, a.recurring_micros, a.one_time_micros) == (30, 333_333, 0)
    assert (o.first_day, o.last_day, o.recurring_micros, o.one_time_micros) == (1, 30, 1_000_003, 0)
    # 00:00 on the 21st in China: 10 days; the add-on is prorated alike
    assert (j.first_day, j.last_day, j.service_days) == (21, 30, 10)
    assert j.recurring_micros == (1_000_003 * 10 * 2 + 30) // 60 + (333_333 * 10 * 2 + 30) // 60
    assert j.one_time_micros == 5_000_000
    assert (t.first_day, t.last_day, t.one_time_micros) == (1, 10, 0)  # ended at 00:00 on the 11th
    assert t.recurring_micros == (1_000_003 * 10 * 2 + 30) // 60
    assert all(d.total_micros == d.recurring_micros + d.one_time_micros for d in lines.values())
    monthly = 1_000_003 + 2 * prorate(1_000_003, 10, 30)
    priority = prorate(333_333, 10, 30) + 333_333
    assert sum(d.recurring_micros for d in lines.values()) == monthly + priority
    # one line per price, each rounded to the fen once
    assert sorted(a for k, a in fee_lines if k == "recurring") == sorted(
        (round_to_fen(monthly), round_to_fen(priority))
    )
    assert sum(a for k, a in fee_lines if k == "one-time") == 5_000_000
    assert bill.recurring_micros + bill.one_time_micros == sum(a for _, a in fee_lines)


def test_each_span_of_days_is_prorated_as_the_bill_prorates_it(ctx: AppContext, world: World):
    """Devices that began on each day of the month, or ended on it: each fee is exactly
    ``money.prorate`` of each price over its days, with amounts whose products with the days
    pass 32 bits (¥100 a month: 2 × 100,000,000 µ¥ × 20 days)."""
    owner = shop(world)
    amounts = (99_999_999_999, 100_000_000)
    plan = offering(ctx, "Large", [price("recurring", a) for a in amounts])
    local = timedelta(hours=-8)  # 00:00 in China
    began = {
        owner.device(plan, datetime(2026, 11, day, tzinfo=UTC) + local).id: (day, 30)
        for day in range(1, 31, 3)
    }
    ended = {
        owner.device(plan, OCT, terminated_at=datetime(2026, 11, day, 12, tzinfo=UTC) + local).id: (
            1,
            day,
        )
        for day in range(1, 31, 4)
    }
    bill = _bill(ctx, world, owner)
    with ctx.db.read() as s:
        lines = {d.subscription_id: d for d in device_usage(s, bill.id)}
    assert set(lines) == set(began) | set(ended)
    for sub_id, (first, last) in {**began, **ended}.items():
        d = lines[sub_id]
        assert (d.first_day, d.last_day) == (first, last)
        days = last - first + 1
        assert d.recurring_micros == sum(prorate(a, days, 30) for a in amounts), (first, last)
    spans = [*began.values(), *ended.values()]
    per_price = [sum(prorate(a, last - first + 1, 30) for first, last in spans) for a in amounts]
    assert bill.recurring_micros == sum(round_to_fen(micros) for micros in per_price)


def test_pages_merge_devices_with_fees_only_usage_only_and_both(ctx: AppContext, world: World):
    """A device paid for without traffic, one charged by use alone and one with both are each
    listed once, in id order, whatever the page size."""
    owner = shop(world)
    monthly = _plan(ctx)
    by_use = offering(ctx, "By use", [price("per-message", 20_000)])
    subs = [owner.device(monthly if i % 3 else by_use, OCT) for i in range(9)]
    for i, sub in enumerate(subs):
        if i % 3 != 1:  # devices 1, 4, 7: a fee and no traffic
            uplink(ctx, sub, 60, NOV_5 + timedelta(minutes=i))
    rate_all(ctx)
    bill = _bill(ctx, world, owner)
    with ctx.db.read() as s:
        whole = device_usage(s, bill.id)
        assert device_count(s, bill.id) == 9
        walks = {}
        for size in (1, 2, 4):
            pages, after = [], None
            while page := device_usage(s, bill.id, after=after, limit=size):
                pages.append(page)
                after = page[-1].subscription_id
            walks[size] = [d for p in pages for d in p]
    assert [d.subscription_id for d in whole] == sorted(sub.id for sub in subs)
    assert all(walk == whole for walk in walks.values())
    kinds = {d.subscription_id: (d.service_days is not None, d.uplink_messages > 0) for d in whole}
    assert [kinds[sub.id] for sub in subs[:3]] == [(False, True), (True, False), (True, True)]
    assert sum(d.recurring_micros for d in whole) == bill.recurring_micros == 6 * 1_000_000


def _devices_with_usage(ctx: AppContext, world: World, n: int) -> tuple[Shop, CustomerBill]:
    owner = shop(world)
    plan = _plan(ctx)
    for i in range(n):
        uplink(ctx, owner.device(plan, OCT), 60, NOV_5 + timedelta(minutes=i))
    rate_all(ctx)
    return owner, _bill(ctx, world, owner)


def test_pages_by_device_cover_the_bill_once_each(ctx: AppContext, world: World):
    _, bill = _devices_with_usage(ctx, world, 7)
    with ctx.db.read() as s:
        whole = device_usage(s, bill.id)
        pages, after = [], None
        while page := device_usage(s, bill.id, after=after, limit=3):
            pages.append(page)
            after = page[-1].subscription_id
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [d for p in pages for d in p] == whole
    with ctx.db.read() as s, pytest.raises(ValueError):
        device_usage(s, bill.id, limit=0)
    with ctx.db.read() as s:
        first = statement_page(s, bill.id, cursor=None, limit=4)
        assert first.next_cursor is not None
        last = statement_page(s, bill.id, cursor=first.next_cursor, limit=4)
    assert [*first.items, *last.items] == whole and last.next_cursor is None


@pytest.mark.parametrize("cursor", ["nonsense", "eyJrIjogMX0", "eyJrIjogIngifQ"])
def test_a_cursor_the_server_did_not_issue_is_refused(ctx: AppContext, world: World, cursor):
    _, bill = _devices_with_usage(ctx, world, 1)
    with ctx.db.read() as s, pytest.raises(InvalidInput) as refused:
        statement_page(s, bill.id, cursor=cursor, limit=10)
    assert refused.value.extensions["field"] == "cursor"


def test_the_csv_has_a_line_per_device_in_chunks_of_fixed_cost(ctx: AppContext, world: World):
    _, bill = _devices_with_usage(ctx, world, 12)
    seen_counts, told = [], []
    for chunk in (3, 6):
        with ctx.db.read() as s, count_queries(ctx.db.engine) as seen:
            pieces = export_statement(s, bill.id, bill.number, chunk=chunk, progress=told.append)
            data = b"".join(pieces)
        seen_counts.append(len(seen))
    # three statements per chunk of devices (fees, usage, identities), two for the empty last
    assert seen_counts == [3 * 4 + 2, 3 * 2 + 2], seen_counts
    assert told == [3, 3, 3, 3, 6, 6]
    assert data.startswith(b"\xef\xbb\xbf") and data.endswith(b"\r\n")
    rows = list(csv.DictReader(io.StringIO(data[3:].decode(), newline="")))
    assert list(rows[0]) == list(COLUMNS)
    assert len(rows) == 12 and {r["bill_number"] for r in rows} == {bill.number}
    assert {r["usage_charge_yuan"] for r in rows} == {"0.026000"}
    assert rows[0]["uplink_messages"] == "1" and rows[0]["billable_bytes"] == "60"
    assert file_name(bill.number) == f"satiot-usage-{bill.number}.csv"


def test_another_tenant_sees_no_line_of_the_bill(ctx: AppContext, world: World):
    owner, bill = _devices_with_usage(ctx, world, 2)
    stranger = world.tenant()
    with ctx.db.read() as s:
        scope_session(s, stranger.id)
        assert device_usage(s, bill.id) == []
        assert device_count(s, bill.id) == 0
    with ctx.db.read() as s:
        scope_session(s, owner.tenant.id)
        assert len(device_usage(s, bill.id)) == 2
