"""The ``satiot`` command: everything an operator does from a shell."""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from satiot import cli_bill_release  # noqa: F401 - registers its commands on bills_app
from satiot.cli_bench import BENCH_SETTINGS, bench
from satiot.cli_bills import bills_app
from satiot.cli_bss import catalog_app, orders_app, subscriptions_app
from satiot.cli_common import error_line, fail, load_settings, new_password, out, styled
from satiot.cli_events import events_app
from satiot.cli_jobs import jobs_app
from satiot.cli_network import devices_app
from satiot.cli_oss import numbers_app, terminals_app
from satiot.cli_twin import twin_app
from satiot.cli_twin_plots import plot_app
from satiot.cli_usage import usage_app
from satiot.core.auth.roles import ROLES, SCOPES, Role
from satiot.core.errors import DomainError

# What the commands need is imported inside them, so that `satiot --help` and the light
# commands start without the database layer, the server or the twin.
if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.exc import DBAPIError

    from satiot.core.auth.principal import Principal
    from satiot.core.config import Settings
    from satiot.core.db import Database
    from satiot.core.models import Tenant
    from satiot.core.services import BackgroundService

app = typer.Typer(
    help="satiot: run a satellite IoT operator's network, BSS, OSS and MSS.\n\n"
    "Start with `satiot up`. Configuration comes from SATIOT_* environment variables "
    "(see README).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
users_app = typer.Typer(help="Create console and API users.", no_args_is_help=True)
tenants_app = typer.Typer(
    help="Create and list tenants (the operator's customers).", no_args_is_help=True
)
keys_app = typer.Typer(help="Issue API keys.", no_args_is_help=True)
audit_app = typer.Typer(help="Inspect and verify the hash-chained audit log.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="api-keys")
app.add_typer(audit_app, name="audit")
app.add_typer(events_app, name="events")
app.add_typer(jobs_app, name="jobs")
app.add_typer(twin_app, name="twin")
twin_app.add_typer(plot_app, name="plot")
app.add_typer(devices_app, name="devices")
app.add_typer(numbers_app, name="numbers")
app.add_typer(terminals_app, name="terminals")
app.add_typer(catalog_app, name="catalog")
app.add_typer(orders_app, name="orders")
app.add_typer(subscriptions_app, name="subscriptions")
app.add_typer(bills_app, name="bills")
app.add_typer(usage_app, name="usage")


def _open_database(settings: Settings, *, migrated: bool = True) -> Database:
    """The configured database, opened; one ``error:`` line for a URL that names none, a
    server that cannot be reached and, unless ``migrated`` is False (the commands that
    migrate it), a database that is not migrated. A missing SQLite file is not created for a
    command that would only find it empty."""
    from pathlib import Path

    from sqlalchemy.exc import DBAPIError

    from satiot.core import migrate
    from satiot.core.db import Database

    url = settings.resolved_database_url()
    parsed = _database_url(url)
    path = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if migrated and path and path != ":memory:" and not Path(path).is_file():
        fail(f"the database is not migrated (there is none at {path}): run `satiot migrate` first")
    database = Database.connect(url)
    try:
        revision = migrate.current_revision(database.engine)
    except DBAPIError as exc:
        database.dispose()
        fail(f"cannot open the database at {parsed.render_as_string()}: {_first_line(exc)}")
    if migrated and revision is None:
        database.dispose()
        fail("the database is not migrated: run `satiot migrate` first")
    return database


@contextmanager
def _database(settings: Settings | None = None, *, migrated: bool = True) -> Iterator[Database]:
    """:func:`_open_database` for the length of a block."""
    database = _open_database(settings or load_settings(), migrated=migrated)
    try:
        yield database
    finally:
        database.dispose()


def _check_database(settings: Settings, *, migrated: bool = True) -> None:
    """The checks of :func:`_open_database`, for the commands that open their own (through
    ``build_context``): one line at the start, not a traceback or a retry loop later."""
    _open_database(settings, migrated=migrated).dispose()


def _first_line(exc: DBAPIError, otherwise: str = "no answer") -> str:
    """What the database driver said, first line only (one ``error:`` line)."""
    return str(exc.orig).strip().splitlines()[0] if exc.orig else otherwise


def _database_url(url: str) -> URL:
    """``url`` parsed, or one ``error:`` line naming the setting."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        fail(f"SATIOT_DATABASE_URL: {url!r} is not a database URL (sqlite:///… or postgresql://…)")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        fail(
            f"SATIOT_DATABASE_URL: {parsed.get_backend_name()!r} is not supported "
            "(SQLite or PostgreSQL)"
        )
    return parsed


def _operator_principal(database: Database) -> Principal:
    from satiot.core.auth.principal import system_principal
    from satiot.core.bootstrap import operator_tenant

    with database.read() as s:
        tenant = operator_tenant(s)
        if tenant is None:
            fail("no operator yet: run `satiot migrate` and `satiot up` (or `satiot seed`) first")
        return system_principal(tenant.id)


def _tenant_by_slug(database: Database, slug: str) -> Tenant:
    from sqlalchemy import select

    from satiot.core.models import Tenant

    with database.read() as s:
        tenant = s.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        fail(f"no tenant with slug {slug!r}")
    return tenant


@contextmanager
def _domain_errors() -> Iterator[None]:
    try:
        yield
    except DomainError as exc:
        fail(exc.detail)


@app.command(name="migrate")
def migrate_db() -> None:
    """Create or upgrade the database schema to the newest version."""
    from satiot.core import migrate

    with _database(migrated=False) as database:
        before = migrate.current_revision(database.engine)
        migrate.upgrade(database.engine)
        after = migrate.current_revision(database.engine)
    out.print(
        f"database at revision {after}"
        + (" (unchanged)" if before == after else f" (was {before or 'empty'})")
    )


@app.command()
def seed() -> None:
    """Create the operator tenant and its `admin` user if they do not exist yet."""
    from satiot.core import migrate
    from satiot.core.bootstrap import seed_operator
    from satiot.core.clock import SystemClock

    settings = load_settings()
    with _database(settings, migrated=False) as database:
        migrate.upgrade(database.engine)
        with database.write() as s:
            seeded = seed_operator(
                s, at=SystemClock().now(), admin_password=settings.admin_password
            )
    _announce_admin(seeded.generated_password)


def _announce_admin(generated: str | None) -> None:
    if generated:
        out.print(
            styled(
                "created user ",
                ("admin", "bold"),
                " with password ",
                (generated, "bold"),
                " (shown once; set SATIOT_ADMIN_PASSWORD to choose it)",
            ),
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def up(
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="TCP port on 127.0.0.1 and ::1 (0: any free one)")
    ] = 8000,
    host: Annotated[str, typer.Option(help="IPv4 address to listen on")] = "127.0.0.1",
    host6: Annotated[str, typer.Option(help="IPv6 address to listen on ('' for none)")] = "::1",
    twin: Annotated[
        bool | None,
        typer.Option(
            "--twin/--no-twin",
            help="Run the digital twin as live traffic (default: SATIOT_TWIN, on)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the whole platform: migrate, seed the demo operator, serve API and console, and
    run the network's workers (the digital twin's ground stations posting live traffic,
    delivery, downlink planning, MQTT ingest when SATIOT_MQTT_URL is set).

    Listens on both IPv4 and IPv6 loopback. Stop with Ctrl-C.
    """
    from satiot.core import migrate
    from satiot.core.bootstrap import seed_operator
    from satiot.server import (
        BACKGROUND_SERVICES,
        bind_sockets,
        build_context,
        business_services,
        consumer_services,
        network_services,
        serve,
    )

    settings = load_settings()
    if twin is not None:
        settings = settings.model_copy(update={"twin": twin})
    from satiot.network.mqtt_tls import read_ca_file

    try:  # here, not in a service thread: a CA file that cannot serve stops the start
        read_ca_file(settings.mqtt_ca_file)
    except ValueError as exc:
        fail(str(exc))
    # Listen before touching the database: a port that cannot be had changes nothing (and a
    # new admin's password is never made without being shown).
    try:
        sockets = bind_sockets(host, host6 or None, port)
    except OSError as exc:
        fail(f"cannot listen on port {port}: {exc.strerror}")
    _check_database(settings, migrated=False)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the twin's stations post constantly
    ctx = build_context(settings)
    migrate.upgrade(ctx.db.engine)
    with ctx.db.write() as s:
        seeded = seed_operator(s, at=ctx.clock.now(), admin_password=settings.admin_password)
    out.print(
        styled(("satiot", "bold"), f" is up — database {ctx.db.engine.url.render_as_string()}")
    )
    for sock in sockets:
        addr = sock.getsockname()
        shown = f"[{addr[0]}]" if sock.family.name == "AF_INET6" else addr[0]
        out.print(
            f"  console  http://{shown}:{addr[1]}/    API  http://{shown}:{addr[1]}/docs",
            highlight=False,
        )
    out.print(
        styled(
            "  log in as ",
            ("admin", "bold"),
            ""
            if seeded.generated_password
            else " with the password you set (SATIOT_ADMIN_PASSWORD) or chose earlier",
        ),
        soft_wrap=True,
    )
    _announce_admin(seeded.generated_password)
    network = network_services(ctx, port=port)
    _announce_services(settings, network)
    business = business_services(twin=any(s.name == "live-twin" for s in network))
    out.print(
        f"  business services: {', '.join(s.name for s in business)}, rating (event consumer)",
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        f"  platform services: {', '.join(s.name for s in BACKGROUND_SERVICES)}",
        highlight=False,
        soft_wrap=True,
    )
    out.print("  press Ctrl-C to stop")
    serve(ctx, sockets, [*consumer_services(ctx), *network, *business, *BACKGROUND_SERVICES])
    out.print("satiot stopped")


def _announce_services(settings: Settings, services: Sequence[BackgroundService]) -> None:
    from satiot.network.live import default_scenario

    names = {s.name for s in services}
    scenario = default_scenario(settings)
    if "live-twin" not in names:
        out.print("  digital twin: off (no simulated traffic)")
    elif not scenario.is_file():
        out.print(
            styled(
                "  digital twin: ",
                (f"no scenario at {scenario}", "bold red"),
                " (SATIOT_TWIN_SCENARIO); no simulated traffic",
            ),
            highlight=False,
            soft_wrap=True,
        )
    else:
        out.print(
            styled(
                "  digital twin: scenario ",
                (scenario.stem, "bold"),
                f" at {settings.twin_speed:g}× real time; its ground stations post through the "
                "API (console → Messages; --no-twin to turn it off)",
            ),
            highlight=False,
            soft_wrap=True,
        )
    others = sorted(names - {"live-twin"})
    if others:
        out.print(f"  network services: {', '.join(others)}", highlight=False, soft_wrap=True)


@tenants_app.command("create")
def tenants_create(
    slug: Annotated[str, typer.Argument(help="Short unique name, e.g. sinotrans-logistics")],
    name: Annotated[str, typer.Option(help="Display name")] = "",
) -> None:
    """Create a customer tenant."""
    from satiot.core.auth.users import create_tenant
    from satiot.core.clock import SystemClock

    with _database() as database, _domain_errors():
        actor = _operator_principal(database)
        with database.write() as s:
            tenant = create_tenant(s, actor, slug=slug, name=name or slug, at=SystemClock().now())
        out.print(f"tenant {tenant.slug} created: {tenant.id}")


@tenants_app.command("list")
def tenants_list() -> None:
    """List every tenant."""
    from sqlalchemy import select

    from satiot.core.models import Tenant

    with _database() as database, database.read() as s:
        table = Table("slug", "name", "kind", "status", "id")
        for t in s.scalars(select(Tenant).order_by(Tenant.id)):
            table.add_row(t.slug, t.name, t.kind, t.status, str(t.id))
    out.print(table)


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[Role, typer.Option(help="One of the roles in the README")],
    tenant: Annotated[str, typer.Option(help="Tenant slug")] = "operator",
    password: Annotated[
        str,
        typer.Option(
            help="The password. Without it: asked for twice at a terminal, or read as the "
            "first line of standard input (`printf '%s\\n' \"$PW\" | satiot users create …`)"
        ),
    ] = "",
) -> None:
    """Create a user in a tenant."""
    from satiot.core.auth.users import create_user
    from satiot.core.clock import SystemClock

    password = password or new_password()
    with _database() as database, _domain_errors():
        actor = _operator_principal(database)
        target = _tenant_by_slug(database, tenant)
        with database.write() as s:
            user = create_user(
                s,
                actor,
                tenant_id=target.id,
                username=username,
                password=password,
                role=role,
                at=SystemClock().now(),
            )
        out.print(f"user {user.username} ({user.role}) created in {target.slug}")


@keys_app.command("create")
def keys_create(
    name: str,
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    role: Annotated[Role, typer.Option(help="Machine role of the key")] = Role.CUSTOMER_USER,
    scope: Annotated[list[str] | None, typer.Option(help="Repeat for each scope")] = None,
    expires: Annotated[datetime | None, typer.Option(help="Expiry (ISO-8601, UTC)")] = None,
) -> None:
    """Issue a machine API key (not tied to a user); prints the secret once."""
    from satiot.core.auth.credentials import issue_api_key
    from satiot.core.clock import SystemClock

    with _database() as database, _domain_errors():
        actor = _operator_principal(database)
        target = _tenant_by_slug(database, tenant)
        now = SystemClock().now()
        expiry = expires.replace(tzinfo=now.tzinfo) if expires and not expires.tzinfo else expires
        with database.write() as s:
            issued = issue_api_key(
                s,
                actor,
                name=name,
                scopes=scope,
                at=now,
                expires_at=expiry,
                machine_role=role,
                tenant_id=target.id,
            )
        out.print(f"key {issued.key.prefix} scopes {', '.join(issued.key.scopes) or '(none)'}")
        out.print(issued.secret, highlight=False, soft_wrap=True)


@keys_app.command("scopes")
def keys_scopes() -> None:
    """List every scope and which roles hold it."""
    table = Table("scope", "meaning", "roles")
    for scope, meaning in SCOPES.items():
        holders = ", ".join(r.value for r, spec in ROLES.items() if scope in spec.scopes)
        table.add_row(scope, meaning, holders)
    out.print(table)


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the hash chain; name the first altered, reordered or deleted row (exit 1)."""
    from satiot.core import audit

    with _database() as database, database.read() as s:
        verdict = audit.verify(s)
    if verdict.ok:
        out.print(f"audit log intact: {verdict.checked} rows, last seq {verdict.last_seq}")
        return
    fail(f"audit log broken at seq {verdict.seq}: {verdict.problem}", code=1)


app.command(context_settings=BENCH_SETTINGS, add_help_option=False)(bench)


def one_line_summaries(group: typer.Typer) -> None:
    """Each command's summary in its group's listing is the first paragraph of its help on
    one line. Typer keeps the docstring's line breaks there, which cut the listing's second
    column into ragged pieces; a command's own ``--help`` already reflows them."""
    for command in group.registered_commands:
        doc = command.help or (command.callback.__doc__ if command.callback else None)
        if command.short_help is None and doc:
            first = inspect.cleandoc(doc).split("\n\n", 1)[0]
            command.short_help = " ".join(first.split())
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            one_line_summaries(sub.typer_instance)


one_line_summaries(app)


def main() -> None:
    """The ``satiot`` entry point: every way a command can fail ends in one ``error:`` line."""
    # Typer (pinned) carries its own copy of Click; its exceptions are these, not click's.
    from typer._click import exceptions as click

    try:
        code = app(standalone_mode=False)
    except KeyboardInterrupt:
        sys.exit(130)
    except click.NoArgsIsHelpError as exc:  # `satiot users`: its help, as asked
        exc.show()
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        # Click's own answer is a framed block over several lines; a bad option is a bad
        # input like any other.
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        error_line(f"{exc.format_message()}{hint}")
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        error_line(exc.format_message())
        sys.exit(exc.exit_code)
    except typer.Abort:
        error_line("stopped (no input)")
        sys.exit(1)
    except DomainError as exc:  # a command that did not catch its own: still one line
        error_line(exc.detail)
        sys.exit(1)
    except Exception as exc:
        # A value the database cannot hold that no check caught first. Looked up, not
        # imported: `satiot --help` must not load the database layer.
        database = sys.modules.get("sqlalchemy.exc")
        if database is None or not isinstance(exc, database.DataError):
            raise
        error_line(f"the database refused a value: {_first_line(exc, 'a value')}")
        sys.exit(1)
    if isinstance(code, int) and code:
        sys.exit(code)
