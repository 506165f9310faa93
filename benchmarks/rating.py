"""Rating throughput: usage events rated per second on one core, against a per-event anchor.

Runs on the embedded SQLite by default, or on the database in SATIOT_DATABASE_URL (use a
scratch database: the benchmark migrates it and adds rows). It builds one customer with
--devices subscriptions on an offering with a pooled allowance, per-message and per-byte
prices (minimum billable size) and a contract quota, then rates --events uplink events:

- batch path: :meth:`satiot.bss.rating.Rater.rate_range` over --batch events of the event log
  per transaction (what the ``bss.rating`` consumer does for each batch): one read of the
  range, the rules in a plain loop, bulk writes; a fixed number of statements per batch;
- consumer path (--consumer): the same through ``consume_batch``, with the consumer's cursor;
- anchor: the naive way, one transaction per event with ORM look-ups of the subscription,
  prices and counter, in the same process on the same database.

The events are written to the log before the clock starts. It prints events/s for each (wall
time; on SQLite per CPU-second of this process, which there is all the work; on a PostgreSQL
server on this machine per CPU-second of this process and the server's backend together, read
from ``/proc``), the ratio batch/anchor, on SQLite the floor (SQLite alone writing the usage
records) and the yardstick. ``--sql-bound`` adds, on SQLite, the rules run as set-based SQL
(cut down to this traffic), with the charges of both, which must agree.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

import _args
from _yardstick import calibrate
from satiot.bss import rating as rating_module
from satiot.bss import rating_sql, rating_store
from satiot.bss.models import (
    BillingAccount,
    Contract,
    Customer,
    ProductOffering,
    ProductOfferingPrice,
    Subscription,
    UsageCounter,
    UsageRecord,
)
from satiot.bss.periods import period_of
from satiot.bss.rating import CONSUMER_NAME, Rater
from satiot.bss.rating import consumer as rating_consumer
from satiot.bss.rating_pass import RatingPass
from satiot.core import events, migrate
from satiot.core.bulk import insert_rows
from satiot.core.clock import SystemClock
from satiot.core.db import SQLITE_PRAGMAS, Database
from satiot.core.db_statistics import refresh_statistics
from satiot.core.ids import new_id
from satiot.core.models import Event, Tenant

T0 = datetime(2026, 11, 3, tzinfo=UTC)


def setup(
    db: Database, devices: int, *, prepaid: bool = False, accounts: int = 1
) -> tuple[uuid.UUID, list[str]]:
    """One tenant, customer, contract and offering, ``accounts`` billing accounts
    (``prepaid``: with a balance that never runs out, so that every batch debits it and writes
    its ledger entry) and ``devices`` subscriptions dealt out over the accounts in turn."""
    now = datetime.now(UTC)
    tenant_id, customer_id, contract_id, offering_id = (new_id() for _ in range(4))
    account_ids = [new_id() for _ in range(accounts)]
    with db.write() as s:
        s.add(
            Tenant(
                id=tenant_id,
                slug=f"bench-{tenant_id.hex[-8:]}",
                name="Bench",
                kind="customer",
                status="active",
                created_at=now,
            )
        )
        s.flush()
        s.add(
            Customer(
                id=customer_id,
                tenant_id=tenant_id,
                name="Bench Co",
                uscc=tenant_id.hex[-18:].upper(),
                uscc_check_ok=True,
                org_type="enterprise",
                industry="D",
                province="11",
                legal_rep_name="x",
                legal_rep_id="x",
                agent_name="x",
                agent_id="x",
                status="validated",
                risk_status="passed",
                created_at=now,
                updated_at=now,
            )
        )
        s.flush()
        s.add_all(
            BillingAccount(
                id=account_id,
                tenant_id=tenant_id,
                customer_id=customer_id,
                name=f"Bench {i}",
                payment_mode="prepaid" if prepaid else "postpaid",
                balance_micros=10**15 if prepaid else 0,
                status="active",
                created_at=now,
            )
            for i, account_id in enumerate(account_ids)
        )
        s.add(
            Contract(
                id=contract_id,
                tenant_id=tenant_id,
                customer_id=customer_id,
                number=f"B-{contract_id.hex[-10:]}",
                version=1,
                scenario="bench",
                allowed_models=["M"],
                max_devices=devices,
                monthly_messages_per_device=100_000,
                quota_action="notify",
                destination_allow_list=[],
                service_area=["11"],
                offering_ids=[],
                status="signed",
                created_at=now,
            )
        )
        s.add(
            ProductOffering(
                id=offering_id,
                code=f"bench-{offering_id.hex[-10:]}",
                version=1,
                name="Bench",
                lifecycle_status="Active",
                created_at=now,
            )
        )
        s.flush()
        for kind, amount, extra in (
            ("recurring", 5_000_000, {"allowance_messages": 100, "pooled": True}),
            ("per-message", 20_000, {}),
            ("per-byte", 100, {"min_billable_bytes": 50, "applies_to": "uplink"}),
        ):
            s.add(
                ProductOfferingPrice(
                    offering_id=offering_id, name=kind, kind=kind, amount_micros=amount, **extra
                )
            )
        euis = [f"{tenant_id.hex[-6:]}{i:010X}".upper() for i in range(devices)]
        cols = (
            "id",
            "tenant_id",
            "customer_id",
            "billing_account_id",
            "contract_id",
            "offering_id",
            "add_on_ids",
            "dev_eui",
            "terminal_model",
            "status",
            "throttled",
            "created_at",
            "activated_at",
        )
        insert_rows(
            s,
            "subscriptions",
            cols,
            (
                (
                    new_id(),
                    tenant_id,
                    customer_id,
                    account_ids[i % accounts],
                    contract_id,
                    offering_id,
                    "[]",
                    eui,
                    "M",
                    "active",
                    False,
                    now,
                    T0 - timedelta(days=30),
                )
                for i, eui in enumerate(euis)
            ),
        )
    return tenant_id, euis


def make_events(tenant_id: uuid.UUID, euis: list[str], n: int, offset: int = 0) -> list[Event]:
    out = []
    for i in range(offset, offset + n):
        at = T0 + timedelta(seconds=i)
        payload = base64.b64encode(bytes(20 + i % 60)).decode()
        out.append(
            Event(
                id=new_id(),
                seq=i + 1,
                type="uplink.accepted",
                tenant_id=tenant_id,
                occurred_at=at,
                payload={
                    "id": str(new_id()),
                    "dev_eui": euis[i % len(euis)],
                    "payload": payload,
                    "received_at": at.isoformat().replace("+00:00", "Z"),
                },
            )
        )
    return out


def fill_log(db: Database, tenant_id: uuid.UUID, euis: list[str], n: int) -> tuple[int, int]:
    """Write ``n`` usage events to the log; return the log range (after, last) they fill."""
    with db.read() as s:
        first = events.head(s)
    for chunk in range(0, n, 5_000):
        with db.write() as s:
            for ev in make_events(tenant_id, euis, min(5_000, n - chunk), offset=chunk):
                events.emit(s, ev.type, at=ev.occurred_at, payload=ev.payload, tenant_id=tenant_id)
    with db.read() as s:
        return first, events.head(s)


def backend_cpu(pid: int) -> float | None:
    """CPU seconds used so far by the PostgreSQL backend ``pid``, when it runs on this machine
    (``/proc``); None for a remote server."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if comm != "postgres":  # the same number on another machine
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def batch_path(
    db: Database, span: tuple[int, int], batch: int
) -> tuple[float, float, float | None]:
    """Events/s over wall time, per CPU-second of this process and, on a PostgreSQL server
    on this machine, per CPU-second of this process and its server backend together."""
    rater = Rater()
    after, last = span
    pg = db.engine.dialect.name == "postgresql"
    server: float | None = 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    for lo in range(after, last, batch):
        with db.write() as s:
            pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one() if pg else None
            before = backend_cpu(pid) if pid else None
            rater.rate_range(s, lo, min(lo + batch, last))
        after_cpu = backend_cpu(pid) if pid else None
        if server is not None and before is not None and after_cpu is not None:
            server += after_cpu - before
        else:
            server = None
    n = last - after
    used = time.process_time() - cpu
    both = n / (used + server) if pg and server is not None else None
    return n / (time.perf_counter() - wall), n / used, both


