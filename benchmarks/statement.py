"""A bill's usage statement: each device's usage on one bill, against summing the usage list.

One customer (set up as the export benchmark's) holds ``--devices`` subscriptions, which
sent ``--records`` messages each in each of ``--months`` months; each month is billed by a
real bill run as it ends (``satiot.bss.billing.run_bills``), which points every record at its
bill, and the planner's statistics are gathered. Then, in a session scoped to the customer's
tenant, for the last month's bill:

- statement: ``bss.bill_statement.export_statement``, every piece of the CSV file made;
- anchor: what a script does without it: walk ``GET /api/v1/usage`` for the account and month
  at its largest page (500), each page read, made into the API's models and encoded as JSON,
  as the list route does, and decoded, as the script does (in process, without HTTP), and sum
  the records' charges by device;
- records: ``bss.usage_export.export_records``, the account's month as a file of one line per
  message, every piece made; against the same anchor, counted in records;
- a page: the first 50 devices of the statement (the invoice page's table), with the bill's
  index and, once dropped, without it (what migration 0019 changed), and the index put back.

The statement, the records' file and the anchor run in turn, in three rounds, so that a slow
spell of a shared machine falls on all. Prints devices per second, records per second and the
ratios.

    satiot bench statement                                  # embedded SQLite in a temp dir
    satiot bench statement --backends sqlite,postgresql     # also a scratch PostgreSQL database
    satiot bench statement --devices 200 --records 50 --months 3
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from fastapi.encoders import jsonable_encoder
from sqlalchemy import select, text, update

import _args
import _databases
from export import ROUNDS, Figures, _timed
from export import setup as fleet
from satiot.api.usage import UsageOut
from satiot.bss.bill_statement import export_statement, statement_page
from satiot.bss.billing import RunSettings, run_bills
from satiot.bss.models import CustomerBill, Subscription, UsageRecord
from satiot.bss.periods import period_bounds
from satiot.bss.rating_sql import USAGE_COLUMNS
from satiot.bss.usage_export import export_records, selection
from satiot.core import migrate
from satiot.core.auth.principal import system_principal
from satiot.core.auth.tenancy import scope_session
from satiot.core.bulk import insert_rows
from satiot.core.db import Database
from satiot.core.db_statistics import refresh_statistics
from satiot.core.ids import new_id_block, uuid_from_int
from satiot.core.pagination import paginate

PAGE = 500
DEVICES_PAGE = 50
PAGE_REPEATS = 20
TZ = "Asia/Shanghai"
SETTINGS = RunSettings(600, "SAT", 30, TZ)
#: The bill's index, as the model declares it (dropped and put back to time a page without it).
BILL_INDEX = next(
    i for i in UsageRecord.__table__.indexes if i.name == "ix_usage_bill_subscription"
)


def months_before(last: str, n: int) -> list[str]:
    """The ``n`` months ending with ``last`` (YYYY-MM), oldest first."""
    year, month = map(int, last.split("-"))
    out = []
    for _ in range(n):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def fill(db: Database, tenant_id: uuid.UUID, months: list[str], per_device: int) -> uuid.UUID:
    """Each month's usage, then its bill run; the last bill's id."""
    with db.write() as s:
        subs = s.execute(
            select(
                Subscription.id,
                Subscription.dev_eui,
                Subscription.billing_account_id,
                Subscription.offering_id,
            ).where(Subscription.tenant_id == tenant_id)
        ).all()
        first_start = period_bounds(months[0], TZ).start
        s.execute(update(Subscription).values(activated_at=first_start - timedelta(days=1)))
        operator = s.scalar(text("SELECT id FROM tenants WHERE kind = 'operator'"))
    actor = system_principal(uuid.UUID(str(operator)), "bench")
    bill_id = None
    for month in months:
        bounds = period_bounds(month, TZ)
        span = (bounds.end - bounds.start) / (per_device + 1)
        first = new_id_block(len(subs) * per_device)
        rows = []
        for n, (sub_id, dev_eui, account, offering) in enumerate(subs):
            for i in range(per_device):
                rid = uuid_from_int(first + n * per_device + i)
                size = 10 + (n + i) % 40
                kind = "downlink" if i % 10 == 9 else "uplink"
                rows.append(
                    (rid, rid, tenant_id, dev_eui, sub_id, account, offering, kind, size,
                     max(size, 20), month, bounds.start + span * (i + 1),
                     10_000 + 100 * max(size, 20), "rated", None)
                )  # fmt: skip
        with db.write() as s:
            insert_rows(s, "usage_records", USAGE_COLUMNS, rows)
        with db.write() as s:
            run = run_bills(s, actor, month, at=bounds.end + timedelta(hours=2), settings=SETTINGS)
            bill_id = s.scalar(select(CustomerBill.id).where(CustomerBill.bill_run_id == run.id))
    assert bill_id is not None
    return bill_id


def gather_statistics(db: Database) -> None:
    """The planner's statistics, as ``satiot up``'s statistics service gathers them on SQLite
    and autovacuum on PostgreSQL once a month's claims have changed a tenth of the records (a
    freshly loaded PostgreSQL table has none, and reads a page through both indexes)."""
    if not refresh_statistics(db):
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE usage_records")


def run_statement(db: Database, tenant_id: uuid.UUID, bill_id: uuid.UUID) -> tuple[int, int]:
    """Devices written and the file's size."""
    size = lines = 0
    with db.read() as s:
        scope_session(s, tenant_id)
        number = s.scalar(select(CustomerBill.number).where(CustomerBill.id == bill_id))
        for piece in export_statement(s, bill_id, str(number)):
            size += len(piece)
            lines += piece.count(b"\r\n")
    return lines - 1, size


