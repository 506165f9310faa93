"""``satiot catalog …``, ``satiot orders …`` and ``satiot subscriptions …`` from a shell."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from satiot.cli_common import (
    EncodingOption,
    OutputOption,
    checked_encoding,
    error_line,
    fail,
    load_settings,
    out,
    refuse_file,
    styled,
    write_export,
)
from satiot.cli_oss import _migrated, _principal

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from satiot.core.db import Database

catalog_app = typer.Typer(help="The product catalog (offerings and prices).", no_args_is_help=True)
orders_app = typer.Typer(help="Product orders, including CSV bulk orders.", no_args_is_help=True)
subscriptions_app = typer.Typer(
    help="Subscriptions: export them, suspend or resume many from a file, and register their "
    "handles at the identification node.",
    no_args_is_help=True,
)
CHUNK = 64 * 1024


@catalog_app.command("seed")
def catalog_seed() -> None:
    """Create and launch the default catalog (SAT-MSG, SAT-BYTE, SAT-BUNDLE-100,
    EMERGENCY-PRIORITY); codes already in the catalog are left as they are."""
    from satiot.bss.catalog_seed import seed_catalog
    from satiot.core.clock import SystemClock

    with _migrated() as database, database.write() as s:
        result = seed_catalog(s, _principal(database, "catalog"), at=SystemClock().now())
    created = ", ".join(result.created) or "none"
    kept = ", ".join(result.existing) or "none"
    out.print(f"catalog: launched {created}; already there: {kept}", highlight=False)


@catalog_app.command("list")
def catalog_list() -> None:
    """List every offering version with its prices."""
    from sqlalchemy import select

    from satiot.bss.catalog import describe_price, prices_of
    from satiot.bss.models import ProductOffering

    with _migrated() as database, database.read() as s:
        rows = list(
            s.scalars(
                select(ProductOffering).order_by(ProductOffering.code, ProductOffering.version)
            )
        )
        prices = prices_of(s, [o.id for o in rows])
    table = Table("code", "v", "status", "name", "prices")
    for o in rows:
        text = "\n".join(f"{p.name}: {describe_price(p)}" for p in prices[o.id])
        table.add_row(o.code, str(o.version), o.lifecycle_status, o.name, text)
    out.print(table)


def _customer_id(database: Database, ref: str) -> uuid.UUID:
    """A customer by id, credit code or tenant slug."""
    from sqlalchemy import select

    from satiot.bss.models import Customer
    from satiot.core.models import Tenant

    with database.read() as s:
        try:
            found = s.get(Customer, uuid.UUID(ref))
        except ValueError:
            found = s.scalar(select(Customer).where(Customer.uscc == ref.strip().upper()))
            if found is None:
                found = s.scalar(
                    select(Customer)
                    .join(Tenant, Tenant.id == Customer.tenant_id)
                    .where(Tenant.slug == ref)
                )
    if found is None:
        fail(f"no customer {ref!r} (give its id, credit code or tenant slug)")
    return found.id


def _readable_size(path: Path) -> int:
    """The file's size, once it has opened: a directory or an unreadable file passes
    ``stat`` and would fail only later, mid-import, as a traceback."""
    try:
        with path.open("rb") as f:
            return os.fstat(f.fileno()).st_size
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")


def _billing_account_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        fail(f"--billing-account {text!r} is not a billing account id (a UUID)")


def _read(path: Path, progress: Progress, task: TaskID) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            progress.advance(task, len(chunk))
            yield chunk


@orders_app.command("import")
def orders_import(
    file: Annotated[Path, typer.Argument(help="CSV file (see docs/bss.md for the columns)")],
    customer: Annotated[str, typer.Option(help="Customer id, credit code or tenant slug")],
    billing_account: Annotated[
        str | None, typer.Option(help="Billing account id (default: the only open one)")
    ] = None,
    external_id: Annotated[str | None, typer.Option(help="Your reference for the order")] = None,
    fulfil: Annotated[
        bool, typer.Option("--fulfil/--no-fulfil", help="Activate the devices now")
    ] = True,
    encoding: EncodingOption = "utf-8",
) -> None:
    """Place a bulk order from a CSV file: every row is checked first; any bad row is listed
    (line, column, reason) and nothing is applied. Then each row is fulfilled."""
    from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn

    from satiot.bss.activation import ActivationConfig, register_pending_handles
    from satiot.bss.order_csv import order_from_csv, parse_order_csv
    from satiot.bss.order_fulfilment import fulfil_order
    from satiot.bss.order_items import OrderRejected
    from satiot.bss.orders import place_order
    from satiot.core.clock import SystemClock
    from satiot.network.keys import load_kek
    from satiot.oss.handle_client import NodeConfig

    for option, value in (("--customer", customer), ("--external-id", external_id)):
        if value is not None and "\x00" in value:
            # PostgreSQL cannot store NUL in text (the API's models refuse it too).
            fail(f"{option} must not contain NUL characters")
    checked_encoding(encoding)
    size = _readable_size(file)
    account = _billing_account_id(billing_account) if billing_account else None
    settings = load_settings()
    clock = SystemClock()
    with _migrated() as database:
        customer_id = _customer_id(database, customer)
        kek = load_kek(settings)
        try:
            with Progress(TextColumn("checking"), BarColumn(), DownloadColumn()) as bar:
                task = bar.add_task("read", total=size)
                parsed = parse_order_csv(_read(file, bar, task), encoding=encoding)
            order = order_from_csv(
                parsed,
                customer_id=customer_id,
                billing_account_id=account,
                external_id=external_id,
            )
            with database.write() as s:
                placed = place_order(
                    s, _principal(database, "orders"), order, at=clock.now(), kek=kek
                )
        except OrderRejected as exc:
            _print_errors(exc)
            raise typer.Exit(1) from None
        out.print(f"order {placed.id}: {len(placed.items)} items {placed.order.state}")
        if not fulfil:
            return
        config = ActivationConfig.from_settings(settings, kek)
        columns = (TextColumn("activating"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns) as bar:
            task = bar.add_task("items", total=len(placed.items))
            state = fulfil_order(
                database,
                placed.id,
                clock=clock,
                config=config,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        register_pending_handles(database, NodeConfig.from_settings(settings), at=clock.now())
        _summary(database, placed.id, state)


def _print_errors(exc: object) -> None:
    from satiot.bss.order_items import OrderRejected

    assert isinstance(exc, OrderRejected)
    table = Table("line", "column", "reason")
    for e in exc.errors:
        table.add_row(str(e.item), e.field, e.reason)
    out.print(table)
    out.print(styled(("refused:", "bold red"), " ", exc.detail), highlight=False, soft_wrap=True)


def _summary(database: Database, order_id: uuid.UUID, state: str) -> None:
    from satiot.bss.orders import get_order

    with database.read() as s:
        found = get_order(s, order_id)
    failed = [i for i in found.items if i.state == "failed"]
    done = sum(i.state == "completed" for i in found.items)
    out.print(f"order {order_id}: {state}; {done} completed, {len(failed)} failed")
    if failed:
        table = Table("line", "column", "reason")
        for item in failed:
            table.add_row(str(item.line), item.error_field or "", item.error or "")
        out.print(table)
        raise typer.Exit(1 if state == "failed" else 2)


@orders_app.command("fulfil")
def orders_fulfil() -> None:
    """Fulfil orders that are due: acknowledged ones, pending ones whose start has come, and
    any interrupted in progress (items already done are skipped)."""
    from satiot.bss.activation import ActivationConfig, register_pending_handles
    from satiot.bss.order_fulfilment import fulfil_due_orders
    from satiot.core.clock import SystemClock
    from satiot.network.keys import load_kek
    from satiot.oss.handle_client import NodeConfig

    settings = load_settings()
    clock = SystemClock()
    with _migrated() as database:
        config = ActivationConfig.from_settings(settings, load_kek(settings))
        results = fulfil_due_orders(database, clock=clock, config=config)
        register_pending_handles(database, NodeConfig.from_settings(settings), at=clock.now())
    if not results:
        out.print("no order is due")
    for order_id, state in results.items():
        out.print(f"order {order_id}: {state}")


@subscriptions_app.command("register-handles")
def register_handles() -> None:
    """Send handles whose copy at the identification node is missing or stale (new
    activations, suspensions, terminations) to the node configured in SATIOT_HANDLE_NODE_URL."""
    from satiot.bss.activation import register_pending_handles
    from satiot.core.clock import SystemClock
    from satiot.oss.handle_client import NodeConfig

    settings = load_settings()
    node = NodeConfig.from_settings(settings)
    if node is None:
        fail("no identification node configured (SATIOT_HANDLE_NODE_URL)")
    with _migrated() as database:
        result = register_pending_handles(database, node, at=SystemClock().now())
    if result is None:
        fail("the identification node cannot be reached; the handles stay pending")
    out.print(f"{len(result.registered)} registered, {len(result.failed)} refused")
    for f in result.failed:
        out.print(f"  {f.handle}: {f.reason}", highlight=False)


@subscriptions_app.command("export")
def subscriptions_export(
    output: OutputOption = None,
    status: Annotated[
        str | None, typer.Option(help="Only subscriptions in this state, e.g. active")
    ] = None,
    customer: Annotated[
        str | None, typer.Option(help="Only this customer's: its id, credit code or tenant slug")
    ] = None,
) -> None:
    """Every subscription as CSV, one line per device: its binding (IMEI, DevEUI, IoT number,
    handle), customer, offering, status and dates (China time). UTF-8 with a byte-order mark,
    as Excel opens it; a progress bar when writing to a file."""
    from sqlalchemy import func, select

    from satiot.bss.models import Subscription
    from satiot.bss.states import SUBSCRIPTION
    from satiot.bss.subscription_export import export_subscriptions

    if status is not None and status not in SUBSCRIPTION.states:
        fail(f"--status {status!r} is not a subscription state ({', '.join(SUBSCRIPTION.states)})")
    with _migrated() as database:
        where = []
        if status is not None:
            where.append(Subscription.status == status)
        if customer is not None:
            where.append(Subscription.customer_id == _customer_id(database, customer))
        with database.read() as s:
            total = write_export(
                output,
                lambda progress: export_subscriptions(s, where, progress=progress),
                lambda: s.scalar(select(func.count()).select_from(Subscription).where(*where)) or 0,
                "subscriptions",
            )
    if total is not None:
        out.print(f"wrote {total} subscriptions to {output}", highlight=False, soft_wrap=True)


@subscriptions_app.command("status")
def subscriptions_status(
    csv_file: Annotated[Path, typer.Argument(help="CSV with a header line", metavar="CSV")],
    encoding: EncodingOption = "utf-8",
) -> None:
    """Suspend and resume devices from a CSV file (批量停复机), as the operator.

    The header names the columns, in any order: device (DevEUI, IMEI, IoT number or
    subscription id), action (suspend or resume) and reason. All or nothing: every bad line is
    named and no device changes. A device already as its line asks is left alone, so the same
    file may be applied twice. Up to 100,000 lines: a file of more than 5,000 is checked whole
    first, then applied 5,000 lines to a transaction, with progress.
    """
    from satiot.bss.activation import register_pending_handles
    from satiot.bss.status_import import (
        MAX_ROWS,
        MAX_ROWS_IN_PARTS,
        StatusFileInterrupted,
        StatusImportRejected,
        apply_in_parts,
        apply_lines,
        read_lines,
    )
    from satiot.core.clock import SystemClock
    from satiot.oss.handle_client import NodeConfig

    checked_encoding(encoding)
    try:
        data = csv_file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {csv_file}: {exc.strerror}")
    now = SystemClock().now()
    settings = load_settings()
    with _migrated() as database:
        principal = _principal(database, "subscriptions")
        try:
            lines = read_lines(data, encoding=encoding, max_rows=MAX_ROWS_IN_PARTS)
            if len(lines.lines) <= MAX_ROWS:
                with database.write() as s:
                    done = apply_lines(s, principal, lines, at=now)
            else:
                with out.status(f"checking {len(lines.lines):,} lines …") as status:
                    done = apply_in_parts(
                        database.write, database.read, principal, lines, at=now, part=MAX_ROWS,
                        progress=lambda n, total: status.update(
                            f"applying: {n:,} of {total:,} lines …"
                        ),
                    )  # fmt: skip
        except StatusImportRejected as exc:
            refuse_file(csv_file, exc)
        except StatusFileInterrupted as exc:
            for e in exc.extensions.get("errors", [])[1:]:
                error_line(f"{csv_file}: line {e['line']}: {e['reason']}")
            register_pending_handles(database, NodeConfig.from_settings(settings), at=now)
            fail(f"{csv_file}: {exc.detail}")
        if done.subscription_ids:
            register_pending_handles(database, NodeConfig.from_settings(settings), at=now)
    out.print(
        f"devices: {done.suspended} suspended, {done.resumed} resumed, {done.already} already so",
        highlight=False,
    )
