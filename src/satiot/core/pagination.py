"""Cursor pagination: stable under inserts, O(page) per request, opaque to clients.

A cursor encodes the sort key of the last row returned; the next page is ``key > last``. With
time-ordered ids (UUIDv7) or sequence numbers as keys, no offset scan is ever needed.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Row, Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from satiot.core.errors import InvalidInput

T = TypeVar("T")
K = TypeVar("K")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def encode_cursor(value: Any) -> str:
    raw = json.dumps({"k": str(value) if isinstance(value, uuid.UUID) else value})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))["k"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("cursor is not one this server issued", field="cursor") from exc


def decode_uuid_cursor(cursor: str) -> uuid.UUID:
    """The id a cursor of :func:`encode_cursor` holds (InvalidInput for any other text)."""
    try:
        return uuid.UUID(str(decode_cursor(cursor)))
    except ValueError as exc:
        raise InvalidInput("cursor is not one this server issued", field="cursor") from exc


def paginate(
    session: Session,
    stmt: Select[Any],
    key: InstrumentedAttribute[Any],
    *,
    cursor: str | None,
    limit: int,
    descending: bool = False,
) -> Page[Any]:
    """Run ``stmt`` (a SELECT of one entity) one page at a time, ordered by ``key``."""
    if limit < 1:
        raise InvalidInput("limit must be at least 1", field="limit")
    if cursor:
        if key.type.python_type is uuid.UUID:
            last = decode_uuid_cursor(cursor)
        else:
            last = decode_cursor(cursor)
            if not isinstance(last, key.type.python_type) or isinstance(last, bool):
                # A forged cursor of the wrong type would otherwise reach the database as an
                # error.
                raise InvalidInput("cursor is not one this server issued", field="cursor")
        stmt = stmt.where(key < last if descending else key > last)
    stmt = stmt.order_by(key.desc() if descending else key.asc()).limit(limit + 1)
    return cut_page(list(session.scalars(stmt)), limit, lambda row: getattr(row, key.key))


def cut_page(rows: Sequence[T], limit: int, key: Callable[[T], Any]) -> Page[T]:
    """A page of ``limit`` from ``rows`` read ``limit + 1`` at a time: the extra row, when
    there is one, says that another page follows, from the last row's key."""
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(key(rows[-1])) if more and rows else None)


def walk(
    fetch: Callable[[K | None], Sequence[T]], key: Callable[[T], K], chunk: int
) -> Iterator[Sequence[T]]:
    """Every row, a chunk at a time: ``fetch(after)`` reads at most ``chunk`` rows in key
    order after the key ``after`` (None: from the start), as exports do to stream a whole
    list with one statement a chunk whatever its length."""
    after: K | None = None
    while True:
        rows = fetch(after)
        if not rows:
            return
        yield rows
        if len(rows) < chunk:
            return
        after = key(rows[-1])


def walk_rows(
    session: Session,
    stmt: Select[*tuple[Any, ...]],
    key: InstrumentedAttribute[Any],
    chunk: int,
) -> Iterator[Sequence[Row[*tuple[Any, ...]]]]:
    """The rows of ``stmt`` (one that selects ``key`` among its columns), a chunk at a time
    in ``key`` order: :func:`walk` over one statement a chunk."""

    def fetch(after: Any) -> Sequence[Row[*tuple[Any, ...]]]:
        page = stmt.order_by(key).limit(chunk)
        if after is not None:
            page = page.where(key > after)
        return session.execute(page).all()

    return walk(fetch, lambda row: getattr(row, key.key), chunk)
