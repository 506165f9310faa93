"""Activation throughput: terminals bound one-to-one-to-one to an IoT number and a handle.

The customer side is set up as the twin's demo customer is (``bss.demo_business.prepare``: a
licensed model, a number block, the catalog, a validated customer whose risk assessment
passed, a billing account, a signed contract). Then:

- anchor: the network server provisions ``--devices`` devices alone
  (``network.devices.create_device``), the step every activation includes, a transaction each;
- activation, customer's tenant: as many new terminals (DevEUI and session keys) activated a
  transaction each in sessions scoped to the customer's tenant;
- activation, operator: as many again in unscoped sessions, as the operator's staff activate;
- order fulfilment: as many again ordered by the customer and fulfilled as an accepted order
  is (``bss.order_fulfilment.fulfil_order``: a savepoint per item, ``BATCH`` items to a
  transaction), the order's placement not counted.

The four run in turn, in five rounds of a fifth each, so that a slow spell of a shared
machine falls on all four.

Prints terminals per wall and CPU second of this process, and each activation's rate as a
fraction of the anchor's, which survives a noisy machine: an activation also allocates a
number, mints and records a handle, checks the contract, model and licence, and writes the
subscription, with an audit entry for each step.

    satiot bench activation                              # embedded SQLite in a temp dir
    satiot bench activation --backends sqlite,postgresql  # also a scratch PostgreSQL database
    satiot bench activation --devices 2000 --profile      # cProfile the scoped activations
"""

from __future__ import annotations

import cProfile
import os
import pstats
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import _args
import _databases
from satiot.bss.activation import ActivationConfig, ActivationRequest, activate
from satiot.bss.demo_business import MODEL, PURPOSE, DemoBusiness, prepare
from satiot.bss.order_fulfilment import BATCH, fulfil_order
from satiot.bss.order_items import ItemIn, OrderIn, TerminalIn
from satiot.bss.orders import place_order
from satiot.core import migrate
from satiot.core.auth.principal import system_principal
from satiot.core.auth.tenancy import scope_session
from satiot.core.auth.users import create_tenant
from satiot.core.bootstrap import seed_operator
from satiot.core.clock import SystemClock
from satiot.core.config import Settings
from satiot.core.db import Database
from satiot.network import devices
from satiot.network.keys import Kek, load_kek

HANDLE_PREFIX = "88.608.9999"
ROUNDS = 5


@dataclass
class Figures:
    """``count`` terminals in ``wall_s`` seconds, ``cpu_s`` of them this process's CPU."""

    count: int
    wall_s: float
    cpu_s: float

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            self.count + other.count, self.wall_s + other.wall_s, self.cpu_s + other.cpu_s
        )

    def line(self, label: str, unit: str = "terminals") -> str:
        return (
            f"{label:<34}{self.count / self.wall_s:10,.0f} {unit}/s"
            f"   per CPU-s:{self.count / self.cpu_s:10,.0f}"
        )


def _timed(n: int, work: Callable[[], None]) -> Figures:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        work()
    return Figures(n, time.perf_counter() - wall, time.process_time() - cpu)


def setup(db: Database) -> tuple[uuid.UUID, DemoBusiness]:
    """The operator, a customer tenant (its id) and everything it needs to activate."""
    at = SystemClock().now()
    with db.write() as s:
        operator = seed_operator(s, at=at, admin_password=None).operator
        actor = system_principal(operator.id, "bench")
        tenant = create_tenant(s, actor, slug="bench-customer", name="Bench Customer", at=at)
        return tenant.id, prepare(s, tenant, at=at, devices=100_000)


class Terminals:
    """New terminals, each with its own DevEUI, address and session keys."""

    def __init__(self) -> None:
        self.n = 0

    def next(self) -> TerminalIn:
        self.n += 1
        return TerminalIn(
            dev_eui=f"{0x70B3D5BE00000000 + self.n:016X}",
            terminal_model=MODEL,
            dev_addr=f"{0x26300000 + self.n:08X}",
            nwk_s_key=os.urandom(16).hex(),
            app_s_key=os.urandom(16).hex(),
        )


def run_anchor(
    db: Database, kek: Kek, tenant_id: uuid.UUID, terminals: Terminals, n: int
) -> Figures:
    clock = SystemClock()
    actor = system_principal(tenant_id, "bench")

    def one() -> None:
        term = terminals.next()
        with db.write() as s:
            devices.create_device(
                s,
                actor,
                kek=kek,
                tenant_id=tenant_id,
                dev_eui=term.dev_eui,
                dev_addr=term.dev_addr or "",
                nwk_s_key=term.nwk_s_key or "",
                app_s_key=term.app_s_key or "",
                at=clock.now(),
            )

    return _timed(n, one)


