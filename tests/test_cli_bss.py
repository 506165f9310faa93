"""``satiot orders import``: a file or option it cannot use is one line on stderr, not a
traceback, and nothing is stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from satiot.bss.models import Customer
from satiot.cli import app
from tests.bss.order_world import CSV_HEADER, shop, terminal
from tests.bss.test_orders import all_counts
from tests.test_cli_oss import _one_error

runner = CliRunner()


@pytest.fixture
def uscc(ctx, world, db_url, monkeypatch) -> str:  # type: ignore[no-untyped-def]
    """The credit code of a customer ready to order, with the CLI pointed at its database."""
    s = shop(ctx, world)
    monkeypatch.setenv("SATIOT_DATABASE_URL", db_url)
    monkeypatch.setenv("SATIOT_DATA_DIR", str(ctx.settings.data_dir))
    with ctx.db.read() as session:
        customer = session.get(Customer, s.customer_id)
        assert customer is not None
        return customer.uscc


def _import(path: Path, uscc: str, *more: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["orders", "import", str(path), "--customer", uscc, *more])


def test_a_directory_is_not_a_file(ctx, uscc, tmp_path: Path):
    before = all_counts(ctx)
    _one_error(_import(tmp_path, uscc), f"cannot read {tmp_path}", "directory")
    assert all_counts(ctx) == before


def test_a_billing_account_that_is_not_an_id(ctx, uscc, tmp_path: Path):
    path = tmp_path / "order.csv"
    path.write_text(f"{CSV_HEADER}\n{terminal().csv_row()}\n")
    before = all_counts(ctx)
    _one_error(_import(path, uscc, "--billing-account", "notauuid"), "--billing-account")
    assert all_counts(ctx) == before


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (bytes(range(256)) * 4, "the header line is unreadable: contains a NUL character"),
        (b"\xff\xfe" + f"{CSV_HEADER}\n".encode("utf-16-le"), "the file is UTF-16 text"),
        (b"PK\x03\x04" + bytes(range(256)) * 4, "the file is a zip archive"),
    ],
    ids=["binary", "utf-16", "xlsx"],
)
def test_a_file_that_is_not_csv_text_is_refused_in_one_line(
    ctx, uscc, tmp_path: Path, data: bytes, words: str
):
    """The report is one row for the whole file (line 1), not one per line, and no crash."""
    path = tmp_path / "order.bin"
    path.write_bytes(data)
    before = all_counts(ctx)
    r = _import(path, uscc)
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert "refused" in r.stdout and words in " ".join(r.stdout.split())
    assert "1 line cannot be accepted" in r.stdout
    assert all_counts(ctx) == before


def test_a_gb18030_file_imports_with_its_encoding_named(ctx, uscc, tmp_path: Path):
    path = tmp_path / "order.csv"
    rows = [f"{terminal().csv_row()},泵站 {i}" for i in range(2)]
    path.write_bytes("\n".join([CSV_HEADER + ",name", *rows, ""]).encode("gb18030"))
    before = all_counts(ctx)
    r = _import(path, uscc, "--no-fulfil")
    assert r.exit_code == 1 and "import it as gb18030" in " ".join(r.stdout.split())
    _one_error(_import(path, uscc, "--encoding", "latin-1"), "--encoding: unknown encoding")
    assert all_counts(ctx) == before
    r = _import(path, uscc, "--encoding", "GBK", "--no-fulfil")
    assert r.exit_code == 0, r.output
    assert "2 items acknowledged" in r.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--customer", "a\x00b"], "--customer must not contain NUL"),
        (["--external-id", "po\x00"], "--external-id must not contain NUL"),
    ],
)
def test_a_nul_in_an_option_is_refused(ctx, uscc, tmp_path: Path, args: list[str], words: str):
    """PostgreSQL refused it at the query, as a traceback."""
    path = tmp_path / "order.csv"
    path.write_text(f"{CSV_HEADER}\n{terminal().csv_row()}\n")
    before = all_counts(ctx)
    r = runner.invoke(app, ["orders", "import", str(path), "--customer", uscc, *args])
    _one_error(r, words)
    assert all_counts(ctx) == before


def test_subscriptions_export_to_stdout_or_a_file(ctx, world, db_url, monkeypatch, tmp_path: Path):
    import csv
    import io
    from datetime import UTC, datetime

    from tests.bss.billing_world import USCCS, offering, price
    from tests.bss.billing_world import shop as billing_shop

    monkeypatch.setenv("SATIOT_DATABASE_URL", db_url)
    owner, other = billing_shop(world), billing_shop(world, uscc=USCCS[1], name="Other Co")
    plan = offering(ctx, "Plan", [price("recurring", 1_000_000)])
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for _ in range(3):
        owner.device(plan, start)
    owner.device(plan, start, status="suspended")
    other.device(plan, start)
    r = runner.invoke(app, ["subscriptions", "export"])
    assert r.exit_code == 0, r.output
    lines = list(csv.DictReader(io.StringIO(r.stdout_bytes.decode("utf-8-sig"), newline="")))
    assert len(lines) == 5
    path = tmp_path / "subs.csv"
    r = runner.invoke(
        app,
        ["subscriptions", "export", "-o", str(path), "--customer", USCCS[0], "--status", "active"],
    )
    assert r.exit_code == 0 and f"wrote 3 subscriptions to {path}" in r.stdout, r.output
    written = list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))
    assert {(x["customer_credit_code"], x["status"]) for x in written} == {(USCCS[0], "active")}
    assert len(written) == 3
    _one_error(runner.invoke(app, ["subscriptions", "export", "--status", "gone"]), "not a subscr")
    _one_error(runner.invoke(app, ["subscriptions", "export", "--customer", "nobody"]), "no custom")
    _one_error(runner.invoke(app, ["subscriptions", "export", "-o", str(tmp_path)]), "cannot write")


def test_subscriptions_suspend_and_resume_from_a_file(ctx, world, db_url, monkeypatch, tmp_path):
    from sqlalchemy import select

    from satiot.bss.models import Subscription
    from tests.bss.test_activation import activate_one

    monkeypatch.setenv("SATIOT_DATABASE_URL", db_url)
    s = shop(ctx, world)
    subs = [activate_one(s, terminal()) for _ in range(2)]
    path = tmp_path / "winter.csv"
    path.write_text("device,action,reason\n" + "".join(f"{x.imei},suspend,winter\n" for x in subs))
    r = runner.invoke(app, ["subscriptions", "status", str(path)])
    assert r.exit_code == 0, r.output
    assert "devices: 2 suspended, 0 resumed, 0 already so" in r.stdout
    with ctx.db.read() as session:
        assert set(session.scalars(select(Subscription.status))) == {"suspended"}
    r = runner.invoke(app, ["subscriptions", "status", str(path)])
    assert r.exit_code == 0 and "0 suspended, 0 resumed, 2 already so" in r.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text(f"device,action,reason\n{subs[0].dev_eui},resume,spring\n0011223344556677,x,y\n")
    _one_error(runner.invoke(app, ["subscriptions", "status", str(bad)]),
               "line 3: action must be suspend or resume", "nothing was changed")  # fmt: skip
    with ctx.db.read() as session:
        assert set(session.scalars(select(Subscription.status))) == {"suspended"}
    _one_error(runner.invoke(app, ["subscriptions", "status", str(tmp_path / "none.csv")]),
               "cannot read")  # fmt: skip


def test_a_file_longer_than_one_transaction_takes_is_applied_in_parts(
    ctx, world, db_url, monkeypatch, tmp_path
):
    from sqlalchemy import select

    from satiot.bss import status_import
    from satiot.bss.models import Subscription
    from tests.bss.test_activation import activate_one

    monkeypatch.setenv("SATIOT_DATABASE_URL", db_url)
    monkeypatch.setattr(status_import, "MAX_ROWS", 2)  # parts of two lines
    s = shop(ctx, world)
    subs = [activate_one(s, terminal()) for _ in range(5)]
    path = tmp_path / "winter.csv"
    path.write_text("device,action,reason\n" + "".join(f"{x.imei},suspend,winter\n" for x in subs))
    r = runner.invoke(app, ["subscriptions", "status", str(path)])
    assert r.exit_code == 0, r.output
    assert "devices: 5 suspended, 0 resumed, 0 already so" in r.stdout
    with ctx.db.read() as session:
        assert set(session.scalars(select(Subscription.status))) == {"suspended"}
    # a bad last line refuses the whole file before any part is applied
    bad = tmp_path / "spring.csv"
    bad.write_text(
        "device,action,reason\n"
        + "".join(f"{x.imei},resume,spring\n" for x in subs)
        + "0011223344556677,resume,spring\n"
    )
    _one_error(runner.invoke(app, ["subscriptions", "status", str(bad)]),
               "line 7: no live subscription", "nothing was changed")  # fmt: skip
    with ctx.db.read() as session:
        assert set(session.scalars(select(Subscription.status))) == {"suspended"}
