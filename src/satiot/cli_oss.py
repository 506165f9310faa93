"""``satiot numbers …`` and ``satiot terminals …``: the OSS inventory from a shell."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from satiot.cli_common import (
    EncodingOption,
    OutputOption,
    checked_encoding,
    fail,
    load_settings,
    opened_output,
    out,
    refuse_file,
)
from satiot.core.errors import DomainError

if TYPE_CHECKING:
    from satiot.core.auth.principal import Principal
    from satiot.core.db import Database

numbers_app = typer.Typer(
    help="IoT number blocks, recycling and the annual numbering report.", no_args_is_help=True
)
blocks_app = typer.Typer(help="The number blocks MIIT assigned (configuration).")
numbers_app.add_typer(blocks_app, name="blocks", no_args_is_help=True)
terminals_app = typer.Typer(
    help="Licensed terminal models (MIIT network-access licences).", no_args_is_help=True
)


@contextmanager
def _migrated() -> Iterator[Database]:
    """The configured database (``cli._database`` refuses one that is not migrated); domain
    errors end in one ``error:`` line."""
    # Imported here: satiot.cli imports this module.
    from satiot.cli import _database

    with _database() as database:
        try:
            yield database
        except DomainError as exc:
            fail(exc.detail)


def _principal(database: Database, name: str) -> Principal:
    from satiot.cli import _operator_principal
    from satiot.core.auth.principal import system_principal

    return system_principal(_operator_principal(database).tenant_id, name)


@blocks_app.command("load")
def blocks_load(
    file: Annotated[
        Path | None,
        typer.Argument(help="TOML file of [[blocks]]; default SATIOT_NUMBER_BLOCKS_FILE"),
    ] = None,
) -> None:
    """Create the blocks of FILE and update the purpose and scope of known ones (by name).

    Each block: name, prefix, purpose, scope, and optionally first/last (suffixes after the
    prefix) and authority_ref. Ranges may not overlap; a known block's range never changes.
    All or nothing: one bad block loads none.
    """
    from satiot.core.clock import SystemClock
    from satiot.oss.number_blocks import load_blocks, read_blocks_file

    path = file or load_settings().number_blocks_file
    if path is None:
        fail("name a TOML file or set SATIOT_NUMBER_BLOCKS_FILE")
    with _migrated() as database:
        specs = read_blocks_file(path)
        with database.write() as s:
            result = load_blocks(s, _principal(database, "numbers"), specs, at=SystemClock().now())
    out.print(
        f"number blocks: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged",
        highlight=False,
    )


@blocks_app.command("list")
def blocks_list() -> None:
    """List the number blocks with their ranges and use."""
    from satiot.oss.number_blocks import report

    with _migrated() as database, database.read() as s:
        figures = report(s)
    table = Table("block", "range", "size", "allocated", "purpose", "scope")
    for f in figures:
        table.add_row(
            f.name,
            f"{f.first_number}..{f.last_number}",
            f"{f.size:,}",
            f"{f.allocated:,}",
            f.purpose,
            f.scope,
        )
    out.print(table)


@numbers_app.command("report")
def numbers_report(
    year: Annotated[int, typer.Option(help="The year the filing covers (usage on 31 Dec)")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """Figures of the annual numbering report, per block: size, allocated, active,
    quarantined, utilisation, purpose and scope.

    The figures are the inventory as it stands when the command runs: run it at the turn of
    the year (for example from a job at 00:00 on 1 January) for usage as of 31 December.
    """
    from satiot.core.clock import SystemClock
    from satiot.oss.number_blocks import report

    now = SystemClock().now()
    if not 2000 <= year <= now.year - 1:
        fail(f"--year {year}: the filing covers a year that has ended (2000..{now.year - 1})")
    with _migrated() as database, database.read() as s:
        figures = report(s)
    if as_json:
        body = {
            "year": year,
            "as_of": now.isoformat(),
            "blocks": [vars(f) | {"utilisation": round(f.utilisation, 6)} for f in figures],
        }
        out.print_json(json.dumps(body))
        return
    table = Table(
        "block", "range", "size", "allocated", "active", "quarantined", "use", "purpose", "scope"
    )
    for f in figures:
        table.add_row(
            f.name,
            f"{f.first_number}..{f.last_number}",
            f"{f.size:,}",
            f"{f.allocated:,}",
            f"{f.active:,}",
            f"{f.quarantined:,}",
            f"{f.utilisation:.2%}",
            f.purpose,
            f.scope,
        )
    out.print(f"numbering report for {year}, figures as of {now:%Y-%m-%d %H:%M} UTC")
    out.print(table)


@numbers_app.command("recycle")
def numbers_recycle() -> None:
    """Make numbers whose quarantine has ended available again (a daily job)."""
    from satiot.core.clock import SystemClock
    from satiot.oss.numbering import recycle

    total = 0
    with _migrated() as database:
        principal = _principal(database, "number-recycler")
        while True:
            with database.write() as s:
                n = recycle(s, principal, at=SystemClock().now(), limit=1000)
            total += n
            if n < 1000:
                break
    out.print(f"{total} numbers back in service")


@terminals_app.command("import")
def terminals_import(
    csv_file: Annotated[Path, typer.Argument(help="CSV with a header line", metavar="CSV")],
    encoding: EncodingOption = "utf-8",
) -> None:
    """Import a licence list: licensed terminal models from a CSV; known models (by name) are
    updated.

    The header names the columns, in any order: name, equipment_name, manufacturer,
    applicant, licence_number, issued_on, expires_on (dates YYYY-MM-DD) and optionally tacs
    (8-digit TACs separated by spaces or ;). All or nothing: every bad line is named and
    none is imported. `satiot terminals template` writes an empty list to fill in.
    """
    from satiot.core.clock import SystemClock
    from satiot.oss.licence_list import (
        LicenceListRejected,
        import_licence_list,
        read_licence_list,
    )

    checked_encoding(encoding)
    try:
        data = csv_file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {csv_file}: {exc.strerror}")
    now = SystemClock().now()
    with _migrated() as database:
        try:
            listed = read_licence_list(data, encoding=encoding, at=now)
            with database.write() as s:
                result = import_licence_list(s, _principal(database, "terminals"), listed, at=now)
        except LicenceListRejected as exc:
            refuse_file(csv_file, exc)
    out.print(
        f"terminal models: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged",
        highlight=False,
    )


@terminals_app.command("template")
def terminals_template(
    output: OutputOption = None,
) -> None:
    """Write an empty licence list to fill in: the header line (UTF-8 with a byte-order mark,
    which Excel opens as UTF-8)."""
    from satiot.oss.licence_list import template

    with opened_output(output) as f:
        f.write(template())
    if output is None:
        return
    out.print(
        f"wrote {output}: fill in one licensed model per line", highlight=False, soft_wrap=True
    )


@terminals_app.command("check")
def terminals_check(
    within: Annotated[int, typer.Option(min=0, help="Days ahead to warn about")] = 90,
    on: Annotated[str | None, typer.Option(help="Day to check, YYYY-MM-DD (default today)")] = None,
) -> None:
    """The daily licence re-check: expired models and those expiring within --within days.

    Exits 1 when a listed model's licence has expired (activation of it is refused).
    """
    from satiot.oss.terminals import licence_watch

    try:
        day = date.fromisoformat(on) if on else datetime.now(UTC).date()
    except ValueError:
        fail(f"--on {on!r} is not a date (YYYY-MM-DD)")
    with _migrated() as database, database.read() as s:
        watch = licence_watch(s, on=day, within_days=within)
        rows = [("expired", m) for m in watch.expired] + [("expiring", m) for m in watch.expiring]
        table = Table("state", "model", "licence", "expires", "manufacturer")
        for state, m in rows:
            table.add_row(state, m.name, m.licence_number, m.expires_on.isoformat(), m.manufacturer)
    if not rows:
        out.print(f"no licence expired or expiring within {within} days of {day}")
        return
    out.print(table)
    if watch.expired:
        raise typer.Exit(1)
