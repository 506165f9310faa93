"""Account statements through the API: the movements of an account with their balances, as
JSON and as CSV; a customer reads its own, another tenant's account is a 404; bad dates 422."""

from __future__ import annotations

import csv
import io
import uuid

from satiot.core.auth.roles import Role
from tests.api.conftest import assert_problem
from tests.api.conftest import run_november as _run
from tests.bss.billing_world import USCCS
from tests.bss.billing_world import shop as new_shop

API = "/api/v1"


def test_the_clerk_and_the_customer_read_the_same_statement(client, billed, world):
    shop, clerk, customer = billed
    _run(client, clerk)
    (bill,) = client.get(f"{API}/bills?period=2026-11", headers=clerk).json()["items"]
    for step in ("validate", "send"):
        client.post(f"{API}/bills/{bill['id']}/{step}", headers=clerk)
    pay = {"amount": "100.00", "method": "bank-transfer", "reference": "CMB-1"}
    assert client.post(f"{API}/bills/{bill['id']}/payments", headers=clerk, json=pay).is_success
    url = f"{API}/billing-accounts/{shop.account_id}/statement"
    mine = client.get(url, headers=customer, params={"from": "2026-11-01"})
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert [(e["kind"], e["amount"], e["balance"]) for e in body["entries"]] == [
        ("invoice", "106.01", "106.01"),
        ("payment", "-100.00", "6.01"),
    ]
    assert (body["opening"], body["closing"]) == ("0.00", "6.01")
    assert (
        body["closing"]
        == client.get(f"{API}/bills/{bill['id']}", headers=customer).json()["amount_due"]
    )
    assert client.get(url, headers=clerk).json()["entries"] == body["entries"]
    file = client.get(f"{url}/csv", headers=customer, params={"from": "2026-12-01"})
    assert file.status_code == 200 and file.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(file.content.decode("utf-8-sig"))))
    assert [r[1] for r in rows[1:]] == ["opening", "invoice", "payment", "closing"]
    assert rows[-1][-1] == "6.01"


def test_another_tenants_account_and_bad_dates_are_refused(client, billed, world):
    shop, clerk, _customer = billed
    other = new_shop(world, uscc=USCCS[1], name="Other Co")
    stranger = world.headers(world.user(other.tenant, Role.CUSTOMER_ADMIN, "stranger"))
    url = f"{API}/billing-accounts/{shop.account_id}/statement"
    assert_problem(client.get(url, headers=stranger), 404)
    assert_problem(client.get(f"{url}/csv", headers=stranger), 404)
    assert_problem(
        client.get(f"{API}/billing-accounts/{uuid.uuid4()}/statement", headers=clerk), 404
    )
    assert_problem(
        client.get(url, headers=clerk, params={"from": "2026-12-02", "to": "2026-12-01"}), 422
    )
    assert_problem(client.get(url, headers=clerk, params={"from": "2026-13-01"}), 422)
    assert_problem(client.get(f"{url}/csv", headers=clerk, params={"to": "yesterday"}), 422)
