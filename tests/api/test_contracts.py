"""The contracts API: drafting, the signed text and its proof, versions, termination."""

from __future__ import annotations

import uuid

import pytest

from satiot.bss import contract_render
from satiot.bss.models import Contract
from satiot.core.auth.roles import Role
from tests.api.conftest import assert_problem, unchanged
from tests.bss.onboarding_world import offering, terminal_model

API = "/api/v1/contracts"


@pytest.fixture
def sales(world):
    return world.headers(world.user(world.operator, Role.BUSINESS, "sales"))


@pytest.fixture
def ready(world):
    return world.customer()


def terms(ready, **changes):
    data = {
        "customer_id": str(ready.customer_id),
        "scenario": "maritime",
        "scenario_description": "Position reports of fishing vessels",
        "allowed_models": [ready.terminal_model],
        "max_devices": 20,
        "monthly_messages_per_device": 2000,
        "quota_action": "throttle",
        "destination_allow_list": ["[2001:db8::10]:443", "fleet.example.com"],
        "service_area": ["46", "44"],
        "offering_ids": [str(ready.offering_id)],
    }
    return data | changes


def test_draft_read_sign_and_prove(client, world, ctx, sales, ready):
    r = client.post(API, json=terms(ready), headers=sales)
    assert r.status_code == 201, r.text
    draft = r.json()
    assert draft["status"] == "draft" and draft["number"] == "SC-2026-000002"
    assert draft["service_area"] == ["44", "46"] and draft["signature"] is None
    assert draft["scenario_name"].startswith("Maritime") and not draft["in_force"]
    preview = client.get(f"{API}/{draft['id']}/rendered", headers=sales).json()
    assert preview["signed"] is False and preview["verified"] is None
    assert preview["sha256"] == contract_render.sha256_text(preview["text"])
    assert "[2001:db8::10]:443" in preview["text"]
    r = client.post(
        f"{API}/{draft['id']}/sign",
        json={"signer_name": "Zhang Wei", "signer_role": "legal representative"},
        headers=sales,
    )
    assert r.status_code == 200, r.text
    signed = r.json()
    assert signed["status"] == "signed" and signed["in_force"]
    assert signed["signature"]["signer_name"] == "Zhang Wei"
    assert signed["signature"]["recorded_by"].endswith("(user:sales)")
    assert signed["signature"]["sha256"] == preview["sha256"]
    shown = client.get(f"{API}/{draft['id']}/rendered", headers=sales).json()
    assert shown["text"] == preview["text"] and shown["signed"] and shown["verified"]
    assert shown["recorded_sha256"] == shown["sha256"]
    # Changing the stored text is detected.
    with ctx.db.write() as s:
        row = s.get(Contract, uuid.UUID(draft["id"]))
        row.rendered_text = row.rendered_text.replace("20", "2000")
    tampered = client.get(f"{API}/{draft['id']}/rendered", headers=sales).json()
    assert tampered["verified"] is False and tampered["sha256"] != tampered["recorded_sha256"]


def test_customers_read_their_contracts_and_the_signed_text(client, world, sales, ready):
    other = world.customer()
    reader = world.headers(world.user(ready.tenant_id, Role.CUSTOMER_USER, "reader"))
    listed = client.get(API, headers=reader).json()["items"]
    assert [c["id"] for c in listed] == [str(ready.contract_id)]
    text = client.get(f"{API}/{ready.contract_id}/rendered", headers=reader).json()
    assert text["verified"] is True and "SATELLITE IoT SERVICE CONTRACT" in text["text"]
    assert_problem(client.get(f"{API}/{other.contract_id}", headers=reader), 404)
    assert_problem(client.get(f"{API}/{other.contract_id}/rendered", headers=reader), 404)
    assert_problem(client.post(API, json=terms(ready), headers=reader), 403, "forbidden")
    # A draft's text is shown to the customer too, with the operator's name.
    draft = client.post(API, json=terms(ready), headers=sales).json()
    preview = client.get(f"{API}/{draft['id']}/rendered", headers=reader).json()
    assert "Operator: Demo Satellite IoT Operator" in preview["text"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {"destination_allow_list": ["fleet.example.com", "10.0.0.0/8"]},
            "destination_allow_list[1]",
        ),
        ({"allowed_models": ["TQ-UNKNOWN"]}, "allowed_models"),
        ({"offering_ids": [str(uuid.uuid4())]}, "offering_ids"),
        ({"scenario": "casino"}, "scenario"),
        ({"service_area": ["11", "77"]}, "service_area"),
        ({"monthly_messages_per_device": None}, "monthly_messages_per_device"),
    ],
)
def test_bad_terms_name_the_field_and_take_no_number(client, ctx, sales, ready, changes, field):
    with unchanged(ctx):
        r = client.post(API, json=terms(ready, **changes), headers=sales)
    assert assert_problem(r, 422, "invalid-input")["field"] == field
    good = client.post(API, json=terms(ready), headers=sales).json()
    assert good["number"] == "SC-2026-000002"  # the refused draft took no number


