"""Suspending and resuming many devices from one CSV file (批量停复机).

A customer stops a season's worth of devices at once (irrigation sensors over the winter, a
fleet laid up for repairs) and starts them again months later; operator staff do the same for
a customer that asked by letter. One device at a time, that is hundreds of clicks, and a file
half applied leaves nobody sure which devices still run. The columns are named on the header
line, in any order and any case:

==========  ========  ==================================================================
column      needed    meaning
==========  ========  ==================================================================
``device``  yes       the DevEUI, the IMEI, the IoT number or the subscription's id
``action``  yes       ``suspend`` or ``resume``
``reason``  yes       why (kept with the subscription and in the audit log)
==========  ========  ==================================================================

Each line moves the device's live subscription exactly as one suspension or resumption does
(:mod:`satiot.bss.subscriptions`): the network server refuses or accepts its frames again, its
number and its handle follow, the change is audited, and the rules of who may lift which
suspension hold (a customer cannot lift one the operator, the quota or an exhausted balance
made). Every line is checked and every change tried before anything is kept: a file with any
bad line is refused as a whole with every bad line named at once (:class:`StatusImportRejected`).
A device already in the state its line asks for counts as *already*, so the same file sent
twice changes nothing the second time. A file longer than one transaction should take (the
operator's shell takes up to :data:`MAX_ROWS_IN_PARTS` lines) is checked whole, reading only,
and then applied in parts (:func:`apply_in_parts`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from satiot.bss.models import Subscription
from satiot.bss.rating_store import ENDED
from satiot.bss.subscriptions import check_move, read_bindings, resume_locked, suspend_locked
from satiot.core.auth.principal import Principal
from satiot.core.csv_text import (
    FileRejected,
    RowError,
    UnreadableText,
    decode_file,
    header_only,
    named_rows,
)
from satiot.core.errors import Conflict, DomainError

Write = Callable[[], AbstractContextManager[Session]]

COLUMNS: Final = ("device", "action", "reason")
REQUIRED: Final = COLUMNS
ACTIONS: Final = ("suspend", "resume")
#: The most lines a file may hold: one transaction, in the request, moves every device, its
#: number and handle, and audits each (about 1.1 ms a device on SQLite and 1.3 on PostgreSQL
#: on a slow machine, ``satiot bench status``): 5,000 lines hold SQLite's one writer for 5–6 s,
#: up to 15 on a slow day, well inside the 30 s other writers wait.
MAX_ROWS: Final = 5_000
#: The most lines ``satiot subscriptions status`` takes from a file, applied in parts of
#: :data:`MAX_ROWS` after the whole file is checked (:func:`apply_in_parts`).
MAX_ROWS_IN_PARTS: Final = 100_000
TEMPLATE_NAME: Final = "satiot-suspend-resume.csv"
#: Looked up a thousand at a time.
_LOOKUP: Final = 1_000

_DEV_EUI = re.compile(r"[0-9A-F]{16}", re.ASCII)
_DIGITS = re.compile(r"[0-9]{11,20}", re.ASCII)
#: What each action leaves a subscription in (a line whose device is there already is done).
_TARGET: Final = {"suspend": "suspended", "resume": "active"}


class StatusImportRejected(FileRejected):
    """The file is refused as a whole; ``rows`` names every bad line (nothing was changed)."""

    slug = "status-import-rejected"
    title = "Suspend/resume file rejected"
    done = "changed"


@dataclass(frozen=True)
class StatusLine:
    """One line of the file, checked: which device, what to do and why."""

    line: int
    device: str
    action: str
    reason: str


@dataclass(frozen=True)
class ParsedLines:
    lines: list[StatusLine]
    errors: list[RowError]


@dataclass(frozen=True)
class StatusResult:
    suspended: int
    resumed: int
    already: int  # devices already in the state their line asks for
    subscription_ids: list[uuid.UUID]  # those changed now (their handles changed too)

    def __add__(self, other: StatusResult) -> StatusResult:
        """Two parts of one file, together."""
        return StatusResult(
            self.suspended + other.suspended,
            self.resumed + other.resumed,
            self.already + other.already,
            self.subscription_ids + other.subscription_ids,
        )


def template() -> bytes:
    """An empty file to fill in (see :func:`~satiot.core.csv_text.header_only`)."""
    return header_only(COLUMNS)


def read_lines(data: bytes, *, encoding: str, max_rows: int = MAX_ROWS) -> ParsedLines:
    """The changes a file asks for, every line checked on its own; StatusImportRejected for a
    file that cannot be read at all, ValueError for an unknown encoding."""
    try:
        text = decode_file(data, encoding)
    except UnreadableText as exc:
        raise StatusImportRejected([RowError(exc.line, "", exc.reason)]) from None
    read = named_rows(text, COLUMNS, REQUIRED, max_rows=max_rows, rejected=StatusImportRejected)
    errors = read.errors
    found: list[StatusLine] = []
    seen: dict[str, int] = {}
    for line, cells in read.rows:
        device = _device_key(cells["device"])
        action = cells["action"].strip().lower()
        reason = cells["reason"].strip()
        if not device:
            errors.append(
                RowError(
                    line, "device", "name the device: DevEUI, IMEI, IoT number or subscription id"
                )
            )
        elif action not in ACTIONS:
            errors.append(RowError(line, "action", f"action must be {' or '.join(ACTIONS)}"))
        elif not reason:
            errors.append(RowError(line, "reason", "say why (reason)"))
        elif (earlier := seen.setdefault(device, line)) != line:
            errors.append(RowError(line, "device", f"device already on line {earlier}"))
        else:
            found.append(StatusLine(line, device, action, reason))
    if not found and not errors:
        raise StatusImportRejected([RowError(2, "", "the file holds no devices")])
    return ParsedLines(found, errors)


def _as_id(key: str) -> uuid.UUID | None:
    """The subscription id a key names, if it is one."""
    try:
        return uuid.UUID(key)
    except ValueError:
        return None


def _device_key(text: str) -> str:
    """A device as the file names it, as looked up: an id in its canonical form, a DevEUI in
    capitals, digits (IMEI or IoT number) as they are."""
    value = text.strip()
    found = _as_id(value)
    return str(found) if found is not None else value.upper()


def apply_lines(
    session: Session,
    principal: Principal,
    parsed: ParsedLines,
    *,
    at: datetime,
) -> StatusResult:
    """Suspend or resume every line's device in ``session``'s transaction, or none: a line the
    file gets wrong or one the subscriptions refuse (unknown device, a move its state or the
    caller may not make) raises StatusImportRejected naming all of them, and the caller's
    transaction rolls back. Only the subscriptions the session sees are found."""
    subs = _live_subscriptions(session, [x.device for x in parsed.lines], lock=True)
    bound = read_bindings(session, list({sub.id: sub for sub in subs.values()}.values()))

    def move(x: StatusLine, sub: Subscription) -> None:
        if x.action == "suspend":
            suspend_locked(session, principal, sub, x.reason, at, bound=bound)
        else:
            resume_locked(session, principal, sub, x.reason, at, bound=bound)

    return _walk(parsed, subs, principal, move)


def check_lines(session: Session, principal: Principal, parsed: ParsedLines) -> StatusResult:
    """What :func:`apply_lines` would do, reading only (nothing locked or changed): raises
    StatusImportRejected for a file it would refuse; else the counts it would report."""
    subs = _live_subscriptions(session, [x.device for x in parsed.lines], lock=False)
    return _walk(parsed, subs, principal, None)


def _walk(
    parsed: ParsedLines,
    subs: dict[str, Subscription],
    principal: Principal,
    move: Callable[[StatusLine, Subscription], None] | None,
) -> StatusResult:
    """Every line against its subscription, moved by ``move`` (or only checked, without)."""
    errors: list[RowError] = list(parsed.errors)
    suspended: list[uuid.UUID] = []
    resumed: list[uuid.UUID] = []
    already = 0
    lines_of: dict[uuid.UUID, int] = {}  # the same device may be named by two of its codes
    for x in parsed.lines:
        sub = subs.get(x.device)
        if sub is None:
            errors.append(RowError(x.line, "device", f"no live subscription for {x.device!r}"))
            continue
        if (earlier := lines_of.setdefault(sub.id, x.line)) != x.line:
            errors.append(RowError(x.line, "device", f"device already on line {earlier}"))
            continue
        if sub.status == _TARGET[x.action]:
            already += 1
            continue
        try:
            if move is None:
                check_move(principal, sub, _TARGET[x.action], x.reason)
            else:
                move(x, sub)
        except DomainError as exc:
            errors.append(RowError(x.line, _column(exc), exc.detail))
            continue
        (suspended if x.action == "suspend" else resumed).append(sub.id)
    if errors:
        raise StatusImportRejected(errors)
    return StatusResult(len(suspended), len(resumed), already, suspended + resumed)


class StatusFileInterrupted(Conflict):
    """A file applied in parts stopped at a part the subscriptions refused: something changed
    them after the whole file was checked. The parts before it are kept."""

    slug = "status-import-interrupted"
    title = "Suspend/resume file applied in part"


def apply_in_parts(
    write: Write,
    read: Write,
    principal: Principal,
    parsed: ParsedLines,
    *,
    at: datetime,
    part: int = MAX_ROWS,
    progress: Callable[[int, int], None] | None = None,
) -> StatusResult:
    """A file too large for one transaction: checked whole first, reading only (a bad line
    refuses it as :func:`apply_lines` would, with nothing changed), then applied ``part``
    lines to a transaction, ``progress(done, total)`` told after each. A part refused because
    the subscriptions changed after the check raises StatusFileInterrupted; the parts before
    it are kept, and the same file sent again applies the rest (lines done count as already).
    """
    with read() as session:
        check_lines(session, principal, parsed)
    total = len(parsed.lines)
    done = StatusResult(0, 0, 0, [])
    for start in range(0, total, part):
        lines = ParsedLines(parsed.lines[start : start + part], [])
        try:
            with write() as session:
                now = apply_lines(session, principal, lines, at=at)
        except StatusImportRejected as exc:
            if start == 0:
                raise  # nothing was changed: the file is refused as a whole
            first = exc.rows[0]
            raise StatusFileInterrupted(
                f"line {first.line}: {first.reason} (changed since the file was checked); "
                f"the {start:,} lines before line {lines.lines[0].line} were applied, the rest "
                "not: send the same file again to apply the rest",
                errors=[e.as_dict() for e in exc.rows],
            ) from None
        done += now
        if progress is not None:
            progress(start + len(lines.lines), total)
    return done


def _live_subscriptions(
    session: Session, keys: Sequence[str], *, lock: bool
) -> dict[str, Subscription]:
    """The live subscriptions the keys name, by key (``lock``: locked in id order, as single
    moves lock them): ids, DevEUIs, then IMEIs and IoT numbers (digits may be either)."""
    ids = [i for i in map(_as_id, keys) if i is not None]
    digits = [k for k in keys if _DIGITS.fullmatch(k)]
    lookups: list[tuple[InstrumentedAttribute[Any], Sequence[Any]]] = [
        (Subscription.id, ids),
        (Subscription.dev_eui, [k for k in keys if _DEV_EUI.fullmatch(k)]),
        (Subscription.imei, digits),
        (Subscription.iot_number, digits),
    ]
    out: dict[str, Subscription] = {}
    for column, values in lookups:
        for i in range(0, len(values), _LOOKUP):
            stmt = (
                select(Subscription)
                .where(column.in_(values[i : i + _LOOKUP]), Subscription.status.not_in(ENDED))
                .order_by(Subscription.id)
            )
            found = session.scalars(stmt.with_for_update() if lock else stmt)
            for sub in found:  # keyed as _device_key writes it: an id in its canonical form
                out.setdefault(str(getattr(sub, column.key)), sub)
    return out


def _column(exc: DomainError) -> str:
    """The file's column a refusal is about: the one it names, else the action for a move the
    state refuses (no field), else the device (``subscription_id``)."""
    field = str(exc.extensions.get("field", ""))
    if field in COLUMNS:
        return field
    return "device" if field else "action"
