"""The low-balance notice on a prepaid account's page: staff and the customer's administrator
set and clear it, the customer's users see it; bad amounts are errors that change nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from satiot.api.context import AppContext
from satiot.bss.models import BillingAccount
from satiot.core.auth.roles import Role
from tests.factories import World
from tests.web.console_helpers import signed_in
from tests.web.test_billing_console_pages import _two_shops


def _threshold(ctx: AppContext, account_id) -> int | None:
    with ctx.db.read() as r:
        return r.get(BillingAccount, account_id).low_balance_micros


def test_staff_set_the_notice_and_the_customer_sees_it(
    client: TestClient, ctx: AppContext, world: World
):
    mine, theirs = _two_shops(ctx, world)  # mine is prepaid
    world.user(world.operator, Role.BUSINESS, "sales")
    world.user(mine.tenant, Role.CUSTOMER_ADMIN, "mine")
    world.user(mine.tenant, Role.CUSTOMER_USER, "clerk-of-mine")
    csrf = signed_in(client, "sales")
    page = client.get(f"/billing-accounts/{mine.account_id}").text
    assert 'id="low-balance-form"' in page and ">none<" in page
    url = f"/billing-accounts/{mine.account_id}/low-balance"
    r = client.post(url, data={"csrf_token": csrf, "amount": "1,000.50"})
    assert "Low-balance notice below ¥1,000.50." in r.text
    assert "when the balance falls below ¥1,000.50" in r.text and 'value="1000.50"' in r.text
    assert _threshold(ctx, mine.account_id) == 1_000_500_000
    for bad in ("-5", "abc", "1.234"):
        r = client.post(url, data={"csrf_token": csrf, "amount": bad})
        assert "flash-error" in r.text, bad
    assert _threshold(ctx, mine.account_id) == 1_000_500_000
    r = client.post(
        f"/billing-accounts/{theirs.account_id}/low-balance",
        data={"csrf_token": csrf, "amount": "5"},
    )
    assert "flash-error" in r.text and "no balance to watch" in r.text
    assert 'id="low-balance-form"' not in client.get(f"/billing-accounts/{theirs.account_id}").text
    r = client.post(url, data={"csrf_token": csrf, "amount": "0"})
    assert "Low-balance notice below ¥0.00." in r.text and _threshold(ctx, mine.account_id) == 0
    r = client.post(url, data={"csrf_token": csrf, "amount": " "})
    assert "Low-balance notice off." in r.text and _threshold(ctx, mine.account_id) is None

    client.post(url, data={"csrf_token": csrf, "amount": "20"})
    client.cookies.clear()
    signed_in(client, "clerk-of-mine")  # a customer's user sees it, may not change it
    page = client.get(f"/billing-accounts/{mine.account_id}").text
    assert "when the balance falls below ¥20.00" in page and 'id="low-balance-form"' not in page
    client.cookies.clear()
    csrf = signed_in(client, "mine")  # its administrator chooses its own warning
    r = client.post(url, data={"csrf_token": csrf, "amount": "35"})
    assert "Low-balance notice below ¥35.00." in r.text
    assert _threshold(ctx, mine.account_id) == 35_000_000
    r = client.post(  # another customer's account: as if there were none
        f"/billing-accounts/{theirs.account_id}/low-balance",
        data={"csrf_token": csrf, "amount": "5"},
    )
    assert "flash-error" in r.text and "not found" in r.text
