"""``satiot bills …``: a month's bill run, an account's dry run and a bill's usage statement
from a shell."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from satiot.bss.billing import dry_run, run_bills
from satiot.bss.invoices import send_bill, validate_bill
from satiot.bss.models import CustomerBill
from satiot.bss.money import format_cny
from satiot.bss.payments import record_payment
from satiot.cli import app
from satiot.core.days import business_day
from tests.bss.test_billing import DEC_1, SETTINGS, setup  # noqa: F401 - the fixture
from tests.test_cli_oss import _one_error

runner = CliRunner()


@pytest.fixture
def env(db_url, monkeypatch):
    monkeypatch.setenv("SATIOT_DATABASE_URL", db_url)
    monkeypatch.setenv("SATIOT_TAX_RATE_BP", "600")


def test_dry_run_shows_the_bill_so_far_and_writes_nothing(setup, env):  # noqa: F811
    ctx, s, _off, _subs = setup
    r = runner.invoke(app, ["bills", "dry-run", str(s.account_id), "2026-11"])
    assert r.exit_code == 0, r.output
    with ctx.db.read() as session:
        draft = dry_run(
            session,
            s.account_id,
            "2026-11",
            at=ctx.clock.now(),
            tax_rate_bp=600,
            tz="Asia/Shanghai",
        )
        assert session.scalar(select(CustomerBill.id)) is None
    assert draft is not None and draft.total_micros > 0
    assert f"total {format_cny(draft.total_micros)}" in r.stdout
    assert "recurring" in r.stdout and "usage" in r.stdout


def test_a_run_bills_a_finished_month_once(setup, env):  # noqa: F811
    ctx, _s, _off, _subs = setup
    first = runner.invoke(app, ["bills", "run", "2026-10"])
    assert first.exit_code == 0, first.output
    with ctx.db.read() as session:
        bills = session.scalars(select(CustomerBill)).all()
    assert len(bills) == 1 and "2026-10: 1 bills for 1 accounts" in first.stdout
    again = runner.invoke(app, ["bills", "run", "2026-10"])
    assert again.exit_code == 0 and "0 bills" in again.stdout


def test_bad_periods_and_accounts_are_one_line_errors(setup, env):  # noqa: F811
    _one_error(runner.invoke(app, ["bills", "run", "26-10"]), "YYYY-MM")
    _one_error(runner.invoke(app, ["bills", "run", "2099-01"]), "has not ended")
    # A month before anything was activated, a dry run of one not begun: errors, no answer.
    _one_error(runner.invoke(app, ["bills", "run", "1970-01"]), "nothing to bill for 1970-01")
    _one_error(
        runner.invoke(app, ["bills", "dry-run", str(setup[1].account_id), "9998-12"]),
        "period 9998-12 has not begun",
    )
    _one_error(runner.invoke(app, ["bills", "dry-run", "nope", "2026-11"]), "not a billing")


def test_a_bills_statement_by_number_or_id_to_stdout_or_a_file(setup, env, world, tmp_path):  # noqa: F811
    ctx, _s, _off, (full, half, gone, _ended) = setup
    with ctx.db.write() as w:
        run_bills(w, world.system, "2026-11", at=DEC_1, settings=SETTINGS)
        bill_id, number = w.execute(select(CustomerBill.id, CustomerBill.number)).one()
    r = runner.invoke(app, ["bills", "statement", number.lower()])
    assert r.exit_code == 0, r.output
    lines = list(csv.DictReader(io.StringIO(r.stdout_bytes.decode("utf-8-sig"), newline="")))
    columns = ("service_days", "recurring_charge_yuan", "one_time_charge_yuan")
    assert {x["dev_eui"]: (*(x[c] for c in columns), x["usage_charge_yuan"]) for x in lines} == {
        full.dev_eui: ("30", "10.000000", "0.000000", "0.060000"),
        half.dev_eui: ("15", "5.000000", "5.000000", "0.020000"),  # activated on the 16th
        gone.dev_eui: ("10", "3.333333", "0.000000", "0.000000"),  # ended on the 10th
    }
    assert {x["total_charge_yuan"] for x in lines} == {"10.060000", "10.020000", "3.333333"}
    path = tmp_path / "statement.csv"
    r = runner.invoke(app, ["bills", "statement", str(bill_id), "-o", str(path)])
    assert r.exit_code == 0 and f"wrote 3 devices of bill {number} to {path}" in r.stdout
    written = path.read_bytes().decode("utf-8-sig").splitlines()
    assert written[1:] == [",".join(x.values()) for x in lines]
    _one_error(runner.invoke(app, ["bills", "statement", "SAT2026-99999999"]), "no bill")
    _one_error(
        runner.invoke(app, ["bills", "statement", number, "-o", str(tmp_path)]), "cannot write"
    )


def test_a_bill_is_adjusted_by_number_and_bad_input_changes_nothing(setup, env, world):  # noqa: F811
    ctx, _s, _off, _subs = setup
    with ctx.db.write() as w:
        run_bills(w, world.system, "2026-11", at=DEC_1, settings=SETTINGS)
        bill = w.scalar(select(CustomerBill))
        bill_id, number, subtotal = bill.id, bill.number, bill.subtotal_micros
    for args, message in (
        (["--amount", "0", "--reason", "x"], "non-zero"),
        (["--amount", "-1.001", "--reason", "x"], "two decimals"),
        (["--amount", "-99999999", "--reason", "x"], "more than the bill's subtotal"),
        (["--amount", "-1.00", "--reason", " "], "say why"),
    ):
        _one_error(runner.invoke(app, ["bills", "adjust", number, *args]), message)
    _one_error(
        runner.invoke(app, ["bills", "adjust", "SAT1999-1", "--amount", "-1", "--reason", "x"]),
        "no bill 'SAT1999-1'",
    )
    r = runner.invoke(
        app, ["bills", "adjust", number.lower(), "--amount", "-1.00", "--reason", "Goodwill"]
    )
    assert r.exit_code == 0, r.output
    with ctx.db.read() as session:
        after = session.get(CustomerBill, bill_id)
        assert (after.adjustment_micros, after.subtotal_micros) == (
            -1_000_000,
            subtotal - 1_000_000,
        )
    assert f"{number}: adjusted by -¥1.00" in r.stdout
    assert f"total {format_cny(after.total_micros)}" in r.stdout


def test_a_sent_bill_is_credited_by_number_and_bad_input_changes_nothing(setup, env, world):  # noqa: F811
    ctx, _s, _off, _subs = setup
    with ctx.db.write() as w:
        run_bills(w, world.system, "2026-11", at=DEC_1, settings=SETTINGS)
        bill = w.scalar(select(CustomerBill))
        bill_id, number, total = bill.id, bill.number, bill.total_micros
    _one_error(
        runner.invoke(app, ["bills", "credit", number, "--amount", "1.00", "--reason", "x"]),
        "adjust a bill that is not yet validated",
    )
    with ctx.db.write() as w:
        validate_bill(w, world.system, bill_id, at=DEC_1)
        send_bill(w, world.system, bill_id, at=DEC_1)
    for args, message in (
        (["--amount", "0", "--reason", "x"], "positive"),
        (["--amount", "-1.00", "--reason", "x"], "positive"),
        (["--amount", "1.001", "--reason", "x"], "two decimals"),
        (["--amount", "99999999", "--reason", "x"], "not yet credited"),
        (["--amount", "1.00", "--reason", " "], "say why"),
    ):
        _one_error(runner.invoke(app, ["bills", "credit", number, *args]), message)
    with ctx.db.read() as session:
        assert session.get(CustomerBill, bill_id).credited_micros == 0
    r = runner.invoke(app, ["bills", "credit", number, "--amount", "1.00", "--reason", "Goodwill"])
    assert r.exit_code == 0, r.output
    with ctx.db.read() as session:
        after = session.get(CustomerBill, bill_id)
    assert after.credited_micros == 1_060_000 and after.due_micros == total - 1_060_000
    assert f"SATCN2026-00000001 credits {number}: ¥1.00 + VAT ¥0.06 = ¥1.06" in r.stdout
    assert f"still owed {format_cny(total - 1_060_000)}" in r.stdout
    _one_error(
        runner.invoke(app, ["bills", "refund", number, "--amount", "1.00", "--reference", "R1"]),
        "owes the customer nothing",
    )
    with ctx.db.write() as w:  # paid in full, then credited ¥2.12 more: owed back
        record_payment(
            w, world.system, bill_id, amount_micros=total - 1_060_000, method="bank",
            reference="T1", at=DEC_1,
        )  # fmt: skip
    r = runner.invoke(app, ["bills", "credit", number, "--amount", "2.00", "--reason", "More"])
    assert r.exit_code == 0 and "to refund ¥2.12" in r.stdout, r.output
    owing = runner.invoke(app, ["bills", "export", "--to-refund"])
    assert owing.exit_code == 0 and number in owing.stdout, owing.output
    _one_error(
        runner.invoke(app, ["bills", "refund", number, "--amount", "2.13", "--reference", "R1"]),
        "more than the ¥2.12 the bill owes the customer",
    )
    for _ in range(2):  # the second is the first again
        r = runner.invoke(app, ["bills", "refund", number, "--amount", "2.12", "--reference", "R1"])
        assert r.exit_code == 0, r.output
    assert "already refunded under this reference: ¥2.12" in r.stdout
    with ctx.db.read() as session:
        assert session.get(CustomerBill, bill_id).due_micros == 0
    assert number not in runner.invoke(app, ["bills", "export", "--to-refund"]).stdout
    this_month = business_day(datetime.now(UTC)).strftime("%Y-%m")  # notes issued now
    register = runner.invoke(app, ["bills", "credit-notes", "--month", this_month])
    assert register.exit_code == 0, register.output
    lines = register.stdout_bytes.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("number,issued_on,bill_number,") and len(lines) == 3
    _one_error(runner.invoke(app, ["bills", "credit-notes", "--month", "2026-13"]), "YYYY-MM")
    refunds = runner.invoke(app, ["bills", "received", "--kind", "refund"])
    assert refunds.exit_code == 0, refunds.output
    lines = refunds.stdout_bytes.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("received_at,kind,amount_yuan,method,reference,bill_number,")
    assert [line.split(",")[1:6] for line in lines[1:]] == [
        ["refund", "-2.12", "bank-transfer", "R1", number]
    ]
    _one_error(runner.invoke(app, ["bills", "received", "--month", "2026-13"]), "YYYY-MM")
    _one_error(runner.invoke(app, ["bills", "received", "--kind", "cash"]), "kind must be one of")
    markup = ["--amount", "0.10", "--reason", "[/] [red]x"]
    r = runner.invoke(app, ["bills", "credit", number, *markup])
    assert r.exit_code == 0, r.output
    shown = runner.invoke(app, ["bills", "show", number.lower()], env={"COLUMNS": "160"})
    assert shown.exit_code == 0, shown.output
    for expected in (
        f"{number}  settled  2026-11",
        "Payments and refunds",
        "-¥2.12",  # the refund
        "SATCN2026-00000003",
        "[/] [red]x",  # a reason is text, not markup
        "credited ¥3.29; to refund ¥0.11",
    ):
        assert expected in shown.stdout, (expected, shown.stdout)
    _one_error(runner.invoke(app, ["bills", "show", "SAT1999-1"]), "no bill 'SAT1999-1'")


def test_the_export_keeps_the_bills_overdue_now(setup, env, world):  # noqa: F811
    ctx, _s, _off, _subs = setup
    with ctx.db.write() as w:
        run_bills(w, world.system, "2026-11", at=DEC_1, settings=SETTINGS)
        bill = w.scalar(select(CustomerBill))
        validate_bill(w, world.system, bill.id, at=DEC_1)
        send_bill(w, world.system, bill.id, at=DEC_1)
        number = bill.number
    assert number not in runner.invoke(app, ["bills", "export", "--overdue"]).stdout
    with ctx.db.write() as w:  # due a month ago by this machine's clock
        w.get(CustomerBill, bill.id).due_at = datetime.now(UTC) - timedelta(days=30)
    late = runner.invoke(app, ["bills", "export", "--overdue"])
    assert late.exit_code == 0 and number in late.stdout, late.output


def test_bills_are_exported_for_the_ledger(setup, env, world, tmp_path):  # noqa: F811
    ctx, _s, _off, _subs = setup
    with ctx.db.write() as w:
        run_bills(w, world.system, "2026-11", at=DEC_1, settings=SETTINGS)
        number, total = w.execute(select(CustomerBill.number, CustomerBill.total_micros)).one()
    r = runner.invoke(app, ["bills", "export", "--period", "2026-11"])
    assert r.exit_code == 0, r.output
    (line,) = csv.DictReader(io.StringIO(r.stdout_bytes.decode("utf-8-sig"), newline=""))
    assert (line["number"], line["total_yuan"]) == (number, f"{total / 1_000_000:.2f}")
    target = tmp_path / "bills.csv"
    r = runner.invoke(app, ["bills", "export", "--state", "new", "-o", str(target)])
    assert r.exit_code == 0 and f"wrote 1 bills to {target}" in r.stdout.replace("\n", "")
    assert target.read_bytes().startswith(b"\xef\xbb\xbfnumber,period,state,")
    _one_error(runner.invoke(app, ["bills", "export", "--state", "lost"]), "not a bill state")
    _one_error(runner.invoke(app, ["bills", "export", "--period", "2026-13"]), "YYYY-MM")


def test_an_accounts_statement_to_stdout_or_a_file(setup, env, world, tmp_path):  # noqa: F811
    ctx, s, _off, _subs = setup
    assert runner.invoke(app, ["bills", "run", "2026-10"]).exit_code == 0
    with ctx.db.write() as w:
        bill = w.scalars(select(CustomerBill)).one()
        validate_bill(w, world.system, bill.id, at=DEC_1)
        send_bill(w, world.system, bill.id, at=DEC_1)
        total = bill.total_micros
    r = runner.invoke(app, ["bills", "account-statement", str(s.account_id), "--to", "2026-12-31"])
    assert r.exit_code == 0, r.output
    lines = list(csv.reader(io.StringIO(r.stdout.lstrip("\ufeff"))))
    assert [ln[1] for ln in lines[1:]] == ["opening", "invoice", "closing"]
    assert lines[-1][-1] == f"{total / 1e6:.2f}"
    out_file = tmp_path / "statement.csv"
    r = runner.invoke(
        app,
        ["bills", "account-statement", str(s.account_id), "--from", "2027-01-01", "--to",
         "2027-01-31", "-o", str(out_file)],
    )  # fmt: skip
    assert r.exit_code == 0 and "0 entries" in r.stdout, r.output
    assert out_file.read_bytes().decode("utf-8-sig").splitlines()[1].endswith(f"{total / 1e6:.2f}")
    _one_error(runner.invoke(app, ["bills", "account-statement", "nope"]), "not a billing account")
    _one_error(
        runner.invoke(app, ["bills", "account-statement", str(s.account_id), "--from", "1/1/2027"]),
        "--from",
    )
    _one_error(
        runner.invoke(
            app,
            [
                "bills",
                "account-statement",
                str(s.account_id),
                "--from",
                "2027-02-01",
                "--to",
                "2027-01-01",
            ],
        ),
        "starts",
    )


def test_a_prepaid_balance_history_newest_first(world, env):
    from satiot.bss.payments import top_up
    from tests.bss.billing_world import shop

    ctx = world.ctx
    pre = shop(world, payment_mode="prepaid")
    for reference, amount in (("ALI-1", 10_000_000), ("ALI-2", 2_500_000)):
        with ctx.db.write() as w:
            top_up(w, world.system, pre.account_id, amount_micros=amount, method="alipay",
                   reference=reference, at=DEC_1)  # fmt: skip
    r = runner.invoke(app, ["bills", "balance", str(pre.account_id), "--limit", "1"])
    assert r.exit_code == 0, r.output
    assert "balance ¥12.50" in r.stdout and "ALI-2" in r.stdout and "ALI-1" not in r.stdout
    assert "¥2.50" in r.stdout and "¥12.50" in r.stdout
    post = shop(world, uscc="91310115MA1K3BTP2B")
    r = runner.invoke(app, ["bills", "balance", str(post.account_id)])
    assert r.exit_code == 0 and "no change of the balance yet" in r.stdout
    _one_error(runner.invoke(app, ["bills", "balance", "nope"]), "not a billing account id")
    _one_error(
        runner.invoke(app, ["bills", "balance", "0190a1b2-0000-7000-8000-000000000000"]),
        "not found",
    )
