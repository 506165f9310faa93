"""Licence lists: the operator's register of licensed terminal models, imported from a CSV.

An operator keeps the list in a spreadsheet (MIIT publishes no lookup API) and imports it
whole, again after each renewal. The columns are named on the header line, in any order and
any case: ``name``, ``equipment_name``, ``manufacturer``, ``applicant``, ``licence_number``,
``issued_on`` and ``expires_on`` (``YYYY-MM-DD``), and optionally ``tacs`` (8-digit type
allocation codes separated by spaces or ``;``).

Every line is checked before anything is stored, and a list with any bad line is refused as a
whole with every bad line named (:class:`LicenceListRejected`): an operator fixing a list of a
few hundred models wants the whole list of mistakes at once, not one per attempt. A list that
names the same model or licence number twice, or a licence number the register holds for
another model, is refused the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.core.auth.principal import Principal
from satiot.core.csv_text import (
    FileRejected,
    RowError,
    UnreadableText,
    decode_file,
    header_only,
    named_rows,
)
from satiot.core.days import business_day
from satiot.core.errors import InvalidInput
from satiot.oss.models import TerminalModel
from satiot.oss.terminals import (
    TerminalModelSpec,
    create_model,
    model_view,
    update_model,
)

#: The columns, in the order a template lists them; every one but ``tacs`` is needed.
COLUMNS: Final = (
    "name",
    "equipment_name",
    "manufacturer",
    "applicant",
    "licence_number",
    "issued_on",
    "expires_on",
    "tacs",
)
REQUIRED: Final = COLUMNS[:-1]
#: The most lines a list may hold (MIIT's whole register of satellite terminals is far less).
MAX_ROWS: Final = 10_000
_TAC_SPLIT = re.compile(r"[;\s]+")


class LicenceListRejected(FileRejected):
    """The list is refused as a whole; ``rows`` names every bad line (nothing was stored)."""

    slug = "licence-list-rejected"
    title = "Licence list rejected"


@dataclass(frozen=True)
class ListedModel:
    """One line of the list, checked: the line it came from and the model it records."""

    line: int
    spec: TerminalModelSpec


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int


#: What a downloaded template is saved as.
TEMPLATE_NAME: Final = "satiot-licence-list.csv"


def template() -> bytes:
    """An empty list to fill in (see :func:`~satiot.core.csv_text.header_only`)."""
    return header_only(COLUMNS)


def read_licence_list(data: bytes, *, encoding: str, at: datetime) -> list[ListedModel]:
    """The models a file lists, every line checked as of ``at``; LicenceListRejected names
    every bad line, and ValueError an unknown encoding."""
    try:
        text = decode_file(data, encoding)
    except UnreadableText as exc:
        raise LicenceListRejected([RowError(exc.line, "", exc.reason)]) from None
    return parse_licence_list(text, at=at)


def _spec(line: int, cells: dict[str, str], today: date) -> TerminalModelSpec | RowError:
    dates = {}
    for key in ("issued_on", "expires_on"):
        try:
            dates[key] = date.fromisoformat(cells[key])
        except ValueError:
            return RowError(line, key, f"{key} {cells[key]!r} is not a date (YYYY-MM-DD)")
    try:
        return TerminalModelSpec(
            name=cells["name"],
            equipment_name=cells["equipment_name"],
            manufacturer=cells["manufacturer"],
            applicant=cells["applicant"],
            licence_number=cells["licence_number"],
            tacs=tuple(t for t in _TAC_SPLIT.split(cells.get("tacs", "")) if t),
            **dates,
        ).validated(today=today)
    except InvalidInput as exc:
        return RowError(line, str(exc.extensions.get("field", "")), exc.detail)


def parse_licence_list(text: str, *, at: datetime) -> list[ListedModel]:
    """The models the text lists (see the module), every line checked as of ``at`` (China's
    day: MIIT dates licences in Beijing); LicenceListRejected names every bad line."""
    today = business_day(at)
    read = named_rows(
        text, COLUMNS, REQUIRED, max_rows=MAX_ROWS, rejected=LicenceListRejected, what="list"
    )
    errors = read.errors
    listed: list[ListedModel] = []
    seen: dict[tuple[str, str], int] = {}
    for line, cells in read.rows:
        spec = _spec(line, cells, today)
        if isinstance(spec, RowError):
            errors.append(spec)
            continue
        twice = _twice(seen, line, spec)
        if twice is not None:
            errors.append(twice)
            continue
        listed.append(ListedModel(line, spec))
    if errors:
        raise LicenceListRejected(errors)
    if not listed:
        raise LicenceListRejected([RowError(2, "", "the list holds no terminal models")])
    return listed


def _twice(seen: dict[tuple[str, str], int], line: int, spec: TerminalModelSpec) -> RowError | None:
    for column, label, value in (
        ("name", "model", spec.name),
        ("licence_number", "licence number", spec.licence_number),
    ):
        earlier = seen.setdefault((column, value), line)
        if earlier != line:
            return RowError(line, column, f"{label} {value!r} already on line {earlier}")
    return None


def import_licence_list(
    session: Session, principal: Principal, listed: Sequence[ListedModel], *, at: datetime
) -> ImportResult:
    """Create the new models and update known ones (by name), each change audited; a licence
    number the register holds for another model refuses the list (moving a number from one
    model to another is two imports: free it, then give it)."""
    known = {
        m.name: m
        for m in session.scalars(
            select(TerminalModel).where(TerminalModel.name.in_([x.spec.name for x in listed]))
        )
    }
    _check_licences(session, listed)
    created = updated = 0
    for item in listed:
        model = known.get(item.spec.name)
        if model is None:
            create_model(session, principal, item.spec, at=at)
            created += 1
            continue
        before = model_view(model)
        update_model(session, principal, model.id, asdict(item.spec), at=at, reason="import")
        updated += model_view(model) != before
    return ImportResult(created, updated, len(listed) - created - updated)


def _check_licences(session: Session, listed: Sequence[ListedModel]) -> None:
    numbers = {x.spec.licence_number: x for x in listed}
    holders = session.execute(
        select(TerminalModel.licence_number, TerminalModel.name).where(
            TerminalModel.licence_number.in_(list(numbers))
        )
    ).all()
    errors = []
    for number, holder in holders:
        item = numbers[number]
        if holder != item.spec.name:
            errors.append(
                RowError(
                    item.line,
                    "licence_number",
                    f"licence number {number} is on record for terminal model {holder}",
                )
            )
    if errors:
        raise LicenceListRejected(errors)
