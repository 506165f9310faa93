"""The subscriptions export: every line a device's whole binding, in chunks whose statements
do not grow with their length, formulas neutralised, only what the reader may see."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from sqlalchemy import update

from satiot.api.context import AppContext
from satiot.api.deps import scope_session
from satiot.bss.models import Subscription
from satiot.bss.subscription_export import COLUMNS, export_subscriptions
from tests.bss.billing_world import USCCS, offering, price, shop
from tests.factories import World
from tests.performance.test_query_counts import count_queries

START = datetime(2026, 10, 31, 16, 30, tzinfo=UTC)  # 1 November, 00:30 in China


def _read(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "Excel reads UTF-8 by its byte-order mark"
    return list(csv.DictReader(io.StringIO(data[3:].decode(), newline="")))


def _export(ctx: AppContext, tenant_scope=None, **kw):  # type: ignore[no-untyped-def]
    with ctx.db.read() as s:
        if tenant_scope is not None:
            scope_session(s, tenant_scope)
        return b"".join(export_subscriptions(s, **kw))


def test_each_line_is_a_device_binding_in_china_time(ctx: AppContext, world: World):
    owner = shop(world)
    plan = offering(ctx, "Plan", [price("recurring", 1_000_000)])
    sub = owner.device(plan, START)
    gone = owner.device(plan, START, status="terminated", terminated_at=START)
    with ctx.db.write() as s:
        s.execute(
            update(Subscription)
            .where(Subscription.id == sub.id)
            .values(imei="354178036859789", iot_number="1410123400001", handle="88.1/x")
        )
    data = _export(ctx)
    assert data.splitlines()[0] == b"\xef\xbb\xbf" + ",".join(COLUMNS).encode()
    assert data.endswith(b"\r\n")
    first, second = _read(data)
    assert first["subscription_id"] == str(sub.id) and second["subscription_id"] == str(gone.id)
    assert (first["customer"], first["customer_credit_code"]) == (
        "北京示例物联科技有限公司",
        USCCS[0],
    )
    assert (first["imei"], first["dev_eui"], first["iot_number"], first["handle"]) == (
        "354178036859789",
        sub.dev_eui,
        "1410123400001",
        "88.1/x",
    )
    assert first["offering"].endswith(" v1") and first["status"] == "active"
    assert first["activated_at"] == "2026-11-01T00:30:00+08:00" and first["terminated_at"] == ""
    assert second["status"] == "terminated" and second["terminated_at"] == first["activated_at"]
    assert first["throttled"] == "no"


def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_quoted(ctx: AppContext, world: World):
    owner = shop(world, name='=HYPERLINK("http://evil.example","x")')
    plan = offering(ctx, "Plan", [price("recurring", 1_000_000)])
    sub = owner.device(plan, START, status="suspended")
    with ctx.db.write() as s:
        s.execute(
            update(Subscription)
            .where(Subscription.id == sub.id)
            .values(status_reason="+1 fraud report, line 1\nline 2", terminal_model="@TQ")
        )
    (line,) = _read(_export(ctx))
    assert line["customer"].startswith("'=HYPERLINK(")
    assert line["status_reason"] == "'+1 fraud report, line 1\nline 2"
    assert line["terminal_model"] == "'@TQ"


def test_filters_and_tenant_scope_keep_only_what_the_reader_may_see(ctx: AppContext, world: World):
    ours, theirs = shop(world), shop(world, uscc=USCCS[1], name="Other Co")
    plan = offering(ctx, "Plan", [price("recurring", 1_000_000)])
    mine = [ours.device(plan, START) for _ in range(3)]
    ours.device(plan, START, status="suspended")
    theirs.device(plan, START)
    scoped = _read(_export(ctx, tenant_scope=ours.tenant.id))
    assert len(scoped) == 4 and {r["customer_credit_code"] for r in scoped} == {USCCS[0]}
    active = _read(_export(ctx, where=[Subscription.status == "active"]))
    assert {r["subscription_id"] for r in active} >= {str(s.id) for s in mine}
    assert len(active) == 4


def test_chunks_cost_the_same_statements_however_many_lines(ctx: AppContext, world: World):
    owner = shop(world)
    plans = [offering(ctx, f"Plan {n}", [price("recurring", 1_000_000)]) for n in range(2)]
    for n in range(25):
        owner.device(plans[n % 2], START)
    seen_counts = []
    for chunk in (5, 10):
        with count_queries(ctx.db.engine) as seen:
            lines = _read(_export(ctx, chunk=chunk))
        assert len(lines) == 25 and len({r["subscription_id"] for r in lines}) == 25
        seen_counts.append(len(seen))
    # a statement per chunk (and one for the empty chunk after 25 = 5 x 5), then the
    # offerings and the customer once each, when first named
    assert seen_counts == [6 + 2, 3 + 2], seen_counts
    told: list[int] = []
    _export(ctx, chunk=10, progress=told.append)
    assert told == [10, 10, 5]
