"""``satiot twin run | plot | import`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from satiot.cli import app
from satiot.core.db import Database
from satiot.core.models import AuditEntry
from satiot.network.models import GroundStation, Satellite
from tests.factories import World
from tests.network.test_scenario import tiny, write

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"
RECORD_KEYS = {
    "ground_station",
    "satellite",
    "received_at",
    "frequency_hz",
    "rssi_dbm",
    "snr_db",
    "doppler_hz",
    "phy_payload",
}


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    return write(tmp_path, tiny())


def _twin(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["twin", *args])


def _one_error(result, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code != 0, result.output
    assert result.stderr.startswith("error:"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr


def test_run_prints_the_report(scenario: Path) -> None:
    result = _twin("run", "--scenario", str(scenario), "--hours", "0.5")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "twin run: tiny" in text
    assert "12 / 40" in text  # satellites / terminals
    for row in ("transmitted", "collided", "delivered to the ground", "latency", "Beijing"):
        assert row in text


def test_run_json_is_the_summary(scenario: Path) -> None:
    result = _twin("run", "--scenario", str(scenario), "--hours", "0.5", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["scenario"] == "tiny" and summary["terminals"] == 40
    assert summary["satellites"] == 12 and summary["hours"] == 0.5
    for key in (
        "generated",
        "transmitted",
        "not_heard",
        "collided",
        "delivered",
        "dropped_frames",
        "lost_to_drops",
        "undelivered_on_satellites_at_end",
        "pending_at_end",
        "latency_p50_s",
        "latency_p95_s",
    ):
        assert key in summary
    assert summary["delivered"] > 0
    assert summary["transmitted"] == (
        summary["not_heard"]
        + summary["collided"]
        + summary["delivered"]
        + summary["undelivered_on_satellites_at_end"]
        + summary["lost_to_drops"]
    )


def test_run_terminals_resizes_the_fleet(scenario: Path) -> None:
    result = _twin(
        "run", "--scenario", str(scenario), "--hours", "0.2", "--terminals", "5", "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["terminals"] == 5


def test_run_out_writes_ground_station_records(scenario: Path, tmp_path: Path) -> None:
    rx = tmp_path / "rx.jsonl"
    plot = tmp_path / "latency.png"
    result = _twin(
        "run", "--scenario", str(scenario), "--hours", "0.5", "--json",
        "--out", str(rx), "--latency-plot", str(plot),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    lines = rx.read_text().splitlines()
    assert len(lines) == summary["delivered"] + summary["duplicate_receptions"] > 0
    for line in lines:
        record = json.loads(line)
        assert set(record) == RECORD_KEYS
        assert record["ground_station"] in {"Beijing", "Sanya"}
        assert record["received_at"].endswith("Z")
    assert plot.read_bytes().startswith(PNG)


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_plots_write_png_and_svg(scenario: Path, tmp_path: Path, suffix: str) -> None:
    for kind, extra in (
        ("tracks", ["--minutes", "30"]),
        ("passes", ["--site", "Beijing", "--hours", "3"]),
        ("passes", ["--site", "31.2,121.5", "--hours", "3"]),
        ("latency", ["--hours", "0.5"]),
    ):
        image = tmp_path / f"{kind}.{suffix}"
        image.unlink(missing_ok=True)
        result = _twin("plot", kind, "--scenario", str(scenario), "--out", str(image), *extra)
        assert result.exit_code == 0, result.output
        assert f"wrote {image}" in result.stdout.replace("\n", "")
        data = image.read_bytes()
        if suffix == "png":
            assert data.startswith(PNG) and len(data) > 5_000
        else:
            assert b"<svg" in data[:1000]


BAD_RUNS = {
    "missing scenario": (["--scenario", "{tmp}/nowhere.toml"], "cannot read"),
    "zero hours": (["--hours", "0"], "--hours must be positive"),
    "negative hours": (["--hours", "-2"], "--hours must be positive"),
    "zero terminals": (["--terminals", "0"], "--terminals must be positive"),
    "jpg latency plot": (["--latency-plot", "{tmp}/lat.jpg"], "write .png or .svg"),
}


@pytest.mark.parametrize("case", list(BAD_RUNS), ids=list(BAD_RUNS))
def test_bad_run_inputs_fail_with_one_line_and_write_nothing(
    scenario: Path, tmp_path: Path, case: str
) -> None:
    over, message = BAD_RUNS[case]
    args = {"--scenario": str(scenario), "--hours": "0.2", "--out": str(tmp_path / "rx.jsonl")}
    for flag, value in zip(over[::2], over[1::2], strict=True):
        args[flag] = value.format(tmp=tmp_path)
    before = set(tmp_path.iterdir())
    result = _twin("run", *[x for kv in args.items() for x in kv])
    _one_error(result, message)
    assert set(tmp_path.iterdir()) == before


def test_hours_that_are_not_a_number_are_refused(scenario: Path, tmp_path: Path) -> None:
    rx = tmp_path / "rx.jsonl"
    result = _twin("run", "--scenario", str(scenario), "--hours", "six", "--out", str(rx))
    assert result.exit_code == 2 and "--hours" in result.stderr
    assert not rx.exists()


def test_an_invalid_scenario_names_the_field(tmp_path: Path) -> None:
    bad = write(tmp_path, tiny(fleets=[dict(tiny()["fleets"][0], region="atlantis")]))
    result = _twin("run", "--scenario", str(bad), "--hours", "0.2")
    _one_error(result, "fleets.0.region", "atlantis")


BAD_PLOTS = {
    "jpg tracks": (["tracks", "--out", "{tmp}/t.jpg"], "write .png or .svg"),
    "jpg passes": (["passes", "--site", "Beijing", "--out", "{tmp}/p.jpg"], "write .png or .svg"),
    "unknown site": (["passes", "--site", "Lhasa", "--out", "{tmp}/p.png"], "--site"),
    "site off the globe": (["passes", "--site", "95,10", "--out", "{tmp}/p.png"], "--site"),
    "zero plot hours": (
        ["passes", "--site", "Beijing", "--hours", "0", "--out", "{tmp}/p.png"],
        "--hours must be positive",
    ),
    "latency hours": (["latency", "--hours", "-1", "--out", "{tmp}/l.png"], "--hours"),
    "bad extent": (["tracks", "--extent", "1,2,3", "--out", "{tmp}/t.png"], "--extent"),
}


@pytest.mark.parametrize("case", list(BAD_PLOTS), ids=list(BAD_PLOTS))
def test_bad_plot_inputs_fail_with_one_line_and_write_nothing(
    scenario: Path, tmp_path: Path, case: str
) -> None:
    argv, message = BAD_PLOTS[case]
    before = set(tmp_path.iterdir())
    kind, *rest = (a.format(tmp=tmp_path) for a in argv)
    result = _twin("plot", kind, "--scenario", str(scenario), *rest)
    _one_error(result, message)
    assert set(tmp_path.iterdir()) == before


def test_plot_with_missing_scenario(tmp_path: Path) -> None:
    out = tmp_path / "t.png"
    result = _twin("plot", "tracks", "--scenario", str(tmp_path / "none.toml"), "--out", str(out))
    _one_error(result, "cannot read")
    assert not out.exists()


# -- satiot twin import ------------------------------------------------------------------------


def _rows(db: Database) -> tuple[int, int, int]:
    with db.read() as s:
        return (
            int(s.scalar(select(func.count()).select_from(Satellite)) or 0),
            int(s.scalar(select(func.count()).select_from(GroundStation)) or 0),
            int(s.scalar(select(func.count()).select_from(AuditEntry)) or 0),
        )


def test_import_writes_the_inventory_once(
    scenario: Path, db: Database, world: World, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SATIOT_DATABASE_URL", db_url)
    _, _, audit_before = _rows(db)
    result = _twin("import", "--scenario", str(scenario))
    assert result.exit_code == 0, result.output
    assert "satellites: 12 created, 0 updated, 0 unchanged" in result.stdout
    assert "ground stations: 2 created, 0 updated, 0 unchanged" in result.stdout
    sats, stations, audit_after = _rows(db)
    assert (sats, stations, audit_after - audit_before) == (12, 2, 14)

    again = _twin("import", "--scenario", str(scenario))
    assert again.exit_code == 0, again.output
    assert "satellites: 0 created, 0 updated, 12 unchanged" in again.stdout
    assert "ground stations: 0 created, 0 updated, 2 unchanged" in again.stdout
    assert _rows(db) == (12, 2, audit_after)

    moved = write(scenario.parent, tiny(payload={"channels": 16}), "moved.toml")
    third = _twin("import", "--scenario", str(moved))
    assert third.exit_code == 0, third.output
    assert "satellites: 0 created, 12 updated, 0 unchanged" in third.stdout
    assert _rows(db) == (12, 2, audit_after + 12)


def test_import_without_an_operator_fails_cleanly(
    scenario: Path, db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SATIOT_DATABASE_URL", db_url)
    result = _twin("import", "--scenario", str(scenario))
    _one_error(result, "no operator")
    assert _rows(db)[:2] == (0, 0)


def test_import_of_a_bad_scenario_touches_nothing(
    tmp_path: Path, db: Database, world: World, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SATIOT_DATABASE_URL", db_url)
    before = _rows(db)
    result = _twin("import", "--scenario", str(tmp_path / "missing.toml"))
    _one_error(result, "cannot read")
    assert _rows(db) == before
