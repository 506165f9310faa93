"""``satiot events …``: the event log's head and consumers, rewinding one, and running a
consumer or the relay to NATS in the foreground until Ctrl-C."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Annotated

import typer
from rich.table import Table

from satiot.cli_common import fail, load_settings, out

events_app = typer.Typer(help="Inspect the event log and run its consumers.", no_args_is_help=True)


@events_app.command("status")
def events_status() -> None:
    """Show the event log head and each consumer's position and lag."""
    from satiot.cli import _database
    from satiot.core import events

    with _database() as database, database.read() as s:
        head = events.head(s)
        rows = events.status(s)
    table = Table("consumer", "position", "lag", "updated")
    for r in rows:
        table.add_row(
            r.name, str(r.position), str(r.lag), r.updated_at.isoformat() if r.updated_at else ""
        )
    out.print(f"event log head: {head}")
    out.print(table)


@events_app.command("rewind")
def events_rewind(
    consumer: str,
    position: Annotated[int, typer.Option(min=0, help="Sequence number to resume after")],
    forget: Annotated[bool, typer.Option(help="Also re-apply events already processed")] = False,
) -> None:
    """Move a consumer back so it reads events again (skipped unless --forget)."""
    from satiot.cli import _database
    from satiot.core import consumers, events
    from satiot.core.clock import SystemClock

    with _database() as database, database.write() as s:
        # A registered consumer, or one that has read the log already (`events status`): a
        # mistyped name would otherwise make a cursor that nothing reads.
        known = set(consumers.registered()) | {c.name for c in events.status(s)}
        if consumer not in known:
            fail(f"no consumer {consumer!r} (known: {', '.join(sorted(known)) or 'none'})")
        events.rewind(s, consumer, position, forget=forget, at=SystemClock().now())
    out.print(f"{consumer} will resume after event {position}")


def _until_interrupted(run: Callable[[threading.Event], None]) -> None:
    stop = threading.Event()
    worker = threading.Thread(target=run, args=(stop,), daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.5)
    except KeyboardInterrupt:
        stop.set()
        worker.join(30)


@events_app.command("consume")
def events_consume(name: Annotated[str, typer.Argument(help="A registered consumer")]) -> None:
    """Run one registered consumer until Ctrl-C (several processes may run the same one
    when SATIOT_BUS_URL is set; otherwise they take turns on the database cursor)."""
    from satiot.core import consumers
    from satiot.server import build_context, consumer_services

    known = consumers.registered()
    if name not in known:
        fail(f"no consumer {name!r} (registered: {', '.join(sorted(known)) or 'none'})")
    from satiot.cli import _check_database

    settings = load_settings()
    _check_database(settings)
    ctx = build_context(settings)
    service = next(s for s in consumer_services(ctx) if s.name == name)
    out.print(f"consuming as {name}; Ctrl-C to stop")
    _until_interrupted(lambda stop: service.run(ctx, stop))


@events_app.command("relay")
def events_relay() -> None:
    """Relay the event log to NATS JetStream (SATIOT_BUS_URL) until Ctrl-C."""
    from satiot.cli import _check_database
    from satiot.server import build_context, consumer_services

    settings = load_settings()
    if not settings.bus_url:
        fail("set SATIOT_BUS_URL (e.g. nats://127.0.0.1:4222) to relay events")
    _check_database(settings)
    ctx = build_context(settings)
    service = next(s for s in consumer_services(ctx) if s.name == "bus-relay")
    out.print(f"relaying events to {settings.bus_url} stream {settings.bus_stream}; Ctrl-C to stop")
    _until_interrupted(lambda stop: service.run(ctx, stop))
