"""The two texts of a UTC instant: ISO-8601 with a ``Z`` (what every delivered timestamp looks
like) and naive UTC with microseconds (how SQLAlchemy stores a timestamp on SQLite).

Formatting an aware datetime costs several times more than parsing one, and ingest writes each
reception's time into a row and into the message delivered to the customer, so both texts of
an instant are made together, from one formatting, and remembered for recent instants. A
station usually posts its times already in the delivered form; :func:`parse_utc` then takes
that text as it is and makes neither. Equal instants in other zones have the same texts, so
sharing an entry between them is exact.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

#: Recent instants' (ISO-Z, SQLite) texts; cleared when full (a bound, not an LRU: a batch
#: refills what it needs for one formatting each).
_TEXTS: dict[datetime, tuple[str, str]] = {}
_MAX_REMEMBERED: Final = 16_384
#: Exactly the text :func:`iso_z` gives (ASCII digits; a fraction only when it is not zero).
_CANONICAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?Z")


def _texts_of_iso(iso: str) -> tuple[str, str]:
    # "YYYY-MM-DDTHH:MM:SS[.ffffff]Z": isoformat pads the year to four digits and writes the
    # fraction only when it is not zero; SQLite's text always has it.
    if len(iso) == 27:
        return iso, f"{iso[:10]} {iso[11:26]}"
    return iso, f"{iso[:10]} {iso[11:19]}.000000"


def _remember(when: datetime, texts: tuple[str, str]) -> tuple[str, str]:
    if len(_TEXTS) >= _MAX_REMEMBERED:
        _TEXTS.clear()
    _TEXTS[when] = texts
    return texts


def texts(when: datetime) -> tuple[str, str]:
    """``(iso_z, sqlite)`` for an aware datetime."""
    found = _TEXTS.get(when)
    if found is None:
        if when.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        utc = when if when.tzinfo is UTC else when.astimezone(UTC)
        found = _remember(when, _texts_of_iso(utc.isoformat()[:-6] + "Z"))
    return found


def iso_z(when: datetime) -> str:
    """UTC ISO-8601 with a ``Z``, microseconds only when there are any."""
    return texts(when)[0]


def sqlite_text(when: datetime) -> str:
    """Naive UTC text, ``YYYY-MM-DD HH:MM:SS.ffffff``, as SQLAlchemy stores it on SQLite."""
    return texts(when)[1]


def parse_utc(text: str) -> datetime | None:
    """The aware UTC instant an ISO-8601 text names, or None when it names no time zone.

    Raises ValueError when it is not ISO-8601. A text already in the delivered form is kept as
    that instant's text, so neither text need be formatted again."""
    when = datetime.fromisoformat(text)
    zone = when.tzinfo
    if zone is not UTC:  # a "Z" or "+00:00" text parses to UTC itself
        if zone is None or when.utcoffset() is None:
            return None
        return when.astimezone(UTC)  # not in the delivered form, which ends in "Z"
    if (
        text[-1] == "Z"
        and when not in _TEXTS
        and (len(text) == 20 or when.microsecond)
        and _CANONICAL.fullmatch(text)
    ):
        _remember(when, _texts_of_iso(text))
    return when
