"""A prepaid account's balance history through the API: newest first, paged; a customer reads
its own, another tenant's account is a 404."""

from __future__ import annotations

import csv
import io
import uuid

from satiot.core.auth.roles import Role
from tests.api.conftest import assert_problem
from tests.bss.billing_world import USCCS
from tests.bss.billing_world import shop as new_shop

API = "/api/v1/billing-accounts"


def test_the_customer_pages_its_balance_history_newest_first(client, world):
    mine = new_shop(world, payment_mode="prepaid")
    other = new_shop(world, uscc=USCCS[1], name="Other Co", payment_mode="prepaid")
    clerk = world.headers(world.user(world.operator, Role.BILLING, "clerk"))
    customer = world.headers(world.user(mine.tenant, Role.CUSTOMER_ADMIN))
    for reference, amount in (("T1", "100.00"), ("T2", "20.50")):
        r = client.post(
            f"{API}/{mine.account_id}/top-ups",
            headers=clerk,
            json={"amount": amount, "method": "alipay", "reference": reference},
        )
        assert r.status_code == 201, r.text
    first = client.get(f"{API}/{mine.account_id}/balance-entries?limit=1", headers=customer)
    assert first.status_code == 200, first.text
    (newest,) = first.json()["items"]
    assert (newest["kind"], newest["reference"], newest["amount"], newest["balance"]) == (
        "top-up", "T2", "20.50", "120.50",
    )  # fmt: skip
    assert newest["amount_micros"] == 20_500_000 and newest["description"] == "top-up"
    cursor = first.json()["next_cursor"]
    rest = client.get(
        f"{API}/{mine.account_id}/balance-entries", headers=customer, params={"cursor": cursor}
    ).json()
    assert [(e["reference"], e["balance"]) for e in rest["items"]] == [("T1", "100.00")]
    assert rest["next_cursor"] is None

    assert_problem(client.get(f"{API}/{other.account_id}/balance-entries", headers=customer), 404)
    assert_problem(client.get(f"{API}/{uuid.uuid4()}/balance-entries", headers=clerk), 404)
    bad = client.get(f"{API}/{mine.account_id}/balance-entries?cursor=x", headers=clerk)
    assert_problem(bad, 422)
    staff = client.get(f"{API}/{other.account_id}/balance-entries", headers=clerk)
    assert staff.status_code == 200 and staff.json()["items"] == []


def test_the_whole_ledger_downloads_oldest_first(client, world, monkeypatch):
    from satiot.bss import balance_history

    monkeypatch.setattr(balance_history, "CHUNK", 2)  # read in several chunks
    mine = new_shop(world, payment_mode="prepaid")
    other = new_shop(world, uscc=USCCS[1], name="Other Co", payment_mode="prepaid")
    clerk = world.headers(world.user(world.operator, Role.BILLING, "clerk"))
    customer = world.headers(world.user(mine.tenant, Role.CUSTOMER_ADMIN))
    for n, amount in enumerate(("100.00", "0.50", "20.00", "=1+1")):
        reference = f"T{n}" if not amount.startswith("=") else "=HYPERLINK(1)"
        r = client.post(
            f"{API}/{mine.account_id}/top-ups",
            headers=clerk,
            json={"amount": "1.00" if amount.startswith("=") else amount, "method": "bank",
                  "reference": reference},
        )  # fmt: skip
        assert r.status_code == 201, r.text
    got = client.get(f"{API}/{mine.account_id}/balance-entries/csv", headers=customer)
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert "satiot-balance-" in got.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert rows[0] == ["at", "kind", "description", "reference", "amount", "balance"]
    assert [(r[1], r[3], r[4], r[5]) for r in rows[1:]] == [
        ("top-up", "T0", "100.00", "100.00"),
        ("top-up", "T1", "0.50", "100.50"),
        ("top-up", "T2", "20.00", "120.50"),
        ("top-up", "'=HYPERLINK(1)", "1.00", "121.50"),  # a formula is written as text
    ]
    assert rows[1][0].startswith("2026-")  # Beijing time, to the second
    assert_problem(
        client.get(f"{API}/{other.account_id}/balance-entries/csv", headers=customer), 404
    )
