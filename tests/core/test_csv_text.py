"""Reading uploaded CSV text: UTF-8 or GB18030, and files that are no CSV text at all."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from satiot.core.csv_text import ENCODINGS, decode_file, encoding_named

TEXT = "name,manufacturer\nTQ-M100,北京天星物联 ×2\n"


@pytest.mark.parametrize("name", ["GB18030", "gbk", "gb2312", "cp936"])
def test_gbk_and_its_supersets_read_the_same_file(name: str):
    assert decode_file(TEXT.encode("gbk"), name) == TEXT


def test_a_utf8_byte_order_mark_wins_over_the_named_encoding():
    assert decode_file(b"\xef\xbb\xbf" + TEXT.encode(), "gb18030") == TEXT


def test_a_utf8_read_names_the_line_and_hints_at_gb18030():
    with pytest.raises(ValueError, match=r"^line 2: not valid UTF-8 \(byte 9 of the line\); "):
        decode_file(TEXT.encode("gb18030"), "utf-8")
    with pytest.raises(ValueError, match=r"^line 1: not valid UTF-8 \(byte 3 of the line\)$"):
        decode_file(b"ab\xff\xff", "utf-8")  # GB18030 cannot read it either: no hint
    with pytest.raises(ValueError, match=r"^line 1: not valid GB18030 \(byte 3 of the line\)$"):
        decode_file(b"ab\x80", "gb18030")


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"PK\x03\x04", "a zip archive, such as an Excel workbook (.xlsx)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls)"),
        (b"\xff\xfe", "UTF-16 text"),
        (b"\xfe\xff", "UTF-16 text"),
        (b"%PDF-", "a PDF document"),
    ],
)
def test_a_file_that_is_no_csv_text_is_named(head: bytes, kind: str):
    with pytest.raises(ValueError, match='not CSV text: save it as "CSV UTF-8"'):
        decode_file(head + b"name\n", "utf-8")
    with pytest.raises(ValueError) as err:
        decode_file(head + b"name\n", "gb18030")
    assert kind in str(err.value)


def test_only_known_encodings_are_taken():
    assert {encoding_named(n) for n in ENCODINGS} == {"utf-8", "gb18030"}
    assert encoding_named("US-ASCII") == "utf-8"  # a default charset of some HTTP clients
    with pytest.raises(ValueError, match="unknown encoding 'big5'"):
        encoding_named("big5")


@given(st.binary(max_size=300), st.sampled_from(sorted(ENCODINGS)))
def test_any_bytes_give_text_or_a_value_error(data: bytes, name: str):
    try:
        text = decode_file(data, name)
    except ValueError as exc:
        assert str(exc)
    else:
        assert isinstance(text, str)
