"""``satiot bills validate|send|hold|payments``: a month's bills released, one bill held, a
bank statement's payments recorded, from a shell."""

from __future__ import annotations

from sqlalchemy import select
from typer.testing import CliRunner

from satiot.bss.models import CustomerBill, Payment
from satiot.cli import app
from tests.bss.test_billing import setup  # noqa: F401 - the fixture
from tests.test_cli_bills import env  # noqa: F401 - the fixture
from tests.test_cli_oss import _one_error

runner = CliRunner()


def test_a_month_is_validated_then_sent_and_bad_targets_are_one_line_errors(setup, env, world):  # noqa: F811
    ctx, _s, _off, _subs = setup
    assert runner.invoke(app, ["bills", "run", "2026-10"]).exit_code == 0
    _one_error(runner.invoke(app, ["bills", "send", "2026-10"]), "nothing to send")
    _one_error(runner.invoke(app, ["bills", "validate", "2026-09"]), "no bill run for 2026-09")
    _one_error(runner.invoke(app, ["bills", "validate", "2026-13"]), "YYYY-MM")
    _one_error(runner.invoke(app, ["bills", "validate", "SAT2026-99999999"]), "no bill")
    r = runner.invoke(app, ["bills", "validate", "2026-10"])
    assert r.exit_code == 0, r.output
    assert "2026-10: validated 1; its bills now: 1 validated" in r.stdout
    with ctx.db.read() as session:
        bill = session.scalars(select(CustomerBill)).one()
        run_id = bill.bill_run_id
    r = runner.invoke(app, ["bills", "send", str(run_id)])  # by the run's id
    assert r.exit_code == 0, r.output
    assert f"{run_id}: sent 1; its bills now: 1 sent" in r.stdout
    _one_error(runner.invoke(app, ["bills", "send", bill.number]), "cannot go from 'sent'")
    with ctx.db.read() as session:
        assert session.get(CustomerBill, bill.id).state == "sent"


def test_a_held_bill_stays_out_of_the_months_release(setup, env):  # noqa: F811
    ctx, _s, _off, _subs = setup
    assert runner.invoke(app, ["bills", "run", "2026-10"]).exit_code == 0
    with ctx.db.read() as session:
        bill = session.scalars(select(CustomerBill)).one()
    _one_error(
        runner.invoke(app, ["bills", "hold", bill.number, "--release"]), "nothing to release"
    )
    _one_error(runner.invoke(app, ["bills", "hold", bill.number, "--reason", " "]), "--reason")
    r = runner.invoke(app, ["bills", "hold", bill.number, "--reason", "device returned"])
    assert r.exit_code == 0 and f"{bill.number}: now onHold" in r.stdout, r.output
    _one_error(runner.invoke(app, ["bills", "validate", "2026-10"]), "nothing to validate")
    r = runner.invoke(app, ["bills", "hold", bill.number, "--release"])
    assert r.exit_code == 0 and f"{bill.number}: now new" in r.stdout, r.output
    r = runner.invoke(app, ["bills", "validate", "2026-10"])
    assert r.exit_code == 0 and "validated 1" in r.stdout, r.output


def test_one_bill_is_validated_by_its_number(setup, env):  # noqa: F811
    ctx, _s, _off, _subs = setup
    assert runner.invoke(app, ["bills", "run", "2026-10"]).exit_code == 0
    with ctx.db.read() as session:
        bill = session.scalars(select(CustomerBill)).one()
    r = runner.invoke(app, ["bills", "validate", bill.number.lower()])
    assert r.exit_code == 0 and f"{bill.number} validated: now validated" in r.stdout, r.output


def test_a_statement_is_recorded_all_or_nothing(setup, env, tmp_path):  # noqa: F811
    ctx, _s, _off, _subs = setup
    assert runner.invoke(app, ["bills", "run", "2026-10"]).exit_code == 0
    assert runner.invoke(app, ["bills", "validate", "2026-10"]).exit_code == 0
    assert runner.invoke(app, ["bills", "send", "2026-10"]).exit_code == 0
    with ctx.db.read() as session:
        bill = session.scalars(select(CustomerBill)).one()
    template = tmp_path / "empty.csv"
    r = runner.invoke(app, ["bills", "payments-template", "-o", str(template)])
    assert r.exit_code == 0 and template.read_bytes().startswith(b"\xef\xbb\xbfbill,amount")
    bad = tmp_path / "bad.csv"
    bad.write_text(f"bill,amount,reference\n{bill.number},1.00,A\nNOPE,1.00,B\n{bill.number},x,C\n")
    r = runner.invoke(app, ["bills", "payments", str(bad)])
    assert r.exit_code == 1
    assert [ln.split(": ")[2] for ln in r.stderr.splitlines()] == [
        "line 3",
        "line 4",
        "2 lines cannot be recorded; nothing was recorded",
    ]
    _one_error(runner.invoke(app, ["bills", "payments", str(tmp_path / "none.csv")]), "cannot read")
    _one_error(runner.invoke(app, ["bills", "payments", str(bad), "--encoding", "big5"]), "big5")
    good = tmp_path / "good.csv"
    good.write_text(f"bill,amount,reference\n{bill.number},1.00,A\n")
    for recorded, before in ((1, 0), (0, 1)):
        r = runner.invoke(app, ["bills", "payments", str(good)])
        assert r.exit_code == 0, r.output
        assert (
            f"payments: {recorded} recorded" in r.stdout and f"{before} recorded before" in r.stdout
        )
    with ctx.db.read() as session:
        assert session.scalar(select(Payment.amount_micros)) == 1_000_000
