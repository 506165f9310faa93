"""A month's bill run over a million devices, on SQLite and PostgreSQL, against a naive anchor.

For each backend (``--backends sqlite,postgresql``; PostgreSQL at ``--pg-url``, where a scratch
database is created and dropped) it generates, in bulk (driver ``executemany`` on SQLite,
``COPY`` on PostgreSQL): --accounts billing accounts (ten per customer), --devices
subscriptions spread over them on three offerings (one with an add-on), 5 % activated and 5 %
terminated during the month, and --usage rated usage records per device. Then:

- anchor: the naive bill run, one account at a time with the ORM (load its subscriptions and
  usage rows, prorate and sum in Python, take a number, write the bill and lines, mark the
  usage), one transaction per account, over --anchor-accounts accounts; its time is
  extrapolated to all accounts and labelled as such;
- bill run: :func:`satiot.bss.bill_run_chunks.run_in_chunks` over every other account, as
  the API, ``satiot bills run`` and the background job run it: 10,000 accounts to a
  transaction, each set-based (``GROUP BY`` in the database, bulk writes).
  ``--one-transaction`` times :func:`satiot.bss.billing.run_bills` instead (the same steps in
  one transaction).

It prints the data generation time, the bill run's time and accounts/s, the anchor's, and the
ratio of their per-account times. Then the month's bills go to the ledger:

- export: :func:`satiot.bss.bill_export.export_bills`, every bill as CSV (what ``GET
  /api/v1/bills/csv`` and ``satiot bills export`` stream);
- its anchor: what a script does without it, in the same process: list the bills a page of
  500 at a time and look up each bill's account and customer (the first --anchor-bills bills,
  extrapolated and labelled so).

And staff release the run (``--release``): :func:`satiot.bss.bill_release.release_chunk`
validates its first --release bills a chunk per transaction, as ``satiot bills validate``,
the Bill runs page and ``POST /api/v1/bill-runs/{id}/validate`` do; its anchor validates the
next --release-anchor bills one request's worth at a time (a transaction per bill, what a
script calling ``POST /api/v1/bills/{id}/validate`` for each bill costs the server). Those
bills are then sent and paid: all but the anchor's from one bank statement
(:mod:`satiot.bss.payment_import`, what ``POST /api/v1/payments/csv`` and ``satiot bills
payments`` do), the anchor's one payment per transaction.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, select, text, update
from sqlalchemy.engine import make_url

import _args
from satiot.bss.bill_export import export_bills
from satiot.bss.bill_release import CHUNK, release_chunk, waiting
from satiot.bss.bill_run_chunks import run_in_chunks
from satiot.bss.billing import RunSettings, run_bills
from satiot.bss.invoices import take_numbers, validate_bill
from satiot.bss.models import (
    BillingAccount,
    BillLine,
    Customer,
    CustomerBill,
    ProductOfferingPrice,
    Subscription,
    UsageRecord,
)
from satiot.bss.money import fen_text, prorate, round_to_fen
from satiot.bss.payment_import import import_payments, read_payments
from satiot.bss.payments import record_payment
from satiot.bss.periods import local_date, period_bounds
from satiot.core import migrate
from satiot.core.auth.principal import system_principal
from satiot.core.bulk import insert_rows
from satiot.core.db import Database
from satiot.core.ids import new_id
from satiot.core.pagination import paginate

PERIOD = "2026-11"
RUN_AT = datetime(2026, 12, 1, 2, tzinfo=UTC)
SETTINGS = RunSettings(600, "BEN", 30, "Asia/Shanghai")
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def generate(db: Database, accounts: int, devices: int, usage: int) -> list[uuid.UUID]:
    """Bulk-load the month; return the account ids."""
    rng = random.Random(7)
    now = datetime(2026, 9, 1, tzinfo=UTC)
    bounds = period_bounds(PERIOD)
    customers = max(1, accounts // 10)
    tenant_ids = [new_id() for _ in range(customers)]
    customer_ids = [new_id() for _ in range(customers)]
    contract_ids = [new_id() for _ in range(customers)]
    account_ids = [new_id() for _ in range(accounts)]
    offerings = [new_id() for _ in range(4)]  # three plans and a priority add-on
    with db.write() as s:
        insert_rows(
            s,
            "tenants",
            ("id", "slug", "name", "kind", "status", "created_at"),
            ((t, f"b{t.hex}", "Bench", "customer", "active", now) for t in tenant_ids),
        )
        insert_rows(
            s,
            "customers",
            (
                "id",
                "tenant_id",
                "name",
                "uscc",
                "uscc_check_ok",
                "org_type",
                "industry",
                "province",
                "address",
                "legal_rep_name",
                "legal_rep_id",
                "agent_name",
                "agent_id",
                "agent_phone",
                "status",
                "risk_status",
                "risk_findings",
                "created_at",
                "updated_at",
            ),
            (
                (
                    c,
                    t,
                    "示例客户",
                    c.hex[-18:].upper(),
                    True,
                    "enterprise",
                    "D",
                    "11",
                    "",
                    "x",
                    "x",
                    "x",
                    "x",
                    "",
                    "validated",
                    "passed",
                    "[]",
                    now,
                    now,
                )
                for c, t in zip(customer_ids, tenant_ids, strict=True)
            ),
        )
        insert_rows(
            s,
            "contracts",
            (
                "id",
                "tenant_id",
                "customer_id",
                "number",
                "version",
                "scenario",
                "scenario_description",
                "allowed_models",
                "max_devices",
                "quota_action",
                "destination_allow_list",
                "service_area",
                "offering_ids",
                "stop_at_zero_balance",
                "status",
                "created_at",
            ),
            (
                (
                    k,
                    t,
                    c,
                    k.hex,
                    1,
                    "bench",
                    "",
                    '["M"]',
                    100_000,
                    "notify",
                    "[]",
                    '["11"]',
                    "[]",
                    False,
                    "signed",
                    now,
                )
                for k, t, c in zip(contract_ids, tenant_ids, customer_ids, strict=True)
            ),
        )
        insert_rows(
            s,
            "billing_accounts",
            (
                "id",
                "tenant_id",
                "customer_id",
                "name",
                "payment_mode",
                "balance_micros",
                "currency",
                "status",
                "created_at",
            ),
            (
                (
                    a,
                    tenant_ids[i // 10],
                    customer_ids[i // 10],
                    "Ops",
                    "postpaid",
                    0,
                    "CNY",
                    "active",
                    now,
                )
                for i, a in enumerate(account_ids)
            ),
        )
        insert_rows(
            s,
            "product_offerings",
            (
                "id",
                "code",
                "version",
                "name",
                "description",
                "lifecycle_status",
                "is_add_on",
                "created_at",
            ),
            (
                (o, f"bench-{o.hex}", 1, f"Plan {i}", "", "Active", i == 3, now)
                for i, o in enumerate(offerings)
            ),
        )
        price_cols = (
            "id",
            "offering_id",
            "position",
            "name",
            "kind",
            "amount_micros",
            "min_billable_bytes",
            "allowance_messages",
            "allowance_bytes",
            "pooled",
            "applies_to",
            "priority",
        )
        prices = []
        for i, o in enumerate(offerings):
            prices.append(
                (
                    new_id(),
                    o,
                    0,
                    "Monthly fee",
                    "recurring",
                    (i + 1) * 8_000_000,
                    0,
                    0,
                    0,
                    False,
                    "all",
                    i == 3,
                )
            )
            prices.append(
                (new_id(), o, 1, "Activation", "one-time", 5_000_000, 0, 0, 0, False, "all", False)
            )
            prices.append(
                (new_id(), o, 2, "Per message", "per-message", 20_000, 0, 0, 0, False, "all", False)
            )
        insert_rows(s, "product_offering_prices", price_cols, prices)
    sub_cols = (
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
        "terminated_at",
    )
    use_cols = (
        "id",
        "event_id",
        "tenant_id",
        "dev_eui",
        "subscription_id",
        "billing_account_id",
        "offering_id",
        "kind",
        "bytes",
        "billable_bytes",
        "period",
        "occurred_at",
        "charge_micros",
        "state",
    )
    addon = f'["{offerings[3]}"]'
    chunk = 100_000
    for start in range(0, devices, chunk):
        subs, uses = [], []
        for d in range(start, min(devices, start + chunk)):
            a = d % accounts
            c = a // 10
            act = now
            term = None
            roll = rng.random()
            if roll < 0.05:
                act = bounds.start + timedelta(hours=rng.randrange(24 * 29))
            elif roll < 0.10:
                term = bounds.start + timedelta(hours=rng.randrange(24 * 29))
            sid = new_id()
            off = offerings[d % 3]
            subs.append(
                (
                    sid,
                    tenant_ids[c],
                    customer_ids[c],
                    account_ids[a],
                    contract_ids[c],
                    off,
                    addon if d % 20 == 0 else "[]",
                    f"{d:016X}",
                    "M",
                    "terminated" if term else "active",
                    False,
                    now,
                    act,
                    term,
                )
            )
            for u in range(usage):
                at = max(act, bounds.start) + timedelta(minutes=5 + u)
                named = new_id()  # a usage record is named by its event
                uses.append(
                    (
                        named,
                        named,
                        tenant_ids[c],
                        f"{d:016X}",
                        sid,
                        account_ids[a],
                        off,
                        "uplink",
                        24,
                        24,
                        PERIOD,
                        at,
                        20_000,
                        "rated",
                    )
                )
        with db.write() as s:
            insert_rows(s, "subscriptions", sub_cols, subs)
            insert_rows(s, "usage_records", use_cols, uses)
    if not db.is_sqlite:
        with db.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    return account_ids


def naive_bill(db: Database, account_id: uuid.UUID) -> None:
    """One account, the naive way: ORM rows, Python sums, one transaction."""
    bounds = period_bounds(PERIOD)
    with db.write() as s:
        subs = s.scalars(
            select(Subscription).where(Subscription.billing_account_id == account_id)
        ).all()
        lines: list[tuple[str, str, int, int]] = []
        recurring = one_time = 0
        for sub in subs:
            if sub.activated_at is None or sub.activated_at >= bounds.end:
                continue
            if sub.terminated_at is not None and sub.terminated_at <= bounds.start:
                continue
            first = max(local_date(sub.activated_at), bounds.first_day)
            last = (
                local_date(sub.terminated_at - timedelta(microseconds=1))
                if sub.terminated_at and sub.terminated_at < bounds.end
                else bounds.last_day
            )
            days = (last - first).days + 1
            offering_ids = [sub.offering_id, *(uuid.UUID(a) for a in sub.add_on_ids)]
            for oid in offering_ids:
                for p in s.scalars(
                    select(ProductOfferingPrice).where(ProductOfferingPrice.offering_id == oid)
                ):
                    if p.kind == "recurring":
                        recurring += prorate(p.amount_micros, days, bounds.days)
                    elif p.kind == "one-time" and sub.activated_at >= bounds.start:
                        one_time += p.amount_micros
        usage = s.scalars(
            select(UsageRecord).where(
                UsageRecord.billing_account_id == account_id, UsageRecord.state == "rated"
            )
        ).all()
        used = sum(u.charge_micros for u in usage)
        lines = [
            ("recurring", "Monthly fees", len(subs), round_to_fen(recurring)),
            ("usage", "Messages", len(usage), round_to_fen(used)),
            ("one-time", "Activation", 1, round_to_fen(one_time)),
        ]
        subtotal = sum(ln[3] for ln in lines)
        tax = round_to_fen(subtotal * 600 // 10_000)
        number = take_numbers(s, "NAIVE2026", 1)
        bill = CustomerBill(
            tenant_id=subs[0].tenant_id,
            billing_account_id=account_id,
            number=f"NAIVE2026-{number:08d}",
            period=PERIOD,
            period_start=bounds.first_day,
            period_end=bounds.last_day,
            state="new",
            recurring_micros=lines[0][3],
            usage_micros=lines[1][3],
            one_time_micros=lines[2][3],
            tax_rate_bp=600,
            tax_micros=tax,
            total_micros=subtotal + tax,
            paid_micros=0,
            issued_at=RUN_AT,
            due_at=RUN_AT + timedelta(days=30),
        )
        s.add(bill)
        s.flush()
        s.add_all(
            BillLine(
                tenant_id=bill.tenant_id,
                bill_id=bill.id,
                kind=k,
                description=d,
                quantity=q,
                unit="x",
                amount_micros=a,
            )
            for k, d, q, a in lines
        )
        s.execute(
            update(UsageRecord)
            .where(UsageRecord.id.in_([u.id for u in usage]))
            .values(state="billed", bill_id=bill.id)
        )


def export_anchor(db: Database, limit: int) -> float:
    """Seconds per bill of the list-and-look-up way over the first ``limit`` bills."""
    started = time.perf_counter()
    done = 0
    with db.read() as s:
        cursor = None
        while done < limit:
            page = paginate(s, select(CustomerBill), CustomerBill.id, cursor=cursor, limit=500)
            for bill in page.items:
                account = s.get(BillingAccount, bill.billing_account_id)
                customer = s.get(Customer, account.customer_id) if account else None
                fen_text(bill.total_micros)
                assert customer is not None
            done += len(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
    return (time.perf_counter() - started) / max(done, 1)


def export_all(db: Database) -> tuple[float, int]:
    """Seconds to export every bill as CSV, and the bytes written."""
    started = time.perf_counter()
    with db.read() as s:
        size = sum(len(piece) for piece in export_bills(s))
    return time.perf_counter() - started, size


def release(db: Database, run_id: uuid.UUID, bills: int, anchor: int) -> tuple[float, float]:
    """Seconds per bill validated in chunks, and one bill per transaction (the anchor)."""
    principal = system_principal(uuid.UUID(int=0), "bench")
    started, done = time.perf_counter(), 0
    while done < bills:
        with db.write() as s:
            moved = release_chunk(
                s, principal, run_id, "validate", at=RUN_AT, limit=min(CHUNK, bills - done)
            )
        if not moved:
            break
        done += moved
    chunked = (time.perf_counter() - started) / max(done, 1)
    with db.read() as s:
        ids = [bill.id for bill in s.scalars(waiting(run_id, "validate", anchor))]
    started = time.perf_counter()
    for bill_id in ids:
        with db.write() as s:
            validate_bill(s, principal, bill_id, at=RUN_AT)
    return chunked, (time.perf_counter() - started) / max(len(ids), 1)


def payments(db: Database, run_id: uuid.UUID, anchor: int) -> tuple[int, float, float]:
    """Send the run's validated bills, then pay them: all but ``anchor`` of them from one
    statement (:mod:`satiot.bss.payment_import`, one transaction), the rest one payment per
    transaction (the anchor, what ``POST /bills/{id}/payments`` per line costs). Lines paid,
    and seconds per payment of each way."""
    principal = system_principal(uuid.UUID(int=0), "bench")
    while True:
        with db.write() as s:
            if not release_chunk(s, principal, run_id, "send", at=RUN_AT):
                break
    with db.read() as s:
        sent = s.execute(
            select(CustomerBill.id, CustomerBill.number, CustomerBill.total_micros)
            .where(CustomerBill.bill_run_id == run_id, CustomerBill.state == "sent")
            .order_by(CustomerBill.id)
        ).all()
    by_file, one_by_one = sent[anchor:], sent[:anchor]
    statement = "bill,amount,reference\n" + "".join(
        f"{number},{fen_text(total)},BANK-{n}\n" for n, (_, number, total) in enumerate(by_file)
    )
    started = time.perf_counter()
    parsed = read_payments(statement.encode(), encoding="utf-8", at=RUN_AT, tz=SETTINGS.tz)
    with db.write() as s:
        done = import_payments(s, principal, parsed, at=RUN_AT, tz=SETTINGS.tz)
    imported = (time.perf_counter() - started) / max(len(by_file), 1)
    assert done.recorded == len(by_file), done
    started = time.perf_counter()
    for n, (bill_id, _, total) in enumerate(one_by_one):
        with db.write() as s:
            record_payment(
                s, principal, bill_id, amount_micros=total, method="bank-transfer",
                reference=f"ONE-{n}", at=RUN_AT,
            )  # fmt: skip
    return len(by_file), imported, (time.perf_counter() - started) / max(len(one_by_one), 1)


def bench(db: Database, args: argparse.Namespace) -> dict[str, float]:
    migrate.upgrade(db.engine)
    t0 = time.perf_counter()
    accounts = generate(db, args.accounts, args.devices, args.usage)
    generated = time.perf_counter() - t0
    sample = accounts[: args.anchor_accounts]
    t0 = time.perf_counter()
    for a in sample:
        naive_bill(db, a)
    naive = (time.perf_counter() - t0) / len(sample)
    principal = system_principal(uuid.UUID(int=0), "bench")
    t0 = time.perf_counter()
    if args.one_transaction:
        with db.write() as s:
            run = run_bills(s, principal, PERIOD, at=RUN_AT, settings=SETTINGS)
    else:
        run = run_in_chunks(db.write, principal, PERIOD, at=RUN_AT, settings=SETTINGS)
    elapsed = time.perf_counter() - t0
    assert run.bills == len(accounts) - len(sample), (run.bills, len(accounts))
    exported_s, size = export_all(db)
    chunked, one_by_one = release(db, run.id, args.release, args.release_anchor)
    paid, imported, paid_one_by_one = payments(db, run.id, args.release_anchor)
    return {
        "paid": paid,
        "import_s": imported,
        "pay_anchor_s": paid_one_by_one,
        "release_s": chunked,
        "release_anchor_s": one_by_one,
        "generate_s": generated,
        "run_s": elapsed,
        "bills": run.bills,
        "naive_s": naive,
        "export_s": exported_s,
        "export_bytes": size,
        "export_anchor_s": export_anchor(db, args.anchor_bills),
        "all_bills": len(accounts),
    }


def main() -> None:
    parser = _args.parser(__doc__)
    parser.add_argument("--accounts", type=_args.at_least(1), default=100_000)
    parser.add_argument("--devices", type=_args.at_least(1), default=1_000_000)
    parser.add_argument(
        "--usage", type=_args.at_least(0), default=1, help="rated usage records per device"
    )
    parser.add_argument("--anchor-accounts", type=_args.at_least(1), default=1_000)
    parser.add_argument("--anchor-bills", type=_args.at_least(1), default=5_000)
    parser.add_argument(
        "--release", type=_args.at_least(1), default=5_000, help="bills validated in bulk"
    )
    parser.add_argument("--release-anchor", type=_args.at_least(1), default=1_000)
    parser.add_argument(
        "--one-transaction",
        action="store_true",
        help="time the run in one transaction (billing.run_bills) instead of in chunks",
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=os.environ.get("SATIOT_BENCH_PG_URL", PG_DEFAULT))
    args = parser.parse_args()
    if args.devices < args.accounts:
        parser.error("--devices: at least one a billing account (--accounts)")
    if args.anchor_accounts >= args.accounts:
        parser.error("--anchor-accounts: fewer than --accounts (the run bills the rest)")
    backends = _args.backends(parser, args.backends)
    print(_args.tune_runtime())
    for backend in backends:
        tmp = None
        admin = None
        name = f"satiot_bench_billing_{os.getpid()}"
        if backend == "sqlite":
            tmp = tempfile.TemporaryDirectory()
            url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
        else:
            server = make_url(args.pg_url)
            admin = create_engine(server, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            url = server.set(database=name).render_as_string(hide_password=False)
        db = Database.connect(url)
        try:
            r = bench(db, args)
        finally:
            db.dispose()
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
            if tmp:
                tmp.cleanup()
        per_bill = r["run_s"] / r["bills"]
        print(f"backend                   {backend}")
        print(
            f"data: {args.accounts:,} accounts, {args.devices:,} devices, "
            f"{args.devices * args.usage:,} usage records; generated in {r['generate_s']:.1f} s"
        )
        print(
            f"bill run, set-based       {r['run_s']:10.1f} s for {r['bills']:,} bills "
            f"({r['bills'] / r['run_s']:,.0f} accounts/s)"
        )
        print(
            f"anchor, per-account ORM   {r['naive_s'] * 1000:10.2f} ms per account on "
            f"{args.anchor_accounts:,} accounts; extrapolated to {args.accounts:,}: "
            f"{r['naive_s'] * args.accounts:,.0f} s"
        )
        print(f"ratio anchor/set-based    {r['naive_s'] / per_bill:10.1f}x per account")
        bills = r["all_bills"]
        print(
            f"export for the ledger     {r['export_s']:10.1f} s for {bills:,} bills "
            f"({bills / r['export_s']:,.0f} bills/s, {r['export_bytes'] / 1e6:.1f} MB)"
        )
        print(
            f"anchor, list + look-ups   {r['export_anchor_s'] * 1000:10.3f} ms per bill on "
            f"{args.anchor_bills:,} bills; extrapolated: {r['export_anchor_s'] * bills:,.1f} s"
        )
        per_exported = r["export_s"] / bills
        print(f"ratio anchor/export       {r['export_anchor_s'] / per_exported:10.1f}x per bill")
        print(
            f"release (validate), chunks {r['release_s'] * 1000:9.3f} ms per bill on "
            f"{args.release:,} bills; extrapolated to {bills:,}: {r['release_s'] * bills:,.0f} s"
        )
        print(
            f"anchor, a tx per bill     {r['release_anchor_s'] * 1000:10.3f} ms per bill on "
            f"{args.release_anchor:,} bills"
        )
        print(f"ratio anchor/chunks       {r['release_anchor_s'] / r['release_s']:10.1f}x per bill")
        print(
            f"payments from a statement {r['import_s'] * 1000:10.3f} ms per line on "
            f"{int(r['paid']):,} lines (one file, one transaction)"
        )
        print(
            f"anchor, a tx per payment  {r['pay_anchor_s'] * 1000:10.3f} ms per payment on "
            f"{args.release_anchor:,} bills"
        )
        print(f"ratio anchor/statement    {r['pay_anchor_s'] / r['import_s']:10.1f}x per payment")


if __name__ == "__main__":
    main()
