"""The console's forms that create business records: onboarding a customer from the Customers
page, drafting a contract from a customer's page and amending one from a contract's page.

Each goes through the same domain function as the API: a success redirects with a message, a
refusal comes back with the field named, what was typed kept, and nothing written.
"""

from __future__ import annotations

import html
import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from satiot.api.context import AppContext
from satiot.bss import customers
from satiot.bss.models import Contract, Customer
from satiot.core.auth.roles import Role
from satiot.core.models import Tenant
from tests.bss.onboarding_world import AGENT_ID, LEGAL_REP_ID, application, uscc_for
from tests.factories import World
from tests.web.console_helpers import csrf, signed_in


def onboarding(n: int = 901, **changes: str) -> dict[str, str]:
    """The onboarding form filled in correctly (Tianjin shipping agent)."""
    return {
        "name": f"Harbour Freight {n}",
        "uscc": uscc_for(n, region="120000"),
        "organization_type": "enterprise",
        "industry": "G",
        "province": "12",
        "address": "9 Harbour Road, Tianjin",
        "legal_rep_name": "Zhang Wei",
        "legal_rep_id": LEGAL_REP_ID,
        "agent_name": "Li Na",
        "agent_id": AGENT_ID,
        "agent_phone": "138 0013 8000",
        "tenant_slug": "",
        **changes,
    }


def counts(ctx: AppContext) -> tuple[int, int, int]:
    """Customers, tenants and contract versions on record."""
    with ctx.db.read() as s:
        return (
            s.scalar(select(func.count(Customer.id))) or 0,
            s.scalar(select(func.count(Tenant.id))) or 0,
            s.scalar(select(func.count(Contract.id))) or 0,
        )


def flash_text(page: str) -> str:
    found = re.search(r'<div class="flash flash-(\w+)"[^>]*>([^<]*)</div>', page)
    assert found, "no flash message on the page"
    return f"{found[1]}: {html.unescape(found[2])}"


def value_of(page: str, name: str) -> str:
    found = re.search(rf'<input type="text" name="{re.escape(name)}" value="([^"]*)"', page)
    assert found, f"no text input {name}"
    return html.unescape(found[1])


def ticked(page: str, name: str) -> list[str]:
    return re.findall(rf'name="{re.escape(name)}" value="([^"]+)" checked', page)


# ---- Onboarding ------------------------------------------------------------------------------


