"""The console's balance history of a prepaid account: the latest changes on the account's
page, all of them a page at a time on their own; customers read their own only."""

from __future__ import annotations

import csv
import io
import re
import uuid

import pytest
from fastapi.testclient import TestClient

from satiot.api.context import AppContext
from satiot.bss.money import format_cny
from satiot.bss.payments import top_up
from satiot.core.auth.roles import Role
from satiot.web.views import balance_history
from tests.factories import World
from tests.web.console_helpers import signed_in
from tests.web.test_billing_console_pages import _sent_bill, _two_shops


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr class="balance-row">(.*?)</tr>', html, re.S)


def test_a_prepaid_customer_sees_where_its_money_went(
    client: TestClient, ctx: AppContext, world: World, monkeypatch: pytest.MonkeyPatch
):
    mine, theirs = _two_shops(ctx, world)  # mine: prepaid, its usage rated
    with ctx.db.write() as w:
        top_up(w, world.system, mine.account_id, amount_micros=30_000_000, method="alipay",
               reference="ALI-7", at=ctx.clock.now())  # fmt: skip
    _bill_id, number, _total = _sent_bill(ctx, world, mine)  # paid from the balance
    world.user(mine.tenant, Role.CUSTOMER_ADMIN, "mine")
    world.user(theirs.tenant, Role.CUSTOMER_ADMIN, "theirs")
    client.cookies.clear()
    signed_in(client, "mine")

    account = client.get(f"/billing-accounts/{mine.account_id}").text
    latest = _rows(account.split('id="balance-latest"', 1)[1].split("</section>", 1)[0])
    # newest first: the bill, the top-up, then the usage rated before them
    assert len(latest) == 3
    assert "bill paid from the balance" in latest[0] and number in latest[0]
    assert "top-up" in latest[1] and "ALI-7" in latest[1] and format_cny(30_000_000) in latest[1]
    assert "usage rated" in latest[2] and "-¥0.03" in latest[2]
    assert f'href="/billing-accounts/{mine.account_id}/balance"' in account

    monkeypatch.setattr(balance_history, "PAGE", 2)
    html = client.get(f"/billing-accounts/{mine.account_id}/balance").text
    older = re.search(r'<a href="([^"]+)" rel="next" id="balance-next">', html)
    assert len(_rows(html)) == 2 and older is not None
    rest = client.get(older.group(1).replace("&amp;", "&")).text
    assert len(_rows(rest)) == 1 and "usage rated" in _rows(rest)[0]
    assert 'id="balance-next"' not in rest
    assert f'href="/billing-accounts/{mine.account_id}/balance.csv"' in html
    got = client.get(f"/billing-accounts/{mine.account_id}/balance.csv")
    rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert [r[1] for r in rows[1:]] == ["usage", "top-up", "bill"]  # oldest first
    assert rows[1][4] == "-0.03" and rows[2][4] == "30.00"
    bad = client.get(f"/billing-accounts/{mine.account_id}/balance?after=nonsense")
    assert bad.status_code == 200 and "flash-error" in bad.text and len(_rows(bad.text)) == 2

    # another tenant's account, or none: the account's 404 page
    assert client.get(f"/billing-accounts/{theirs.account_id}/balance").status_code == 404
    assert client.get(f"/billing-accounts/{uuid.uuid4()}/balance").status_code == 404
    assert client.get("/billing-accounts/not-an-id/balance").status_code == 404
    assert client.get(f"/billing-accounts/{theirs.account_id}/balance.csv").status_code == 404
    client.cookies.clear()
    signed_in(client, "theirs")  # postpaid: no balance, no history card
    assert 'id="balance-latest"' not in client.get(f"/billing-accounts/{theirs.account_id}").text
