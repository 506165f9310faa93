"""Releasing a bill run: validating its new bills, then sending its validated ones, in bulk.

A run bills every account at once (100,000 bills for 100,000 accounts), and each bill then
waits for billing staff to validate and send it. One at a time, that is a day's clicking for a
month's bills, so staff check a run as a whole (its dry runs, its totals, a sample of
invoices), hold the bills they are not sure of, and release the rest together.

Each bill is moved exactly as a single move moves it (:func:`satiot.bss.invoices.validate_bill`
and :func:`satiot.bss.invoices.send_bill`): checked against the lifecycle, audited and
announced as ``bill.validated`` or ``bill.sent`` with its tenant, and on sending a prepaid
account's bill is paid from its balance. Bills on hold, and bills already further along, are
left as they are, so releasing again moves only what is left. The bills go in chunks of
:data:`CHUNK`, each in its own transaction, taken in id order under lock: a release that stops
half-way (a crash, a bill a payment holds locked) keeps what it moved and is finished by
running it again, and a bill a person moves meanwhile is simply no longer there to take.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from satiot.bss import invoices
from satiot.bss.models import BillRun, CustomerBill
from satiot.core.auth.principal import Principal
from satiot.core.errors import Conflict, NotFound

#: What each release does: the state it takes bills from...
RELEASES: Final = {
    "validate": "new",
    "send": "validated",
}
#: ...and the state it moves them to, which is also how people say it was done.
MOVED_TO: Final = {
    "validate": "validated",
    "send": "sent",
}
#: Bills moved per transaction.
CHUNK: Final = 200


class BillRunNotFound(NotFound):
    title = "Bill run not found"


@dataclass(frozen=True)
class Release:
    """What a release did, and where the run's bills stand after it."""

    run_id: uuid.UUID
    action: str
    moved: int
    states: dict[str, int]


def get_run(session: Session, run_id: uuid.UUID) -> BillRun:
    run = session.get(BillRun, run_id)
    if run is None or run.dry_run:
        raise BillRunNotFound(f"no bill run {run_id}")
    return run


def run_states(session: Session, run_id: uuid.UUID) -> dict[str, int]:
    """How many of the run's bills are in each state (states with none left out)."""
    return states_of(session, [run_id])[run_id]


def states_of(session: Session, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    """:func:`run_states` of several runs (a page of them) in one query."""
    out: dict[uuid.UUID, dict[str, int]] = {run_id: {} for run_id in run_ids}
    if run_ids:
        rows = session.execute(
            select(CustomerBill.bill_run_id, CustomerBill.state, func.count(CustomerBill.id))
            .where(CustomerBill.bill_run_id.in_(run_ids))
            .group_by(CustomerBill.bill_run_id, CustomerBill.state)
        )
        for run_id, state, n in rows:
            if run_id is not None:
                out[run_id][state] = int(n)
    return out


def runs_of(session: Session, period: str) -> list[uuid.UUID]:
    """The (real) runs that billed ``period``, oldest first."""
    return list(
        session.scalars(
            select(BillRun.id)
            .where(BillRun.period == period, BillRun.dry_run.is_(False))
            .order_by(BillRun.started_at, BillRun.id)
        )
    )


def waiting(run_id: uuid.UUID, action: str, limit: int) -> Select[CustomerBill]:
    """The next ``limit`` bills of the run waiting for ``action``, in id order, locked (on
    PostgreSQL; bills a person or a payment holds are left for a later chunk)."""
    return (
        select(CustomerBill)
        .where(CustomerBill.bill_run_id == run_id, CustomerBill.state == RELEASES[action])
        .order_by(CustomerBill.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def release_chunk(
    session: Session,
    principal: Principal,
    run_id: uuid.UUID,
    action: str,
    *,
    at: datetime,
    limit: int | None = None,
) -> int:
    """Move up to ``limit`` (default :data:`CHUNK`) of the run's bills waiting for
    ``action``; return how many moved. The chunk is read in one query; each bill is then
    moved as :func:`~satiot.bss.invoices.validate_bill` or
    :func:`~satiot.bss.invoices.send_bill` moves it once it has read it."""
    bills = list(session.scalars(waiting(run_id, action, limit or CHUNK)))
    for bill in bills:
        if action == "validate":
            invoices.move(session, principal, bill, MOVED_TO[action], at=at)
        else:
            invoices.send(session, principal, bill, at=at)
    return len(bills)


def check_waiting(session: Session, run_id: uuid.UUID, action: str) -> int:
    """How many of the run's bills wait for ``action``; 409 when none does, or while the run
    is still billing its accounts (``bill_run_chunks``: the rest of its bills are to come)."""
    run = session.get(BillRun, run_id)
    if run is not None and run.status == "running":
        raise Conflict(
            f"bill run {run_id} is still billing its accounts: {action} it once it completes",
            field="action",
        )
    waiting = run_states(session, run_id).get(RELEASES[action], 0)
    if not waiting:
        raise Conflict(
            f"no bill of run {run_id} is {RELEASES[action]}: nothing to {action}",
            field="action",
        )
    return waiting


def release_run(
    write: Callable[[], AbstractContextManager[Session]],
    principal: Principal,
    run_id: uuid.UUID,
    action: str,
    *,
    at: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> Release:
    """Validate (``action`` ``validate``) or send (``send``) every bill of the run waiting for
    it, :data:`CHUNK` to a transaction opened by ``write()``. ``progress(done, total)`` is told
    after each chunk. 409 when the run has no bill waiting for it."""
    if action not in RELEASES:
        raise ValueError(f"unknown release {action!r}")
    with write() as session:
        get_run(session, run_id)
        waiting = check_waiting(session, run_id, action)
    moved = 0
    for done in _chunks(write, principal, run_id, action, at=at):
        moved += done
        if progress is not None:
            progress(moved, max(moved, waiting))
    with write() as session:
        states = run_states(session, run_id)
    return Release(run_id, action, moved, states)


def _chunks(
    write: Callable[[], AbstractContextManager[Session]],
    principal: Principal,
    run_id: uuid.UUID,
    action: str,
    *,
    at: datetime,
) -> Iterator[int]:
    """Each chunk's count, until one finds nothing left to move."""
    while True:
        with write() as session:
            done = release_chunk(session, principal, run_id, action, at=at)
        if not done:
            return
        yield done