def activation_request(ready: DemoBusiness, terminal: TerminalIn) -> ActivationRequest:
    """The demo customer's activation of ``terminal`` on its offering."""
    return ActivationRequest(
        customer_id=ready.customer_id,
        billing_account_id=ready.account_id,
        offering_id=ready.offering_id,
        terminal=terminal,
        reason="benchmark",
    )


def run_activations(
    db: Database,
    config: ActivationConfig,
    tenant_id: uuid.UUID,
    ready: DemoBusiness,
    terminals: Terminals,
    n: int,
    *,
    scoped: bool,
) -> Figures:
    clock = SystemClock()
    principal = system_principal(tenant_id, "bench-fulfilment")

    def one() -> None:
        request = activation_request(ready, terminals.next())
        with db.write() as s:
            if scoped:
                scope_session(s, tenant_id)
            activate(s, principal, request, at=clock.now(), config=config)

    return _timed(n, one)


def run_fulfilment(
    db: Database,
    config: ActivationConfig,
    tenant_id: uuid.UUID,
    ready: DemoBusiness,
    terminals: Terminals,
    n: int,
) -> Figures:
    """An order of ``n`` new terminals placed (not timed), then fulfilled (timed)."""
    clock = SystemClock()
    principal = system_principal(tenant_id, "bench-customer")
    items = tuple(
        ItemIn("add", line, offering=str(ready.offering_id), terminal=terminals.next())
        for line in range(n)
    )
    with db.write() as s:
        scope_session(s, tenant_id)
        order = place_order(
            s, principal, OrderIn(items, customer_id=ready.customer_id), at=clock.now(),
            kek=config.kek,
        )  # fmt: skip
    state = ""

    def fulfil() -> None:
        nonlocal state
        state = fulfil_order(db, order.id, clock=clock, config=config)

    figures = _timed(1, fulfil)
    if state != "completed":
        raise SystemExit(f"error: the order of {n:,} terminals ended {state}")
    return Figures(n, figures.wall_s, figures.cpu_s)


def bench(url: str, n: int, profile: bool) -> None:
    db = Database.connect(url)
    migrate.upgrade(db.engine)
    with tempfile.TemporaryDirectory() as tmp:  # the embedded default's key, for this run
        kek = load_kek(Settings(database_url=url, data_dir=Path(tmp)))
    config = ActivationConfig(kek=kek, handle_prefix=HANDLE_PREFIX, number_purpose=PURPOSE)
    tenant_id, ready = setup(db)
    terminals = Terminals()
    warm = max(10, n // 20)  # caches and the first pages of each table
    run_activations(db, config, tenant_id, ready, terminals, warm, scoped=True)
    run_anchor(db, kek, tenant_id, terminals, warm)
    # Five rounds, each running the three in turn: a machine that slows down for a while
    # slows all three alike, and the ratios hold.
    profiler = cProfile.Profile() if profile else None
    anchor, scoped, unscoped = Figures(0, 0, 0), Figures(0, 0, 0), Figures(0, 0, 0)
    fulfilled = Figures(0, 0, 0)
    for r in range(ROUNDS):
        part = n // ROUNDS + (1 if r < n % ROUNDS else 0)
        anchor += run_anchor(db, kek, tenant_id, terminals, part)
        if profiler:
            profiler.enable()
        scoped += run_activations(db, config, tenant_id, ready, terminals, part, scoped=True)
        if profiler:
            profiler.disable()
        unscoped += run_activations(db, config, tenant_id, ready, terminals, part, scoped=False)
        fulfilled += run_fulfilment(db, config, tenant_id, ready, terminals, part)
    print(anchor.line("anchor: device provisioning"))
    for label, f in (
        ("activation, customer's tenant", scoped),
        ("activation, operator", unscoped),
        (f"order fulfilment, {BATCH} a tx", fulfilled),
    ):
        cost = (f.cpu_s / f.count) / (anchor.cpu_s / anchor.count)
        print(f.line(label) + f"   CPU per terminal: {cost:.1f}× the anchor's")
    db.dispose()
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def main(argv: list[str] | None = None) -> None:
    parser = _args.parser(__doc__)
    parser.add_argument(
        "--devices", type=_args.at_least(10), default=500, help="terminals per run (≥ 10)"
    )
    _databases.add_options(parser)
    parser.add_argument("--profile", action="store_true", help="cProfile the scoped run")
    args = parser.parse_args(argv)
    for url in _databases.each(parser, args, f", {args.devices:,} per run"):
        bench(url, args.devices, args.profile)


if __name__ == "__main__":
    main()
