"""``satiot twin contacts``: a contact plan CSV from a TLE file and a sites CSV."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from satiot.cli import app
from satiot.network.orbits import walker

runner = CliRunner()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    tles = walker("delta", 6, 3, 1, 800.0, 53.0, datetime(2026, 3, 1, tzinfo=UTC))
    tle = tmp_path / "c.tle"
    tle.write_text("".join(f"{t.name}\n{t.line1}\n{t.line2}\n" for t in tles))
    sites = tmp_path / "sites.csv"
    sites.write_text("name,lat,lon,alt_m\nBeijing,39.9,116.4,50\nSanya,18.25,109.5,10\n")
    return {"tle": tle, "sites": sites, "out": tmp_path / "plan.csv"}


def _run(files: dict[str, Path], **over: str):
    args = {
        "--tle": str(files["tle"]),
        "--sites": str(files["sites"]),
        "--start": "2026-03-01T00:00:00Z",
        "--hours": "12",
        "--min-elevation": "10",
        "--out": str(files["out"]),
    }
    args.update(over)
    return runner.invoke(app, ["twin", "contacts", *[x for kv in args.items() for x in kv]])


def test_writes_a_contact_plan(files) -> None:
    result = _run(files)
    assert result.exit_code == 0, result.output
    assert "passes, 2 sites, 6 satellites" in result.stdout
    rows = list(csv.DictReader(files["out"].open()))
    assert list(rows[0]) == ["site", "satellite", "rise", "culmination", "set", "max_elevation_deg"]
    assert len(rows) > 10 and {r["site"] for r in rows} == {"Beijing", "Sanya"}
    for r in rows:
        assert r["rise"].endswith("Z") and len(r["rise"]) == len("2026-03-01T00:00:00.000Z")
        assert r["rise"] <= r["culmination"] <= r["set"]
        assert float(r["max_elevation_deg"]) >= 10.0
        assert r["satellite"].startswith("SAT-")


def test_start_with_an_offset_is_the_same_instant(files) -> None:
    _run(files)
    first = files["out"].read_text()
    _run(files, **{"--start": "2026-03-01T08:00:00+08:00"})
    assert files["out"].read_text() == first


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--start": "2026-03-01T00:00:00"}, "no time zone"),
        ({"--start": "yesterday"}, "ISO-8601"),
        ({"--hours": "0"}, "--hours"),
        ({"--min-elevation": "95"}, "--min-elevation"),
    ],
)
def test_bad_options_fail_with_one_line(files, change, message) -> None:
    result = _run(files, **change)
    assert result.exit_code != 0
    assert result.stderr.startswith("error:") and message in result.stderr
    assert result.stderr.count("\n") == 1
    assert not files["out"].exists()


def test_bad_tle_line_is_named(files) -> None:
    lines = files["tle"].read_text().splitlines()
    lines[4] = lines[4][:-1] + str((int(lines[4][-1]) + 1) % 10)  # break a check digit
    files["tle"].write_text("\n".join(lines) + "\n")
    result = _run(files)
    assert result.exit_code != 0 and "line 5" in result.stderr
    assert not files["out"].exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("site,lat,lon\nA,1,2\n", "header"),
        ("name,lat,lon,alt_m\nA,1,2,0\nB,91,2,0\n", "row 2: latitude"),
        ("name,lat,lon,alt_m\nA,north,2,0\n", "row 1: lat"),
    ],
)
def test_bad_sites_file_is_named(files, text, message) -> None:
    files["sites"].write_text(text)
    result = _run(files)
    assert result.exit_code != 0 and message in result.stderr
    assert not files["out"].exists()
