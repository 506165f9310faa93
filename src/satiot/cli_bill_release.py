"""``satiot bills …`` that move bills: a month's or a run's bills validated and sent, one bill
held or released, and a bank statement's payments recorded.

Each goes through the same domain functions as the API and the console (``bss.bill_release``,
``bss.invoices``, ``bss.payment_import``); the commands register on the ``bills`` group.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from satiot.cli_bills import BillArgument, _find_bill, bills_app
from satiot.cli_common import (
    EncodingOption,
    OutputOption,
    checked_encoding,
    domain_errors,
    fail,
    load_settings,
    opened_output,
    out,
    refuse_file,
)
from satiot.cli_oss import _migrated, _principal

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


#: What ``satiot bills validate`` and ``send`` name: a month, a bill run or one bill.
ReleaseArgument = Annotated[
    str,
    typer.Argument(
        help="A month, YYYY-MM (every bill run of it), a bill run's id, or one bill's number or id"
    ),
]


def _runs_named(session: Session, target: str) -> list[uuid.UUID] | None:
    """The bill runs ``target`` names (a month's, or one by id), or None if it names none."""
    from satiot.bss.bill_release import runs_of
    from satiot.bss.models import BillRun
    from satiot.bss.periods import check_period

    if re.fullmatch(r"[0-9]{4}-[0-9]{2}", target.strip()):
        period = check_period(target.strip())  # 2026-13: a clear error, not "no such bill"
        runs = runs_of(session, period)
        if not runs:
            fail(f"no bill run for {period} (run it first: satiot bills run {period})")
        return runs
    try:
        run = session.get(BillRun, uuid.UUID(target))
    except ValueError:
        return None
    return None if run is None else [run.id]


def _release(target: str, action: str) -> None:
    """Validate or send what ``target`` names, with a progress bar over a run's bills."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from satiot.bss import bill_release, invoices
    from satiot.cli_common import err
    from satiot.core.clock import SystemClock

    source = bill_release.RELEASES[action]
    now = SystemClock().now()
    with domain_errors(), _migrated() as database:
        principal = _principal(database, "bill-release")
        with database.read() as s:
            runs = _runs_named(s, target)
            before = bill_release.states_of(s, runs or [])
            single = None if runs is not None else _find_bill(s, target)
        if single is not None:
            move = invoices.validate_bill if action == "validate" else invoices.send_bill
            with database.write() as s:
                state = move(s, principal, single[0], at=now).state
            out.print(f"{single[1]} {bill_release.MOVED_TO[action]}: now {state}", highlight=False)
            return
        waiting = {run_id: states.get(source, 0) for run_id, states in before.items()}
        if not any(waiting.values()):
            fail(f"no bill of {target} is {source}: nothing to {action}")
        moved, states = 0, Counter[str]()
        columns = (TextColumn(f"{action} {target}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=err) as bar:
            task = bar.add_task(action, total=sum(waiting.values()))
            for run_id, count in waiting.items():
                if not count:  # nothing of this run to move: it stands as it was read
                    states.update(before[run_id])
                    continue

                def advance(n: int, _total: int, base: int = moved) -> None:
                    bar.update(task, completed=base + n)

                done = bill_release.release_run(
                    database.write, principal, run_id, action, at=now, progress=advance
                )
                moved += done.moved
                states.update(done.states)
    by_state = ", ".join(f"{n:,} {state}" for state, n in sorted(states.items()))
    done_word = bill_release.MOVED_TO[action]
    out.print(f"{target}: {done_word} {moved:,}; its bills now: {by_state}", highlight=False)


@bills_app.command("validate")
def bills_validate(target: ReleaseArgument) -> None:
    """Validate every new bill of a month or a bill run (bills on hold stay on hold), or one
    bill: each is audited and announced as a single move is, a chunk of bills per transaction,
    so an interrupted release keeps what it did and running it again finishes it."""
    _release(target, "validate")


@bills_app.command("send")
def bills_send(target: ReleaseArgument) -> None:
    """Send every validated bill of a month or a bill run to its customer, or one bill: the
    customer then sees it, and a prepaid account's bill is paid from its balance."""
    _release(target, "send")


@bills_app.command("hold")
def bills_hold(
    bill: BillArgument,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why it is held (kept in the audit log)")
    ] = None,
    release: Annotated[
        bool, typer.Option("--release", help="Release a held bill instead: it is new again")
    ] = False,
) -> None:
    """Put a new or validated bill aside before it is sent (a run's release leaves it alone),
    or release it with --release to adjust and validate it again."""
    from satiot.bss import invoices
    from satiot.core.clock import SystemClock

    if reason is not None and not reason.strip():
        fail("--reason must say something")
    with domain_errors(), _migrated() as database, database.write() as s:
        bill_id, number = _find_bill(s, bill)
        moved = invoices.set_held(
            s,
            _principal(database, "bill-hold"),
            bill_id,
            held=not release,
            at=SystemClock().now(),
            reason=reason,
        ).state
    out.print(f"{number}: now {moved}", highlight=False)


@bills_app.command("payments")
def bills_payments(
    csv_file: Annotated[Path, typer.Argument(help="The bank statement, CSV", metavar="CSV")],
    encoding: EncodingOption = "utf-8",
) -> None:
    """Record a bank statement's payments against their bills, all or none.

    The header names the columns, in any order: bill (invoice number or id), amount (yuan),
    reference (the bank's) and optionally method and received_on (YYYY-MM-DD). Every bad line
    is named and none is recorded; a reference recorded before with the same bill and amount
    is not recorded again, so the same statement may be imported twice."""
    from satiot.bss.money import format_cny
    from satiot.bss.payment_import import (
        PaymentImportRejected,
        import_payments,
        read_payments,
    )
    from satiot.core.clock import SystemClock

    checked_encoding(encoding)
    try:
        data = csv_file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {csv_file}: {exc.strerror}")
    tz = load_settings().business_timezone
    now = SystemClock().now()
    with _migrated() as database:
        try:
            lines = read_payments(data, encoding=encoding, at=now, tz=tz)
            with database.write() as s:
                done = import_payments(s, _principal(database, "payments"), lines, at=now, tz=tz)
        except PaymentImportRejected as exc:
            refuse_file(csv_file, exc)
    out.print(
        f"payments: {done.recorded:,} recorded ({format_cny(done.amount_micros)}), "
        f"{done.already:,} recorded before, {done.settled:,} bills now settled",
        highlight=False,
    )


@bills_app.command("payments-template")
def bills_payments_template(output: OutputOption = None) -> None:
    """Write an empty payment file to fill in: the header line (UTF-8 with a byte-order mark,
    which Excel opens as UTF-8)."""
    from satiot.bss.payment_import import template

    with opened_output(output) as f:
        f.write(template())
    if output is not None:
        out.print(f"wrote {output}: one payment per line", highlight=False, soft_wrap=True)
