"""What encodings the CSV files people upload may be in, and how to tell a file that is no CSV.

Spreadsheets are where bulk orders and licence lists come from, and Excel writes CSV in more
than one way: "CSV UTF-8" is UTF-8 with a byte-order mark, while "CSV (comma delimited)" on
Chinese Windows is GB18030 (GBK), and "Unicode Text" is UTF-16. Both imports read UTF-8 and,
when the caller names it, GB18030: a superset of GBK and GB2312 that never uses the bytes of
``\\n``, ``,`` or ``"`` inside a character, so lines and fields split as in UTF-8. A UTF-8
byte-order mark wins over the named encoding, as in browsers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from satiot.core.errors import InvalidInput

T = TypeVar("T")
BOM: Final = b"\xef\xbb\xbf"
#: Encodings a file may be in, by the names callers use, with the codec that reads each
#: (ASCII, which some HTTP clients name by default, is read as the UTF-8 it is a part of).
ENCODINGS: Final = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "gb18030": "gb18030",
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "cp936": "gb18030",
}
#: What the first bytes of a file that is not CSV text say it is.
_NOT_TEXT: Final = (
    (b"PK\x03\x04", "a zip archive, such as an Excel workbook (.xlsx)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls)"),
    (b"%PDF-", "a PDF document"),
    (b"\xff\xfe", 'UTF-16 text (Excel\'s "Unicode Text")'),
    (b"\xfe\xff", "UTF-16 text"),
)
SAVE_AS: Final = 'save it as "CSV UTF-8" and send that'
#: Bytes enough to recognise any of them.
HEAD_BYTES: Final = 8


@dataclass(frozen=True)
class RowError:
    """Why one line of an uploaded file cannot be taken (``line`` 1 is the header; ``column``
    is empty when the whole line is at fault)."""

    line: int
    column: str
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "column": self.column, "reason": self.reason}


class FileRejected(InvalidInput):
    """An uploaded file refused as a whole; ``rows`` names every bad line and ``lines`` how many
    lines are bad (a line may have more than one error). Subclasses name the problem (``slug``,
    ``title``) and what would have happened to the lines (``done``: "imported", "recorded")."""

    done = "imported"

    def __init__(self, rows: Sequence[RowError]) -> None:
        self.rows = sorted(rows, key=lambda e: e.line)
        self.lines = len({e.line for e in self.rows})
        first = self.rows[0]
        where = f"line {first.line}: {first.reason}"
        if self.lines == 1:
            detail = f"{where}; nothing was {self.done}"
        else:
            detail = (
                f"{self.lines} lines cannot be {self.done}; nothing was {self.done}. First, {where}"
            )
        super().__init__(detail, errors=[e.as_dict() for e in self.rows])


def check_header(
    cells: Sequence[str], columns: Sequence[str], required: Sequence[str]
) -> tuple[list[str], list[RowError]]:
    """A header line's column names (trimmed, lower case), and what is wrong with it: a name
    not among ``columns``, one named twice, ``required`` ones missing."""
    names = [c.strip().lower() for c in cells]
    errors = []
    for n, name in enumerate(names):
        if name not in columns:
            known = ", ".join(columns)
            errors.append(
                RowError(
                    1,
                    name or f"#{n + 1}",
                    f"unknown column {name!r} in the header (known: {known})",
                )
            )
        elif names.index(name) != n:
            errors.append(RowError(1, name, f"column {name!r} named twice in the header"))
    missing = [c for c in required if c not in names]
    if missing:
        errors.append(RowError(1, missing[0], f"the header lacks {', '.join(missing)}"))
    return names, errors


@dataclass
class NamedRows:
    """The data lines of a file by their column names (``line``: where each begins), and why
    the others cannot be read; ``header`` is False for a file without one."""

    rows: list[tuple[int, dict[str, str]]]
    errors: list[RowError]
    header: bool


def named_rows(
    text: str,
    columns: Sequence[str],
    required: Sequence[str],
    *,
    max_rows: int,
    rejected: type[FileRejected],
    what: str = "file",
) -> NamedRows:
    """Walk an uploaded file's CSV text: the header line (``check_header``; a bad one raises
    ``rejected`` at once, since no line means anything without it), then each non-blank line
    as ``{column: trimmed cell}``. A line with the wrong number of fields, malformed quoting or
    more than ``max_rows`` lines becomes an error naming its line, so one reading finds every
    mistake the file makes."""
    reader = csv.reader(io.StringIO(text), strict=True)
    out = NamedRows([], [], False)
    names: list[str] = []
    first = 1
    try:
        for cells in reader:
            line, first = first, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if not out.header:
                names, bad = check_header(cells, columns, required)
                if bad:
                    raise rejected(bad)
                out.header = True
                continue
            if len(out.rows) >= max_rows:
                out.errors.append(
                    RowError(line, "", f"more than {max_rows} lines: split the {what}")
                )
                break
            if len(cells) != len(names):
                reason = f"expected {len(names)} fields, found {len(cells)}"
                out.errors.append(RowError(line, "", reason))
                continue
            out.rows.append((line, dict(zip(names, (c.strip() for c in cells), strict=True))))
    except csv.Error as exc:
        out.errors.append(RowError(first, "", f"malformed CSV: {exc}"))
    if not out.header:
        raise rejected([RowError(1, "", f"the {what} is empty: it needs a header line")])
    return out


class UnreadableText(ValueError):
    """A file that is no text in its encoding; ``line`` is where reading stopped (1, and
    ``whole``, when the file is no CSV text at all)."""

    def __init__(self, line: int, reason: str, *, whole: bool = False) -> None:
        super().__init__(reason if whole else f"line {line}: {reason}")
        self.line = line
        self.reason = reason


#: What a spreadsheet takes a cell that begins with for a formula.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str | None) -> str:
    """A cell of a file we send that a spreadsheet shows as the text it is: one that begins
    like a formula gets a leading ``'``. Names and reasons are typed by people, and a
    spreadsheet would run ``=HYPERLINK(...)`` as a formula (CSV injection)."""
    if not value:
        return ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_lines(rows: Iterable[Sequence[str]]) -> bytes:
    """Lines of a file we send: UTF-8 with CRLF ends, as Excel writes them."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()


