"""Bulk orders as CSV: a streaming parser that turns bytes into order items or row errors.

Format (UTF-8, with or without a byte-order mark, or GB18030 when the caller says so; ``,``
separated; RFC 4180 quoting; one header line naming the columns, in any order,
case-insensitive):

==================  ========  ===============================================================
column              needed    meaning
==================  ========  ===============================================================
``action``          no        ``add`` (default), ``modify`` or ``delete``
``imei``            no        15-digit IMEI with its check digit
``dev_eui``         add       16 hex digits
``terminal_model``  add       a licensed model named in the contract
``scenario``        no        application scenario code (default: the contract's)
``offering``        add/mod.  an Active offering's code (``SAT-BUNDLE-100``) or version id
``add_ons``         no        add-on codes or ids separated by ``;`` or spaces
``dev_addr``        new dev.  8 hex digits: with the two keys, for a device new to the network
``nwk_s_key``       new dev.  32 hex digits
``app_s_key``       new dev.  32 hex digits
``iccid``           no        19-20 digits starting 89 (SIM-based terminals)
``imsi``            no        15 digits
``name``            no        a label for the device
``subscription_id`` mod./del. the subscription to change or end
``reason``          no        why (recorded with a modify or delete)
==================  ========  ===============================================================

The parser reads the input in chunks and never holds more than one line in memory besides the
items it has built; :data:`MAX_ROWS` rows at most (10,000). It never raises on bad input:
whatever arbitrary bytes it is given, it returns items and/or :class:`RowError`\\ s naming the
line (1 is the header), the column and the reason — invalid UTF-8, a NUL, a wrong number of
fields, a malformed identity, an unknown or missing column. Checks that need the database
come after (:func:`satiot.bss.orders.place_order`), and any error refuses the whole file.

A file that is no CSV text at all (a workbook, UTF-16 text, a header that cannot be read) gets
one error for the whole file instead of one per line: without a header no line means anything,
and a report of a thousand "not valid UTF-8" lines hides the one thing to do, which is to save
the file again as CSV. GB18030 is read when the caller names it (:mod:`satiot.core.csv_text`),
and a UTF-8 read that fails on a line GB18030 reads says so.
"""

from __future__ import annotations

import csv
import itertools
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from satiot.bss.order_items import (
    ItemError,
    ItemIn,
    OrderIn,
    TerminalIn,
    check_items,
)
from satiot.core.csv_text import (
    BOM,
    HEAD_BYTES,
    RowError,
    encoding_named,
    header_only,
    not_csv_text,
    undecodable,
)

MAX_ROWS = 10_000
#: The longest line the parser takes (a row is a few hundred bytes).
MAX_LINE_BYTES = 16 * 1024
COLUMNS = (
    "action",
    "imei",
    "dev_eui",
    "terminal_model",
    "scenario",
    "offering",
    "add_ons",
    "dev_addr",
    "nwk_s_key",
    "app_s_key",
    "iccid",
    "imsi",
    "name",
    "subscription_id",
    "reason",
)
#: Columns a file must have (the add rows' needs; modify/delete files name subscriptions).
REQUIRED_ANY = (("dev_eui", "terminal_model", "offering"), ("subscription_id",))
_SPLIT = re.compile(r"[;\s]+")

Progress = Callable[[int], None]


@dataclass
class ParsedCsv:
    """Items (one per data row, ``line`` = the row's first line) and every error found."""

    items: list[ItemIn] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0


#: What a downloaded template is saved as.
TEMPLATE_NAME = "satiot-order.csv"


def template() -> bytes:
    """An empty bulk order to fill in, with every column (empty cells take their defaults)."""
    return header_only(COLUMNS)


def _peek(chunks: Iterable[bytes], size: int) -> tuple[bytes, Iterator[bytes]]:
    """The first ``size`` bytes, and all the chunks again."""
    it = iter(chunks)
    taken: list[bytes] = []
    head = b""
    while len(head) < size:
        chunk = next(it, None)
        if chunk is None:
            break
        taken.append(chunk)
        head += chunk
    return head[:size], itertools.chain(taken, it)


def _lines(
    chunks: Iterable[bytes], bad: dict[int, str], progress: Progress | None, codec: str
) -> Iterator[str]:
    """Decoded lines (with their newline) from byte chunks; a line that cannot be decoded or
    is too long is noted in ``bad`` by its number and yielded empty, so CSV parsing goes on."""
    buffer = bytearray()
    number = 0
    seen = 0
    skipping = False

    def decoded(raw: bytes) -> str:
        nonlocal number, codec
        number += 1
        if number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
            codec = "utf-8"
        try:
            return raw.decode(codec)
        except UnicodeDecodeError as exc:
            bad[number] = undecodable(raw, codec, exc.start)
            return "\n"

    for chunk in chunks:
        seen += len(chunk)
        if progress is not None:
            progress(seen)
        buffer += chunk
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                if len(buffer) > MAX_LINE_BYTES and not skipping:
                    skipping = True
                    bad[number + 1] = f"line longer than {MAX_LINE_BYTES} bytes"
                if skipping:
                    buffer.clear()
                break
            raw = bytes(buffer[: end + 1])
            del buffer[: end + 1]
            if skipping:
                skipping = False
                number += 1
                yield "\n"
                continue
            if len(raw) > MAX_LINE_BYTES:
                bad[number + 1] = f"line longer than {MAX_LINE_BYTES} bytes"
                number += 1
                yield "\n"
                continue
            yield decoded(raw)
    if skipping:
        number += 1
        yield "\n"
    elif buffer:
        yield decoded(bytes(buffer))


