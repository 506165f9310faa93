"""Append-only logs written at commit time, in the committing transaction.

The event log and the audit log both need a gap-free sequence whose order equals commit order
(a consumer that reads ``seq > cursor`` must never miss a row that commits late, and a hash chain
needs a single predecessor). Callers therefore only *queue* entries on the session; when the
session commits, :func:`_append_pending` takes the log's head row lock, numbers the entries,
and inserts them. The lock is held only for the commit itself, not for the whole transaction.
If the transaction rolls back, the queued entries vanish with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction

from satiot.core.bulk import driver_sql

_PENDING: Final = "satiot.pending_logs"
_MARKS: Final = "satiot.pending_log_marks"  # per SAVEPOINT: queue lengths at its start

#: log name -> function(session, entries, first_seq, prev_hash) -> new last hash
Writer = Callable[[Session, Sequence[Any], int, str], str]
_WRITERS: dict[str, Writer] = {}


def register_log(name: str, writer: Writer) -> None:
    """Declare a log and the function that inserts its numbered entries."""
    _WRITERS[name] = writer


def queue(session: Session, log: str, entry: Any) -> None:
    """Queue ``entry`` for ``log``; it is written if and when ``session`` commits."""
    if log not in _WRITERS:
        raise KeyError(f"unknown log {log!r}")
    if session.get_transaction() is None:
        # Tie the entry to a transaction, as Session.add() does, so that a rollback issued
        # before any SQL ran still discards it.
        session.begin()
    session.info.setdefault(_PENDING, {}).setdefault(log, []).append(entry)


def pending(session: Session, log: str) -> list[Any]:
    """Entries queued on ``session`` for ``log`` and not yet committed."""
    return list(session.info.get(_PENDING, {}).get(log, []))


#: The head's row is bumped and read in one driver statement per log (no ORM bulk-update
#: compilation on every commit that writes events), in the driver's parameter style.
_BUMP = driver_sql(
    "UPDATE log_heads SET last_seq = last_seq + ? WHERE name = ? RETURNING last_seq, last_hash"
)
_SET_HASH = driver_sql("UPDATE log_heads SET last_hash = ? WHERE name = ?")


@sa_event.listens_for(Session, "before_commit")
def _append_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return  # releasing a SAVEPOINT: the entries wait for the outermost commit
    session.info.pop(_MARKS, None)
    queued: dict[str, list[Any]] = session.info.pop(_PENDING, None) or {}
    if not any(queued.values()):
        return
    # The ORM flushes after this hook: flush first, so that rows the entries refer to (a
    # tenant made in this transaction) are written before them.
    session.flush()
    connection = session.connection()
    dialect = connection.dialect.name
    for name in sorted(queued):  # one fixed lock order for every transaction: no deadlock
        entries = queued[name]
        if not entries:
            continue
        last_seq, last_hash = connection.exec_driver_sql(_BUMP[dialect], (len(entries), name)).one()
        first = last_seq - len(entries) + 1
        new_hash = _WRITERS[name](session, entries, first, last_hash)
        if new_hash != last_hash:
            connection.exec_driver_sql(_SET_HASH[dialect], (new_hash, name))


@sa_event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        queued = session.info.get(_PENDING, {})
        marks = session.info.setdefault(_MARKS, {})
        marks[transaction] = {name: len(entries) for name, entries in queued.items()}


@sa_event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous: SessionTransaction) -> None:
    mark = session.info.get(_MARKS, {}).pop(previous, None) if previous.nested else None
    if mark is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_MARKS, None)
        return
    # A SAVEPOINT rolled back: drop only what was queued inside it.
    for name, entries in session.info.get(_PENDING, {}).items():
        del entries[mark.get(name, 0) :]
