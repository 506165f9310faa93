"""A prepaid account's balance history through the API: newest first, paged; a customer reads
its own, another tenant's account is a 404."""

from __future__ import annotations

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