#: The steps of a batch that ``--phases`` times: (where the function is looked up, its name,
#: what it does). ``rating`` calls each once per batch, so timing them costs nothing per event.
PHASES = (
    (rating_sql, "fetch", "read the range (SQL: payload JSON, join)"),
    (rating_module, "stage", "stage: sizes, times, reasons"),
    (RatingPass, "plan", "plan: prices, buckets"),
    (rating_sql, "counters", "read the counters"),
    (RatingPass, "load", "start the counters"),
    (RatingPass, "apply", "the rules, message by message"),
    (rating_sql, "insert_usage", "write the usage records"),
    (rating_sql, "write_counters", "write the counters"),
)


@contextmanager
def timed_phases() -> Iterator[dict[str, float]]:
    """CPU seconds spent in each of :data:`PHASES` while the block runs."""
    spent = {label: 0.0 for _, _, label in PHASES}
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in PHASES]

    def timing(function: Callable[..., Any], label: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] += time.process_time() - started

        return timed

    for (owner, name, function), (_, _, label) in zip(originals, PHASES, strict=True):
        setattr(owner, name, timing(function, label))
    try:
        yield spent
    finally:
        for owner, name, function in originals:
            setattr(owner, name, function)


def print_phases(spent: dict[str, float], events: int, per_cpu: float, server: bool) -> None:
    """Microseconds of this process's CPU per event in each phase, and what is left (commit,
    threshold events, prepaid debits, the session): where the batch path's time goes. With a
    database server, its own work is not in these figures (the steps that wait for it show
    only the client's side)."""
    total = 1e6 / per_cpu
    whose = "this process's CPU, not the server's" if server else "CPU in all"
    print(f"where the time goes          {total:12.2f} us/event of {whose}")
    for label, seconds in spent.items():
        us = seconds / events * 1e6
        print(f"  {label:40} {us:6.2f} us  {us / total:4.0%}")
    rest = total - sum(spent.values()) / events * 1e6
    print(f"  {'the rest (commit, events, debits)':40} {rest:6.2f} us  {rest / total:4.0%}")


