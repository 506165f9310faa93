"""Subscriptions export: a customer's whole fleet as one CSV file, against walking the list.

One customer (set up as the twin's demo customer is) holds ``--subscriptions`` subscriptions,
each with an IMEI, IoT number and handle. Then, in a session scoped to the customer's tenant,
as the customer's own download runs:

- export: ``bss.subscription_export.export_subscriptions``, every piece of the file made;
- anchor: what a script does without it: walk ``GET /api/v1/subscriptions`` page by page at
  its largest page (500), each page read, made into the API's models and encoded as JSON, as
  the list route does (in process, without HTTP, so that only the work differs).

The two run in turn, in three rounds, so that a slow spell of a shared machine falls on both.
Prints subscriptions per wall and CPU second of each and the ratio export/anchor.

    satiot bench export                                   # embedded SQLite in a temp dir
    satiot bench export --backends sqlite,postgresql      # also a scratch PostgreSQL database
    satiot bench export --subscriptions 20000
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from fastapi.encoders import jsonable_encoder
from sqlalchemy import insert, select

import _args
import _databases
from satiot.api.subscriptions import SubscriptionOut
from satiot.bss.demo_business import MODEL, prepare
from satiot.bss.models import Contract, Subscription
from satiot.bss.subscription_export import export_subscriptions
from satiot.core import migrate
from satiot.core.auth.principal import system_principal
from satiot.core.auth.tenancy import scope_session
from satiot.core.auth.users import create_tenant
from satiot.core.bootstrap import seed_operator
from satiot.core.clock import SystemClock
from satiot.core.db import Database
from satiot.core.ids import new_id_block, uuid_from_int
from satiot.core.pagination import paginate

ROUNDS = 3
PAGE = 500
INSERT_CHUNK = 10_000


@dataclass
class Figures:
    count: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0

    def add(self, count: int, wall_s: float, cpu_s: float) -> None:
        self.count += count
        self.wall_s += wall_s
        self.cpu_s += cpu_s

    def line(self, label: str) -> str:
        return (
            f"{label:<26}{self.count / self.wall_s:10,.0f} subscriptions/s"
            f"   per CPU-s:{self.count / self.cpu_s:10,.0f}"
        )


def setup(db: Database, n: int) -> uuid.UUID:
    """A customer with ``n`` active subscriptions; its tenant's id."""
    at = SystemClock().now()
    with db.write() as s:
        operator = seed_operator(s, at=at, admin_password=None).operator
        actor = system_principal(operator.id, "bench")
        tenant = create_tenant(s, actor, slug="bench-customer", name="Bench Customer", at=at)
        ready = prepare(s, tenant, at=at, devices=n)
        contract_id = s.scalar(select(Contract.id).where(Contract.customer_id == ready.customer_id))
    first = new_id_block(n)
    for start in range(0, n, INSERT_CHUNK):
        rows = [
            {
                "id": uuid_from_int(first + i),
                "tenant_id": tenant.id,
                "customer_id": ready.customer_id,
                "billing_account_id": ready.account_id,
                "contract_id": contract_id,
                "offering_id": ready.offering_id,
                "add_on_ids": [],
                "imei": f"35417803{i:07d}",
                "dev_eui": f"{0x70B3D5BE00000000 + i:016X}",
                "terminal_model": MODEL,
                "iot_number": f"141012{i:07d}",
                "handle": f"88.608.9999/{i:010d}",
                "status": "active",
                "throttled": False,
                "created_at": at,
                "activated_at": at,
            }
            for i in range(start, min(n, start + INSERT_CHUNK))
        ]
        with db.write() as s:
            s.execute(insert(Subscription), rows)
    return tenant.id


def _timed(figures: Figures, work: Callable[[], int]) -> int:
    wall, cpu = time.perf_counter(), time.process_time()
    count = work()
    figures.add(count, time.perf_counter() - wall, time.process_time() - cpu)
    return count


def run_export(db: Database, tenant_id: uuid.UUID) -> tuple[int, int]:
    """Subscriptions written and the file's size."""
    size = lines = 0
    with db.read() as s:
        scope_session(s, tenant_id)
        for piece in export_subscriptions(s):
            size += len(piece)
            lines += piece.count(b"\r\n")
    return lines - 1, size


def run_anchor(db: Database, tenant_id: uuid.UUID) -> int:
    """Subscriptions read through the list's pages."""
    seen, cursor = 0, None
    while True:
        with db.read() as s:
            scope_session(s, tenant_id)
            page = paginate(s, select(Subscription), Subscription.id, cursor=cursor, limit=PAGE)
            body = {"items": [SubscriptionOut.of(sub) for sub in page.items]}
            json.dumps(jsonable_encoder(body))
        seen += len(page.items)
        cursor = page.next_cursor
        if not cursor:
            return seen


def bench(url: str, n: int) -> None:
    db = Database.connect(url)
    migrate.upgrade(db.engine)
    started = time.perf_counter()
    tenant_id = setup(db, n)
    print(f"{'setup':<26}{n:,} subscriptions in {time.perf_counter() - started:.1f} s")
    export, anchor = Figures(), Figures()
    size = 0
    for _ in range(ROUNDS):
        written = 0

        def one() -> int:
            nonlocal written, size
            written, size = run_export(db, tenant_id)
            return written

        _timed(export, one)
        listed = _timed(anchor, lambda: run_anchor(db, tenant_id))
        if written != n or listed != n:
            raise SystemExit(f"error: read {written:,} and {listed:,} of {n:,} subscriptions")
    print(export.line("export (CSV)") + f"   file: {size / 1024 / 1024:.1f} MiB")
    print(anchor.line(f"anchor: list pages of {PAGE}"))
    wall = (export.count / export.wall_s) / (anchor.count / anchor.wall_s)
    cpu = (export.count / export.cpu_s) / (anchor.count / anchor.cpu_s)
    print(f"{'ratio export/anchor':<26}{wall:.1f}× wall, {cpu:.1f}× per CPU-s")
    db.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = _args.parser(__doc__)
    parser.add_argument(
        "--subscriptions",
        type=_args.at_least(10),
        default=100_000,
        help="the customer's fleet (≥ 10)",
    )
    _databases.add_options(parser)
    args = parser.parse_args(argv)
    for url in _databases.each(parser, args):
        bench(url, args.subscriptions)


if __name__ == "__main__":
    main()
