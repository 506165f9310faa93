"""Bulk orders by CSV: the streaming parser, all-or-nothing validation, a 1,000-row order."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from satiot.bss.models import Subscription
from satiot.bss.order_csv import (
    MAX_ROWS,
    ParsedCsv,
    order_from_csv,
    parse_order_csv,
)
from satiot.bss.order_fulfilment import fulfil_order
from satiot.bss.order_items import OrderRejected
from satiot.bss.orders import place_order
from satiot.core.csv_text import encoding_named
from tests.bss.order_world import CSV_HEADER, MODEL, shop, terminal
from tests.bss.test_orders import all_counts


def parse(text: str | bytes, chunk: int = 64) -> ParsedCsv:
    data = text.encode() if isinstance(text, str) else text
    return parse_order_csv([data[i : i + chunk] for i in range(0, len(data), chunk)])


def csv_of(*rows: str, header: str = CSV_HEADER) -> str:
    return "\n".join((header, *rows)) + "\n"


def test_a_good_file_becomes_one_item_per_row():
    a, b = terminal(), terminal()
    text = "\ufeff" + csv_of(a.csv_row(), b.csv_row("SAT-MSG")).replace("imei,", "IMEI ,", 1)
    parsed = parse(text, chunk=5)
    assert parsed.errors == [] and parsed.rows == 2
    first, second = parsed.items
    assert (first.line, first.action, first.offering) == (2, "add", "SAT-BUNDLE-100")
    assert first.terminal is not None and first.terminal.imei == a.imei
    assert (second.line, second.offering) == (3, "SAT-MSG")
    crlf = parse(text.replace("\n", "\r\n"))
    assert crlf.errors == [] and [i.terminal for i in crlf.items] == [
        i.terminal for i in parsed.items
    ]


def test_every_bad_row_is_reported_with_line_and_column():
    good = terminal()
    bad_imei = terminal().csv_row().replace(",", "0,", 1)  # 16 digits
    rows = [
        good.csv_row(),
        bad_imei,
        "354178036859789,NOT-HEX,TQ-M100,SAT-MSG,,,",
        "1,2,3",
        good.csv_row(),  # the same terminal twice
    ]
    parsed = parse(csv_of(*rows) + "\xff\xfe\n".encode("latin-1").decode("latin-1"))
    found = {(e.line, e.column) for e in parsed.errors}
    assert {(3, "imei"), (4, "dev_eui"), (5, ""), (6, "dev_eui"), (6, "imei")} <= found
    order = order_from_csv(parsed)
    assert [(e.item, e.field) for e in order.errors] == [(e.line, e.column) for e in parsed.errors]


def test_bad_bytes_and_headers_are_row_errors():
    assert [(e.line, e.reason[:19]) for e in parse(b"dev_eui\n\xff\xfe\n").errors][:1] == [
        (1, "missing columns: te")
    ]
    parsed = parse(csv_of("\x00,a,b,c,d,e,f"))
    assert [(e.line, e.reason) for e in parsed.errors] == [(2, "contains a NUL character")]
    parsed = parse(b"imei,dev_eui,terminal_model,offering\n\xc3\x28,x,y,z\n")
    assert (parsed.errors[0].line, parsed.errors[0].reason[:17]) == (2, "not valid UTF-8 (")
    assert parse(b"").errors[0].reason.startswith("the file is empty")
    assert parse("dev_eui,terminal_model,offering,colour\n").errors[0].column == "colour"
    long_line = b"dev_eui,terminal_model,offering\n" + b"x" * 20_000 + b"\n"
    assert "longer than" in parse(long_line, chunk=4096).errors[0].reason


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 8, "Excel workbook (.xlsx)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "Excel 97-2003 workbook"),
        (b"\xff\xfe" + f"{CSV_HEADER}\n1,2\n".encode("utf-16-le"), "UTF-16 text"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
        (bytes(range(256)) * 4, "header line is unreadable: contains a NUL"),
        (b"\xc3\x28," + CSV_HEADER.encode() + b"\n\xff\n\xfe\n", "header line is unreadable"),
        (b'"imei,dev_eui\n', "header line is unreadable: malformed CSV"),
    ],
    ids=["xlsx", "xls", "utf-16", "pdf", "binary", "bad-header", "open-quote"],
)
def test_a_file_that_is_not_csv_text_gets_one_error(data: bytes, words: str):
    """One error for the whole file, not one per line: nothing in it can be read as rows."""
    parsed = parse(data, chunk=3)
    assert [(e.line, e.column) for e in parsed.errors] == [(1, "")]
    assert words in parsed.errors[0].reason and not parsed.items


def test_a_gb18030_file_is_read_when_named_and_hinted_at_when_not():
    """Excel on Chinese Windows saves "CSV" in GB18030 (GBK)."""
    rows = [terminal().csv_row() + ",北京市 水文站 1 号" for _ in range(2)]
    data = csv_of(*rows, header=CSV_HEADER + ",name").encode("gb18030")
    assert "北京".encode("gb18030") != "北京".encode()
    for name in ("gb18030", "GBK", " gb2312 "):
        parsed = parse_order_csv([data], encoding=name)
        assert not parsed.errors
        assert [i.terminal.name for i in parsed.items] == ["北京市 水文站 1 号"] * 2
    hinted = parse(data)  # read as UTF-8
    assert [e.line for e in hinted.errors] == [2, 3] and not hinted.items
    assert "not valid UTF-8 (byte" in hinted.errors[0].reason
    assert "it reads as GB18030 (GBK): import it as gb18030" in hinted.errors[0].reason
    # A UTF-8 file (with its byte-order mark) stays UTF-8 whatever the caller said.
    marked = b"\xef\xbb\xbf" + csv_of(*rows, header=CSV_HEADER + ",name").encode()
    assert [i.terminal.name for i in parse_order_csv([marked], encoding="gb18030").items] == [
        "北京市 水文站 1 号"
    ] * 2
    # Bytes GB18030 cannot read either: no hint, and the GB18030 read names itself.
    broken = csv_of(terminal().csv_row()).encode() + b"\x80\xff,x\n"
    assert "reads as GB18030" not in parse(broken).errors[-1].reason
    assert (
        parse_order_csv([broken], encoding="gb18030")
        .errors[-1]
        .reason.startswith("not valid GB18030 (byte 1 of the line)")
    )


def test_an_unknown_encoding_is_refused():
    with pytest.raises(
        ValueError, match="unknown encoding 'latin-1': a CSV file is utf-8 or gb18030"
    ):
        encoding_named("latin-1")
    with pytest.raises(ValueError, match="unknown encoding"):
        parse_order_csv([b"dev_eui\n"], encoding="shift_jis")


def test_more_rows_than_allowed_is_an_error():
    rows = "".join(f"{terminal().csv_row()}\n" for _ in range(3))
    parsed = parse_order_csv([(CSV_HEADER + "\n" + rows).encode()], max_rows=2)
    assert parsed.errors[-1].line == 4 and "more than 2 rows" in parsed.errors[-1].reason
    assert MAX_ROWS == 10_000


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=400),
        st.lists(
            st.text(alphabet=st.sampled_from('ab,"\n\r;0123456789ABCDEF\x00é'), max_size=40),
            max_size=8,
        ).map(lambda rows: ("dev_eui,terminal_model,offering,imei\n" + "\n".join(rows)).encode()),
    ),
    st.integers(min_value=1, max_value=64),
    st.sampled_from(["utf-8", "gb18030"]),
)
def test_arbitrary_bytes_never_crash_the_parser(data, chunk, encoding):
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    parsed = parse_order_csv(chunks, encoding=encoding)
    assert parsed.items or parsed.errors
    for e in parsed.errors:
        assert e.line >= 1 and e.reason
    # Chunking never changes the outcome.
    whole = parse_order_csv([data], encoding=encoding)
    assert [e.as_dict() for e in whole.errors] == [e.as_dict() for e in parsed.errors]
    assert whole.items == parsed.items


def _place(s, text: str):
    parsed = parse(text, chunk=8192)
    order = order_from_csv(parsed, customer_id=s.customer_id)
    with s.ctx.db.write() as session:
        return place_order(session, s.world.system, order, at=s.ctx.clock.now(), kek=s.ctx.kek)


def test_a_file_with_bad_rows_applies_nothing(ctx, world):
    s = shop(ctx, world)
    rows = [terminal().csv_row() for _ in range(6)]
    rows[1] = rows[1].replace(MODEL, "TQ-UNLICENSED")
    rows[3] = rows[3].replace("SAT-BUNDLE-100", "NO-SUCH-OFFER")
    rows[4] = "1,2"
    before = all_counts(ctx)
    with pytest.raises(OrderRejected) as err:
        _place(s, csv_of(*rows))
    listed = err.value.extensions["errors"]
    assert {"line", "column", "reason"} == set(listed[0])
    assert sorted({(e["line"], e["column"]) for e in listed}) == [
        (3, "terminal_model"),
        (5, "offering"),
        (6, ""),
    ]
    assert "3 lines cannot be accepted, nothing was applied" in err.value.detail
    assert all_counts(ctx) == before


def test_a_thousand_row_file_completes(ctx, world, capsys):
    s = shop(ctx, world, max_devices=2000)
    text = csv_of(*(terminal().csv_row() for _ in range(1000)))
    started = time.perf_counter()
    placed = _place(s, text)
    accepted = time.perf_counter()
    state = fulfil_order(ctx.db, placed.id, clock=ctx.clock, config=s.config)
    done = time.perf_counter()
    assert (len(placed.items), state) == (1000, "completed")
    with ctx.db.read() as session:
        live = session.scalar(select(func.count()).select_from(Subscription))
    assert live == 1000
    with capsys.disabled():
        print(
            f"\n1,000-row CSV order: parsed and checked in {accepted - started:.2f} s, "
            f"fulfilled (1,000 activations) in {done - accepted:.2f} s"
        )


def test_the_cli_imports_a_file_or_lists_every_bad_row(ctx, world, db_url, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from satiot.cli import app

    s = shop(ctx, world)
    monkeypatch.setenv("SATIOT_DATABASE_URL", db_url)
    monkeypatch.setenv("SATIOT_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("SATIOT_HANDLE_PREFIX", "88.608.8899")
    runner = CliRunner()
    with ctx.db.read() as session:
        from satiot.bss.models import Customer

        uscc = session.get(Customer, s.customer_id).uscc
    rows = [terminal().csv_row() for _ in range(3)]
    bad = tmp_path / "bad.csv"
    bad.write_text(csv_of(rows[0], rows[1].replace(MODEL, "TQ-X"), "1,2"))
    before = all_counts(ctx)
    r = runner.invoke(app, ["orders", "import", str(bad), "--customer", uscc])
    assert r.exit_code == 1, r.output
    assert "refused" in r.output and "TQ-X" in r.output and "expected 7 fields" in r.output
    assert all_counts(ctx) == before
    good = tmp_path / "good.csv"
    good.write_text(csv_of(*rows))
    r = runner.invoke(app, ["orders", "import", str(good), "--customer", uscc])
    assert r.exit_code == 0, r.output
    assert "completed; 3 completed, 0 failed" in r.output
    assert "already there: SAT-MSG" in runner.invoke(app, ["catalog", "seed"]).output
    assert "SAT-BUNDLE-100" in runner.invoke(app, ["catalog", "list"]).output
    assert "no order is due" in runner.invoke(app, ["orders", "fulfil"]).output
