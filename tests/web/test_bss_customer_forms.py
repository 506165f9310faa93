"""The console's forms that create business records: onboarding a customer from the Customers
page.

Each goes through the same domain function as the API: a success redirects with a message, a
refusal comes back with the field named, what was typed kept, and nothing written.
"""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from satiot.api.context import AppContext
from satiot.bss import customers
from satiot.bss.models import Contract, Customer
from satiot.core.auth.roles import Role
from satiot.core.models import Tenant
from tests.bss.onboarding_world import AGENT_ID, LEGAL_REP_ID, uscc_for
from tests.factories import World
from tests.web.console_helpers import signed_in


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
    assert 'id="customer-status">initialized<' in page


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
