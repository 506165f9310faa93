"""A month's bill run a chunk of accounts at a time: how the API, the CLI and the background
job run it.

In one transaction (:func:`satiot.bss.billing.run_bills`, the building block, which tests and
``satiot bench billing --one-transaction`` still use) a run over a million devices holds the
embedded database's one writer for half a minute and more: the network's receptions, rating
and every other write wait behind it, longer than a writer is allowed to wait, and whoever
watches the run sees nothing move. Here the accounts still to bill are taken :data:`CHUNK` at
a time, each chunk in a transaction of its own that prices, numbers and writes their bills,
lines and devices' fees and claims their usage (:func:`satiot.bss.billing.bill_accounts`);
other writers get their turn between chunks, and ``progress`` is told after each.

What the one transaction promised still holds:

- invoice numbers stay gap-free: each chunk takes its numbers in its own transaction, so a
  chunk that fails takes none;
- no account is billed twice: a chunk bills only accounts with no bill for the month (the
  unique account and period stands behind it);
- a run that stops part way (a runner that died, a database that went away) is ``running``
  with the bills of the chunks it committed; run again, it takes that run up and bills the
  rest, and completes it (counts, total, audit) once every account is billed;
- usage rated while the run goes is charged correctly: an account's usage is summed and
  claimed in the same chunk, and what is rated for it after its chunk waits for the next
  month's bill, as late usage always does.

A run under way is not released (validated or sent) until it completes
(:func:`satiot.bss.bill_release.release_run` refuses it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.bss import billing
from satiot.bss.billing_sql import AccountSpan
from satiot.bss.models import BillingAccount, BillRun, CustomerBill
from satiot.core.auth.principal import Principal

#: Accounts billed per transaction: on SQLite about a second of holding the writer on a fast
#: day (ten devices an account).
CHUNK: Final = 10_000

Write = Callable[[], AbstractContextManager[Session]]


def run_in_chunks(
    write: Write,
    principal: Principal,
    period_name: str,
    *,
    at: datetime,
    settings: billing.RunSettings,
    accounts: Collection[uuid.UUID] | None = None,
    chunk: int = CHUNK,
    progress: Callable[[int, int], None] | None = None,
    finished: Callable[[Session, BillRun], None] | None = None,
) -> BillRun:
    """Bill ``period_name`` for every account (or ``accounts``) not yet billed for it, a
    transaction opened by ``write()`` per ``chunk`` accounts; ``progress(done, total)`` is told
    the accounts looked at after each. The run of the month left ``running`` by an earlier
    attempt is taken up. ``finished(session, run)`` is called in the transaction that
    completes the run (a job records its success there). Returns the run, completed."""
    if chunk < 1:
        raise ValueError("bill at least one account a chunk")
    with write() as session:
        period = billing.check_billable(
            session, period_name, at=at, tz=settings.tz, accounts=accounts
        )
        run = _under_way(session, period_name) or billing.start_run(session, period_name, at=at)
        run_id = run.id
        todo = _not_billed(session, period_name, accounts)
    total = len(todo)
    for start in range(0, total, chunk):
        part = todo[start : start + chunk]
        # Every account of the month still to bill, in id order: the chunk is all those
        # between its first and last (one billed meanwhile is skipped as billed).
        these = part if accounts is not None else AccountSpan(part[0], part[-1])
        with write() as session:
            billing.bill_accounts(session, run_id, period, at=at, settings=settings, accounts=these)
        if progress is not None:
            progress(start + len(part), total)
    with write() as session:
        run = session.get_one(BillRun, run_id)
        billing.finish_run(session, principal, run, at=at)
        if finished is not None:
            finished(session, run)
        session.flush()
        session.expunge(run)
    return run


def _under_way(session: Session, period_name: str) -> BillRun | None:
    """The run of the month that an earlier attempt left part way, if any."""
    return session.scalar(
        select(BillRun)
        .where(
            BillRun.period == period_name,
            BillRun.dry_run.is_(False),
            BillRun.status == "running",
        )
        .order_by(BillRun.started_at)
        .limit(1)
    )


def _not_billed(
    session: Session, period_name: str, accounts: Collection[uuid.UUID] | None
) -> Sequence[uuid.UUID]:
    """The accounts (all, or ``accounts``) with no bill for the month, in id order: those a
    chunk may bill (one with nothing to bill gets no bill)."""
    billed = select(CustomerBill.billing_account_id).where(CustomerBill.period == period_name)
    stmt = (
        select(BillingAccount.id)
        .where(BillingAccount.id.not_in(billed))
        .order_by(BillingAccount.id)
    )
    found = session.scalars(stmt)
    if accounts is None:
        return list(found)
    wanted = set(accounts)  # filtered here: a list of them may be longer than a statement holds
    return [a for a in found if a in wanted]
