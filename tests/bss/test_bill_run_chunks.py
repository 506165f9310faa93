"""A month's bill run a chunk of accounts at a time: the same bills as one transaction, other
writers between chunks, late usage left for next month, and a run stopped part way taken up."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from satiot.api.context import AppContext
from satiot.bss import bill_release, billing
from satiot.bss.bill_run_chunks import run_in_chunks
from satiot.bss.billing import RunSettings, dry_run
from satiot.bss.billing_sql import AccountSpan
from satiot.bss.device_fee_models import BillDeviceFee
from satiot.bss.models import BillRun, CustomerBill, Subscription, UsageRecord
from satiot.core.errors import Conflict
from satiot.core.models import AuditEntry
from tests.bss.billing_world import Shop, offering, price, rate_all, shop, uplink
from tests.factories import World

SETTINGS = RunSettings(600, "SAT", 30, "Asia/Shanghai")
OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV_5 = datetime(2026, 11, 5, 4, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, 2, tzinfo=UTC)


def _accounts(ctx: AppContext, world: World, n: int) -> tuple[Shop, list[Subscription]]:
    """One customer with ``n`` accounts, each with a device on ¥10 a month and ¥0.02 a
    message that sent a message in November; the devices in account order."""
    owner = shop(world)
    plan = offering(ctx, "Basic", [price("recurring", 10_000_000), price("per-message", 20_000)])
    accounts = [owner.account_id] + [owner.account() for _ in range(n - 1)]
    subs = [owner.device(plan, OCT, account_id=a) for a in sorted(accounts)]
    for i, sub in enumerate(subs):
        uplink(ctx, sub, 20, NOV_5 + timedelta(minutes=i))
    rate_all(ctx)
    return owner, subs


def _run(ctx: AppContext, world: World, **kw: Any) -> BillRun:
    return run_in_chunks(ctx.db.write, world.system, "2026-11", at=DEC_1, settings=SETTINGS, **kw)


def test_chunks_bill_what_one_transaction_bills(ctx: AppContext, world: World):
    _, subs = _accounts(ctx, world, 7)
    with ctx.db.read() as s:
        expected = {
            sub.billing_account_id: dry_run(
                s, sub.billing_account_id, "2026-11", at=DEC_1, tax_rate_bp=600, tz=SETTINGS.tz
            )
            for sub in subs
        }
    told: list[tuple[int, int]] = []
    run = _run(ctx, world, chunk=3, progress=lambda done, total: told.append((done, total)))
    assert told == [(3, 7), (6, 7), (7, 7)]
    assert (run.status, run.bills, run.accounts) == ("completed", 7, 7)
    with ctx.db.read() as s:
        bills = s.scalars(select(CustomerBill).order_by(CustomerBill.number)).all()
        unbilled = s.scalar(select(func.count()).where(UsageRecord.state != "billed"))
        fees = s.scalar(select(func.count()).select_from(BillDeviceFee))
        audits = s.scalars(
            select(AuditEntry.target_id).where(AuditEntry.action == "bill-run.completed")
        ).all()
    assert [b.number for b in bills] == [f"SAT2026-{n:08d}" for n in range(1, 8)]  # gap-free
    assert {b.billing_account_id: b.total_micros for b in bills} == {
        account: draft.total_micros for account, draft in expected.items() if draft is not None
    }
    assert run.total_micros == sum(b.total_micros for b in bills)
    assert (unbilled, fees, audits) == (0, 7, [str(run.id)])


def test_other_writers_go_between_chunks_and_late_usage_waits_for_next_month(
    ctx: AppContext, world: World
):
    _, subs = _accounts(ctx, world, 4)
    first, last = subs[0], subs[-1]  # in the first chunk of two accounts, and in the last

    def meanwhile(done: int, _total: int) -> None:
        if done == 2:  # between the chunks: the network and rating write, and are not held up
            uplink(ctx, first, 30, NOV_5 + timedelta(hours=2))
            uplink(ctx, last, 30, NOV_5 + timedelta(hours=2))
            rate_all(ctx)

    _run(ctx, world, chunk=2, progress=meanwhile)
    with ctx.db.read() as s:
        records = {
            (r.subscription_id, r.bytes): (r.state, r.bill_id)
            for r in s.scalars(select(UsageRecord))
        }
        bill_of = dict(s.execute(select(CustomerBill.billing_account_id, CustomerBill.id)).all())
        usage_of = dict(
            s.execute(select(CustomerBill.billing_account_id, CustomerBill.usage_micros)).all()
        )
    # rated after its account's chunk: left for December's bill, its bill unchanged
    assert records[(first.id, 30)] == ("rated", None)
    assert usage_of[first.billing_account_id] == 20_000
    # rated before its account's chunk: on its bill
    assert records[(last.id, 30)] == ("billed", bill_of[last.billing_account_id])
    assert usage_of[last.billing_account_id] == 40_000


def test_a_run_stopped_part_way_is_taken_up_and_billed_once(
    ctx: AppContext, world: World, monkeypatch: pytest.MonkeyPatch
):
    _accounts(ctx, world, 5)
    real = billing.bill_accounts
    calls = []

    def failing_second(*args: Any, **kw: Any) -> int:
        calls.append(kw["accounts"])
        if len(calls) == 2:
            raise RuntimeError("the runner died")
        return real(*args, **kw)

    monkeypatch.setattr(billing, "bill_accounts", failing_second)
    with pytest.raises(RuntimeError):
        _run(ctx, world, chunk=2)
    with ctx.db.read() as s:
        (stopped,) = s.scalars(select(BillRun)).all()
        assert (stopped.status, s.scalar(select(func.count(CustomerBill.id)))) == ("running", 2)
        with pytest.raises(Conflict, match="still billing"):  # not released while under way
            bill_release.check_waiting(s, stopped.id, "validate")
    monkeypatch.setattr(billing, "bill_accounts", real)

    run = _run(ctx, world, chunk=2)
    assert (run.id, run.status, run.bills) == (stopped.id, "completed", 5)
    with ctx.db.read() as s:
        numbers = s.scalars(select(CustomerBill.number).order_by(CustomerBill.number)).all()
        per_account = s.execute(
            select(CustomerBill.billing_account_id, func.count()).group_by(
                CustomerBill.billing_account_id
            )
        ).all()
        assert bill_release.check_waiting(s, run.id, "validate") == 5
    assert numbers == [f"SAT2026-{n:08d}" for n in range(1, 6)]  # the failed chunk took none
    assert {n for _, n in per_account} == {1} and len(per_account) == 5


def test_a_run_limited_to_some_accounts_bills_those_alone(ctx: AppContext, world: World):
    _, subs = _accounts(ctx, world, 3)
    chosen = [subs[0].billing_account_id, subs[2].billing_account_id, uuid.uuid4()]
    run = _run(ctx, world, accounts=chosen, chunk=1)
    with ctx.db.read() as s:
        billed = set(s.scalars(select(CustomerBill.billing_account_id)))
    assert run.bills == 2 and billed == set(chosen[:2])
    with pytest.raises(ValueError):
        _run(ctx, world, chunk=0)


def test_a_span_of_accounts_prices_those_from_its_first_to_its_last(ctx: AppContext, world: World):
    # A chunk of a month's run names its accounts by the first and last id it bills.
    _, subs = _accounts(ctx, world, 5)
    ids = [sub.billing_account_id for sub in subs]  # in id order
    with ctx.db.read() as s:
        period = billing.check_billable(s, "2026-11", at=DEC_1, tz=SETTINGS.tz, accounts=None)
        priced = billing.compute(s, period, tax_rate_bp=600, accounts=AccountSpan(ids[1], ids[3]))
        alone = billing.compute(s, period, tax_rate_bp=600, accounts=AccountSpan(ids[4], ids[4]))
    assert [uuid.UUID(d.account_id) for d in priced] == ids[1:4]
    assert [uuid.UUID(d.account_id) for d in alone] == ids[4:]
    for draft in priced:
        assert [line.kind for line in draft.lines] == ["recurring", "usage"]
