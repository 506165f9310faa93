"""``satiot usage …``: a month's usage records of one billing account, device or customer as
a file, a line per message (详单), for a customer who disputes a charge or a finance team that
keeps its own copy."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

import typer

from satiot.cli_common import OutputOption, domain_errors, fail, load_settings, out, write_export
from satiot.cli_oss import _migrated

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

usage_app = typer.Typer(
    help="Usage records (TMF635): a month's messages of an account, a device or a customer as CSV.",
    no_args_is_help=True,
)


def _subscription(session: Session, ref: str) -> uuid.UUID:
    """A subscription by id, or the latest one of a DevEUI."""
    from sqlalchemy import select

    from satiot.bss.models import Subscription

    try:
        return uuid.UUID(ref)
    except ValueError:  # not an id: a DevEUI
        found = session.scalar(
            select(Subscription.id)
            .where(Subscription.dev_eui == ref.strip().upper())
            .order_by(Subscription.created_at.desc(), Subscription.id.desc())
            .limit(1)
        )
    if found is None:
        fail(f"no subscription {ref!r} (give its id, or its device's DevEUI)")
    return found


def _id(ref: str, option: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(ref)
    except ValueError:
        fail(f"{option} {ref!r} is not {what} id (a UUID)")


@usage_app.command("export")
def usage_export_command(
    account: Annotated[str | None, typer.Option(help="The billing account's id")] = None,
    subscription: Annotated[
        str | None, typer.Option(help="The subscription's id, or its device's DevEUI")
    ] = None,
    customer: Annotated[
        str | None,
        typer.Option(help="The customer's id: every account of it, then what no account paid"),
    ] = None,
    period: Annotated[
        str | None, typer.Option(help="The business month, YYYY-MM (default: this month)")
    ] = None,
    state: Annotated[
        str | None, typer.Option(help="Only records in this state: rated, billed or rejected")
    ] = None,
    output: OutputOption = None,
) -> None:
    """A month's usage records of one billing account, one subscription or one customer as
    CSV, a line per message in the order logged (a customer's account by account): time
    (business time zone), DevEUI, direction, bytes, billable bytes, charge in yuan to the
    micro-yuan, state, why it was not charged, the bill it is on, the account. UTF-8 with a
    byte-order mark, as Excel opens it; a progress bar when writing to a file."""
    from satiot.bss import usage_export
    from satiot.bss.periods import period_of
    from satiot.core.clock import SystemClock

    if sum(x is not None for x in (account, subscription, customer)) != 1:
        fail("name one of --account, --subscription or --customer")
    tz = load_settings().business_timezone
    with domain_errors(), _migrated() as database, database.read() as s:
        account_id = _id(account, "--account", "a billing account") if account else None
        chosen = usage_export.selection(
            s,
            period or period_of(SystemClock().now(), tz),
            billing_account_id=account_id,
            subscription_id=_subscription(s, subscription) if subscription else None,
            customer_id=_id(customer, "--customer", "a customer") if customer else None,
            state=state,
        )
        total = write_export(
            output,
            lambda progress: usage_export.export_records(s, chosen, tz, progress=progress),
            lambda: usage_export.count_records(s, chosen),
            "records",
        )
    if total is not None:
        out.print(
            f"wrote {total} usage records of {chosen.period} to {output}",
            highlight=False,
            soft_wrap=True,
        )
