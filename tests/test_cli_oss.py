"""``satiot numbers …`` and ``satiot terminals …``: inputs, one-line errors, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from satiot.cli import app
from satiot.oss.models import TerminalModel
from tests.oss.test_licence_list import CSV
from tests.oss.test_numbering import TOML

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


BLOCK = '[[blocks]]\nname = "{name}"\nprefix = "{prefix}"\npurpose = "{purpose}"\nscope = "s"\n'


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (b"\x00\xff\xfe binary", ("is not UTF-8 text",)),
        (b"blocks = [1, 2]", ("block 1: must be a table",)),
        (BLOCK.format(name="x", prefix="\u00b2", purpose="p").encode(), ("block 3 (x): prefix",)),
        (
            BLOCK.format(name="x", prefix="\u0661\u0660\u0666\u0665", purpose="p").encode(),
            ("block 3 (x): prefix",),
        ),
        (
            BLOCK.format(name="a\\u0000b", prefix="1410", purpose="p").encode(),
            ("block 3 ('a\\x00b'): name", "U+0000"),
        ),
        (
            BLOCK.format(name="x", prefix="1410", purpose="p\\u001b[2J").encode(),
            ("block 3 (x): purpose", "U+001B"),
        ),
    ],
    ids=["binary", "not-a-table", "superscript", "arabic-indic", "nul", "escape"],
)
def test_unusable_block_files_are_one_line_and_load_nothing(
    env, tmp_path: Path, text: bytes, words: tuple[str, ...]
):
    path = tmp_path / "blocks.toml"
    # A bad block after two good ones: all or nothing.
    path.write_bytes(TOML.encode() + b"\n" + text if text.startswith(b"[[") else text)
    _one_error(_run("numbers", "blocks", "load", str(path)), *words)
    listed = _run("numbers", "blocks", "list")
    assert listed.exit_code == 0 and "sat-1" not in listed.stdout, "nothing was loaded"


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


def test_every_bad_line_of_a_list_is_its_own_line_then_the_count(env, tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        CSV
        + "TQ-M300,x,y,z,BAD,2025-01-01,2026-01-01,\n"
        + "TQ-M400,x,y,z,00-B182-228212,2025-13-01,2026-01-01,\n"
    )
    r = _run("terminals", "import", str(bad))
    assert r.exit_code == 1, r.output
    lines = r.stderr.splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines), lines
    assert "line 4: licence number 'BAD'" in lines[0]
    assert "line 5: issued_on '2025-13-01' is not a date" in lines[1]
    assert lines[2].endswith("2 lines cannot be imported; nothing was imported")
    with env.read() as s:
        assert s.scalar(select(func.count()).select_from(TerminalModel)) == 0


def test_the_template_fills_in_and_imports(env, tmp_path: Path):
    r = _run("terminals", "template")
    assert r.exit_code == 0 and r.stdout_bytes.startswith(b"\xef\xbb\xbfname,equipment_name,")
    path = tmp_path / "list.csv"
    r = _run("terminals", "template", "-o", str(path))
    assert r.exit_code == 0 and "fill in one licensed model per line" in r.stdout
    _one_error(_run("terminals", "import", str(path)), "line 2: the list holds no terminal models")
    with path.open("a") as f:
        f.write(CSV.splitlines()[1] + "\r\n")
    assert "1 created" in _run("terminals", "import", str(path)).stdout
    _one_error(_run("terminals", "template", "-o", str(tmp_path)), "cannot write")


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("TQ\x00M300,x,y,z,00-B182-228211,2025-01-01,2026-01-01,", "line 4: name"),
        ("TQ\x1b[31mM300,x,y,z,00-B182-228211,2025-01-01,2026-01-01,", "line 4: name"),
        (
            "TQ-M300,x,y,z,00-B182-228211,2025-01-01,2026-01-01,"
            + " ".join(f"{n:08d}" for n in range(5000)),
            "line 4: 5000 TACs; a model records at most 100",
        ),
        ("TQ-M300,x,y,z,00-B182-228211,2999-01-01,2999-12-31,", "line 4: the licence cannot"),
    ],
    ids=["nul", "escape", "5000-tacs", "issued-in-the-future"],
)
def test_unacceptable_terminal_rows_are_one_line_and_import_nothing(
    env, tmp_path: Path, row: str, words: str
):
    path = tmp_path / "models.csv"
    path.write_text(CSV + row + "\n")
    _one_error(_run("terminals", "import", str(path)), words)
    with env.read() as s:
        assert s.scalar(select(func.count()).select_from(TerminalModel)) == 0


def test_a_directory_or_binary_file_is_one_line(env, tmp_path: Path):
    _one_error(_run("terminals", "import", str(tmp_path)), "cannot read", "directory")
    _one_error(_run("numbers", "blocks", "load", str(tmp_path)), "cannot read", "directory")
    binary = tmp_path / "models.csv"
    binary.write_bytes(bytes(range(256)))
    _one_error(
        _run("terminals", "import", str(binary)), "line 2: not valid UTF-8 (byte 118 of the line"
    )
    binary.write_bytes(b"PK\x03\x04" + bytes(range(256)))
    _one_error(_run("terminals", "import", str(binary)), "Excel workbook (.xlsx)", "CSV UTF-8")


def test_a_gbk_licence_list_imports_with_its_encoding_named(env, tmp_path: Path):
    """Licence holders are Chinese companies; Excel on Chinese Windows saves "CSV" as GBK."""
    path = tmp_path / "models.csv"
    maker = "北京天星物联科技有限公司"
    path.write_bytes(CSV.replace("Maker,Maker", f"{maker},{maker}").encode("gbk"))
    _one_error(
        _run("terminals", "import", str(path)),
        "line 2: not valid UTF-8 (byte",
        "it reads as GB18030 (GBK)",
    )
    _one_error(_run("terminals", "import", str(path), "--encoding", "big5"), "unknown encoding")
    with env.read() as s:
        assert s.scalar(select(func.count()).select_from(TerminalModel)) == 0
    r = _run("terminals", "import", str(path), "--encoding", "gbk")
    assert r.exit_code == 0 and "2 created" in r.stdout, r.output
    with env.read() as s:
        assert set(s.scalars(select(TerminalModel.manufacturer))) == {maker}


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