def test_staff_onboard_a_customer_and_its_tenant(client: TestClient, world: World, ctx: AppContext):
    world.user(world.operator, Role.BUSINESS, "seller")
    token = signed_in(client, "seller")
    listing = client.get("/customers").text
    assert 'id="onboard-form"' in listing and "Onboard one below" in listing
    before = counts(ctx)
    r = client.post(
        "/customers",
        data=onboarding(tenant_slug="harbour", csrf_token=token),
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    with ctx.db.read() as s:
        customer = s.scalar(select(Customer).where(Customer.uscc == uscc_for(901, "120000")))
        assert customer is not None and r.headers["location"] == f"/customers/{customer.id}"
        assert customer.status == "initialized" and customer.agent_phone == "13800138000"
        tenant = s.get(Tenant, customer.tenant_id)
        assert tenant is not None and tenant.slug == "harbour" and tenant.kind == "customer"
    assert counts(ctx) == (before[0] + 1, before[1] + 1, before[2])
    page = client.get(r.headers["location"]).text
    assert (
        flash_text(page)
        == "success: Harbour Freight 901 onboarded: file its documents, then verify it."
    )
    row = re.search(r'<tr class="customer-row".*?</tr>', client.get("/customers").text, re.S)
    assert row is not None  # the list names the industry and the province, not their codes
    assert ">Transport, storage and post<" in row[0] and ">Tianjin<" in row[0]
    assert 'id="customer-status">initialized<' in page
    assert 'id="draft-needs-validation"' in page and 'id="draft-form"' not in page


def test_a_code_failing_its_check_character_goes_to_manual_review(
    client: TestClient, world: World, ctx: AppContext
):
    good = uscc_for(902)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    token = signed_in(client, "admin")
    r = client.post("/customers", data=onboarding(902, uscc=bad, province="11", csrf_token=token))
    assert r.status_code == 200
    assert "onboarded into manual review" in r.text
    assert 'id="customer-status">manual-review<' in r.text


@pytest.mark.parametrize(
    ("changes", "status", "field", "message"),
    [
        (
            {"legal_rep_id": "110105194912310021"},
            422,
            "legal_rep_id",
            "Legal representative's resident ID: the check digit does not match "
            "(ISO 7064 MOD 11-2): mistyped?",
        ),
        (
            {"agent_id": "4405241880010100"},
            422,
            "agent_id",
            "Agent's resident ID: a resident ID number has 18 characters, not 16",
        ),
        (
            {"uscc": "91120000W0000090"},
            422,
            "uscc",
            "Unified Social Credit Code: a unified social credit code has 18 characters, not 16",
        ),
        (
            {"industry": "Z"},
            422,
            "industry",
            "Industry: 'Z' is not a GB/T 4754 section letter (A-T)",
        ),
        ({"agent_phone": "12345"}, 422, "agent_phone", "Agent's phone: expected a mainland"),
        ({"name": "  "}, 422, "name", "Name: must not be empty"),
        (
            {"tenant_slug": "Harbour Freight!"},
            422,
            "tenant_slug",
            "Tenant slug: lowercase letters, digits and hyphens",
        ),
        ({"tenant_id": "not-a-tenant"}, 422, "tenant_id", "Existing tenant: choose a tenant"),
    ],
)
def test_bad_input_names_the_field_keeps_the_values_and_creates_nothing(
    client: TestClient,
    world: World,
    ctx: AppContext,
    changes: dict[str, str],
    status: int,
    field: str,
    message: str,
):
    token = signed_in(client, "admin")
    before = counts(ctx)
    typed = onboarding(**changes)
    r = client.post("/customers", data={**typed, "csrf_token": token})
    assert r.status_code == status
    assert flash_text(r.text).startswith(f"error: {message}")
    assert f'name="{field}"' in r.text
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', r.text), "field not marked"
    assert f'id="error-{field}"' in r.text
    assert 'id="onboard-panel" open' in r.text
    for name in ("name", "uscc", "address", "legal_rep_name", "legal_rep_id", "agent_id"):
        assert value_of(r.text, name) == typed[name]
    assert re.search(r'<option value="12" selected>', r.text)
    assert counts(ctx) == before


def test_a_credit_code_on_record_is_refused(client: TestClient, world: World, ctx: AppContext):
    ready = world.customer()
    token = signed_in(client, "admin")
    before = counts(ctx)
    r = client.post("/customers", data=onboarding(uscc=ready.uscc, province="11", csrf_token=token))
    assert r.status_code == 409
    assert flash_text(r.text) == (
        f"error: Unified Social Credit Code: a customer with credit code {ready.uscc} is "
        "already on record"
    )
    assert counts(ctx) == before


def test_a_tenant_created_earlier_gets_the_record(
    client: TestClient, world: World, ctx: AppContext
):
    tenant = world.tenant("early-bird")
    token = signed_in(client, "admin")
    listing = client.get("/customers").text
    assert f'<option value="{tenant.id}">' in listing
    before = counts(ctx)
    r = client.post(
        "/customers",
        data=onboarding(903, tenant_id=str(tenant.id), csrf_token=token),
        follow_redirects=False,
    )
    assert r.status_code == 303
    with ctx.db.read() as s:
        assert customers.customer_of_tenant(s, tenant.id) is not None
    assert counts(ctx) == (before[0] + 1, before[1], before[2])
    assert f'<option value="{tenant.id}">' not in client.get("/customers").text


def test_customers_and_the_regulator_cannot_onboard(
    client: TestClient, world: World, ctx: AppContext
):
    ready = world.customer()
    world.user(ready.tenant_id, Role.CUSTOMER_ADMIN, "boss")
    world.user(world.operator, Role.REGULATOR, "watcher")
    before = counts(ctx)
    token = signed_in(client, "boss")
    r = client.post("/customers", data=onboarding(csrf_token=token))
    assert r.status_code == 403 and "customers:write" in r.text
    assert 'id="onboard-form"' not in client.get("/customers").text
    assert counts(ctx) == before
    client.cookies.clear()
    token = signed_in(client, "watcher")
    listing = client.get("/customers")
    assert listing.status_code == 200 and 'id="onboard-form"' not in listing.text
    assert client.post("/customers", data=onboarding(csrf_token=token)).status_code == 403
    assert counts(ctx) == before


def test_onboarding_without_the_csrf_token_creates_nothing(
    client: TestClient, world: World, ctx: AppContext
):
    signed_in(client, "admin")
    before = counts(ctx)
    assert client.post("/customers", data=onboarding()).status_code == 403
    assert counts(ctx) == before


# ---- Drafting a contract ---------------------------------------------------------------------


def terms_form(ready: Any, **changes: Any) -> dict[str, Any]:
    """The draft form filled in for ``ready``'s terminal model and offering."""
    return {
        "scenario": "maritime",
        "scenario_description": "Position reports of fishing vessels",
        "allowed_models": [ready.terminal_model],
        "max_devices": "1,200",
        "monthly_messages_per_device": "3000",
        "monthly_bytes_per_device": "",
        "quota_action": "throttle",
        "destination_allow_list": "iot.example.com:8883\n\n203.0.113.10:443\n",
        "service_area": ["46", "44"],
        "offering_ids": [str(ready.offering_id)],
        "stop_at_zero_balance": "true",
        **changes,
    }


def contract_count(ctx: AppContext, customer_id: uuid.UUID) -> int:
    with ctx.db.read() as s:
        found = s.scalar(select(func.count(Contract.id)).where(Contract.customer_id == customer_id))
        return int(found or 0)


def test_sales_draft_a_contract_from_the_customer_page(
    client: TestClient, world: World, ctx: AppContext
):
    ready = world.customer()
    world.user(world.operator, Role.BUSINESS, "seller")
    token = signed_in(client, "seller")
    page = client.get(f"/customers/{ready.customer_id}").text
    assert 'id="draft-form"' in page and 'action="/customers/' in page
    assert f'value="{ready.terminal_model}"' in page and f'value="{ready.offering_id}"' in page
    assert ticked(page, "service_area") == ["11"]  # the customer's province to start with
    r = client.post(
        f"/customers/{ready.customer_id}/contracts",
        data={**terms_form(ready), "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    new_id = uuid.UUID(r.headers["location"].rsplit("/", 1)[1])
    with ctx.db.read() as s:
        contract = s.get(Contract, new_id)
        assert contract is not None and contract.customer_id == ready.customer_id
        assert (contract.status, contract.version, contract.scenario) == ("draft", 1, "maritime")
        assert contract.max_devices == 1200 and contract.quota_action == "throttle"
        assert contract.monthly_messages_per_device == 3000
        assert contract.monthly_bytes_per_device is None
        assert contract.destination_allow_list == ["203.0.113.10:443", "iot.example.com:8883"]
        assert contract.service_area == ["44", "46"] and contract.stop_at_zero_balance
        number = contract.number
    page = client.get(r.headers["location"]).text
    assert flash_text(page).startswith(f"success: {number} v1 drafted")
    assert 'id="sign-form"' in page and "SATELLITE IoT SERVICE CONTRACT" in page


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"destination_allow_list": "iot.example.com\n10.0.0.0/8\n"},
            "destination_allow_list",
            "Destination allow-list, entry 2: 10.0.0.0/8 is too wide for an allow-list",
        ),
        (
            {"max_devices": "lots"},
            "max_devices",
            "Maximum devices: 'lots' is not a whole number",
        ),
        (
            {"monthly_messages_per_device": ""},
            "monthly_messages_per_device",
            "Messages per device per month: a contract caps messages or bytes per month",
        ),
        (
            {"monthly_messages_per_device": "99999999999"},
            "monthly_messages_per_device",
            "Messages per device per month: at most 1,000,000,000",
        ),
        (
            {"allowed_models": ["NOT-A-MODEL"]},
            "allowed_models",
            "Terminal models: terminal model 'NOT-A-MODEL' is not on the licence register",
        ),
        ({"scenario": ""}, "scenario", "Application scenario: '' is not a known"),
        ({"service_area": []}, "service_area", "Service area: name at least one province"),
        ({"offering_ids": []}, "offering_ids", "Tariffs disclosed: disclose at least one tariff"),
    ],
)
def test_a_bad_draft_names_the_field_and_keeps_the_terms(
    client: TestClient,
    world: World,
    ctx: AppContext,
    changes: dict[str, Any],
    field: str,
    message: str,
):
    ready = world.customer()
    token = signed_in(client, "admin")
    before = counts(ctx)
    typed = terms_form(ready, **changes)
    r = client.post(
        f"/customers/{ready.customer_id}/contracts", data={**typed, "csrf_token": token}
    )
    assert r.status_code == 422
    assert flash_text(r.text).startswith(f"error: {message}")
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', r.text) or re.search(
        rf'id="[a-z]+-boxes" aria-invalid="true" aria-describedby="error-{field}"', r.text
    ), "field not marked"
    assert 'id="draft-panel" open' in r.text
    assert value_of(r.text, "max_devices") == typed["max_devices"]
    assert ticked(r.text, "service_area") == sorted(typed["service_area"], key=int)
    area = re.search(r'<textarea name="destination_allow_list"[^>]*>([^<]*)</textarea>', r.text)
    assert area and html.unescape(area[1]) == typed["destination_allow_list"]
    assert "selected>Maritime" in r.text or typed["scenario"] != "maritime"
    assert counts(ctx) == before


