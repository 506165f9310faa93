"""Text that must fit its column, checked before it is stored.

PostgreSQL refuses a value longer than its ``VARCHAR`` at INSERT, with an error that names no
field; SQLite stores it whole. The API's request models carry the same limits, but the CLI and
other callers reach the domain functions directly: those functions check here, so a long value
is the same clear error on both databases and from every door. Every ORM flush checks again
(:func:`_check_lengths`, registered when :mod:`satiot.core.db` is imported), for the paths
that do not.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from sqlalchemy import String, event, inspect
from sqlalchemy.orm import Mapper, Session

from satiot.core.errors import InvalidInput

#: C0 controls, DEL and C1 controls (Unicode category Cc).
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")

#: Unicode's explicit directional embeddings, overrides and isolates (U+202A-U+202E,
#: U+2066-U+2069). In a name they reorder what follows them wherever the name is shown, so a
#: customer's name could make a listing, an audit line or an invoice read differently from
#: what is stored (the "Trojan Source" trick). Right-to-left names need none of them: the
#: implicit marks U+200E, U+200F and U+061C, which reorder nothing around them, stay allowed.
BIDI_CONTROL_RE = re.compile("[\u202a-\u202e\u2066-\u2069]")


def unsafe_character(text: str) -> str | None:
    """Why ``text`` cannot be a name or label shown to people (the character it holds), or
    None when it can."""
    for pattern, kind in ((CONTROL_RE, "a control"), (BIDI_CONTROL_RE, "a bidirectional control")):
        found = pattern.search(text)
        if found is not None:
            return f"contains {kind} character (U+{ord(found.group()):04X})"
    return None


def fits(value: str | None, column: Any, field: str) -> str | None:
    """``value`` if ``column`` (a mapped ``String(n)`` attribute) holds it; InvalidInput naming
    ``field`` otherwise."""
    limit = getattr(column.type, "length", None)
    if value is not None and limit is not None and len(value) > limit:
        raise InvalidInput(f"{field} is {len(value)} characters; at most {limit}", field=field)
    return value


def plain_text(value: str, column: Any, field: str) -> str:
    """``value`` trimmed, if it is text without control characters that ``column`` holds;
    InvalidInput naming ``field`` otherwise.

    A control character in a name or label is a broken file or a paste accident: PostgreSQL
    refuses NUL at INSERT without naming the field, and ESC or a line break would garble the
    terminal, CSV and report output the value ends up in; a directional override would
    reorder how it reads (:data:`BIDI_CONTROL_RE`). The API refuses only NUL, and the CLI
    reaches the domain directly, so the domain checks for every door.
    """
    text = value.strip()
    if not text:
        raise InvalidInput(f"{field} must not be empty", field=field)
    unsafe = unsafe_character(text)
    if unsafe is not None:
        raise InvalidInput(f"{field} {unsafe}", field=field)
    fits(text, column, field)
    return text


def optional_text(value: str | None, column: Any, field: str) -> str:
    """:func:`plain_text` for a label that may be left out: blank (or None) is ``""``."""
    if value is None or not value.strip():
        return ""
    return plain_text(value, column, field)


# -- the last line of defence: every ORM flush ------------------------------------------------


@cache
def _limits(mapper: Mapper[Any]) -> tuple[tuple[str, int], ...]:
    """(attribute, length) of each of the mapped class's ``String(n)`` columns."""
    out = []
    for attr in mapper.column_attrs:
        for column in attr.columns:
            limit = getattr(column.type, "length", None)
            if isinstance(limit, int) and isinstance(column.type, String):
                out.append((attr.key, limit))
    return tuple(out)


@event.listens_for(Session, "before_flush")
def _check_lengths(session: Session, _ctx: Any, _instances: Any) -> None:
    """Refuse a flush that would store text longer than its column, naming the field.

    Domain functions check what they take (:func:`fits`), and the API's models carry the same
    limits; this catches whatever a path forgot, before the database sees it, so that SQLite
    (which would store it whole) and PostgreSQL (which would refuse it without saying which
    field) give the same one clear error. Only values being written are looked at: the new
    rows' and, for changed rows, the attributes that changed.
    """
    for obj in session.new:
        state = inspect(obj)
        for key, limit in _limits(state.mapper):
            _check(state.dict.get(key), limit, state.mapper, key)
    for obj in session.dirty:
        state = inspect(obj)
        for key, limit in _limits(state.mapper):
            if key in state.committed_state:  # changed since loaded
                _check(state.dict.get(key), limit, state.mapper, key)


def _check(value: Any, limit: int, mapper: Mapper[Any], key: str) -> None:
    if isinstance(value, str) and len(value) > limit:
        raise InvalidInput(
            f"{key} is {len(value)} characters; at most {limit}",
            field=key,
            entity=mapper.class_.__name__,
        )
