"""``satiot numbers …`` and ``satiot terminals …``: inputs, one-line errors, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from satiot.cli import app
from tests.oss.test_numbering import TOML
from tests.oss.test_terminals import CSV

runner = CliRunner()


@pytest.fixture
def env(db, world, db_url, monkeypatch):
    monkeypatch.setenv("SATIOT_DATABASE_URL", db_url)
    return db


def _run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def _one_error(result, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code != 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_load_blocks_then_report(env, tmp_path: Path):
    path = tmp_path / "blocks.toml"
    path.write_text(TOML)
    r = _run("numbers", "blocks", "load", str(path))
    assert r.exit_code == 0, r.output
    assert "2 created, 0 updated, 0 unchanged" in r.stdout
    assert (
        "0 created, 0 updated, 2 unchanged" in _run("numbers", "blocks", "load", str(path)).stdout
    )
    assert "sat-1" in _run("numbers", "blocks", "list").stdout
    r = _run("numbers", "report", "--year", "2025", "--json")
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["year"] == 2025 and [b["name"] for b in body["blocks"]] == ["sat-1", "sat-2"]
    assert body["blocks"][1]["size"] == 1000
    r = _run("numbers", "report", "--year", "2025")
    assert r.exit_code == 0 and "numbering report for 2025" in r.stdout
    assert "0 numbers back in service" in _run("numbers", "recycle").stdout


def test_block_errors_are_one_line(env, tmp_path: Path, monkeypatch):
    _one_error(_run("numbers", "blocks", "load", str(tmp_path / "none.toml")), "cannot read")
    bad = tmp_path / "bad.toml"
    bad.write_text(TOML.replace('prefix = "1410"', 'prefix = "14x"'))
    _one_error(_run("numbers", "blocks", "load", str(bad)), "block 2 (sat-2)", "prefix")
    overlap = tmp_path / "overlap.toml"
    overlap.write_text(
        TOML.replace('prefix = "1410"\nfirst = "567000000"', 'prefix = "1410"\nfirst = "123400000"')
    )
    _one_error(_run("numbers", "blocks", "load", str(overlap)), "overlaps block sat-1")
    assert "sat-1" not in _run("numbers", "blocks", "list").stdout, "all or nothing"
    monkeypatch.delenv("SATIOT_NUMBER_BLOCKS_FILE", raising=False)
    _one_error(_run("numbers", "blocks", "load"), "SATIOT_NUMBER_BLOCKS_FILE")
    _one_error(_run("numbers", "report", "--year", "2999"), "has ended")


def test_terminals_import_and_check(env, tmp_path: Path):
    path = tmp_path / "models.csv"
    path.write_text(CSV)
    r = _run("terminals", "import", str(path))
    assert r.exit_code == 0, r.output
    assert "2 created, 0 updated, 0 unchanged" in r.stdout
    ok = _run("terminals", "check", "--on", "2026-01-01", "--within", "30")
    assert ok.exit_code == 0 and "no licence expired" in ok.stdout
    soon = _run("terminals", "check", "--on", "2028-02-01", "--within", "30")
    assert soon.exit_code == 0 and "expiring" in soon.stdout
    late = _run("terminals", "check", "--on", "2028-03-01")
    assert late.exit_code == 1 and "expired" in late.stdout
    _one_error(_run("terminals", "check", "--on", "soon"), "not a date")


def test_terminal_import_errors_are_one_line(env, tmp_path: Path):
    _one_error(_run("terminals", "import", str(tmp_path / "none.csv")), "cannot read")
    bad = tmp_path / "bad.csv"
    bad.write_text(CSV + "TQ-M300,x,y,z,BAD,2025-01-01,2026-01-01,\n")
    _one_error(_run("terminals", "import", str(bad)), "line 4", "licence number")


def test_text_longer_than_its_column_names_the_line_and_field(env, tmp_path: Path):
    """SQLite would have stored it and PostgreSQL refused it without naming the field."""
    wordy = tmp_path / "wordy.csv"
    wordy.write_text(
        CSV + f"TQ-M300,{'e' * 201},Maker,Maker,00-B182-228211,2025-03-01,2028-02-29,\n"
    )
    _one_error(
        _run("terminals", "import", str(wordy)),
        "line 4: equipment_name is 201 characters; at most 200",
    )
    blocks = tmp_path / "wordy.toml"
    blocks.write_text(TOML.replace('scope = "Xinjiang"', f'scope = "{"x" * 201}"'))
    _one_error(
        _run("numbers", "blocks", "load", str(blocks)),
        "block 2 (sat-2): scope is 201 characters; at most 200",
    )
    listed = _run("numbers", "blocks", "list")
    assert listed.exit_code == 0 and "sat-1" not in listed.stdout, "nothing was loaded"
    fitting = tmp_path / "fitting.csv"
    fitting.write_text(
        CSV + f"TQ-M300,{'e' * 200},Maker,Maker,00-B182-228211,2025-03-01,2028-02-29,\n"
    )
    assert "3 created" in _run("terminals", "import", str(fitting)).stdout


def test_commands_need_a_migrated_database(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SATIOT_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    _one_error(_run("numbers", "blocks", "list"), "not migrated")


def test_help_texts():
    for args in (
        ["numbers", "--help"],
        ["numbers", "blocks", "load", "--help"],
        ["numbers", "report", "--help"],
        ["terminals", "import", "--help"],
    ):
        r = _run(*args)
        assert r.exit_code == 0 and "Usage" in r.stdout