def run_records(db: Database, tenant_id: uuid.UUID, bill_id: uuid.UUID) -> int:
    """Lines of the account's month of usage records as a file."""
    lines = 0
    with db.read() as s:
        scope_session(s, tenant_id)
        account, period = s.execute(
            select(CustomerBill.billing_account_id, CustomerBill.period).where(
                CustomerBill.id == bill_id
            )
        ).one()
        chosen = selection(s, period, billing_account_id=account)
        for piece in export_records(s, chosen, TZ):
            lines += piece.count(b"\r\n")
    return lines - 1


def run_anchor(db: Database, tenant_id: uuid.UUID, bill_id: uuid.UUID) -> int:
    """Devices summed from the usage list's pages of the account's month."""
    with db.read() as s:
        account, period = s.execute(
            select(CustomerBill.billing_account_id, CustomerBill.period).where(
                CustomerBill.id == bill_id
            )
        ).one()
    charges: Counter[str] = Counter()
    cursor = None
    while True:
        with db.read() as s:
            scope_session(s, tenant_id)
            stmt = select(UsageRecord).where(
                UsageRecord.billing_account_id == account, UsageRecord.period == period
            )
            page = paginate(s, stmt, UsageRecord.id, cursor=cursor, limit=PAGE, descending=True)
            items = [UsageOut.model_validate(u) for u in page.items]
            body = json.loads(json.dumps(jsonable_encoder({"items": items})))
        for item in body["items"]:
            charges[item["subscription_id"]] += item["charge_micros"]
        cursor = page.next_cursor
        if not cursor:
            return len(charges)


def time_page(db: Database, tenant_id: uuid.UUID, bill_id: uuid.UUID) -> float:
    """Seconds for the statement's first page of 50 devices (the mean of a few)."""
    started = time.perf_counter()
    for _ in range(PAGE_REPEATS):
        with db.read() as s:
            scope_session(s, tenant_id)
            page = statement_page(s, bill_id, cursor=None, limit=DEVICES_PAGE)
            assert page.items
    return (time.perf_counter() - started) / PAGE_REPEATS


