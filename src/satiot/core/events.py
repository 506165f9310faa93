"""The event log (transactional outbox) and its consumers.

A change and the event that describes it commit together: :func:`emit` queues the event on the
caller's session and it is numbered and inserted by that session's commit (see
:mod:`satiot.core.logs`). Consumers read the log in sequence order. Each batch runs in one
transaction that applies the handler's database effects, marks every event processed and moves
the consumer's cursor, so a consumer killed at any instant resumes exactly where its last commit
left it: nothing lost, nothing applied twice. Effects outside the database (an HTTP call, an
MQTT publish) are at-least-once; they carry the event id so the receiver can drop repeats.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from satiot.core import bulk
from satiot.core.clock import Clock
from satiot.core.db import Database
from satiot.core.errors import InvalidInput
from satiot.core.ids import new_id
from satiot.core.logs import queue, register_log
from satiot.core.models import ConsumerCursor, Event, LogHead, ProcessedEvent

log = logging.getLogger(__name__)

LOG_NAME = "events"


@dataclass(slots=True)
class _Queued:
    """An event waiting for its transaction's commit: the row's values, without the ORM's
    per-object bookkeeping (ingest queues hundreds per transaction)."""

    id: uuid.UUID
    type: str
    tenant_id: uuid.UUID | None
    subject_type: str | None
    subject_id: str | None
    payload: dict[str, Any]
    occurred_at: datetime


_EVENT_COLUMNS = (
    ("seq", "bigint"),
    ("id", "uuid"),
    ("type", "varchar"),
    ("tenant_id", "uuid"),
    ("subject_type", "varchar"),
    ("subject_id", "varchar"),
    ("payload", "json"),
    ("occurred_at", "timestamptz"),
)
_INSERT_EVENTS = {
    "postgresql": bulk.unnest_insert("events", _EVENT_COLUMNS),
    "sqlite": (
        f"INSERT INTO events ({', '.join(name for name, _ in _EVENT_COLUMNS)}) "  # noqa: S608
        f"VALUES ({', '.join('?' * len(_EVENT_COLUMNS))})"
    ),
}


_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def payload_text(payload: dict[str, Any]) -> str:
    """An event's payload as stored: compact JSON text, which SQLAlchemy's JSON type reads.

    ``orjson`` writes it ten times faster than ``json.dumps``, and ingest writes one event per
    accepted uplink. What ``orjson`` refuses (integers past 64 bits, keys that are not text)
    goes to ``json.dumps``, so a payload stores exactly when it did before; datetimes and
    dataclasses are refused by both, as before, instead of being stored in a form of
    ``orjson``'s choosing. Non-finite floats become ``null`` (PostgreSQL's ``json`` refuses
    ``NaN``)."""
    try:
        return orjson.dumps(payload, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(payload)


def _write_events(session: Session, entries: Sequence[Any], first: int, prev_hash: str) -> str:
    # One statement for all of them, the values handed to the driver as they are stored
    # (:mod:`satiot.core.bulk`): the ORM unit of work, and even SQLAlchemy's per-value
    # processing, cost several times more per row than the insert itself.
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        rows = [
            (
                first + offset,
                ev.id,
                ev.type,
                ev.tenant_id,
                ev.subject_type,
                ev.subject_id,
                payload_text(ev.payload),
                ev.occurred_at,
            )
            for offset, ev in enumerate(entries)
        ]
        bulk.execute(session, _INSERT_EVENTS[dialect], bulk.pg_columns(rows))
    else:
        ts = bulk.sqlite_timestamp
        rows = [
            (
                first + offset,
                ev.id.hex,
                ev.type,
                None if ev.tenant_id is None else ev.tenant_id.hex,
                ev.subject_type,
                ev.subject_id,
                payload_text(ev.payload),
                ts(ev.occurred_at),
            )
            for offset, ev in enumerate(entries)
        ]
        bulk.execute(session, _INSERT_EVENTS[dialect], rows)
    return prev_hash  # the event log is ordered, not chained


register_log(LOG_NAME, _write_events)


def emit(
    session: Session,
    type: str,
    *,
    at: datetime,
    payload: dict[str, Any],
    tenant_id: uuid.UUID | None = None,
    subject: tuple[str, str] | None = None,
    event_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Queue an event in ``session``'s transaction and return its id (its seq comes at commit).

    ``event_id`` is for a batch that numbers its rows from one block of ids (ingest); by
    default the event gets a fresh one."""
    if event_id is None:
        event_id = new_id()
    queue(
        session,
        LOG_NAME,
        _Queued(
            event_id,
            type,
            tenant_id,
            subject[0] if subject else None,
            subject[1] if subject else None,
            payload,
            at,
        ),
    )
    return event_id


Handler = Callable[[Session, Event], None]
#: Applies the log's events with ``after < seq <= last`` at once (set-based, in SQL).
RangeHandler = Callable[[Session, int, int], None]


