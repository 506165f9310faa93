"""Overdue bills: a sent bill still owed after its due date is announced once as
``bill.overdue`` (audited as the system, pushed to the customer's integrations); a bill paid,
credited in full or not yet sent is not."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from satiot.bss.credit_notes import issue_credit_note
from satiot.bss.housekeeping import run_once
from satiot.bss.invoices import send_bill, validate_bill
from satiot.bss.models import CustomerBill
from satiot.bss.overdue import announce_overdue, watched_overdue
from satiot.bss.payments import record_payment
from satiot.core import migrate
from satiot.core.db import Database
from satiot.core.models import AuditEntry, Event
from tests.bss.billing_world import DEC_1, USCCS, november_bill
from tests.network.delivery_support import deliveries, fan_out, webhook

#: Two days after the bills' due date (issued 1 December 02:00 UTC, payable in 30 days).
LATE = DEC_1 + timedelta(days=32)


def _send(world, bill_id) -> None:  # type: ignore[no-untyped-def]
    with world.ctx.db.write() as w:
        validate_bill(w, world.system, bill_id, at=DEC_1)
        send_bill(w, world.system, bill_id, at=DEC_1)


def test_a_late_bill_is_announced_once_with_what_is_still_owed(world):
    s, bill_id = november_bill(world)  # ¥106.01
    hook = webhook(world.ctx, world, s.tenant.id, "https://erp.example/hook")
    _send(world, bill_id)
    with world.ctx.db.write() as w:
        record_payment(
            w, world.system, bill_id, amount_micros=6_010_000, method="bank", reference="T1",
            at=DEC_1,
        )  # fmt: skip
    db = world.ctx.db
    assert announce_overdue(db, world.system, DEC_1 + timedelta(days=29)) == []  # not yet due
    assert announce_overdue(db, world.system, LATE) == [bill_id]
    assert announce_overdue(db, world.system, LATE + timedelta(days=1)) == []  # once
    with db.read() as r:
        event = r.scalars(select(Event).where(Event.type == "bill.overdue")).one()
        audit = r.scalars(select(AuditEntry).where(AuditEntry.action == "bill.overdue")).one()
        bill = r.get(CustomerBill, bill_id)
    assert (event.payload["days_overdue"], event.payload["due_micros"]) == (2, 100_000_000)
    assert (event.tenant_id, bill.overdue_announced_at) == (s.tenant.id, LATE)
    assert bill.state == "partiallyPaid"  # the notice changes nothing else
    assert audit.reason == "2 days past its due date"
    fan_out(world.ctx)
    (delivered,) = [d for d in deliveries(world.ctx, hook) if d.event_type == "bill.overdue"]
    assert delivered.body["number"] == bill.number


def test_paid_credited_and_unsent_bills_are_not_announced(world):
    _, paid = november_bill(world)
    _send(world, paid)
    with world.ctx.db.write() as w:
        record_payment(
            w, world.system, paid, amount_micros=106_010_000, method="bank", reference="P1",
            at=DEC_1,
        )  # fmt: skip
    _, credited = november_bill(world, uscc=USCCS[1], name="上海示例物联有限公司")
    _send(world, credited)
    with world.ctx.db.write() as w:  # the whole bill credited: nothing owed, settled
        issue_credit_note(
            w, world.system, credited, amount_micros=100_010_000, reason="Waived", at=DEC_1,
            series_prefix="SAT", tz="Asia/Shanghai",
        )  # fmt: skip
    november_bill(world, uscc=USCCS[2], name="深圳示例物联有限公司")  # still new
    assert announce_overdue(world.ctx.db, world.system, LATE) == []


def test_housekeeping_announces_them_as_the_system(world):
    _, bill_id = november_bill(world)
    _send(world, bill_id)
    world.ctx.clock.set(LATE)
    run = run_once(world.ctx.db, world.ctx.clock, world.ctx.settings, world.ctx.kek)
    assert run.overdue == [bill_id]
    with world.ctx.db.read() as r:
        audit = r.scalars(select(AuditEntry).where(AuditEntry.action == "bill.overdue")).one()
    assert audit.actor == "system:overdue-bills"
    assert run_once(world.ctx.db, world.ctx.clock, world.ctx.settings, world.ctx.kek).overdue == []


def test_the_look_reads_the_watch_index_not_every_bill(tmp_path):
    """Housekeeping looks every minute; on the embedded database the look is a range of the
    partial index that holds the bills still watched, however many bills are settled."""
    db = Database.connect(f"sqlite:///{tmp_path / 'watch.db'}")
    migrate.upgrade(db.engine)
    stmt = select(CustomerBill.id).where(*watched_overdue(LATE))
    with db.engine.connect() as conn:
        compiled = stmt.compile(dialect=conn.dialect)
        params = tuple(compiled.params[k] for k in compiled.positiontup or ())
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params).fetchall()
    db.dispose()
    assert [row[-1] for row in plan] == [
        "SEARCH customer_bills USING INDEX ix_customer_bills_overdue_watch (due_at<?)"
    ]