def test_no_draft_before_the_customer_is_validated(
    client: TestClient, world: World, ctx: AppContext
):
    ready = world.customer()
    with ctx.db.write() as s:
        fresh = customers.onboard(s, world.system, application(904), at=ctx.clock.now())
    token = signed_in(client, "admin")
    page = client.get(f"/customers/{fresh.id}").text
    assert 'id="draft-form"' not in page and 'id="draft-needs-validation"' in page
    r = client.post(
        f"/customers/{fresh.id}/contracts", data={**terms_form(ready), "csrf_token": token}
    )
    assert r.status_code == 409
    assert "a contract needs a validated customer" in flash_text(r.text)
    assert contract_count(ctx, fresh.id) == 0


def test_only_sales_draft_contracts(client: TestClient, world: World, ctx: AppContext):
    ready = world.customer()
    world.user(ready.tenant_id, Role.CUSTOMER_ADMIN, "boss")
    world.user(world.operator, Role.COMPLIANCE, "auditor")
    for who in ("boss", "auditor"):
        client.cookies.clear()
        token = signed_in(client, who)
        page = client.get(f"/customers/{ready.customer_id}").text
        assert 'id="draft-form"' not in page
        r = client.post(
            f"/customers/{ready.customer_id}/contracts",
            data={**terms_form(ready), "csrf_token": token},
        )
        assert r.status_code == 403 and "contracts:write" in r.text
    assert contract_count(ctx, ready.customer_id) == 1


