"""A month's usage records as a file: a line per message with what it cost, whether it was
billed and on which bill, or why it was not charged; one account's or one device's, only
what the reader may see, streamed in chunks of fixed cost."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from satiot.api.context import AppContext
from satiot.api.deps import scope_session
from satiot.bss.billing import RunSettings, run_bills
from satiot.bss.models import CustomerBill, UsageRecord
from satiot.bss.usage_export import (
    COLUMNS,
    count_records,
    export_records,
    file_name,
    selection,
)
from satiot.core.errors import InvalidInput, NotFound
from tests.bss.billing_world import USCCS, downlink_sent, offering, price, rate_all, shop, uplink
from tests.factories import World
from tests.performance.test_query_counts import count_queries

TZ = "Asia/Shanghai"
OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV_5 = datetime(2026, 11, 5, 4, tzinfo=UTC)  # 12:00 in China
DEC_1 = datetime(2026, 12, 1, 2, tzinfo=UTC)


def _metered(ctx: AppContext):  # type: ignore[no-untyped-def]
    return offering(
        ctx,
        "Metered",
        [
            price("recurring", 1_000_000),
            price("per-message", 20_000),
            price("per-byte", 200, min_billable_bytes=50, applies_to="uplink"),
        ],
    )


def _rows(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf") and data.endswith(b"\r\n")
    reader = csv.DictReader(io.StringIO(data[3:].decode(), newline=""))
    assert reader.fieldnames == list(COLUMNS)
    return list(reader)


def test_each_message_of_the_month_with_its_charge_bill_and_china_time(
    ctx: AppContext, world: World
):
    owner = shop(world, quota_messages=3, quota_action="suspend")
    plan = _metered(ctx)
    busy, quiet = owner.device(plan, OCT), owner.device(plan, OCT)
    uplink(ctx, busy, 10, NOV_5)  # billable 50: ¥0.02 + ¥0.01
    downlink_sent(ctx, busy, 7, NOV_5 + timedelta(minutes=1))  # ¥0.02
    uplink(ctx, quiet, 80, NOV_5 + timedelta(minutes=2))  # ¥0.02 + ¥0.016
    uplink(ctx, busy, 60, NOV_5 + timedelta(minutes=3))  # the quota's third: ¥0.032
    uplink(ctx, busy, 60, NOV_5 + timedelta(minutes=4))  # over the quota: not charged
    uplink(ctx, quiet, 60, datetime(2026, 10, 31, 17, tzinfo=UTC))  # Nov 1, 01:00 in China
    uplink(ctx, quiet, 60, datetime(2026, 11, 30, 16, 30, tzinfo=UTC))  # December in China
    rate_all(ctx)
    with ctx.db.write() as s:
        settings = RunSettings(600, "SAT", 30, TZ)
        run = run_bills(s, world.system, "2026-11", at=DEC_1, settings=settings)
        bill = s.scalar(select(CustomerBill).where(CustomerBill.bill_run_id == run.id))
        assert bill is not None
        number, bill_usage = bill.number, bill.usage_micros
    uplink(ctx, quiet, 60, NOV_5 + timedelta(hours=1))  # rated after the bill run
    rate_all(ctx)

    with ctx.db.read() as s:
        chosen = selection(s, "2026-11", billing_account_id=owner.account_id)
        assert count_records(s, chosen) == 7
        rows = _rows(b"".join(export_records(s, chosen, TZ)))
        event_ids = {str(e) for e in s.scalars(select(UsageRecord.event_id))}
    # in the order rated (the log's), at China's time to the second
    assert [(r["used_at"], r["dev_eui"], r["direction"], r["billable_bytes"]) for r in rows] == [
        ("2026-11-05 12:00:00", busy.dev_eui, "uplink", "50"),
        ("2026-11-05 12:01:00", busy.dev_eui, "downlink", "7"),
        ("2026-11-05 12:02:00", quiet.dev_eui, "uplink", "80"),
        ("2026-11-05 12:03:00", busy.dev_eui, "uplink", "60"),
        ("2026-11-05 12:04:00", busy.dev_eui, "uplink", "60"),
        ("2026-11-01 01:00:00", quiet.dev_eui, "uplink", "60"),
        ("2026-11-05 13:00:00", quiet.dev_eui, "uplink", "60"),
    ]
    assert [(r["charge_yuan"], r["state"], r["reason"], r["bill_number"]) for r in rows] == [
        ("0.030000", "billed", "", number),
        ("0.020000", "billed", "", number),
        ("0.036000", "billed", "", number),
        ("0.032000", "billed", "", number),
        ("0.000000", "rejected", "quota-exceeded", ""),
        ("0.032000", "billed", "", number),
        ("0.032000", "rated", "", ""),
    ]
    assert {r["period"] for r in rows} == {"2026-11"}
    assert [r["subscription_id"] for r in rows[:3]] == [str(busy.id), str(busy.id), str(quiet.id)]
    assert {r["event_id"] for r in rows} <= event_ids
    # what the bill charged for usage, message by message
    micros = [int(r["charge_yuan"].replace(".", "")) for r in rows if r["bill_number"]]
    assert sum(micros) == bill_usage == 150_000

    # December's message in December's file; one device, only what is still to be billed
    with ctx.db.read() as s:
        december = selection(s, "2026-12", billing_account_id=owner.account_id)
        waiting = selection(s, "2026-11", subscription_id=quiet.id, state="rated")
        in_december = _rows(b"".join(export_records(s, december, TZ)))
        still_rated = _rows(b"".join(export_records(s, waiting, TZ)))
    assert [(r["used_at"], r["period"]) for r in in_december] == [
        ("2026-12-01 00:30:00", "2026-12")
    ]
    assert [(r["used_at"], r["state"]) for r in still_rated] == [("2026-11-05 13:00:00", "rated")]


def test_only_the_readers_own_and_only_a_checked_selection(ctx: AppContext, world: World):
    owner, other = shop(world), shop(world, uscc=USCCS[1], name="Other Co")
    plan = _metered(ctx)
    sub = owner.device(plan, OCT)
    uplink(ctx, sub, 60, NOV_5)
    rate_all(ctx)
    with ctx.db.read() as s:
        scope_session(s, other.tenant.id)
        with pytest.raises(NotFound):
            selection(s, "2026-11", billing_account_id=owner.account_id)
        with pytest.raises(NotFound):
            selection(s, "2026-11", subscription_id=sub.id)
    with ctx.db.read() as s:
        scope_session(s, owner.tenant.id)
        chosen = selection(s, "2026-11", subscription_id=sub.id)
        assert len(_rows(b"".join(export_records(s, chosen, TZ)))) == 1
        assert file_name(chosen) == f"satiot-usage-2026-11-subscription-{sub.id.hex[:8]}.csv"
    cases = [
        ({"period": "2026-13", "billing_account_id": owner.account_id}, "period"),
        ({"period": "2026-11", "billing_account_id": owner.account_id, "state": "x"}, "state"),
        ({"period": "2026-11"}, "billing_account_id"),
    ]
    for kwargs, field in cases:
        with ctx.db.read() as s, pytest.raises(InvalidInput) as refused:
            selection(s, **kwargs)  # type: ignore[arg-type]
        assert refused.value.extensions["field"] == field


def test_the_file_is_written_in_chunks_of_fixed_cost(ctx: AppContext, world: World):
    owner = shop(world)
    plan = _metered(ctx)
    subs = [owner.device(plan, OCT) for _ in range(4)]
    for i in range(11):
        uplink(ctx, subs[i % 4], 60, NOV_5 + timedelta(minutes=i))
    rate_all(ctx)
    with ctx.db.write() as s:
        settings = RunSettings(600, "SAT", 30, TZ)
        run_bills(s, world.system, "2026-11", at=DEC_1, settings=settings)
    told: list[int] = []
    with ctx.db.read() as s:
        chosen = selection(s, "2026-11", billing_account_id=owner.account_id)
        with count_queries(ctx.db.engine) as seen:
            rows = _rows(b"".join(export_records(s, chosen, TZ, chunk=3, progress=told.append)))
    assert told == [3, 3, 3, 2]
    assert len(rows) == 11 and len({r["event_id"] for r in rows}) == 11
    # one statement for the records, one for the bill's number (met in the first chunk)
    assert len(seen) == 2, seen


def test_a_customers_file_holds_each_account_then_what_no_account_was_charged_for(
    ctx: AppContext, world: World
):
    """A customer with two accounts: the file has the first account's month (in id order),
    then the second's, then its messages from a device without a subscription; nothing of
    another customer, and nothing of another month."""
    from satiot.bss.accounts import open_account
    from satiot.bss.models import Subscription

    owner, other = shop(world), shop(world, uscc=USCCS[1], name="Other Co")
    with ctx.db.write() as s:
        second = open_account(
            s, world.system, owner.customer_id, payment_mode="postpaid", at=OCT, name="Second"
        ).id
    plan = _metered(ctx)
    first_dev, second_dev = owner.device(plan, OCT), owner.device(plan, OCT, account_id=second)
    stranger = Subscription(tenant_id=owner.tenant.id, dev_eui="00000000DEADBEEF")
    theirs = other.device(plan, OCT)
    uplink(ctx, second_dev, 60, NOV_5)
    uplink(ctx, first_dev, 60, NOV_5 + timedelta(minutes=1))
    uplink(ctx, stranger, 60, NOV_5 + timedelta(minutes=2))
    uplink(ctx, theirs, 60, NOV_5 + timedelta(minutes=3))
    uplink(ctx, first_dev, 60, NOV_5 + timedelta(minutes=4))
    uplink(ctx, first_dev, 60, datetime(2026, 12, 5, tzinfo=UTC))  # December
    rate_all(ctx)
    with ctx.db.read() as s:
        chosen = selection(s, "2026-11", customer_id=owner.customer_id)
        assert count_records(s, chosen) == 4
        rows = _rows(b"".join(export_records(s, chosen, TZ)))
        assert file_name(chosen) == (
            f"satiot-usage-2026-11-customer-{owner.customer_id.hex[:8]}.csv"
        )
    accounts = sorted([owner.account_id, second])
    by_account = {owner.account_id: first_dev.dev_eui, second: second_dev.dev_eui}
    expected = [
        (str(a), by_account[a]) for a in accounts for _ in range(2 if a == owner.account_id else 1)
    ] + [("", "00000000DEADBEEF")]
    assert [(r["billing_account_id"], r["dev_eui"]) for r in rows] == expected
    assert rows[-1]["state"] == "rejected" and rows[-1]["reason"] == "no-subscription"
    first_times = [r["used_at"] for r in rows if r["dev_eui"] == first_dev.dev_eui]
    assert first_times == ["2026-11-05 12:01:00", "2026-11-05 12:04:00"]

    # another customer's reader does not find it; a customer is named alone
    with ctx.db.read() as s:
        scope_session(s, other.tenant.id)
        with pytest.raises(NotFound):
            selection(s, "2026-11", customer_id=owner.customer_id)
    with ctx.db.read() as s, pytest.raises(InvalidInput) as refused:
        selection(s, "2026-11", customer_id=owner.customer_id, billing_account_id=second)
    assert refused.value.extensions["field"] == "customer_id"
