"""Fast bulk writes for the batch paths (rating, bill runs, benchmarks).

SQLAlchemy's ``executemany`` spends most of its time converting each value; for tens of
thousands of rows per transaction that costs more than the database. These helpers hand rows
to the driver directly, in the session's own transaction: ``COPY … FROM STDIN`` on PostgreSQL
and ``executemany`` with pre-converted values on SQLite, stored exactly as SQLAlchemy stores
them (UUIDs as 32 hex digits, timestamps as naive UTC text), so the ORM reads them back as
usual. Only plain columns are supported: UUID, str, int, bool, aware datetime, date, None.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session


def _sqlite_value(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or value is None:
        return value
    if kind is uuid.UUID:
        return value.hex
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def _uuid_hex(value: Any) -> Any:
    return value.hex if type(value) is uuid.UUID else _sqlite_value(value)


def _sqlite_rows(rows: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Rows in SQLite's storage form, with one converter per column chosen from the first
    row (plain text and integers pass through untouched)."""
    it = iter(rows)
    first = next(it, None)
    if first is None:
        return []
    plain = [type(v) is str or type(v) is int for v in first]
    convert = [_uuid_hex if type(v) is uuid.UUID else _sqlite_value for v in first]
    if all(plain):
        return [tuple(first), *(tuple(r) for r in it)]
    out = [tuple(v if p else c(v) for v, p, c in zip(first, plain, convert, strict=True))]
    for row in it:
        out.append(
            tuple(
                v if p and (type(v) is str or type(v) is int or v is None) else c(v)
                for v, p, c in zip(row, plain, convert, strict=True)
            )
        )
    return out


def insert_rows(
    session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``; return how many."""
    connection = session.connection()
    raw: Any = connection.connection.driver_connection
    names = ", ".join(columns)
    count = 0
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count
    converted = _sqlite_rows(rows)
    marks = ", ".join("?" * len(columns))
    cur = raw.cursor()
    try:
        cur.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", converted)  # noqa: S608
    finally:
        cur.close()
    return len(converted)


def update_rows(
    session: Session, table: str, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> int:
    """``UPDATE table SET columns… WHERE key = …`` for each row (values in ``columns``
    order, then the key), through the driver's ``executemany``."""
    if not rows:
        return 0
    connection = session.connection()
    raw: Any = connection.connection.driver_connection
    postgres = connection.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    sets = ", ".join(f"{c} = {mark}" for c in columns)
    sql = f"UPDATE {table} SET {sets} WHERE {key} = {mark}"  # noqa: S608 - names are ours
    values = rows if postgres else [tuple(_sqlite_value(v) for v in row) for row in rows]
    cur = raw.cursor()
    try:
        cur.executemany(sql, values)
    finally:
        cur.close()
    return len(rows)
