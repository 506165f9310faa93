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
    "data",
    [bytes(range(256)) * 4, b"\xff\xfe" + f"{CSV_HEADER}\n".encode("utf-16-le")],
    ids=["binary", "utf-16"],
)
def test_a_file_that_is_not_utf8_is_refused_by_line(ctx, uscc, tmp_path: Path, data: bytes):
    """Row errors are the import's report (a table of line, column, reason), not a crash."""
    path = tmp_path / "order.bin"
    path.write_bytes(data)
    before = all_counts(ctx)
    r = _import(path, uscc)
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert "refused" in r.stdout and "not valid UTF-8" in r.stdout
    assert all_counts(ctx) == before


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
