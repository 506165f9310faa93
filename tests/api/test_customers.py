"""The customers API: onboarding, masking, documents, verification, risk, billing accounts."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from sqlalchemy import func, select

from satiot.bss import documents
from satiot.bss.models import Customer
from satiot.core.auth.roles import Role
from tests.api.conftest import assert_problem, unchanged
from tests.bss.onboarding_world import AGENT_ID, LEGAL_REP_ID, PDF, PNG, uscc_for

API = "/api/v1/customers"


def body(n: int = 1, **changes):
    data = {
        "name": f"Walker Logistics {n}",
        "uscc": uscc_for(n),
        "organization_type": "enterprise",
        "industry": "G",
        "province": "11",
        "address": "1 Walker Road",
        "legal_representative": {"name": "Zhang Wei", "resident_id": LEGAL_REP_ID},
        "agent": {"name": "Li Na", "resident_id": AGENT_ID, "phone": "13800138000"},
    }
    return data | changes


@pytest.fixture
def sales(world):
    return world.headers(world.user(world.operator, Role.BUSINESS, "sales"))


def post(client, headers, data=None, **kw):
    return client.post(API, json=data or body(), headers=headers, **kw)


def upload(client, headers, customer_id, kind, content=PDF, name="scan.pdf"):
    return client.post(
        f"{API}/{customer_id}/documents",
        headers=headers,
        data={"kind": kind},
        files={"file": (name, content, "application/octet-stream")},
    )


def test_staff_onboard_a_customer_with_its_tenant(client, world, sales):
    r = post(client, sales)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["status"] == "initialized" and out["uscc_check_ok"] is True
    assert out["organization_type"] == "enterprise" and out["industry_name"].startswith("Transport")
    assert out["province_name"] == "Beijing" and out["href"] == f"{API}/{out['id']}"
    # Staff who verify see the full numbers.
    assert out["legal_representative"]["resident_id"] == LEGAL_REP_ID
    assert out["risk"] == {
        "status": "pending",
        "score": None,
        "passed": False,
        "findings": [],
        "assessed_at": None,
        "assessed_by": None,
    }
    tenant = client.get(f"/api/v1/tenants/{out['tenant_id']}", headers=sales).json()
    assert tenant["slug"] == "walker-logistics-1" and tenant["name"] == "Walker Logistics 1"


def test_a_failed_check_character_is_accepted_for_manual_review(client, sales):
    r = post(client, sales, body(uscc="91350100M0001TGQXM", province="35"))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "manual-review"
    assert "fails its check character" in r.json()["warnings"][0]


@pytest.mark.parametrize(
    ("changes", "field", "why"),
    [
        ({"uscc": "9111000060003IOZSV"}, "uscc", "cannot appear in a credit code"),
        ({"uscc": "91990000600037341L"}, "uscc", "name no province"),
        (
            {"agent": {"name": "Li", "resident_id": "36042619910102009X", "phone": "13800138000"}},
            "agent.resident_id",
            "check digit",
        ),
        (
            {"legal_representative": {"name": "Zhang", "resident_id": "360426199113010079"}},
            "legal_representative.resident_id",
            "not a real birth date",
        ),
        ({"industry": "Z"}, "industry", "GB/T 4754"),
        ({"province": "00"}, "province", "GB/T 2260"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(client, ctx, sales, changes, field, why):
    with unchanged(ctx):
        r = post(client, sales, body(**changes))
    problem = assert_problem(r, 422, "invalid-input")
    assert problem["field"] == field and why in problem["detail"]


def test_schema_errors_are_422_with_the_location(client, ctx, sales):
    with unchanged(ctx):
        r = post(client, sales, body(organization_type="club"))
    problem = assert_problem(r, 422, "validation-error")
    assert problem["errors"][0]["loc"] == ["body", "organization_type"]


def test_a_duplicate_credit_code_is_409(client, ctx, sales):
    assert post(client, sales).status_code == 201
    with unchanged(ctx):
        r = post(client, sales, body(2, uscc=uscc_for(1)))
    assert assert_problem(r, 409, "conflict")["field"] == "uscc"


def test_onboarding_is_idempotent_with_a_key(client, ctx, sales):
    headers = sales | {"Idempotency-Key": "onboard-1"}
    first = post(client, headers)
    again = post(client, headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    with ctx.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 1


def test_customers_see_their_own_record_masked(client, world, sales):
    mine = post(client, sales).json()
    other = post(client, sales, body(2)).json()
    reader = world.headers(world.user(uuid.UUID(mine["tenant_id"]), Role.CUSTOMER_USER, "reader"))
    listed = client.get(API, headers=reader).json()["items"]
    assert [c["id"] for c in listed] == [mine["id"]]
    one = client.get(f"{API}/{mine['id']}", headers=reader).json()
    assert one["legal_representative"]["resident_id"] == "110105********002X"
    assert one["agent"]["resident_id"] == "440524********0014"
    assert_problem(client.get(f"{API}/{other['id']}", headers=reader), 404, "customer-not-found")
    assert_problem(post(client, reader, body(3)), 403, "forbidden")


def test_the_regulator_sees_every_customer_masked(client, world, sales):
    post(client, sales)
    regulator = world.headers(world.user(world.operator, Role.REGULATOR, "miit"))
    (seen,) = client.get(API, headers=regulator).json()["items"]
    assert seen["agent"]["resident_id"] == "440524********0014"


def test_the_list_pages_with_a_cursor(client, sales):
    for n in range(1, 4):
        post(client, sales, body(n))
    r = client.get(API, params={"limit": 2}, headers=sales)
    assert len(r.json()["items"]) == 2 and 'rel="next"' in r.headers["link"]
    rest = client.get(API, params={"cursor": r.json()["next_cursor"]}, headers=sales).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert client.get(API, params={"status": "validated"}, headers=sales).json()["items"] == []


# ---- documents and verification ----------------------------------------------------------------


def test_documents_are_filed_listed_and_downloaded(client, world, sales):
    customer = post(client, sales).json()
    r = upload(client, sales, customer["id"], "business-licence", PDF, "licence.pdf")
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["sha256"] == hashlib.sha256(PDF).hexdigest() and doc["size"] == len(PDF)
    assert doc["media_type"] == "application/pdf" and doc["filename"] == "licence.pdf"
    id_copy = upload(client, sales, customer["id"], "legal-rep-id", PNG, "id.png").json()
    listed = client.get(f"{API}/{customer['id']}/documents", headers=sales).json()["items"]
    assert [d["kind"] for d in listed] == ["legal-rep-id", "business-licence"]
    got = client.get(f"{API}/{customer['id']}/documents/{doc['id']}/content", headers=sales)
    assert got.content == PDF and got.headers["content-type"] == "application/pdf"
    assert "attachment" in got.headers["content-disposition"]
    # The customer's own users see the list and the licence, not the ID copies.
    reader = world.headers(
        world.user(uuid.UUID(customer["tenant_id"]), Role.CUSTOMER_ADMIN, "boss")
    )
    assert len(client.get(f"{API}/{customer['id']}/documents", headers=reader).json()["items"]) == 2
    ok = client.get(f"{API}/{customer['id']}/documents/{doc['id']}/content", headers=reader)
    assert ok.status_code == 200
    refused = client.get(
        f"{API}/{customer['id']}/documents/{id_copy['id']}/content", headers=reader
    )
    assert_problem(refused, 403, "forbidden")
    assert_problem(upload(client, reader, customer["id"], "agent-id"), 403, "forbidden")


def test_bad_documents_are_refused(client, ctx, sales, monkeypatch):
    customer = post(client, sales).json()
    with unchanged(ctx):
        r = upload(client, sales, customer["id"], "business-licence", b"GIF89a...")
        assert assert_problem(r, 422, "invalid-input")["field"] == "file"
        r = upload(client, sales, customer["id"], "passport")
        assert_problem(r, 422, "validation-error")
        monkeypatch.setattr(documents, "MAX_DOCUMENT_BYTES", 32)
        r = upload(client, sales, customer["id"], "business-licence", PDF + bytes(64))
        assert "larger than the 32 bytes" in assert_problem(r, 422, "invalid-input")["detail"]
    r = client.post(f"{API}/{customer['id']}/documents", headers=sales, data={"kind": "agent-id"})
    assert_problem(r, 422, "validation-error")


def test_verification_through_the_lifecycle(client, world, sales):
    customer = post(client, sales).json()
    url = f"{API}/{customer['id']}/status"
    r = client.post(url, json={"status": "validated"}, headers=sales)
    problem = assert_problem(r, 409, "conflict")
    assert problem["missing_documents"] == ["business-licence", "legal-rep-id", "agent-id"]
    for kind in ("business-licence", "legal-rep-id", "agent-id", "authorisation-letter"):
        assert upload(client, sales, customer["id"], kind).status_code == 201
    r = client.post(url, json={"status": "validated", "reason": "documents ok"}, headers=sales)
    assert r.status_code == 200 and r.json()["status"] == "validated"
    r = client.post(url, json={"status": "manual-review"}, headers=sales)
    assert_problem(r, 409, "illegal-transition")
    r = client.post(url, json={"status": "closed"}, headers=sales)
    assert assert_problem(r, 422, "invalid-input")["field"] == "reason"


def test_risk_assessment_is_run_and_read(client, world, sales):
    customer = post(client, sales).json()
    url = f"{API}/{customer['id']}/risk-assessment"
    r = client.post(url, headers=sales)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["status"] == "failed" and result["score"] == 100 and not result["passed"]
    assert [f["code"] for f in result["findings"]] == [
        "documents-missing",
        "authorisation-letter-missing",
    ]
    assert result["findings"][0]["blocking"] is True
    assert result["assessed_by"].endswith("(user:sales)")
    for kind in ("business-licence", "legal-rep-id", "agent-id", "authorisation-letter"):
        upload(client, sales, customer["id"], kind)
    assert client.post(url, headers=sales).json()["passed"] is True
    reader = world.headers(
        world.user(uuid.UUID(customer["tenant_id"]), Role.CUSTOMER_USER, "reader")
    )
    assert client.get(url, headers=reader).json()["status"] == "passed"
    assert_problem(client.post(url, headers=reader), 403, "forbidden")


# ---- billing accounts ----------------------------------------------------------------------------


def test_billing_accounts(client, world, sales):
    customer = post(client, sales).json()
    url = f"{API}/{customer['id']}/billing-accounts"
    r = client.post(url, json={"payment_mode": "prepaid", "name": "Fleet"}, headers=sales)
    assert r.status_code == 201, r.text
    account = r.json()
    assert account["balance_micros"] == 0 and account["balance"] == "0"
    assert account["balance_text"] == "¥0.00" and account["payment_mode"] == "prepaid"
    client.post(url, json={"payment_mode": "postpaid"}, headers=sales)
    reader = world.headers(
        world.user(uuid.UUID(customer["tenant_id"]), Role.CUSTOMER_USER, "reader")
    )
    listed = client.get(url, headers=reader).json()["items"]
    assert [a["payment_mode"] for a in listed] == ["prepaid", "postpaid"]
    assert listed[1]["name"] == customer["name"]
    one = client.get(f"{url}/{account['id']}", headers=reader).json()
    assert one["name"] == "Fleet"
    other = post(client, sales, body(2)).json()
    r = client.get(f"{API}/{other['id']}/billing-accounts/{account['id']}", headers=sales)
    assert_problem(r, 404, "billing-account-not-found")
    r = client.post(url, json={"payment_mode": "barter"}, headers=sales)
    assert_problem(r, 422, "validation-error")
    assert_problem(client.post(url, json={"payment_mode": "prepaid"}, headers=reader), 403)


def test_accounts_across_customers_filtered_by_mode_and_want_of_a_top_up(client, world, sales):
    first, second = post(client, sales).json(), post(client, sales, body(2)).json()
    opened = {}
    for who, mode in ((first, "prepaid"), (first, "postpaid"), (second, "postpaid")):
        url = f"{API}/{who['id']}/billing-accounts"
        made = client.post(url, json={"payment_mode": mode}, headers=sales).json()
        opened[made["id"]] = (who["id"], mode)

    def listed(headers, query=""):  # type: ignore[no-untyped-def]
        r = client.get(f"/api/v1/billing-accounts{query}", headers=headers)
        assert r.status_code == 200, r.text
        return {a["id"] for a in r.json()["items"]} & opened.keys()

    assert listed(sales) == opened.keys()
    prepaid = {i for i, (_, mode) in opened.items() if mode == "prepaid"}
    assert listed(sales, "?payment_mode=prepaid") == prepaid
    assert listed(sales, "?running_low=true") == prepaid  # a new prepaid balance is ¥0
    reader = world.headers(world.user(uuid.UUID(first["tenant_id"]), Role.CUSTOMER_USER, "reader"))
    assert listed(reader) == {i for i, (c, _) in opened.items() if c == first["id"]}
    page = client.get("/api/v1/billing-accounts?limit=1", headers=reader)
    assert len(page.json()["items"]) == 1 and page.json()["next_cursor"]
    r = client.get("/api/v1/billing-accounts?payment_mode=barter", headers=sales)
    assert_problem(r, 422, "validation-error")


def test_a_prepaid_accounts_low_balance_notice_is_set_and_cleared(client, world, sales, ctx):
    customer = post(client, sales).json()
    url = f"{API}/{customer['id']}/billing-accounts"
    prepaid = client.post(url, json={"payment_mode": "prepaid"}, headers=sales).json()
    postpaid = client.post(url, json={"payment_mode": "postpaid"}, headers=sales).json()
    assert prepaid["low_balance"] is None
    r = client.put(f"{url}/{prepaid['id']}/low-balance", json={"low_balance": "50"}, headers=sales)
    assert r.status_code == 200 and r.json()["low_balance"] == "50.00", r.text
    tenant = uuid.UUID(customer["tenant_id"])
    boss = world.headers(world.user(tenant, Role.CUSTOMER_ADMIN, "boss"))
    reader = world.headers(world.user(tenant, Role.CUSTOMER_USER, "reader"))
    assert client.get(f"{url}/{prepaid['id']}", headers=reader).json()["low_balance"] == "50.00"
    # the customer's administrator chooses its own warning
    r = client.put(f"{url}/{prepaid['id']}/low-balance", json={"low_balance": "80"}, headers=boss)
    assert r.status_code == 200 and r.json()["low_balance"] == "80.00", r.text
    with unchanged(ctx):
        for bad in ({"low_balance": "-1"}, {"low_balance": "0.001"}, {}, {"low_balance": "x"}):
            assert_problem(
                client.put(f"{url}/{prepaid['id']}/low-balance", json=bad, headers=sales), 422
            )
        assert_problem(
            client.put(f"{url}/{postpaid['id']}/low-balance", json={"low_balance": "1"},
                       headers=sales),
            409,
        )  # fmt: skip
        assert_problem(
            client.put(f"{url}/{prepaid['id']}/low-balance", json={"low_balance": None},
                       headers=reader),
            403,
        )  # fmt: skip
    r = client.put(f"{url}/{prepaid['id']}/low-balance", json={"low_balance": None}, headers=sales)
    assert r.status_code == 200 and r.json()["low_balance"] is None