@dataclass(frozen=True)
class Consumer:
    """A named reader of the event log. ``types`` limits which events reach the handler.

    A consumer with ``apply_range`` takes each batch as a range of the log instead of one
    event at a time, so it can apply the batch in a few set-based statements without loading
    the events into Python. The kernel then writes no processed marks for it: what it writes
    must itself make a re-read range harmless (rating's usage records are unique by event id),
    and the cursor, moved in the same transaction, keeps normal consumption exactly-once.
    ``handler`` still serves the one-event-at-a-time paths (the message bus workers).
    """

    name: str
    handler: Handler
    types: frozenset[str] | None = None
    batch_size: int = 200
    apply_range: RangeHandler | None = None


@dataclass
class ConsumerStatus:
    name: str
    position: int
    head: int
    updated_at: datetime | None = field(default=None)

    @property
    def lag(self) -> int:
        return max(0, self.head - self.position)


def consume_batch(db: Database, consumer: Consumer, clock: Clock) -> int:
    """Apply the next batch of events to ``consumer``; return how many events it read."""
    with db.write() as session:
        cursor = session.get(ConsumerCursor, consumer.name, with_for_update=True)
        if cursor is None:
            cursor = ConsumerCursor(name=consumer.name, position=0, updated_at=clock.now())
            session.add(cursor)
            session.flush()
        if consumer.apply_range is not None:
            return _consume_range(session, consumer, consumer.apply_range, cursor, clock.now())
        events = session.scalars(
            select(Event)
            .where(Event.seq > cursor.position)
            .order_by(Event.seq)
            .limit(consumer.batch_size)
        ).all()
        if not events:
            return 0
        done = set(
            session.scalars(
                select(ProcessedEvent.event_id).where(
                    ProcessedEvent.consumer == consumer.name,
                    ProcessedEvent.event_id.in_([e.id for e in events]),
                )
            )
        )
        now = clock.now()
        for ev in events:
            if ev.id in done or (consumer.types is not None and ev.type not in consumer.types):
                continue
            consumer.handler(session, ev)
            session.add(
                ProcessedEvent(
                    consumer=consumer.name, event_id=ev.id, event_seq=ev.seq, processed_at=now
                )
            )
        cursor.position = events[-1].seq
        cursor.updated_at = now
        return len(events)


def _consume_range(
    session: Session,
    consumer: Consumer,
    apply: RangeHandler,
    cursor: ConsumerCursor,
    now: datetime,
) -> int:
    window = (
        select(Event.seq)
        .where(Event.seq > cursor.position)
        .order_by(Event.seq)
        .limit(consumer.batch_size)
        .subquery()
    )
    count, last = session.execute(select(func.count(), func.max(window.c.seq))).one()
    if not count:
        return 0
    apply(session, cursor.position, int(last))
    cursor.position = int(last)
    cursor.updated_at = now
    return int(count)


def run_consumer(
    db: Database,
    consumer: Consumer,
    clock: Clock,
    stop: threading.Event,
    *,
    idle_wait_s: float = 0.5,
    error_wait_s: float = 5.0,
) -> None:
    """Consume until ``stop`` is set. A failing batch is rolled back and retried after a pause;
    the consumer's lag (``satiot events status``) shows when it is stuck."""
    while not stop.is_set():
        try:
            n = consume_batch(db, consumer, clock)
        except Exception:
            log.exception("consumer %s failed; retrying in %.0fs", consumer.name, error_wait_s)
            stop.wait(error_wait_s)
            continue
        if n == 0:
            stop.wait(idle_wait_s)


def head(session: Session) -> int:
    """The sequence number of the newest committed event."""
    return int(session.scalar(select(LogHead.last_seq).where(LogHead.name == LOG_NAME)) or 0)


def status(session: Session) -> list[ConsumerStatus]:
    """Every known consumer with its position and how far behind the log head it is."""
    head_seq = head(session)
    return [
        ConsumerStatus(c.name, c.position, head_seq, c.updated_at)
        for c in session.scalars(select(ConsumerCursor).order_by(ConsumerCursor.name))
    ]


def rewind(session: Session, consumer: str, position: int, *, forget: bool, at: datetime) -> None:
    """Move a consumer's cursor back to ``position``. With ``forget`` the processed marks after
    it are dropped too, so the events are applied again; without, they are re-read and skipped.

    A position past the log's end is refused: the consumer would silently skip the events
    that fill the gap."""
    last = head(session)
    if position > last:
        raise InvalidInput(
            f"position {position} is past the end of the event log ({last})", field="position"
        )
    cursor = session.get(ConsumerCursor, consumer, with_for_update=True)
    if cursor is None:
        cursor = ConsumerCursor(name=consumer, position=position, updated_at=at)
        session.add(cursor)
    cursor.position = position
    cursor.updated_at = at
    if forget:
        session.execute(
            delete(ProcessedEvent).where(
                ProcessedEvent.consumer == consumer, ProcessedEvent.event_seq > position
            )
        )


def prune_processed(session: Session, before: datetime) -> int:
    """Forget processed marks older than ``before`` (the retention window for replays); the
    cursors alone keep normal consumption exactly-once."""
    result = session.execute(delete(ProcessedEvent).where(ProcessedEvent.processed_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