def _header(cells: list[str], line: int) -> tuple[list[str], list[RowError]]:
    names = [c.strip().lower() for c in cells]
    errors: list[RowError] = []
    for n, name in enumerate(names):
        if name not in COLUMNS:
            known = ", ".join(COLUMNS)
            errors.append(RowError(line, name or f"#{n + 1}", f"unknown column (known: {known})"))
        elif names.index(name) != n:
            errors.append(RowError(line, name, "column named twice"))
    if not any(all(c in names for c in need) for need in REQUIRED_ANY):
        missing = [c for c in REQUIRED_ANY[0] if c not in names]
        errors.append(
            RowError(line, missing[0] if missing else "", f"missing columns: {', '.join(missing)}")
        )
    return names, errors


def _item(line: int, row: dict[str, str], errors: list[RowError]) -> ItemIn:
    action = row.get("action", "").lower() or "add"
    sub_id: uuid.UUID | None = None
    if row.get("subscription_id"):
        try:
            sub_id = uuid.UUID(row["subscription_id"])
        except ValueError:
            errors.append(RowError(line, "subscription_id", "not a subscription id (a UUID)"))
    terminal = None
    if action == "add":
        terminal = TerminalIn(
            dev_eui=row.get("dev_eui", ""),
            terminal_model=row.get("terminal_model", ""),
            imei=row.get("imei") or None,
            scenario=row.get("scenario") or None,
            iccid=row.get("iccid") or None,
            imsi=row.get("imsi") or None,
            name=row.get("name", ""),
            dev_addr=row.get("dev_addr") or None,
            nwk_s_key=row.get("nwk_s_key") or None,
            app_s_key=row.get("app_s_key") or None,
        )
    add_ons = tuple(a for a in _SPLIT.split(row.get("add_ons", "")) if a) or None
    return ItemIn(
        action=action,
        line=line,
        offering=row.get("offering") or None,
        add_ons=add_ons,
        terminal=terminal,
        subscription_id=sub_id,
        reason=row.get("reason") or None,
    )


def parse_order_csv(
    chunks: Iterable[bytes],
    *,
    encoding: str = "utf-8",
    max_rows: int = MAX_ROWS,
    progress: Progress | None = None,
) -> ParsedCsv:
    """Items and row errors from a CSV file given as byte chunks (see the module's format).

    ``encoding`` is one of :data:`~satiot.core.csv_text.ENCODINGS`' names (ValueError
    otherwise); ``progress`` is called with the number of bytes read so far, after each chunk.
    """
    codec = encoding_named(encoding)
    out = ParsedCsv()
    head, chunks = _peek(chunks, HEAD_BYTES)
    kind = not_csv_text(head)
    if kind is not None:
        out.errors.append(RowError(1, "", kind))
        return out
    bad: dict[int, str] = {}
    reader = csv.reader(_lines(chunks, bad, progress, codec), strict=True)
    names: list[str] | None = None
    first = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.errors.append(RowError(first, "", f"malformed CSV: {exc}"))
            if names is None:
                return _unreadable_header(out)
            first = reader.line_num + 1
            continue
        line, first = first, reader.line_num + 1
        spanned = [bad.pop(n) for n in range(line, reader.line_num + 1) if n in bad]
        if spanned:
            out.errors.append(RowError(line, "", spanned[0]))
            if names is None:
                return _unreadable_header(out)
            continue
        if not any(c.strip() for c in cells):
            continue
        if any("\x00" in c for c in cells):
            out.errors.append(RowError(line, "", "contains a NUL character"))
            if names is None:
                return _unreadable_header(out)
            continue
        if names is None:
            names, errors = _header(cells, line)
            out.errors.extend(errors)
            if errors:
                return out
            continue
        out.rows += 1
        if out.rows > max_rows:
            out.errors.append(RowError(line, "", f"more than {max_rows} rows: split the file"))
            return out
        if len(cells) != len(names):
            reason = f"expected {len(names)} fields, found {len(cells)}"
            out.errors.append(RowError(line, "", reason))
            continue
        out.items.append(
            _item(line, dict(zip(names, (c.strip() for c in cells), strict=True)), out.errors)
        )
    out.errors.extend(RowError(n, "", why) for n, why in sorted(bad.items()))
    if names is None and not out.errors:
        out.errors.append(RowError(1, "", "the file is empty: it needs a header line"))
    elif names is not None and not out.items and not out.errors:
        out.errors.append(RowError(2, "", "the file has a header but no rows"))
    checked = check_items(out.items)
    out.items = checked.items
    out.errors.extend(RowError(e.item, e.field, e.reason) for e in checked.errors)
    out.errors.sort(key=lambda e: e.line)
    return out


def _unreadable_header(out: ParsedCsv) -> ParsedCsv:
    """Stop at a header line that cannot be read: the file's one error says so."""
    last = out.errors[-1]
    reason = f"the header line is unreadable: {last.reason}; is the file CSV text?"
    out.errors[-1] = RowError(last.line, last.column, reason)
    return out


def order_from_csv(
    parsed: ParsedCsv,
    *,
    customer_id: uuid.UUID | None = None,
    billing_account_id: uuid.UUID | None = None,
    external_id: str | None = None,
    note: str | None = None,
) -> OrderIn:
    """The order a parsed file asks for: one item per row, and the rows that could not be read
    (:func:`~satiot.bss.orders.place_order` refuses the file with every bad row listed, as
    ``{line, column, reason}``, those and the ones the database checks find)."""
    return OrderIn(
        items=tuple(parsed.items),
        errors=tuple(ItemError(e.line, e.column, e.reason) for e in parsed.errors),
        customer_id=customer_id,
        billing_account_id=billing_account_id,
        external_id=external_id,
        note=note,
        source="csv",
    )
