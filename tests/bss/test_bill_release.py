"""Releasing a bill run: every new bill validated, then every validated one sent, in chunks of
their own transactions; bills on hold stay; each bill moved as one move of it is (audited,
announced, a prepaid one paid from its balance); releasing again finds nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from satiot.bss import bill_release
from satiot.bss.bill_adjustments import adjust_bill
from satiot.bss.billing import run_bills
from satiot.bss.invoices import hold_bill, validate_bill
from satiot.bss.models import BillingAccount, CustomerBill, Payment
from satiot.core import migrate
from satiot.core.db import Database
from satiot.core.errors import Conflict, NotFound
from satiot.core.models import AuditEntry, Event
from tests.bss.billing_world import DEC_1, RUN_SETTINGS, offering, price, shop


def _run_of_five(world) -> tuple[uuid.UUID, dict[str, uuid.UUID]]:  # type: ignore[no-untyped-def]
    """November's run over five accounts of one customer, one of them prepaid with ¥500:
    (run id, account name -> its bill id)."""
    ctx = world.ctx
    s = shop(world)
    plan = offering(ctx, "Monthly", [price("recurring", 100_000_000)])
    accounts = {"a0": s.account_id}
    for i in range(1, 4):
        accounts[f"a{i}"] = s.account()
    accounts["prepaid"] = s.account("prepaid", balance=500_000_000)
    for account_id in accounts.values():
        s.device(plan, datetime(2026, 10, 1, tzinfo=UTC), account_id=account_id)
    with ctx.db.write() as w:
        run = run_bills(w, world.system, "2026-11", at=DEC_1, settings=RUN_SETTINGS)
        bills = dict(w.execute(select(CustomerBill.billing_account_id, CustomerBill.id)).all())
    return run.id, {name: bills[account_id] for name, account_id in accounts.items()}


def _write(world):  # type: ignore[no-untyped-def]
    @contextmanager
    def write() -> Iterator[Session]:
        with world.ctx.db.write() as session:
            yield session

    return write


def _states(world, bills: dict[str, uuid.UUID]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with world.ctx.db.read() as r:
        return {name: r.get(CustomerBill, bill_id).state for name, bill_id in bills.items()}


def test_a_run_is_validated_then_sent_and_held_bills_stay(world, monkeypatch):
    monkeypatch.setattr(bill_release, "CHUNK", 2)  # five bills: three chunks, then none
    run_id, bills = _run_of_five(world)
    with world.ctx.db.write() as w:
        hold_bill(w, world.system, bills["a3"], at=DEC_1, reason="customer disputes a device")
    seen: list[tuple[int, int]] = []
    done = bill_release.release_run(
        _write(world), world.system, run_id, "validate", at=DEC_1,
        progress=lambda moved, total: seen.append((moved, total)),
    )  # fmt: skip
    assert done.moved == 4 and done.states == {"validated": 4, "onHold": 1}
    assert seen == [(2, 4), (4, 4)]
    assert _states(world, bills)["a3"] == "onHold"

    # A doubt before sending: a validated bill is taken back, corrected and validated again.
    with world.ctx.db.write() as w:
        hold_bill(w, world.system, bills["a1"], at=DEC_1, reason="check the device count")
        hold_bill(w, world.system, bills["a1"], at=DEC_1, reason="checked")
        adjust_bill(w, world.system, bills["a1"], amount_micros=-10_000_000,
                    reason="Goodwill credit", at=DEC_1)  # fmt: skip
        validate_bill(w, world.system, bills["a1"], at=DEC_1)

    done = bill_release.release_run(_write(world), world.system, run_id, "send", at=DEC_1)
    assert done.moved == 4 and done.states == {"sent": 3, "settled": 1, "onHold": 1}
    states = _states(world, bills)
    assert states["prepaid"] == "settled" and states["a3"] == "onHold"
    with world.ctx.db.read() as r:
        prepaid = r.get(CustomerBill, bills["prepaid"])
        account = r.get(BillingAccount, prepaid.billing_account_id)
        assert account.balance_micros == 500_000_000 - prepaid.total_micros  # paid from it
        assert r.scalar(select(Payment.method).where(Payment.bill_id == prepaid.id)) == (
            "prepaid-balance"
        )
        # each bill moved as one move moves it: audited, announced to its tenant
        sent = r.scalars(select(Event).where(Event.type == "bill.sent")).all()
        assert len(sent) == 4 and all(e.tenant_id == prepaid.tenant_id for e in sent)
        validated = r.scalar(
            select(func.count(AuditEntry.seq)).where(AuditEntry.action == "bill.validated")
        )
        assert validated == 5  # four in the release, a1 once more by hand
        assert r.get(CustomerBill, bills["a1"]).total_micros == 95_400_000  # ¥90 + 6 % VAT


def test_releasing_again_finds_nothing_and_changes_nothing(world):
    run_id, bills = _run_of_five(world)
    bill_release.release_run(_write(world), world.system, run_id, "validate", at=DEC_1)
    with world.ctx.db.read() as r:
        audited = r.scalar(select(func.count(AuditEntry.seq)))
    with pytest.raises(Conflict, match="nothing to validate"):
        bill_release.release_run(_write(world), world.system, run_id, "validate", at=DEC_1)
    with world.ctx.db.read() as r:
        assert r.scalar(select(func.count(AuditEntry.seq))) == audited
    assert set(_states(world, bills).values()) == {"validated"}


def test_sending_before_validating_and_an_unknown_run_are_refused(world):
    run_id, bills = _run_of_five(world)
    with pytest.raises(Conflict, match="nothing to send"):
        bill_release.release_run(_write(world), world.system, run_id, "send", at=DEC_1)
    with pytest.raises(NotFound):
        bill_release.release_run(_write(world), world.system, uuid.uuid4(), "validate", at=DEC_1)
    with pytest.raises(ValueError):
        bill_release.release_run(_write(world), world.system, run_id, "pay", at=DEC_1)
    assert set(_states(world, bills).values()) == {"new"}


def test_a_chunk_reads_the_runs_index_not_every_bill(tmp_path):
    """A chunk is a range of the (run, state, id) index, in order, on the embedded database
    as migrated: not a scan of every month's bills, nor a sort."""
    db = Database.connect(f"sqlite:///{tmp_path / 'release.db'}")
    migrate.upgrade(db.engine)
    stmt = bill_release.waiting(uuid.uuid4(), "validate", 200)
    with db.engine.connect() as conn:
        compiled = stmt.compile(dialect=conn.dialect)
        params = tuple(compiled.params[k] for k in compiled.positiontup or ())
        params = tuple(p.hex if isinstance(p, uuid.UUID) else p for p in params)
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params).fetchall()
    db.dispose()
    assert [row[-1] for row in plan] == [
        "SEARCH customer_bills USING INDEX ix_customer_bills_run_state (bill_run_id=? AND state=?)"
    ]
