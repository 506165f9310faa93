"""A month's usage records as a file from the console: offered on the billing account's page
to those who read usage, the month and state the form names, customers their own only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from satiot.api.context import AppContext
from satiot.core.auth.roles import Role
from tests.bss.billing_world import USCCS, offering, price, rate_all, shop, uplink
from tests.factories import World
from tests.web.console_helpers import signed_in

NOV_5 = datetime(2026, 11, 5, 4, tzinfo=UTC)


def _lines(body: bytes) -> list[list[str]]:
    return [line.split(",") for line in body.decode("utf-8-sig").splitlines()[1:]]


def test_the_account_page_offers_the_months_records(
    client: TestClient, ctx: AppContext, world: World
):
    ctx.clock.set(datetime(2026, 11, 20, tzinfo=UTC))
    mine, theirs = shop(world), shop(world, uscc=USCCS[1], name="Other Co")
    plan = offering(ctx, "Metered", [price("recurring", 1_000_000), price("per-message", 20_000)])
    sub = mine.device(plan, NOV_5 - timedelta(days=30))
    for minute in range(2):
        uplink(ctx, sub, 30, NOV_5 + timedelta(minutes=minute))
    uplink(ctx, theirs.device(plan, NOV_5 - timedelta(days=30)), 30, NOV_5)
    rate_all(ctx)
    world.user(mine.tenant, Role.CUSTOMER_ADMIN, "mine")
    signed_in(client, "mine")

    html = client.get(f"/billing-accounts/{mine.account_id}").text
    form = html.split('id="usage-records-form"', 1)[1].split("</form>", 1)[0]
    assert 'action="/usage/records.csv"' in html
    assert f'name="account" value="{mine.account_id}"' in form
    assert 'name="period" value="2026-11"' in form

    got = client.get(
        "/usage/records.csv", params={"account": str(mine.account_id), "period": "2026-11"}
    )
    assert got.status_code == 200, got.text
    assert (
        f"satiot-usage-2026-11-account-{mine.account_id.hex[:8]}.csv"
        in got.headers["content-disposition"]
    )
    assert [(r[0], r[1], r[6]) for r in _lines(got.content)] == [
        ("2026-11-05 12:00:00", sub.dev_eui, "rated"),
        ("2026-11-05 12:01:00", sub.dev_eui, "rated"),
    ]
    # the current month when none is named; a state narrows it
    assert len(_lines(client.get(f"/usage/records.csv?account={mine.account_id}").content)) == 2
    none_billed = client.get(f"/usage/records.csv?account={mine.account_id}&state=billed")
    assert none_billed.status_code == 200 and _lines(none_billed.content) == []

    # the customer's page offers the whole customer's month: here its one account's lines
    page = client.get(f"/customers/{mine.customer_id}").text
    assert f'href="/usage/records.csv?customer={mine.customer_id}"' in page
    whole = client.get(f"/usage/records.csv?customer={mine.customer_id}")
    assert whole.status_code == 200 and _lines(whole.content) == _lines(got.content)
    assert "customer-" in whole.headers["content-disposition"]

    refused = {
        f"/usage/records.csv?customer={theirs.customer_id}": 404,
        f"/usage/records.csv?customer={mine.customer_id}&account={mine.account_id}": 422,
        f"/usage/records.csv?account={theirs.account_id}": 404,
        f"/usage/records.csv?account={uuid.uuid4()}": 404,
        "/usage/records.csv?account=nonsense": 404,
        "/usage/records.csv?period=2026-11": 422,
        f"/usage/records.csv?account={mine.account_id}&period=2026-13": 422,
        f"/usage/records.csv?account={mine.account_id}&state=lost": 422,
    }
    for url, status in refused.items():
        answer = client.get(url)
        assert answer.status_code == status, (url, answer.text)
        assert answer.headers["content-type"].startswith("text/plain") and answer.text


def test_only_those_who_read_usage_are_offered_the_file(
    client: TestClient, ctx: AppContext, world: World
):
    mine = shop(world)
    world.user(world.operator, Role.BILLING, "clerk")  # reads bills and usage
    world.user(world.operator, Role.NOC, "noc")  # neither
    signed_in(client, "clerk")
    assert 'id="usage-records"' in client.get(f"/billing-accounts/{mine.account_id}").text
    assert 'id="own-usage-records"' not in client.get("/usage").text  # staff: per customer
    client.cookies.clear()
    signed_in(client, "noc")
    assert client.get(f"/usage/records.csv?account={mine.account_id}").status_code == 403