# ---- Amending a contract ---------------------------------------------------------------------


def test_an_amendment_starts_from_the_terms_in_force(
    client: TestClient, world: World, ctx: AppContext
):
    ready = world.customer()
    token = signed_in(client, "admin")
    page = client.get(f"/contracts/{ready.contract_id}").text
    assert 'id="amend-form"' in page and "Draft version 2 from these terms" in page
    assert value_of(page, "max_devices") == "100"
    assert value_of(page, "monthly_messages_per_device") == "3000"
    assert value_of(page, "monthly_bytes_per_device") == "100000"
    assert ticked(page, "allowed_models") == [ready.terminal_model]
    assert ticked(page, "offering_ids") == [str(ready.offering_id)]
    assert ticked(page, "service_area") == ["11", "12"]
    assert re.search(r'<option value="transport-logistics" selected>', page)
    assert re.search(r'<option value="suspend" [^>]*selected>', page)
    area = re.search(r'<textarea name="destination_allow_list"[^>]*>([^<]*)</textarea>', page)
    assert area and area[1] == "203.0.113.10:443\niot.example.com"

    form = terms_form(
        ready,
        scenario="transport-logistics",
        max_devices="250",
        monthly_messages_per_device="3000",
        monthly_bytes_per_device="",
        quota_action="suspend",
        destination_allow_list="203.0.113.10:443\niot.example.com\n*.walker.example:443",
        service_area=["11", "12"],
        stop_at_zero_balance="",
    )
    form.pop("stop_at_zero_balance")
    r = client.post(
        f"/contracts/{ready.contract_id}/versions",
        data={**form, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    v2_id = uuid.UUID(r.headers["location"].rsplit("/", 1)[1])
    with ctx.db.read() as s:
        v2 = s.get(Contract, v2_id)
        assert v2 is not None and (v2.number, v2.version) == (ready.contract_number, 2)
        assert v2.supersedes_id == ready.contract_id and v2.status == "draft"
        assert v2.max_devices == 250 and v2.monthly_bytes_per_device is None
        assert v2.monthly_messages_per_device == 3000
        assert "*.walker.example:443" in v2.destination_allow_list
        assert s.get(Contract, ready.contract_id).status == "signed"
    page = client.get(r.headers["location"]).text
    assert flash_text(page).startswith(f"success: {ready.contract_number} v2 drafted")
    old = client.get(f"/contracts/{ready.contract_id}").text
    assert 'id="amend-form"' not in old and 'id="pending-draft"' in old


def test_a_bad_amendment_names_the_field_and_drafts_nothing(
    client: TestClient, world: World, ctx: AppContext
):
    ready = world.customer()
    token = signed_in(client, "admin")
    before = counts(ctx)
    typed = terms_form(
        ready, max_devices="75", monthly_messages_per_device="", monthly_bytes_per_device=""
    )
    r = client.post(f"/contracts/{ready.contract_id}/versions", data={**typed, "csrf_token": token})
    assert r.status_code == 422
    assert flash_text(r.text) == (
        "error: Messages per device per month: a contract caps messages or bytes per month"
    )
    assert 'id="amend-panel" open' in r.text
    assert value_of(r.text, "max_devices") == "75"  # what was typed, not the terms in force
    assert ticked(r.text, "service_area") == ["44", "46"]
    assert counts(ctx) == before


def test_customers_read_but_do_not_amend(client: TestClient, world: World, ctx: AppContext):
    ready = world.customer()
    world.user(ready.tenant_id, Role.CUSTOMER_ADMIN, "boss")
    token = signed_in(client, "boss")
    page = client.get(f"/contracts/{ready.contract_id}").text
    assert 'id="amend-form"' not in page
    r = client.post(
        f"/contracts/{ready.contract_id}/versions",
        data={**terms_form(ready), "csrf_token": csrf(client, f"/contracts/{ready.contract_id}")},
    )
    assert r.status_code == 403 and token
    assert contract_count(ctx, ready.customer_id) == 1