def consumer_path(db: Database, span: tuple[int, int], batch: int) -> float:
    after, last = span
    with db.write() as s:  # start at the range
        events.rewind(s, CONSUMER_NAME, after, forget=False, at=datetime.now(UTC))
    consumer = rating_consumer(batch)
    started = time.perf_counter()
    while events.consume_batch(db, consumer, SystemClock()):
        pass
    return (last - after) / (time.perf_counter() - started)


def anchor(db: Database, evs: list[Event]) -> float:
    """One transaction per event, ORM look-ups: how a first version would rate."""
    started = time.perf_counter()
    for ev in evs:
        with db.write() as s:
            sub = s.scalar(
                select(Subscription).where(
                    Subscription.dev_eui == ev.payload["dev_eui"],
                    Subscription.status.not_in(rating_store.ENDED),
                )
            )
            if sub is None:
                continue
            prices = s.scalars(
                select(ProductOfferingPrice).where(
                    ProductOfferingPrice.offering_id == sub.offering_id
                )
            ).all()
            size = len(base64.b64decode(ev.payload["payload"]))
            period = period_of(ev.occurred_at)
            bucket = f"pool:{sub.billing_account_id}:{sub.offering_id}"
            counter = s.scalar(
                select(UsageCounter).where(
                    UsageCounter.bucket == bucket, UsageCounter.period == period
                )
            )
            if counter is None:
                counter = UsageCounter(
                    tenant_id=sub.tenant_id,
                    bucket=bucket,
                    period=period,
                    messages=0,
                    bytes=0,
                    allowance_messages=100,
                    allowance_bytes=0,
                    notified_pct=0,
                )
                s.add(counter)
            charge = 0
            billable = size
            for p in prices:
                if p.kind == "per-message" and counter.messages >= counter.allowance_messages:
                    charge += p.amount_micros
                if p.kind == "per-byte":
                    billable = max(size, p.min_billable_bytes)
                    charge += p.amount_micros * billable
            counter.messages += 1
            counter.bytes += billable
            s.add(
                UsageRecord(
                    id=ev.id,
                    event_id=ev.id,
                    tenant_id=sub.tenant_id,
                    dev_eui=sub.dev_eui,
                    subscription_id=sub.id,
                    billing_account_id=sub.billing_account_id,
                    offering_id=sub.offering_id,
                    kind="uplink",
                    bytes=size,
                    billable_bytes=billable,
                    period=period,
                    occurred_at=ev.occurred_at,
                    charge_micros=charge,
                    state="rated",
                )
            )
    return len(evs) / (time.perf_counter() - started)


