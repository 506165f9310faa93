"""Database engines and sessions for the embedded (SQLite) and server (PostgreSQL) backends.

SQLite runs in WAL mode so readers never block the writer. Writing transactions start with
``BEGIN IMMEDIATE``: a deferred transaction that first reads and later writes fails at once with
``SQLITE_BUSY_SNAPSHOT`` when another process committed in between, whereas an immediate one
waits its turn (``busy_timeout``). Readers keep deferred transactions. Writers of one process
queue first come, first served (:mod:`satiot.core.write_queue`) before SQLite's own lock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, TypeDecorator, create_engine, event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from satiot.core import lengths  # noqa: F401  (registers the flush-time length check)
from satiot.core.clock import as_utc
from satiot.core.write_queue import WriteQueue, WriteQueueTimeout

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base shared by every subsystem's models."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back aware and in UTC, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


#: How long a writer waits for the embedded database before it gives up.
BUSY_TIMEOUT_S = 30.0


#: Pages the write-ahead log may hold before a commit copies them into the database file
#: (SQLite's default is 1,000, 4 MB). Ingest and rating dirty the same index and device pages
#: batch after batch; at 10,000 (40 MB of log) each is copied back once for many changes
#: rather than every three or four batches: 5 % less CPU per ingested reception.
WAL_CHECKPOINT_PAGES = 10_000

#: What every connection to the embedded database sets (the benchmarks' floors use them too).
SQLITE_PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=NORMAL",
    "foreign_keys=ON",
    f"wal_autocheckpoint={WAL_CHECKPOINT_PAGES}",
)


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module so that BEGIN is ours to emit.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    for pragma in SQLITE_PRAGMAS:
        cur.execute(f"PRAGMA {pragma}")
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine with the pragmas and pool settings each backend needs."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S},
        )
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


@dataclass(frozen=True)
class Database:
    """An engine plus the two session factories the application uses."""

    engine: Engine
    reader: sessionmaker[Session]
    writer: sessionmaker[Session]
    #: SQLite's writers of this process, in the order they came (None on PostgreSQL, whose
    #: writers do not exclude one another).
    write_queue: WriteQueue | None = field(default=None, compare=False)

    @classmethod
    def connect(cls, url: str, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Database:
        """``busy_timeout_s``: how long a writer of this process waits in the queue."""
        engine = make_engine(url)
        write_engine = engine.execution_options(sqlite_begin="IMMEDIATE")
        sqlite = engine.dialect.name == "sqlite"
        return cls(
            engine=engine,
            reader=sessionmaker(engine, expire_on_commit=False),
            writer=sessionmaker(write_engine, expire_on_commit=False),
            write_queue=WriteQueue(busy_timeout_s) if sqlite else None,
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A writing unit of work: commits on success, rolls back on any exception."""
        if self.write_queue is None:
            with self.writer() as session, session.begin():
                yield session
            return
        try:
            self.write_queue.acquire()
        except WriteQueueTimeout as exc:
            # What SQLite itself raises when its busy timeout runs out, so that callers who
            # retry a locked database (ingest, order fulfilment) treat both alike.
            locked = sqlite3.OperationalError(f"database is locked ({exc})")
            raise OperationalError("BEGIN IMMEDIATE", None, locked) from exc
        try:
            with self.writer() as session, session.begin():
                yield session
        finally:
            self.write_queue.release()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work. Closing (not rolling back) ends its transaction, so the
        objects it loaded stay readable after the block."""
        with self.reader() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
