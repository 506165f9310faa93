"""The console's account statement: reached from the account's page, the year so far by
default, any two days on request, a CSV of the same; customers read their own only."""

from __future__ import annotations

import re
import uuid

from fastapi.testclient import TestClient

from satiot.api.context import AppContext
from satiot.bss.money import format_cny
from satiot.bss.payments import record_payment
from satiot.core.auth.roles import Role
from tests.factories import World
from tests.web.console_helpers import signed_in
from tests.web.test_billing_console_pages import _sent_bill, _two_shops


def _as(client: TestClient, username: str) -> str:
    client.cookies.clear()
    return signed_in(client, username)


def test_the_statement_of_an_account_and_its_csv(client: TestClient, ctx: AppContext, world: World):
    mine, theirs = _two_shops(ctx, world)
    bill_id, _number, total = _sent_bill(ctx, world, theirs)
    with ctx.db.write() as w:
        record_payment(w, world.system, bill_id, amount_micros=5_000_000, method="bank",
                       reference="BANK-9", at=ctx.clock.now())  # fmt: skip
    world.user(theirs.tenant, Role.CUSTOMER_ADMIN, "theirs")
    world.user(mine.tenant, Role.CUSTOMER_ADMIN, "mine")
    _as(client, "theirs")
    account_page = client.get(f"/billing-accounts/{theirs.account_id}").text
    assert f'href="/billing-accounts/{theirs.account_id}/statement"' in account_page
    html = client.get(f"/billing-accounts/{theirs.account_id}/statement").text
    assert 'value="2026-01-01"' in html and 'value="2026-12-01"' in html  # the year so far
    rows = re.findall(r'<tr class="statement-row">(.*?)</tr>', html, re.S)
    assert len(rows) == 2 and "invoice" in rows[0] and "BANK-9" in rows[1]
    closing = re.search(r'id="statement-closing"><strong>([^<]+)<', html)
    assert closing is not None and closing[1] == format_cny(total - 5_000_000)
    later = client.get(
        f"/billing-accounts/{theirs.account_id}/statement",
        params={"start": "2026-12-02", "end": "2026-12-31"},
    ).text
    opening = re.search(r'id="statement-opening">([^<]+)<', later)
    assert opening is not None and opening[1] == format_cny(total - 5_000_000)
    assert "Nothing between these days." in later
    bad = client.get(
        f"/billing-accounts/{theirs.account_id}/statement",
        params={"start": "2026-12-31", "end": "2026-12-01"},
    ).text
    assert "flash-error" in bad and "starts" in bad
    file = client.get(
        f"/billing-accounts/{theirs.account_id}/statement.csv", params={"end": "2026-12-01"}
    )
    assert file.status_code == 200 and "satiot-statement-" in file.headers["content-disposition"]
    assert (
        file.content.decode("utf-8-sig")
        .splitlines()[-1]
        .endswith(f"{(total - 5_000_000) / 1e6:.2f}")
    )

    _as(client, "mine")  # another customer's account: not found, and no file
    assert client.get(f"/billing-accounts/{theirs.account_id}/statement").status_code == 404
    assert client.get(f"/billing-accounts/{theirs.account_id}/statement.csv").status_code == 404
    assert client.get(f"/billing-accounts/{uuid.uuid4()}/statement").status_code == 404
