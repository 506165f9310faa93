"""``satiot usage export``: a month's usage records of an account, a device or a customer as
CSV."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from satiot.cli import app
from tests.bss.billing_world import offering, price, rate_all, shop, uplink
from tests.test_cli_oss import _one_error

runner = CliRunner()
NOV_5 = datetime(2026, 11, 5, 4, tzinfo=UTC)


@pytest.fixture
def env(db_url, monkeypatch):
    monkeypatch.setenv("SATIOT_DATABASE_URL", db_url)


def test_a_months_records_to_standard_output_or_a_file(world, env, tmp_path):
    ctx = world.ctx
    owner = shop(world)
    plan = offering(ctx, "Metered", [price("recurring", 1_000_000), price("per-message", 20_000)])
    sub, other = owner.device(plan, NOV_5 - timedelta(days=9)), owner.device(plan, None)
    for minute in range(3):
        uplink(ctx, sub, 40, NOV_5 + timedelta(minutes=minute))
    uplink(ctx, other, 40, NOV_5)  # not yet active: not charged
    rate_all(ctx)

    r = runner.invoke(app, ["usage", "export", "--account", str(owner.account_id),
                            "--period", "2026-11"])  # fmt: skip
    assert r.exit_code == 0, r.output
    lines = r.stdout.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("used_at,dev_eui,direction,")
    assert [line.split(",")[6] for line in lines[1:]] == ["rated", "rated", "rated", "rejected"]

    path = tmp_path / "usage.csv"
    args = ["--subscription", sub.dev_eui.lower(), "--period", "2026-11", "--state", "rated"]
    r = runner.invoke(app, ["usage", "export", *args, "-o", str(path)])
    assert r.exit_code == 0, r.output
    assert "wrote 3 usage records of 2026-11" in r.stdout
    rows = path.read_bytes().decode("utf-8-sig").splitlines()[1:]
    assert [row.split(",")[:2] for row in rows] == [
        [f"2026-11-05 12:0{m}:00", sub.dev_eui] for m in range(3)
    ]

    r = runner.invoke(app, ["usage", "export", "--customer", str(owner.customer_id),
                            "--period", "2026-11"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[1:] == lines[1:]  # its one account: the same lines

    _one_error(
        runner.invoke(app, ["usage", "export"]),
        "one of --account, --subscription or --customer",
    )
    both = ["--account", str(owner.account_id), "--customer", str(owner.customer_id)]
    _one_error(
        runner.invoke(app, ["usage", "export", *both]),
        "one of --account, --subscription or --customer",
    )
    _one_error(runner.invoke(app, ["usage", "export", "--customer", "acme"]), "not a customer id")
    _one_error(
        runner.invoke(app, ["usage", "export", "--account", "x"]), "not a billing account id"
    )
    _one_error(
        runner.invoke(app, ["usage", "export", "--subscription", "0011223344556677"]),
        "no subscription",
    )
    _one_error(
        runner.invoke(
            app, ["usage", "export", "--account", str(owner.account_id), "--period", "2026-13"]
        ),
        "period must look like YYYY-MM",
    )
