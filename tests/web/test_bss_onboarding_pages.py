"""The console's Customers and Contracts pages: who sees what, and the actions they carry."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from satiot.api.context import AppContext
from satiot.bss import customers
from satiot.bss.models import Contract, Customer
from satiot.core.auth.roles import Role
from satiot.web.security import CONTENT_SECURITY_POLICY
from tests.bss.onboarding_world import AGENT_ID, LEGAL_REP_ID, PDF, application
from tests.factories import World
from tests.web.console_helpers import csrf, signed_in


def onboard(world: World, n: int = 1, **changes) -> Customer:
    with world.ctx.db.write() as s:
        return customers.onboard(
            s, world.system, application(n, **changes), at=world.ctx.clock.now()
        )


def test_staff_see_every_customer_with_status_and_risk(client: TestClient, world: World):
    ready = world.customer()
    fresh = onboard(world, 50, uscc="91350100M0001TGQXM", province="35")
    signed_in(client, "admin")
    page = client.get("/customers")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "<script" not in page.text
    rows = re.findall(r'<tr class="customer-row" data-status="([^"]+)">', page.text)
    assert sorted(rows) == ["manual-review", "validated"]
    assert "badge-risk-passed" in page.text and "badge-risk-pending" in page.text
    assert str(ready.customer_id) in page.text and str(fresh.id) in page.text
    filtered = client.get("/customers?status=manual-review").text
    assert str(fresh.id) in filtered and str(ready.customer_id) not in filtered


def test_the_detail_page_shows_evidence_and_verifies(client: TestClient, world: World):
    customer = onboard(world)
    token = signed_in(client, "admin")
    page = client.get(f"/customers/{customer.id}").text
    assert LEGAL_REP_ID in page  # staff who verify see the full number
    assert 'data-target="validated"' in page and "Not assessed yet" in page
    assert "Still needed for verification: business-licence, legal-rep-id, agent-id" in page
    # Verifying too early is refused with the reason, on the same page.
    r = client.post(
        f"/customers/{customer.id}/status", data={"status": "validated", "csrf_token": token}
    )
    assert r.status_code == 409 and "cannot be validated: missing" in r.text
    for kind in ("business-licence", "legal-rep-id", "agent-id", "authorisation-letter"):
        r = client.post(
            f"/customers/{customer.id}/documents",
            data={"kind": kind, "csrf_token": token},
            files={"file": (f"{kind}.pdf", PDF, "application/pdf")},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
    r = client.post(
        f"/customers/{customer.id}/risk-assessment",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = client.post(
        f"/customers/{customer.id}/status",
        data={"status": "validated", "reason": "checked", "csrf_token": token},
    )
    assert r.status_code == 200 and "is now validated" in r.text
    assert 'id="customer-status">validated<' in r.text
    assert "Risk assessment passed" not in r.text  # the flash was shown once, before
    assert 'id="risk-status">passed' in r.text
    assert len(re.findall(r'class="document-row"', r.text)) == 4


def test_posts_without_the_csrf_token_change_nothing(
    client: TestClient, world: World, ctx: AppContext
):
    customer = onboard(world)
    signed_in(client, "admin")
    r = client.post(f"/customers/{customer.id}/status", data={"status": "closed", "reason": "x"})
    assert r.status_code == 403
    with ctx.db.read() as s:
        assert s.get(Customer, customer.id).status == "initialized"


def test_a_bad_upload_is_refused_on_the_page(client: TestClient, world: World):
    customer = onboard(world)
    token = signed_in(client, "admin")
    r = client.post(
        f"/customers/{customer.id}/documents",
        data={"kind": "business-licence", "csrf_token": token},
        files={"file": ("x.exe", b"MZ\x90\x00", "application/octet-stream")},
    )
    assert r.status_code == 422 and "not a PDF, PNG or JPEG" in r.text


def test_a_customer_sees_its_own_record_masked(client: TestClient, world: World):
    ready = world.customer()
    other = world.customer()
    world.user(ready.tenant_id, Role.CUSTOMER_USER, "reader")
    signed_in(client, "reader")
    r = client.get("/customers", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/customers/{ready.customer_id}"
    page = client.get(r.headers["location"]).text
    assert "110105********002X" in page and LEGAL_REP_ID not in page and AGENT_ID not in page
    assert 'data-target="validated"' not in page and 'id="assess"' not in page
    assert "(personal data)" in page  # ID copies are listed, not linked
    assert client.get(f"/customers/{other.customer_id}").status_code == 404
    nav = client.get("/").text
    assert ">Our company<" in nav and ">Contracts<" in nav


def test_contracts_list_and_detail_show_what_was_signed(client: TestClient, world: World):
    ready = world.customer()
    signed_in(client, "admin")
    listing = client.get("/contracts").text
    assert ready.contract_number in listing and "badge-in-force" in listing
    page = client.get(f"/contracts/{ready.contract_id}").text
    assert "SATELLITE IoT SERVICE CONTRACT" in page and "Text as signed" in page
    assert 'id="verification">matches the recorded hash' in page
    assert "Zhang Wei (legal representative)" in page
    assert client.get("/contracts/not-a-uuid").status_code == 404


def test_sales_record_a_signature_from_the_draft_page(
    client: TestClient, world: World, ctx: AppContext
):
    ready = world.customer()
    world.user(world.operator, Role.BUSINESS, "seller")
    with ctx.db.write() as s:
        from satiot.bss import contracts

        v2 = contracts.amend(
            s, world.system, ready.contract_id, {"max_devices": 9}, at=ctx.clock.now()
        )
    token = signed_in(client, "seller")
    page = client.get(f"/contracts/{v2.id}").text
    assert 'id="sign-form"' in page and 'id="draft-hash"' in page
    r = client.post(
        f"/contracts/{v2.id}/sign",
        data={"signer_name": "Li Na", "signer_role": "authorised agent", "csrf_token": token},
    )
    assert r.status_code == 200 and "signed by Li Na" in r.text
    old = client.get(f"/contracts/{ready.contract_id}").text
    assert "superseded by" in old
    with ctx.db.read() as s:
        assert s.scalar(select(Contract.status).where(Contract.id == v2.id)) == "signed"


def test_a_customer_reads_its_contract_without_sales_buttons(client: TestClient, world: World):
    ready = world.customer()
    world.user(ready.tenant_id, Role.CUSTOMER_ADMIN, "boss")
    signed_in(client, "boss")
    page = client.get(f"/contracts/{ready.contract_id}").text
    assert "SATELLITE IoT SERVICE CONTRACT" in page
    assert 'id="sign-form"' not in page and 'id="terminate-form"' not in page
    token = csrf(client, f"/contracts/{ready.contract_id}")
    r = client.post(
        f"/contracts/{ready.contract_id}/terminate", data={"reason": "x", "csrf_token": token}
    )
    assert r.status_code == 403
