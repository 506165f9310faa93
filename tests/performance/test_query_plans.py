"""How a customer's pages are read: in index order, never by sorting all of its rows.

A customer lists and exports its devices and subscriptions, and lists its usage, a page (or
chunk) at a time in id order, in a session scoped to its tenant. The statement that reads a
page is taken as the scoped session sends it, and the database's own plan for it must read
the page from an index in order: a sort there would sort every row of the tenant for every
page (30 ms a page at 100,000 subscriptions on SQLite, and 0.5 s a page of usage at 450,000
records, before the (tenant, id) indexes).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, insert, select, text

from satiot.api.context import AppContext
from satiot.bss.bill_statement import device_usage
from satiot.bss.models import Subscription, UsageCounter, UsageRecord
from satiot.bss.usage_export import Selection, export_records
from satiot.core.auth.tenancy import scope_session
from satiot.core.pagination import encode_cursor, paginate
from satiot.network.models import Device, Uplink
from tests.factories import World


def _page_statement(
    ctx: AppContext,
    tenant_id: uuid.UUID,
    model: Any,
    *where: Any,
    descending: bool = False,
    after: uuid.UUID = uuid.UUID(int=1),
) -> tuple[str, Any]:
    """The statement and parameters a scoped session sends for a page after the first."""
    sent: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    event.listen(ctx.db.engine, "before_cursor_execute", record)
    try:
        with ctx.db.read() as s:
            scope_session(s, tenant_id)
            cursor = encode_cursor(after)
            stmt = select(model).where(*where)
            paginate(s, stmt, model.id, cursor=cursor, limit=50, descending=descending)
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", record)
    (only,) = sent
    return only


PAGES = {
    # the Subscriptions and Devices lists and the subscriptions export
    "subscriptions": (Subscription, (), False, "ix_subscriptions_tenant_id_id"),
    "devices": (Device, (), False, "ix_devices_tenant_id_id"),
    # the Messages page: a customer's newest uplinks
    "uplinks": (Uplink, (), True, "ix_uplinks_tenant_id_id"),
    # GET /api/v1/usage: a customer's usage records, newest first
    "usage records": (UsageRecord, (), True, "ix_usage_records_tenant_id_id"),
    # the Usage page: a month's counters
    "usage counters": (
        UsageCounter,
        (UsageCounter.period == "2026-11",),
        False,
        "ix_usage_counters_tenant_id_period_id",
    ),
}


@pytest.mark.parametrize("page", list(PAGES))
def test_a_tenants_page_is_read_in_index_order(ctx: AppContext, world: World, page: str):
    model, where, descending, index = PAGES[page]
    tenant = world.tenant()
    statement, parameters = _page_statement(ctx, tenant.id, model, *where, descending=descending)
    assert "tenant_id" in statement, "the scoped session adds the tenant's criterion"
    with ctx.db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            plan = " | ".join(
                str(row[-1])
                for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            )
            assert index in plan and "TEMP B-TREE" not in plan, plan
        else:
            # The tables are nearly empty here, so the planner would scan them whole; with
            # scans ruled out it shows what it does at scale: an index, in order, or a sort.
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " | ".join(
                str(row[0]) for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters)
            )
            assert index in plan and "Sort" not in plan, plan


#: The two reads of a page of a bill's statement: (table, index, what the statement must say).
STATEMENT_READS = {
    "usage_records": (("ix_usage_bill_subscription",) * 2, "GROUP BY"),
    "bill_device_fees": (("sqlite_autoindex_bill_device_fees_1", "pk_bill_device_fees"), "LIMIT"),
}


@pytest.mark.parametrize("table", list(STATEMENT_READS))
def test_a_page_of_a_bills_statement_is_read_by_device_from_the_bills_indexes(
    ctx: AppContext, world: World, table: str
):
    """A page of a bill's statement (``bill_statement.device_usage``): the bill's usage
    records grouped by device, and its devices' fees, each read in its index's order and
    stopped after the page, whatever else the tenant has."""
    tenant = world.tenant()
    sent: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        sent.append((statement, parameters))

    event.listen(ctx.db.engine, "before_cursor_execute", record)
    try:
        with ctx.db.read() as s:
            scope_session(s, tenant.id)
            device_usage(s, uuid.uuid4(), after=uuid.UUID(int=1), limit=50)
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", record)
    (statement, parameters), *_ = [q for q in sent if f"FROM {table}" in q[0]]
    (sqlite_index, pg_index), says = STATEMENT_READS[table]
    assert "tenant_id" in statement and says in statement
    with ctx.db.engine.connect() as conn:
        plan = _plan(conn, statement, parameters)
    if ctx.db.engine.dialect.name == "sqlite":
        assert sqlite_index in plan and "TEMP B-TREE" not in plan, plan
    else:
        assert pg_index in plan and "Sort" not in plan, plan


def _plan(conn: Any, statement: str, parameters: Any) -> str:
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        return " | ".join(str(row[-1]) for row in rows)
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    return " | ".join(
        str(row[0]) for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters)
    )


def _stored(ctx: AppContext, rows: list[dict[str, Any]]) -> None:
    """Usage records written as they are, with the planner's statistics gathered."""
    with ctx.db.write() as w:
        w.execute(insert(UsageRecord.__table__), rows)
    with ctx.db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE usage_records")