def test_a_customer_not_validated_gets_no_contract(client, world, sales, ready):
    r = client.post(
        "/api/v1/customers",
        headers=sales,
        json={
            "name": "Fresh Co",
            "uscc": "91310115MA1K3BTP2B",
            "organization_type": "enterprise",
            "industry": "A",
            "province": "31",
            "legal_representative": {"name": "Zhang Wei", "resident_id": "11010519491231002X"},
            "agent": {
                "name": "Zhang Wei",
                "resident_id": "11010519491231002X",
                "phone": "021-12345678",
            },
        },
    )
    fresh = r.json()["id"]
    r = client.post(API, json=terms(ready, customer_id=fresh), headers=sales)
    assert "needs a validated customer" in assert_problem(r, 409, "conflict")["detail"]


def test_versions_and_termination(client, world, sales, ready):
    url = f"{API}/{ready.contract_id}"
    second = terminal_model(world, 4242)
    r = client.post(
        f"{url}/versions",
        json={"allowed_models": [ready.terminal_model, second], "monthly_bytes_per_device": None},
        headers=sales,
    )
    assert r.status_code == 201, r.text
    v2 = r.json()
    assert v2["version"] == 2 and v2["supersedes_id"] == str(ready.contract_id)
    assert v2["monthly_bytes_per_device"] is None and v2["monthly_messages_per_device"] == 3000
    assert_problem(client.post(f"{url}/versions", json={}, headers=sales), 409, "conflict")
    r = client.post(
        f"{API}/{v2['id']}/sign",
        json={"signer_name": "Li Na", "signer_role": "authorised agent"},
        headers=sales,
    )
    assert r.status_code == 200, r.text
    v1 = client.get(url, headers=sales).json()
    assert v1["status"] == "signed" and v1["superseded_by_id"] == v2["id"] and not v1["in_force"]
    listed = client.get(API, params={"customer_id": str(ready.customer_id)}, headers=sales)
    assert [c["version"] for c in listed.json()["items"]] == [1, 2]
    r = client.post(f"{url}/terminate", json={"reason": "replaced"}, headers=sales)
    assert "superseded by version 2" in assert_problem(r, 409, "conflict")["detail"]
    r = client.post(f"{API}/{v2['id']}/terminate", json={"reason": "customer left"}, headers=sales)
    assert r.status_code == 200 and r.json()["status"] == "terminated"
    assert r.json()["terminated_at"] is not None
    r = client.post(f"{API}/{v2['id']}/terminate", json={"reason": "again"}, headers=sales)
    assert_problem(r, 409, "illegal-transition")


def test_signing_is_for_sales_staff(client, world, ready, sales):
    draft = client.post(API, json=terms(ready), headers=sales).json()
    compliance = world.headers(world.user(world.operator, Role.COMPLIANCE, "comp"))
    sign = {"signer_name": "Zhang Wei", "signer_role": "legal representative"}
    r = client.post(f"{API}/{draft['id']}/sign", json=sign, headers=compliance)
    assert_problem(r, 403, "forbidden")
    r = client.post(f"{API}/{draft['id']}/sign", json={"signer_name": "x"}, headers=sales)
    assert_problem(r, 422, "validation-error")


def test_offerings_are_checked_when_drafting(client, world, sales, ready):
    retired = offering(world, 5151, status="Retired")
    r = client.post(API, json=terms(ready, offering_ids=[str(retired)]), headers=sales)
    assert "only Active offerings" in assert_problem(r, 422, "invalid-input")["detail"]


def test_the_list_pages_and_filters(client, sales, ready):
    for _ in range(2):
        client.post(API, json=terms(ready), headers=sales)
    page = client.get(API, params={"limit": 2}, headers=sales)
    assert len(page.json()["items"]) == 2 and page.json()["next_cursor"]
    drafts = client.get(API, params={"status": "draft"}, headers=sales).json()["items"]
    assert len(drafts) == 2 and {c["status"] for c in drafts} == {"draft"}
