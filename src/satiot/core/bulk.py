"""Fast bulk writes for the batch paths (ingest, the event log, rating, bill runs, benchmarks).

SQLAlchemy's ``executemany`` spends most of its time converting each value; for tens of
thousands of rows per transaction that costs more than the database. These helpers hand rows
to the driver with values already in the form it takes, in the session's own transaction,
stored exactly as SQLAlchemy stores them (on SQLite: UUIDs as 32 hex digits, timestamps as
naive UTC text, booleans as 0/1), so the ORM reads them back as usual. Only plain columns are
supported: UUID, str, int, float, bool, bytes, aware datetime, date, None.

- :func:`insert_rows` and :func:`update_rows` go to the driver's cursor itself (``COPY … FROM
  STDIN`` on PostgreSQL): the fastest, but unseen by SQLAlchemy's events and its error
  wrapping; for the batch jobs (rating, bill runs).
- :func:`execute` runs driver SQL through SQLAlchemy's connection (``exec_driver_sql``): its
  events fire (statement counts, logging) and errors arrive as ``DBAPIError`` (so a caller's
  deadlock retry still works), only the per-value processing is skipped. The
  caller builds rows in SQLite's storage form (``uuid.hex``, :func:`sqlite_timestamp`, ``int``
  for booleans), or on PostgreSQL column arrays for :func:`unnest_insert` (one statement
  whatever the number of rows); for the request paths (ingest, the event log).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import CursorResult
from sqlalchemy.orm import Session

from satiot.core.ids import uuid_from_int
from satiot.core.instants import sqlite_text

#: An aware datetime as SQLAlchemy stores it on SQLite: naive UTC text. Recent instants are
#: remembered (:mod:`satiot.core.instants`): a batch writes its own time into every row, and
#: each copy's reception time into more than one.
sqlite_timestamp = sqlite_text


def sqlite_uuid(value: str) -> uuid.UUID:
    """A UUID read raw from SQLite (32 hex digits), as SQLAlchemy would return it."""
    return uuid_from_int(int(value, 16))


def sqlite_datetime(value: str | None) -> datetime | None:
    """A timestamp read raw from SQLite (naive UTC text), aware, as ``UTCDateTime`` returns
    it."""
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _sqlite_value(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or value is None:
        return value
    if kind is uuid.UUID:
        return value.hex
    if isinstance(value, datetime):
        return sqlite_timestamp(value)
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


#: An id in the form the database stores and the driver takes: 32 hex digits on SQLite, a
#: UUID on PostgreSQL. A batch that writes one id into several rows carries it in that form,
#: as read from the database or made once, instead of converting it per row and column.
StoredId = uuid.UUID | str


def stores_hex(session: Session) -> bool:
    """Whether this session's database stores ids as hex text (SQLite) rather than as UUIDs."""
    return session.connection().dialect.name == "sqlite"


def stored_form(value: uuid.UUID, hex_ids: bool) -> StoredId:
    """``value`` as stored: hex text where ``hex_ids`` (see :func:`stores_hex`), else itself."""
    return value.hex if hex_ids else value


def stored_id(session: Session, value: uuid.UUID) -> StoredId:
    """``value`` as this session's database stores it (see :data:`StoredId`)."""
    return stored_form(value, stores_hex(session))


def driver_sql(sql: str) -> dict[str, str]:
    """``sql``, written with ``?`` placeholders, in each driver's parameter style by dialect
    name (psycopg takes ``%s``). For statements with no ``?`` or ``%`` of their own."""
    return {"sqlite": sql, "postgresql": sql.replace("?", "%s")}


def execute(session: Session, sql: str, params: Any) -> CursorResult[Any]:
    """Run driver SQL on the session's connection: ``params`` one tuple (one execution) or a
    list of tuples (``executemany``), already in the driver's form."""
    return session.connection().exec_driver_sql(sql, params)


def uuid_text_sql(dialect: str, column: str) -> str:
    """SQL for a stored UUID ``column`` as ``str(uuid)`` writes it (lower-case hex with
    dashes): on SQLite the id is stored as 32 hex digits, on PostgreSQL it is a ``uuid``."""
    if dialect == "postgresql":
        return f"CAST({column} AS text)"
    c = column
    return (
        f"(substr({c}, 1, 8) || '-' || substr({c}, 9, 4) || '-' || substr({c}, 13, 4) || '-' "
        f"|| substr({c}, 17, 4) || '-' || substr({c}, 21))"
    )


def sqlite_values_sql(count: int, width: int) -> str:
    """``VALUES (?, …), …`` for ``count`` rows of ``width`` columns."""
    row = "(" + ", ".join("?" * width) + ")"
    return "VALUES " + ", ".join([row] * count)


#: Host parameters in one SQLite statement (SQLITE_MAX_VARIABLE_NUMBER since 3.32).
SQLITE_MAX_VARIABLES = 32766


def sqlite_chunks(rows: Sequence[Sequence[Any]], width: int) -> list[Sequence[Sequence[Any]]]:
    """``rows`` cut so that each piece fits one multi-row SQLite statement."""
    size = max(1, SQLITE_MAX_VARIABLES // width)
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def unnest_insert(
    table: str,
    columns: Sequence[tuple[str, str]],
    *,
    order_by: Sequence[str] = (),
    conflict: Sequence[str] | None = None,
    returning: str | None = None,
) -> str:
    """PostgreSQL: ``INSERT INTO table … SELECT … FROM unnest(%b::type[], …)``, one array per
    column (see :func:`pg_columns`), in ``order_by`` order, skipping rows that conflict on
    ``conflict`` if given. The text does not depend on the number of rows, so the server
    prepares it once. The arrays travel in binary (``%b``): psycopg's text form escapes every
    element with a regular expression, which costs more than the insert. ``json`` columns
    travel as text and are cast per row."""
    names = ", ".join(name for name, _ in columns)
    arrays = ", ".join(f"%b::{'text' if kind == 'json' else kind}[]" for _, kind in columns)
    picked = ", ".join(name + ("::json" if kind == "json" else "") for name, kind in columns)
    sql = f"INSERT INTO {table} ({names}) SELECT {picked} FROM unnest({arrays}) AS t({names})"  # noqa: S608 - names are ours
    if order_by:
        sql += " ORDER BY " + ", ".join(order_by)
    if conflict is not None:
        sql += f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
    if returning:
        sql += f" RETURNING {returning}"
    return sql


def pg_columns(rows: Sequence[Sequence[Any]]) -> tuple[list[Any], ...]:
    """Rows turned into one list per column: the parameters of an :func:`unnest_insert`."""
    return tuple(list(column) for column in zip(*rows, strict=True))
