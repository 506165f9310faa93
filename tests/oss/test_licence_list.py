"""Licence lists: every bad line named at once, columns in any order, nothing half imported."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from satiot.oss import licence_list
from satiot.oss.licence_list import (
    LicenceListRejected,
    import_licence_list,
    parse_licence_list,
    read_licence_list,
)
from satiot.oss.models import TerminalModel

TACS_5000 = " ".join(f"{n:08d}" for n in range(5000))
CSV = (
    "name,equipment_name,manufacturer,applicant,licence_number,issued_on,expires_on,tacs\n"
    "TQ-M100,Satellite IoT module,Maker,Maker,00-B182-228209,2025-03-01,2028-02-29,35417803\n"
    "TQ-M200,Satellite IoT module,Maker,Maker,00-B182-228210,2025-03-01,2028-02-29,\n"
)
AT = datetime(2026, 1, 15, tzinfo=UTC)


def _rejected(text: str) -> list[tuple[int, str, str]]:
    with pytest.raises(LicenceListRejected) as caught:
        parse_licence_list(text, at=AT)
    return [(e.line, e.column, e.reason) for e in caught.value.rows]


def _count(db) -> int:  # type: ignore[no-untyped-def]
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(TerminalModel)) or 0


def test_import_creates_updates_and_leaves_unchanged(db, world, clock):
    listed = parse_licence_list(CSV, at=clock.now())
    assert [x.line for x in listed] == [2, 3]
    with db.write() as s:
        first = import_licence_list(s, world.system, listed, at=clock.now())
    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    renewed = parse_licence_list(CSV.replace("2028-02-29,\n", "2029-01-01,\n"), at=clock.now())
    with db.write() as s:
        second = import_licence_list(s, world.system, renewed, at=clock.now())
    assert (second.created, second.updated, second.unchanged) == (0, 1, 1)
    with db.read() as s:
        m200 = s.scalar(select(TerminalModel).where(TerminalModel.name == "TQ-M200"))
        assert m200 is not None and m200.expires_on.isoformat() == "2029-01-01"


def test_columns_may_come_in_any_order_and_case_and_tacs_may_be_left_out():
    text = (
        "Licence_Number,NAME,expires_on,issued_on,applicant,manufacturer,equipment_name\n"
        "00-b182-228209,TQ-M100,2028-02-29,2025-03-01,Maker,Maker,Module\n"
    )
    (only,) = parse_licence_list(text, at=AT)
    assert (only.spec.name, only.spec.licence_number, only.spec.tacs) == (
        "TQ-M100",
        "00-B182-228209",
        (),
    )
    with_tacs = CSV.replace(",35417803\n", ",35417803; 35417804 35417803\n")
    assert parse_licence_list(with_tacs, at=AT)[0].spec.tacs == ("35417803", "35417804")


def test_every_bad_line_is_named_with_its_column():
    text = (
        CSV
        + "TQ-M300,x,y,z,BAD,2025-01-01,2026-01-01,\n"  # 4
        + "TQ-M400,x,y,z,00-B182-228212,2025-13-01,2026-01-01,\n"  # 5
        + "TQ-M500,x,y,z,00-B182-228213,2025-01-01,2026-01-01,\n"  # 6: fine
        + "TQ-M600,x,y\n"  # 7
        + "TQ-M100,x,y,z,00-B182-228214,2025-01-01,2026-01-01,\n"  # 8: name twice
        + "TQ-M700,x,y,z,00-B182-228213,2025-01-01,2026-01-01,\n"  # 9: licence twice
    )
    rows = _rejected(text)
    assert [(line, column) for line, column, _ in rows] == [
        (4, "licence_number"),
        (5, "issued_on"),
        (7, ""),
        (8, "name"),
        (9, "licence_number"),
    ]
    reasons = [reason for _, _, reason in rows]
    assert "is not of the form NN-XXXX-NNNNNN" in reasons[0]
    assert "'2025-13-01' is not a date (YYYY-MM-DD)" in reasons[1]
    assert reasons[2] == "expected 8 fields, found 3"
    assert reasons[3] == "model 'TQ-M100' already on line 2"
    assert reasons[4] == "licence number '00-B182-228213' already on line 6"
    with pytest.raises(
        LicenceListRejected,
        match=r"^5 lines cannot be imported; nothing was imported. First, line 4: ",
    ):
        parse_licence_list(text, at=AT)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("a,b\n", 1, "unknown column 'a' in the header"),
        ("name,name\n", 1, "named twice in the header"),
        ("name,equipment_name\n", 1, "the header lacks manufacturer, applicant"),
        ("", 1, "the list is empty"),
        ("\n\n", 1, "the list is empty"),
        (CSV.splitlines()[0] + "\n", 2, "holds no terminal models"),
        (CSV + 'TQ-M300,"x,y\n', 4, "malformed CSV"),
        (CSV + "TQ\x00M300,x,y,z,00-B182-228211,2025-01-01,2026-01-01,\n", 4, "name"),
        (CSV + "TQ-M300,x,\x1b[2Jy,z,00-B182-228211,2025-01-01,2026-01-01,\n", 4, "manufacturer"),
        (CSV + f"TQ-M300,x,y,z,00-B182-228211,2025-01-01,2026-01-01,{TACS_5000}\n", 4, "5000"),
        (CSV + "TQ-M300,x,y,z,00-B182-228211,2025-01-01,2026-01-01,1234567\n", 4, "not 8 dig"),
        (CSV + "TQ-M300,x,y,z,00-B182-228211,2999-01-01,2999-12-31,\n", 4, "cannot be issued"),
        (CSV + "TQ-M300,x,y,z,00-B182-228211,2026-01-01,2025-01-01,\n", 4, "must expire after"),
    ],
)
def test_a_bad_list_names_the_line(text, line, words):
    rows = _rejected(text)
    assert any(at == line and words in reason for at, _, reason in rows), rows


def test_the_day_is_chinas(db):
    """A licence issued today in Beijing is taken even while it is still yesterday in UTC."""
    at = datetime(2026, 1, 14, 17, tzinfo=UTC)  # 15 January, 01:00 in Beijing
    row = "TQ-M300,x,y,z,00-B182-228211,2026-01-15,2029-01-14,\n"
    assert [x.spec.name for x in parse_licence_list(CSV + row, at=at)][-1] == "TQ-M300"


def test_too_many_lines_are_refused():
    row = "TQ-M{n},x,y,z,00-B182-{n:06d},2025-01-01,2026-01-01,\n"
    text = CSV.splitlines()[0] + "\n" + "".join(row.format(n=n) for n in range(10_001))
    (only,) = _rejected(text)
    assert only[0] == 10_002 and "more than 10000 lines" in only[2]


def test_a_licence_number_on_record_for_another_model_refuses_the_list(db, world, clock):
    with db.write() as s:
        import_licence_list(s, world.system, parse_licence_list(CSV, at=AT), at=clock.now())
    taken = CSV.splitlines()[0] + "\n" + "TQ-M300,x,y,z,00-B182-228209,2025-01-01,2026-01-01,\n"
    with pytest.raises(LicenceListRejected) as caught, db.write() as s:
        import_licence_list(s, world.system, parse_licence_list(taken, at=AT), at=clock.now())
    (only,) = caught.value.rows
    assert (only.line, only.column) == (2, "licence_number")
    assert only.reason == "licence number 00-B182-228209 is on record for terminal model TQ-M100"
    assert _count(db) == 2, "nothing of the refused list was stored"


def test_the_template_is_a_header_excel_reads_as_utf8_and_only_that():
    data = licence_list.template()
    assert data.startswith(b"\xef\xbb\xbf") and data.endswith(b"\r\n")
    with pytest.raises(LicenceListRejected, match="holds no terminal models"):
        read_licence_list(data, encoding="gb18030", at=AT)  # the mark wins, as in Excel
    filled = data + CSV.splitlines()[1].encode() + b"\r\n"
    (only,) = read_licence_list(filled, encoding="utf-8", at=AT)
    assert only.spec.tacs == ("35417803",)


@pytest.mark.parametrize(
    ("data", "line", "words"),
    [
        (b"PK\x03\x04rest", 1, "Excel workbook (.xlsx)"),
        (CSV.encode() + "TQ-M300,北京".encode("gbk") + b"\n", 4, "reads as GB18030"),
    ],
)
def test_a_file_that_is_not_text_in_its_encoding_is_one_error(data, line, words):
    with pytest.raises(LicenceListRejected) as caught:
        read_licence_list(data, encoding="utf-8", at=AT)
    (only,) = caught.value.rows
    assert only.line == line and words in only.reason


@given(st.text(max_size=400))
def test_any_text_is_a_list_or_a_refusal_naming_lines(text):
    try:
        listed = parse_licence_list(text, at=AT)
    except LicenceListRejected as exc:
        assert exc.rows and all(e.line >= 1 and e.reason for e in exc.rows)
    else:
        assert listed and all(x.line >= 2 for x in listed)