#: The least a batch rater can do: price the range's uplinks against one pool with one
#: running count and write their usage records, in a single INSERT ... SELECT.
FLOOR_SQL = """
INSERT INTO usage_records (id, event_id, tenant_id, dev_eui, subscription_id,
  billing_account_id, offering_id, kind, bytes, billable_bytes, period, occurred_at,
  charge_micros, state)
SELECT id, id, tenant_id, dev, sid, bid, oid, 'uplink', sz, max(sz, 50), '2026-11', occurred_at,
  CASE WHEN n <= 2000000 THEN 0 ELSE 20000 END + 100 * max(sz, 50), 'rated'
FROM (SELECT e.id, e.tenant_id, e.occurred_at, s.id AS sid, s.billing_account_id AS bid,
        s.offering_id AS oid, e.dev, e.sz,
        row_number() OVER (PARTITION BY s.billing_account_id ORDER BY e.seq) AS n
      FROM (SELECT seq, id, tenant_id, occurred_at, json_extract(payload, '$.dev_eui') AS dev,
              length(json_extract(payload, '$.payload')) * 3 / 4 AS sz
            FROM events WHERE seq > ? AND seq <= ?) e
      JOIN subscriptions s ON s.dev_eui = e.dev AND s.status = 'active')
"""


def storage_floor(devices: int, n: int, batch: int, accounts: int) -> float:
    """SQLite alone writing the usage records (one ``INSERT ... SELECT`` per batch, through
    ``sqlite3`` with the pragmas ``core.db`` sets) from the same events and subscriptions,
    per CPU-second: no counters, thresholds or checks, so no rater can go faster here."""
    tmp, path, after, last = _scratch(devices, n, accounts)
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        conn.execute(f"PRAGMA {pragma}")
    started = time.process_time()
    for lo in range(after, last, batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(FLOOR_SQL, (lo, min(lo + batch, last)))
        conn.execute("COMMIT")
    cpu = time.process_time() - started
    written = conn.execute("SELECT count(*) FROM usage_records").fetchone()[0]
    conn.close()
    tmp.cleanup()
    assert written == n, (written, n)
    return n / cpu


#: Rating's rules as set-based SQL, cut down to what this benchmark's traffic needs (one month,
#: uplinks only, every device live; no thresholds, cap actions, prepaid debits or rejections
#: other than the quota's): the batch staged in a temporary table, the usage records written
#: with window running counts against the stored counters, the counters moved by aggregates.
_OWN_KEY = (
    "'sub:'||substr(s.id,1,8)||'-'||substr(s.id,9,4)||'-'||substr(s.id,13,4)||'-'"
    "||substr(s.id,17,4)||'-'||substr(s.id,21)"
)
_POOL_KEY = "'pool:'||s.billing_account_id||':'||s.offering_id"
#: Made once, before the clock starts: the batch table, and a counter per device and per pool.
SQL_SETUP = (
    "CREATE TEMP TABLE batch (seq INTEGER, id TEXT, tenant_id TEXT, occurred_at TEXT, "
    "dev TEXT, sid TEXT, bid TEXT, oid TEXT, sz INTEGER, bill INTEGER, qm INTEGER, "
    "own_key TEXT, pool_key TEXT)",
    f"INSERT INTO usage_counters (id, tenant_id, bucket, period, messages, bytes, "
    "allowance_messages, allowance_bytes, notified_pct, quota_notified_pct) "
    f"SELECT lower(hex(randomblob(16))), s.tenant_id, {_OWN_KEY}, '2026-11', 0, 0, 0, 0, 0, 0 "
    f"FROM subscriptions s UNION ALL SELECT lower(hex(randomblob(16))), min(s.tenant_id), "
    f"{_POOL_KEY}, '2026-11', 0, 0, 100 * count(*), 0, 0, 0 FROM subscriptions s "
    "GROUP BY s.billing_account_id, s.offering_id",
)
SQL_RATE = (
    "DELETE FROM temp.batch",
    "INSERT INTO temp.batch SELECT e.seq, e.id, e.tenant_id, e.occurred_at, e.dev, s.id, "
    "s.billing_account_id, s.offering_id, e.sz, max(e.sz, 50), "
    f"coalesce(c.monthly_messages_per_device, 0), {_OWN_KEY}, {_POOL_KEY} "
    "FROM (SELECT seq, id, tenant_id, occurred_at, upper(json_extract(payload, '$.dev_eui')) "
    "AS dev, length(json_extract(payload, '$.payload')) * 3 / 4 "
    "- (json_extract(payload, '$.payload') LIKE '%=') "
    "- (json_extract(payload, '$.payload') LIKE '%==') AS sz "
    "FROM events WHERE seq > :lo AND seq <= :hi AND +type = 'uplink.accepted') e "
    "JOIN subscriptions s ON s.dev_eui = e.dev AND s.status = 'active' "
    "LEFT JOIN contracts c ON c.id = s.contract_id",
    "INSERT INTO usage_records (id, event_id, tenant_id, dev_eui, subscription_id, "
    "billing_account_id, offering_id, kind, bytes, billable_bytes, period, occurred_at, "
    "charge_micros, state) SELECT w.id, w.id, w.tenant_id, dev, sid, bid, oid, 'uplink', sz, "
    "bill, '2026-11', occurred_at, CASE WHEN cp.messages + pool_n <= cp.allowance_messages "
    "THEN 0 ELSE 20000 END + 100 * bill, CASE WHEN qm > 0 AND co.messages + own_n > qm "
    "THEN 'rejected' ELSE 'rated' END FROM (SELECT b.*, "
    "row_number() OVER (PARTITION BY own_key ORDER BY seq) AS own_n, "
    "row_number() OVER (PARTITION BY pool_key ORDER BY seq) AS pool_n FROM temp.batch b) w "
    "JOIN usage_counters co ON co.bucket = w.own_key AND co.period = '2026-11' "
    "JOIN usage_counters cp ON cp.bucket = w.pool_key AND cp.period = '2026-11'",
    "UPDATE usage_counters SET messages = messages + d.n, bytes = bytes + d.b "
    "FROM (SELECT own_key AS k, count(*) AS n, sum(bill) AS b FROM temp.batch GROUP BY own_key "
    "UNION ALL SELECT pool_key, count(*), sum(bill) FROM temp.batch GROUP BY pool_key) d "
    "WHERE usage_counters.bucket = d.k AND usage_counters.period = '2026-11'",
)


def _scratch(
    devices: int, n: int, accounts: int
) -> tuple[tempfile.TemporaryDirectory[str], Path, int, int]:
    """A new SQLite database with the benchmark's customer and events (the caller cleans up)."""
    tmp = tempfile.TemporaryDirectory()
    path = Path(tmp.name) / "scratch.db"
    db = Database.connect(f"sqlite:///{path}")
    migrate.upgrade(db.engine)
    tenant_id, euis = setup(db, devices, accounts=accounts)
    after, last = fill_log(db, tenant_id, euis, n)
    db.dispose()
    return tmp, path, after, last


def sql_rules_bound(devices: int, n: int, batch: int, accounts: int) -> tuple[float, int]:
    """Events per CPU-second with the rules as SQL (:data:`SQL_RATE`), and the micro-yuan
    charged (which the batch path must match on this traffic): how far moving the rules out
    of Python could take the batch path, before any rule the cut-down version leaves out."""
    tmp, path, after, last = _scratch(devices, n, accounts)
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        conn.execute(f"PRAGMA {pragma}")
    for statement in SQL_SETUP:
        conn.execute(statement)
    started = time.process_time()
    for lo in range(after, last, batch):
        conn.execute("BEGIN IMMEDIATE")
        for statement in SQL_RATE:
            conn.execute(statement, {"lo": lo, "hi": min(lo + batch, last)})
        conn.execute("COMMIT")
    cpu = time.process_time() - started
    written, charged = conn.execute(
        "SELECT count(*), sum(charge_micros) FROM usage_records"
    ).fetchone()
    conn.close()
    tmp.cleanup()
    assert written == n, (written, n)
    return n / cpu, charged


def main() -> None:
    parser = _args.parser(__doc__)
    parser.add_argument("--devices", type=_args.at_least(1), default=20_000)
    parser.add_argument(
        "--accounts",
        type=_args.at_least(1),
        default=1,
        help="billing accounts the devices are dealt over (each its own pool): with many, "
        "each batch writes into as many places of the account index as it has accounts",
    )
    parser.add_argument(
        "--events", type=_args.at_least(1), default=200_000, help="events on the batch path"
    )
    parser.add_argument(
        "--batch", type=_args.at_least(1), default=5_000, help="events per transaction"
    )
    parser.add_argument("--anchor-events", type=_args.at_least(1), default=2_000)
    parser.add_argument("--consumer", action="store_true", help="also time the consumer path")
    parser.add_argument(
        "--sql-bound",
        action="store_true",
        help="on SQLite, also time the rules as set-based SQL, cut down to this traffic",
    )
    parser.add_argument(
        "--phases",
        action="store_true",
        help="also print where the batch path's CPU time goes, step by step (µs per event)",
    )
    parser.add_argument(
        "--prepaid",
        action="store_true",
        help="a prepaid account: each batch also debits its balance and writes its ledger entry",
    )
    parser.add_argument(
        "--statistics",
        action="store_true",
        help="gather the planner's statistics once the log is filled, as satiot up does",
    )
    args = parser.parse_args()
    if args.accounts > args.devices:
        parser.error("--accounts: no more than --devices (each account holds a device)")
    print(_args.tune_runtime())
    url = os.environ.get("SATIOT_DATABASE_URL")
    tmp = None
    if not url:
        tmp = tempfile.TemporaryDirectory()
        url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    db = Database.connect(url)
    migrate.upgrade(db.engine)
    tenant_id, euis = setup(db, args.devices, prepaid=args.prepaid, accounts=args.accounts)
    span = fill_log(db, tenant_id, euis, args.events)
    if args.statistics and refresh_statistics(db):
        print("planner statistics           gathered after filling the log")
    with timed_phases() if args.phases else nullcontext({}) as spent:
        batched, per_cpu, with_server = batch_path(db, span, args.batch)
    with db.read() as s:
        rated_charge = s.execute(text("SELECT sum(charge_micros) FROM usage_records")).scalar()
    slow = anchor(db, make_events(tenant_id, euis, args.anchor_events, offset=args.events))
    print(f"backend                      {db.engine.dialect.name}")
    print(f"account                      {'prepaid' if args.prepaid else 'postpaid'}")
    print(f"billing accounts             {args.accounts:12,}")
    print(f"devices                      {args.devices:12,}")
    print(f"events                       {args.events:12,}")
    print(f"batch path, {args.batch:,} per tx   {batched:12,.0f} events/s  (wall)")
    if db.engine.dialect.name == "sqlite":  # elsewhere the work is in the server's process
        print(f"batch path per CPU-second    {per_cpu:12,.0f} events/s  (this process)")
    elif with_server is not None:
        print(
            f"batch path per CPU-second    {with_server:12,.0f} events/s  (this process + server)"
        )
        print(f"  of this process alone      {per_cpu:12,.0f} events/s")
    if spent:
        print_phases(spent, span[1] - span[0], per_cpu, db.engine.dialect.name != "sqlite")
    if args.consumer:
        span = fill_log(db, tenant_id, euis, min(args.events, 50_000))
        consumed = consumer_path(db, span, args.batch)
        print(f"consumer path                {consumed:12,.0f} events/s  (wall, with cursor)")
    print(f"anchor, 1 event per tx       {slow:12,.0f} events/s")
    print(f"ratio batch/anchor           {batched / slow:12.1f}x")
    if db.engine.dialect.name == "sqlite":
        floor = storage_floor(args.devices, args.events, args.batch, args.accounts)
        print(f"SQLite alone (floor)         {floor:12,.0f} events/s  (per CPU-second)")
        if args.sql_bound:
            bound, charged = sql_rules_bound(args.devices, args.events, args.batch, args.accounts)
            print(f"rules as SQL, cut down       {bound:12,.0f} events/s  (per CPU-second)")
            print(f"  charged: batch path {rated_charge:,} micro-yuan, SQL {charged:,}")
    print(f"this core now                {calibrate():12.1f} M interpreter steps/s (yardstick)")
    db.dispose()
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
