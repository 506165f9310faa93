"""Month end in the background: a bill run, and releasing a run's bills, as jobs.

Billing 100,000 accounts takes a minute or more, validating or sending their bills as long
again: the console and the API (``Prefer: respond-async``) queue them as jobs
(:mod:`satiot.core.jobs`) instead of holding a request open, and the Bill runs page follows
them. Each is the same call the CLI makes in the foreground:

- ``bill-run``: :func:`satiot.bss.bill_run_chunks.run_in_chunks` for a month, a chunk of
  accounts to a transaction with progress; the last one, which completes the run, also
  records the job's success, and a run taken again after its runner died bills only the
  accounts still without a bill;
- ``bill-release``: :func:`satiot.bss.bill_release.release_run`, chunk by chunk with progress;
  a release taken again after its runner died moves only what is still waiting.

Only one job per month (a run) or per run (a release) waits or runs at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from satiot.bss import bill_release, bill_run_chunks, billing
from satiot.bss.models import BillRun
from satiot.bss.money import format_cny
from satiot.core import jobs
from satiot.core.auth.principal import Principal
from satiot.core.models import Job


def _run_bills(run: jobs.JobRun) -> dict[str, Any]:
    period = run.params["period"]
    accounts = run.params.get("accounts")
    result: dict[str, Any] = {}

    def finished(session: Session, bill_run: BillRun) -> None:
        result.update(
            bill_run_id=str(bill_run.id),
            period=period,
            bills=bill_run.bills,
            total_micros=bill_run.total_micros,
        )
        run.finish_in(session, result)

    bill_run_chunks.run_in_chunks(
        run.write,
        run.principal,
        period,
        at=run.at,
        settings=billing.RunSettings.from_settings(run.settings),
        accounts=None if accounts is None else [uuid.UUID(a) for a in accounts],
        progress=run.progress,
        finished=finished,
    )
    return result


def _release(run: jobs.JobRun) -> dict[str, Any]:
    action = run.params["action"]
    done = bill_release.release_run(
        run.write,
        run.principal,
        uuid.UUID(run.params["bill_run_id"]),
        action,
        at=run.at,
        progress=run.progress,
    )
    return {
        "bill_run_id": run.params["bill_run_id"],
        "action": action,
        "moved": done.moved,
        "states": done.states,
    }


def _bills(n: int) -> str:
    return f"{n:,} bill" if n == 1 else f"{n:,} bills"


BILL_RUN: Final = jobs.register(
    jobs.JobKind(
        name="bill-run",
        run=_run_bills,
        describe=lambda p: f"Bill {p['period']}",
        summarize=lambda r: (
            f"{_bills(r['bills'])}, {format_cny(r['total_micros'])} in all"
            if r["bills"]
            else "nothing to bill: every account is billed already or owes nothing"
        ),
        read_scope="bills:read",
    )
)
BILL_RELEASE: Final = jobs.register(
    jobs.JobKind(
        name="bill-release",
        run=_release,
        describe=lambda p: (
            f"{p['action'].capitalize()} the bills of {p.get('period') or 'run'}"
            f" (run …{p['bill_run_id'][-8:]})"
        ),
        summarize=lambda r: f"{_bills(r['moved'])} {bill_release.MOVED_TO[r['action']]}",
        read_scope="bills:read",
    )
)
#: The kinds the Bill runs page follows.
KINDS: Final = (BILL_RUN.name, BILL_RELEASE.name)


def queue_run(
    session: Session,
    principal: Principal,
    period: str,
    *,
    at: datetime,
    tz: str,
    accounts: Collection[uuid.UUID] | None = None,
) -> Job:
    """Queue the bill run of ``period`` (for ``accounts`` only, if given), checked as the run
    checks it (``tz`` is the business time zone), so that a month not yet over, or with
    nothing to bill, is refused now instead of failing later."""
    billing.check_billable(session, period, at=at, tz=tz, accounts=accounts)
    params: dict[str, Any] = {"period": period}
    if accounts is not None:
        params["accounts"] = [str(a) for a in accounts]
    return jobs.submit(session, principal, BILL_RUN, params, key=f"bill-run:{period}", at=at)


def queue_release(
    session: Session, principal: Principal, run_id: uuid.UUID, action: str, *, at: datetime
) -> Job:
    """Queue validating (``action`` ``validate``) or sending (``send``) a run's bills; 404 for
    an unknown run, 409 when none of its bills waits for it."""
    if action not in bill_release.RELEASES:
        raise ValueError(f"unknown release {action!r}")
    bill_run = bill_release.get_run(session, run_id)
    bill_release.check_waiting(session, run_id, action)
    params = {"bill_run_id": str(run_id), "action": action, "period": bill_run.period}
    return jobs.submit(
        session, principal, BILL_RELEASE, params, key=f"bill-release:{run_id}", at=at
    )