def _file(
    ctx: AppContext, tenant_id: uuid.UUID, chosen: Selection
) -> tuple[list[bytes], list[tuple[str, Any]]]:
    """The usage file's lines after its header, read by ``tenant_id``, and the statements it
    sent."""
    sent: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if "usage_records" in statement:
            sent.append((statement, parameters))

    event.listen(ctx.db.engine, "before_cursor_execute", record)
    try:
        with ctx.db.read() as s:
            scope_session(s, tenant_id)
            lines = b"".join(export_records(s, chosen, "Asia/Shanghai")).splitlines()[1:]
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", record)
    return lines, sent


def test_an_accounts_month_of_usage_is_read_in_id_order(ctx: AppContext, world: World):
    """``GET /api/v1/usage?billing_account_id=&period=`` and the month's file
    (``usage_export``): with a year of the account's records and the planner's statistics,
    a page of the month is read from the account's index in id order. Before migration 0028
    that index ended at the period, and every page sorted the whole month."""
    tenant = world.tenant()
    account = uuid.uuid4()
    rows = []
    for n in range(1_200):
        record_id = uuid.UUID(int=(1 << 120) + n)
        rows.append(
            {"id": record_id, "event_id": record_id, "tenant_id": tenant.id,
             "dev_eui": "70B3D57ED0000001", "billing_account_id": account, "kind": "uplink",
             "bytes": 10, "billable_bytes": 10, "period": f"2026-{n % 12 + 1:02d}",
             "occurred_at": datetime(2026, 11, 3, tzinfo=UTC), "charge_micros": 0,
             "state": "rated"}
        )  # fmt: skip
    _stored(ctx, rows)
    month = (UsageRecord.billing_account_id == account, UsageRecord.period == "2026-11")
    newest = uuid.UUID(int=(1 << 120) + len(rows))  # the page after the newest
    page = _page_statement(ctx, tenant.id, UsageRecord, *month, descending=True, after=newest)
    lines, sent = _file(ctx, tenant.id, Selection("2026-11", billing_account_id=account))
    assert len(lines) == 100
    (whole_month,) = sent
    with ctx.db.engine.connect() as conn:
        plan = _plan(conn, *page)
    assert "ix_usage_account_period_id" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
    # the file is one statement: from the same index, sorted once at most (PostgreSQL may
    # sort a month it reads whole rather than walk the index)
    with ctx.db.engine.connect() as conn:
        plan = _plan(conn, *whole_month)
    assert "ix_usage_account_period_id" in plan, plan


def test_a_customers_month_of_usage_is_read_account_by_account_then_the_rest(
    ctx: AppContext, world: World
):
    """The customer's file (``usage_export``, ``customer_id``): each of its accounts' month
    from the account's index, then its records without an account from their own (migration
    0029), never from the tenant's whole history (eleven months of records here, and other
    tenants' records without an account). Before 0029, SQLite read the last part from the
    tenant's (tenant, id) index at times."""
    tenant, stranger = world.tenant(), world.tenant()
    accounts = sorted([uuid.uuid4(), uuid.uuid4()])
    rows = []
    for n in range(1_800):
        record_id = uuid.UUID(int=(1 << 120) + n)
        owner = tenant.id if n % 3 else stranger.id
        account = accounts[n % 2] if n % 3 == 1 else None
        rows.append(
            {"id": record_id, "event_id": record_id, "tenant_id": owner,
             "dev_eui": "70B3D57ED0000001", "billing_account_id": account, "kind": "uplink",
             "bytes": 10, "billable_bytes": 10, "period": f"2026-{n % 11 + 2:02d}",
             "occurred_at": datetime(2026, 11, 3, tzinfo=UTC), "charge_micros": 0,
             "state": "rated" if account else "rejected"}
        )  # fmt: skip
    _stored(ctx, rows)
    chosen = Selection(
        "2026-11", customer_id=uuid.uuid4(), tenant_id=tenant.id, accounts=tuple(accounts)
    )
    lines, sent = _file(ctx, tenant.id, chosen)
    mine = [r for r in rows if r["tenant_id"] == tenant.id and r["period"] == "2026-11"]
    assert len(lines) == len(mine) > 0
    assert {r["billing_account_id"] for r in mine} == {*accounts, None}  # both parts
    assert len(sent) == 3  # each account, then the records without one
    indexes = ["ix_usage_account_period_id"] * 2 + ["ix_usage_without_account"]
    with ctx.db.engine.connect() as conn:
        for statement, index in zip(sent, indexes, strict=True):
            plan = _plan(conn, *statement)
            assert index in plan, plan