def bench(url: str, devices: int, per_device: int, months: int) -> None:
    db = Database.connect(url)
    migrate.upgrade(db.engine)
    started = time.perf_counter()
    tenant_id = fleet(db, devices)
    last = datetime.now(UTC) - timedelta(days=40)
    bill_id = fill(db, tenant_id, months_before(f"{last:%Y-%m}", months), per_device)
    records = devices * per_device
    gather_statistics(db)
    print(
        f"{'setup':<26}{devices:,} devices, {records * months:,} records over {months} "
        f"bills in {time.perf_counter() - started:.1f} s"
    )
    statement, records_file, anchor = Figures(), Figures(), Figures()
    size = 0
    for _ in range(ROUNDS):
        written = 0
        lines = _timed(records_file, lambda: run_records(db, tenant_id, bill_id))
        if lines != records:
            raise SystemExit(f"error: {lines:,} of {records:,} records in the file")

        def one() -> int:
            nonlocal written, size
            written, size = run_statement(db, tenant_id, bill_id)
            return written

        _timed(statement, one)
        summed = _timed(anchor, lambda: run_anchor(db, tenant_id, bill_id))
        if written != devices or summed != devices:
            raise SystemExit(f"error: {written:,} and {summed:,} of {devices:,} devices")
    print(_line(statement, "statement (CSV)", per_device) + f"   file: {size / 1024:.0f} KiB")
    print(_line(anchor, f"anchor: usage pages of {PAGE}", per_device))
    wall = (statement.count / statement.wall_s) / (anchor.count / anchor.wall_s)
    cpu = (statement.count / statement.cpu_s) / (anchor.count / anchor.cpu_s)
    print(f"{'ratio statement/anchor':<26}{wall:.1f}× wall, {cpu:.1f}× per CPU-s")
    # the file's count is records, the anchor's devices (each of per_device records)
    per_wall = records_file.count / records_file.wall_s
    per_cpu = records_file.count / records_file.cpu_s
    print(f"{'records (CSV)':<26}{per_wall:10,.0f} records/s{'':15}per CPU-s:{per_cpu:10,.0f}")
    wall = per_wall / (anchor.count * per_device / anchor.wall_s)
    cpu = per_cpu / (anchor.count * per_device / anchor.cpu_s)
    print(f"{'ratio records/anchor':<26}{wall:.1f}× wall, {cpu:.1f}× per CPU-s")
    indexed = time_page(db, tenant_id, bill_id)
    with db.engine.begin() as conn:
        BILL_INDEX.drop(conn)
    try:
        bare = time_page(db, tenant_id, bill_id)
    finally:
        with db.engine.begin() as conn:
            BILL_INDEX.create(conn)
    print(
        f"{'a page of 50 devices':<26}{indexed * 1000:10.1f} ms with the bill's index, "
        f"{bare * 1000:.1f} ms without: {bare / indexed:.0f}×"
    )
    db.dispose()


def _line(figures: Figures, label: str, per_device: int) -> str:
    devices = figures.count / figures.wall_s
    return (
        f"{label:<26}{devices:10,.0f} devices/s ({devices * per_device:,.0f} records/s)"
        f"   per CPU-s:{figures.count / figures.cpu_s:10,.0f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = _args.parser(__doc__)
    parser.add_argument(
        "--devices", type=_args.at_least(10), default=1_000, help="the customer's fleet (≥ 10)"
    )
    parser.add_argument(
        "--records", type=_args.at_least(1), default=100, help="messages per device a month"
    )
    parser.add_argument("--months", type=_args.at_least(1), default=12, help="months billed (≥ 1)")
    _databases.add_options(parser)
    args = parser.parse_args(argv)
    for url in _databases.each(parser, args):
        bench(url, args.devices, args.records, args.months)


if __name__ == "__main__":
    main()
