"""The Subscriptions page's export: the search's every match as a spreadsheet, not one page,
and only the signed-in person's own subscriptions for a customer."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from satiot.api.context import AppContext
from satiot.core.auth.roles import Role
from satiot.web.views import subscriptions
from tests.bss.billing_world import USCCS, offering, price, shop
from tests.factories import World
from tests.web.console_helpers import signed_in

START = datetime(2026, 11, 1, tzinfo=UTC)


def _lines(client: TestClient, url: str) -> list[dict[str, str]]:
    r = client.get(url)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
    assert "attachment" in r.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))


def test_the_export_holds_every_match_not_one_page(
    client: TestClient, ctx: AppContext, world: World, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(subscriptions, "PAGE", 2)
    ours, theirs = shop(world), shop(world, uscc=USCCS[1], name="Other Co")
    plan = offering(ctx, "Plan", [price("recurring", 1_000_000)])
    for _ in range(4):
        ours.device(plan, START)
    ours.device(plan, START, status="suspended")
    theirs.device(plan, START)
    world.user(ours.tenant, Role.CUSTOMER_USER, "cuser")
    signed_in(client, "cuser")
    html = client.get("/subscriptions").text
    assert html.count('class="subscription-row"') == 2
    assert 'href="/subscriptions/export.csv" class="btn btn-quiet" id="export-csv"' in html
    everything = _lines(client, "/subscriptions/export.csv")
    assert len(everything) == 5 and {x["customer_credit_code"] for x in everything} == {USCCS[0]}
    filtered = client.get("/subscriptions?status=suspended").text
    assert 'href="/subscriptions/export.csv?status=suspended"' in filtered
    (suspended,) = _lines(client, "/subscriptions/export.csv?status=suspended")
    assert suspended["status"] == "suspended"
    (found,) = _lines(client, f"/subscriptions/export.csv?q={everything[0]['dev_eui'].lower()}")
    assert found["subscription_id"] == everything[0]["subscription_id"]
    client.cookies.clear()
    signed_in(client, "admin")
    assert len(_lines(client, "/subscriptions/export.csv")) == 6
    assert len(_lines(client, "/subscriptions/export.csv?status=nonsense")) == 6
    assert 'id="export-csv"' not in client.get("/subscriptions?q=NO-SUCH-DEVICE").text
