"""A device's page says what it is bound to and what it has used and cost this month."""

from __future__ import annotations

from datetime import UTC, datetime
from html import unescape

from fastapi.testclient import TestClient
from sqlalchemy import insert

from satiot.bss.models import UsageRecord
from satiot.core.auth.roles import Role
from satiot.core.ids import new_id
from tests.bss.order_world import shop, terminal
from tests.bss.test_activation import activate_one
from tests.performance.test_query_counts import count_queries
from tests.web.console_helpers import signed_in

NOV_20 = datetime(2026, 11, 20, 4, tzinfo=UTC)


def _records(ctx, sub, rows: list[tuple[str, str, int, int]]) -> None:  # type: ignore[no-untyped-def]
    """Usage records of ``sub``: (period, state, billable bytes, charge in micro-yuan)."""
    with ctx.db.write() as w:
        for period, state, billable, charge in rows:
            record_id = new_id()
            w.execute(
                insert(UsageRecord).values(
                    id=record_id, event_id=record_id, tenant_id=sub.tenant_id,
                    dev_eui=sub.dev_eui, subscription_id=sub.id,
                    billing_account_id=sub.billing_account_id, offering_id=sub.offering_id,
                    kind="uplink", bytes=billable, billable_bytes=billable, period=period,
                    occurred_at=NOV_20, charge_micros=charge, state=state,
                    reason="quota" if state == "rejected" else None,
                )
            )  # fmt: skip


def test_the_device_page_shows_its_binding_and_its_month(client: TestClient, ctx, world):
    ctx.clock.set(NOV_20)
    s = shop(ctx, world)
    sub = activate_one(s, terminal())
    _records(
        ctx,
        sub,
        [
            ("2026-11", "rated", 50, 15_000),
            ("2026-11", "rated", 80, 18_000),
            ("2026-11", "rejected", 40, 0),
            ("2026-10", "billed", 50, 15_000),  # last month: not this month's
        ],
    )
    signed_in(client, s.admin.username)
    html = unescape(client.get(f"/devices/{sub.dev_eui}").text)
    card = html.split('id="device-service"', 1)[1].split("</section>", 1)[0]
    for fact in (sub.iot_number, sub.imei, sub.handle, "SAT-BUNDLE-100 v1", ">active<"):
        assert fact in card, fact
    month = card.split('id="device-month"', 1)[1].split("</p>", 1)[0]
    assert "2026-11 so far" in month and "<strong>2</strong> messages charged" in month
    assert "130 billable bytes" in month and "¥0.03</strong> in usage charges" in month
    assert "1 not charged" in month
    # each of the month's messages, as a file
    link = f'href="/usage/records.csv?subscription={sub.id}&period=2026-11"'
    assert link in month
    download = client.get(f"/usage/records.csv?subscription={sub.id}&period=2026-11")
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert len(download.content.decode("utf-8-sig").splitlines()) == 1 + 3

    # The network operations centre (no usage:read) sees the binding, not the money.
    client.cookies.clear()
    signed_in(client, world.user(world.operator, Role.NOC, "noc").username)
    html = client.get(f"/devices/{sub.dev_eui}").text
    assert sub.iot_number in html and 'id="device-month"' not in html


def test_the_service_card_costs_the_same_queries_however_much_the_device_used(
    client: TestClient, ctx, world
):
    ctx.clock.set(NOV_20)
    s = shop(ctx, world)
    sub = activate_one(s, terminal())
    signed_in(client, s.admin.username)
    counts = []
    for more in (1, 40):
        _records(ctx, sub, [("2026-11", "rated", 50, 15_000)] * more)
        with count_queries(ctx.db.engine) as seen:
            assert client.get(f"/devices/{sub.dev_eui}").status_code == 200
        counts.append(len(seen))
    assert counts[0] == counts[1], counts


def test_the_history_says_who_suspended_the_device_and_why_to_those_who_read_the_audit(
    client: TestClient, ctx, world
):
    from satiot.bss.subscriptions import suspend_subscription

    ctx.clock.set(NOV_20)
    s = shop(ctx, world)
    sub = activate_one(s, terminal())
    with ctx.db.write() as w:
        suspend_subscription(w, world.system, sub.id, "unpaid since October", NOV_20)
    signed_in(client, world.user(world.operator, Role.COMPLIANCE, "auditor").username)
    html = unescape(client.get(f"/devices/{sub.dev_eui}").text)
    rows = html.split('id="device-history-table"', 1)[1].split("</table>", 1)[0]
    first = rows.split('class="history-row"')[1]  # newest first
    assert "subscription.suspended" in first and "unpaid since October" in first
    assert "active → suspended" in first
    assert "device.status-changed" in rows and "subscription.activated" in rows
    for who in (s.admin.username, world.user(world.operator, Role.NOC, "noc").username):
        client.cookies.clear()
        signed_in(client, who)
        page = client.get(f"/devices/{sub.dev_eui}").text
        assert 'id="device-history"' not in page
        # but everyone who sees the service sees who suspended it and what lifts it
        assert (
            '<dd id="device-suspended-by">by the operator; only the operator can resume it</dd>'
            in page
        )
