"""Suspend/resume files: devices moved per second from one CSV file, against one request each.

The customer is set up as the twin's demo customer is (``bss.demo_business.prepare``) and
``--devices`` terminals are activated, each bound to a number and a handle. Then, as the
customer's own session (scoped to its tenant):

- file: ``bss.status_import.read_lines`` and ``apply_lines`` on a file that suspends every
  device, in one transaction, then one that resumes them all (what ``POST
  /subscriptions/status-csv``, the console's page and ``satiot subscriptions status`` do);
- anchor: what a script does without the file: ``subscriptions.suspend_subscription`` and
  ``resume_subscription`` for ``--anchor-devices`` devices, a transaction each, as ``POST
  /subscriptions/{id}/suspend`` and ``/resume`` cost the server.

Both move the device, its number and its handle and audit each move. Prints lines per wall and
CPU second of each, the ratio, and how long a file of ``status_import.MAX_ROWS`` lines holds
the database's writer (on SQLite every other write waits for it).

    satiot bench status                                   # embedded SQLite in a temp dir
    satiot bench status --backends sqlite,postgresql      # also a scratch PostgreSQL database
    satiot bench status --devices 5000
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

from sqlalchemy import select

import _args
import _databases
from activation import HANDLE_PREFIX, Figures, Terminals, activation_request
from activation import setup as business_setup
from satiot.bss import subscriptions
from satiot.bss.activation import ActivationConfig, activate
from satiot.bss.demo_business import PURPOSE
from satiot.bss.models import Subscription
from satiot.bss.status_import import MAX_ROWS, apply_lines, read_lines
from satiot.core import migrate
from satiot.core.auth.principal import system_principal
from satiot.core.auth.tenancy import scope_session
from satiot.core.clock import SystemClock
from satiot.core.config import Settings
from satiot.core.db import Database
from satiot.network.keys import load_kek

#: Activations per transaction while setting up.
SETUP_CHUNK = 500


def _timed(count: int, work: Callable[[], object]) -> Figures:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return Figures(count, time.perf_counter() - wall, time.process_time() - cpu)


def setup(db: Database, url: str, n: int) -> tuple[uuid.UUID, list[str]]:
    """The customer's tenant and the DevEUIs of its ``n`` active devices."""
    with tempfile.TemporaryDirectory() as tmp:  # the embedded default's key, for this run
        kek = load_kek(Settings(database_url=url, data_dir=Path(tmp)))
    config = ActivationConfig(kek=kek, handle_prefix=HANDLE_PREFIX, number_purpose=PURPOSE)
    tenant_id, ready = business_setup(db)
    terminals = Terminals()
    euis: list[str] = []
    clock = SystemClock()
    principal = system_principal(tenant_id, "bench-fulfilment")
    for start in range(0, n, SETUP_CHUNK):
        with db.write() as s:
            scope_session(s, tenant_id)
            for _ in range(min(SETUP_CHUNK, n - start)):
                term = terminals.next()
                activate(
                    s, principal, activation_request(ready, term), at=clock.now(), config=config
                )
                euis.append(term.dev_eui)
    return tenant_id, euis


def run_file(db: Database, tenant_id: uuid.UUID, euis: list[str], action: str) -> int:
    """Move every device by one file in one transaction; the devices moved."""
    body = "device,action,reason\n" + "".join(f"{e},{action},winter lay-up\n" for e in euis)
    principal = system_principal(tenant_id, "bench-customer")
    parsed = read_lines(body.encode(), encoding="utf-8")
    with db.write() as s:
        scope_session(s, tenant_id)
        done = apply_lines(s, principal, parsed, at=SystemClock().now())
    return done.suspended + done.resumed


def _timed_file(
    db: Database, tenant_id: uuid.UUID, euis: list[str], action: str
) -> tuple[int, Figures]:
    """:func:`run_file`, timed: the devices moved, and the figures."""
    wall, cpu = time.perf_counter(), time.process_time()
    moved = run_file(db, tenant_id, euis, action)
    return moved, Figures(len(euis), time.perf_counter() - wall, time.process_time() - cpu)


def run_anchor(db: Database, tenant_id: uuid.UUID, euis: list[str], action: str) -> None:
    """Move each device in a transaction of its own, as a request per device does."""
    principal = system_principal(tenant_id, "bench-customer")
    move = (
        subscriptions.suspend_subscription
        if action == "suspend"
        else subscriptions.resume_subscription
    )
    with db.read() as s:
        scope_session(s, tenant_id)
        ids = list(s.scalars(select(Subscription.id).where(Subscription.dev_eui.in_(euis))))
    for sub_id in ids:
        with db.write() as s:
            scope_session(s, tenant_id)
            move(s, principal, sub_id, "winter lay-up", SystemClock().now())


def bench(url: str, n: int, anchor_n: int) -> None:
    db = Database.connect(url)
    migrate.upgrade(db.engine)
    started = time.perf_counter()
    tenant_id, euis = setup(db, url, n)
    print(f"{'setup':<26}{n:,} devices activated in {time.perf_counter() - started:.1f} s")
    by_file = Figures(0, 0, 0)
    one_by_one = Figures(0, 0, 0)
    sample, rest = euis[:anchor_n], euis[anchor_n:]
    for action in ("suspend", "resume"):  # each on its own devices, the anchor first
        one_by_one += _timed(len(sample), partial(run_anchor, db, tenant_id, sample, action))
        moved, figures = _timed_file(db, tenant_id, rest, action)
        by_file += figures
        if moved != len(rest):
            raise SystemExit(f"error: the file moved {moved:,} of {len(rest):,} devices")
    print(by_file.line("file, one transaction", "lines"))
    print(one_by_one.line("anchor: a transaction a line", "lines"))
    wall = (by_file.count / by_file.wall_s) / (one_by_one.count / one_by_one.wall_s)
    cpu = (by_file.count / by_file.cpu_s) / (one_by_one.count / one_by_one.cpu_s)
    print(f"{'ratio file/anchor':<26}{wall:.1f}× wall, {cpu:.1f}× per CPU-s")
    per_line = by_file.wall_s / by_file.count
    print(
        f"{'a file of ' + format(MAX_ROWS, ',') + ' lines':<26}"
        f"{per_line * MAX_ROWS:.1f} s in one transaction ({per_line * 1000:.2f} ms a line)"
    )
    db.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = _args.parser(__doc__)
    parser.add_argument(
        "--devices", type=_args.at_least(10), default=2_000, help="the customer's fleet (≥ 10)"
    )
    parser.add_argument(
        "--anchor-devices",
        type=_args.at_least(1),
        default=200,
        help="devices moved a transaction each",
    )
    _databases.add_options(parser)
    args = parser.parse_args(argv)
    if args.anchor_devices >= args.devices:
        parser.error("--anchor-devices: fewer than --devices")
    for url in _databases.each(parser, args):
        bench(url, args.devices, args.anchor_devices)


if __name__ == "__main__":
    main()