def csv_file(
    columns: Sequence[str],
    chunks: Iterable[Sequence[T]],
    row: Callable[[T], Sequence[str]],
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """A file we send, streamed: the header (with a byte-order mark, so that Excel reads it as
    UTF-8), then a piece per chunk of items, each item a line; ``progress`` is told each
    chunk's count, for a progress bar."""
    yield BOM + csv_lines([columns])
    for items in chunks:
        yield csv_lines(row(item) for item in items)
        if progress is not None:
            progress(len(items))


def header_only(columns: Sequence[str]) -> bytes:
    """An empty file to fill in: the header line alone, in UTF-8 with a byte-order mark so
    that Excel opens it as UTF-8 and saves it back so. It holds no example row, which could
    be uploaded unchanged by mistake."""
    return BOM + ",".join(columns).encode() + b"\r\n"


def encoding_named(name: str) -> str:
    """The codec for an encoding as a caller names it (case-insensitive), or ValueError."""
    codec = ENCODINGS.get(name.strip().lower())
    if codec is None:
        raise ValueError(f"unknown encoding {name!r}: a CSV file is utf-8 or gb18030")
    return codec


def not_csv_text(head: bytes) -> str | None:
    """What the first bytes of a file say it is, when that is not CSV text."""
    for magic, kind in _NOT_TEXT:
        if head.startswith(magic):
            return f"the file is {kind}, not CSV text: {SAVE_AS}"
    return None


def undecodable(raw: bytes, codec: str, start: int) -> str:
    """Why the line ``raw`` cannot be read from its byte ``start`` (0-based) on, and what to
    do when it would read as GB18030."""
    name = "UTF-8" if codec == "utf-8" else "GB18030"
    reason = f"not valid {name} (byte {start + 1} of the line)"
    if codec == "utf-8":
        try:
            raw.decode("gb18030")
        except UnicodeDecodeError:
            return reason
        return f"{reason}; it reads as GB18030 (GBK): import it as gb18030, or {SAVE_AS}"
    return reason


def decode_file(data: bytes, encoding: str) -> str:
    """A whole file's text; ValueError for an unknown encoding, and :class:`UnreadableText`
    saying why not for a file that is no CSV text or not in the encoding."""
    codec = encoding_named(encoding)
    kind = not_csv_text(data[:HEAD_BYTES])
    if kind is not None:
        raise UnreadableText(1, kind, whole=True)
    if data.startswith(BOM):
        data, codec = data[len(BOM) :], "utf-8"
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        end = data.find(b"\n", exc.start)
        raw = data[start : None if end < 0 else end]
        raise UnreadableText(line, undecodable(raw, codec, exc.start - start)) from None
