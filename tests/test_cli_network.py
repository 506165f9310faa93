"""``satiot devices export``: the devices as CSV from a shell, the silent ones on request."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from satiot.cli import app
from tests.network.test_device_export import devices
from tests.test_cli_oss import _one_error

runner = CliRunner()


def test_devices_export_to_stdout_or_a_file(ctx, world, db_url, monkeypatch, tmp_path: Path):
    monkeypatch.setenv("SATIOT_DATABASE_URL", db_url)
    now = datetime.now(UTC)
    ours, theirs = world.tenant(), world.tenant()
    recent, quiet = devices(ctx, ours.id, [now, now - timedelta(days=10)])
    (never,) = devices(ctx, theirs.id, [None])
    r = runner.invoke(app, ["devices", "export"])
    assert r.exit_code == 0, r.output
    lines = list(csv.DictReader(io.StringIO(r.stdout_bytes.decode("utf-8-sig"), newline="")))
    assert {x["dev_eui"] for x in lines} == {recent, quiet, never}
    path = tmp_path / "silent.csv"
    r = runner.invoke(
        app, ["devices", "export", "-o", str(path), "--silent-days", "7", "--tenant", ours.slug]
    )
    assert r.exit_code == 0 and f"wrote 1 devices to {path}" in r.stdout, r.output
    written = list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))
    assert [(x["dev_eui"], x["silent_days"]) for x in written] == [(quiet, "10")]
    _one_error(runner.invoke(app, ["devices", "export", "--status", "gone"]), "not a device")
    _one_error(runner.invoke(app, ["devices", "export", "--silent-days", "0"]), "1 to 3650")
    _one_error(runner.invoke(app, ["devices", "export", "--tenant", "nobody"]), "no tenant")
    _one_error(runner.invoke(app, ["devices", "export", "-o", str(tmp_path)]), "cannot write")
