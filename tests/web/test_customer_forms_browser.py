"""Onboarding a customer and drafting its contract in a real browser.

Headless Chromium via Playwright against uvicorn on a free port (the ``live_server`` fixture of
the console's browser test): an operator administrator fills the onboarding form (a mistyped
resident ID first), files the documents, verifies the customer, drafts a contract, records the
signature and drafts an amendment from the terms in force. Screenshots of the forms are written
to /tmp/satiot-screens.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from satiot.api.context import AppContext
from satiot.bss.models import Contract, Customer
from tests.bss.onboarding_world import (
    AGENT_ID,
    LEGAL_REP_ID,
    PDF,
    offering,
    terminal_model,
    uscc_for,
)
from tests.factories import World
from tests.web.browser import SCREENS, admin_console, live_server, screenshot

__all__ = ["live_server"]  # the fixture, imported for this module's tests

pytestmark = pytest.mark.browser


def test_onboard_verify_and_draft_through_the_console(
    live_server: str, ctx: AppContext, world: World
) -> None:
    from playwright.sync_api import expect

    model = terminal_model(world, 801)
    offering_id = offering(world, 801)
    code = uscc_for(801, region="460000")
    with admin_console(live_server) as page:
        # Onboarding, with the legal representative's ID mistyped first.
        page.click("nav >> text=Customers")
        expect(page.locator("h1")).to_have_text("Customers")
        form = page.locator("#onboard-form")
        form.locator("input[name=name]").fill("Nanhai Fisheries Co., Ltd.")
        form.locator("input[name=uscc]").fill(code)
        form.locator("select[name=organization_type]").select_option("enterprise")
        form.locator("select[name=industry]").select_option("A")
        form.locator("select[name=province]").select_option("46")
        form.locator("input[name=address]").fill("1 Harbour Road, Sanya")
        form.locator("input[name=legal_rep_name]").fill("Zhang Wei")
        form.locator("input[name=legal_rep_id]").fill(LEGAL_REP_ID[:-1] + "1")
        form.locator("input[name=agent_name]").fill("Li Na")
        form.locator("input[name=agent_id]").fill(AGENT_ID)
        form.locator("input[name=agent_phone]").fill("0898-88001234")
        form.locator("button[type=submit]").click()
        expect(page.locator(".flash-error")).to_have_text(
            "Legal representative's resident ID: the check digit does not match "
            "(ISO 7064 MOD 11-2): mistyped?"
        )
        form = page.locator("#onboard-form")
        expect(form.locator("input[name=legal_rep_id]")).to_have_attribute("aria-invalid", "true")
        expect(form.locator("input[name=uscc]")).to_have_value(code)
        expect(form.locator("select[name=province]")).to_have_value("46")
        screenshot(page, SCREENS / "onboard-refused.png", full_page=True)
        form.locator("input[name=legal_rep_id]").fill(LEGAL_REP_ID)
        form.locator("button[type=submit]").click()
        expect(page.locator(".flash-success")).to_have_text(
            "Nanhai Fisheries Co., Ltd. onboarded: file its documents, then verify it."
        )
        expect(page.locator("#customer-status")).to_have_text("initialized")
        expect(page.locator("#draft-needs-validation")).to_be_visible()

        # The documents, then verification.
        for kind in ("business-licence", "legal-rep-id", "agent-id", "authorisation-letter"):
            page.click("#upload-panel summary")
            upload = page.locator("#upload-form")
            upload.locator("select[name=kind]").select_option(kind)
            upload.locator("input[name=file]").set_input_files(
                {"name": f"{kind}.pdf", "mimeType": "application/pdf", "buffer": PDF}
            )
            upload.locator("button[type=submit]").click()
            expect(page.locator(".flash-success")).to_contain_text("filed")
        page.click("#status-actions button[data-target=validated]")
        expect(page.locator("#customer-status")).to_have_text("validated")

        # A contract drafted from the customer's page.
        draft = page.locator("#draft-form")
        draft.locator("select[name=scenario]").select_option("maritime")
        draft.locator("input[name=max_devices]").fill("200")
        draft.locator("input[name=monthly_messages_per_device]").fill("3000")
        draft.locator("select[name=quota_action]").select_option("suspend")
        draft.locator("textarea[name=scenario_description]").fill(
            "Position reports of fishing vessels"
        )
        draft.locator(f"input[name=allowed_models][value='{model}']").check()
        draft.locator(f"input[name=offering_ids][value='{offering_id}']").check()
        draft.locator("input[name=service_area][value='44']").check()
        draft.locator("textarea[name=destination_allow_list]").fill(
            "203.0.113.10:443\niot.nanhai.example:8883"
        )
        screenshot(page, SCREENS / "contract-draft-form.png", full_page=True)
        draft.locator("button[type=submit]").click()
        expect(page.locator(".flash-success")).to_contain_text("v1 drafted")
        expect(page.locator("#contract-status")).to_have_text("draft")
        expect(page.locator(".contract-text")).to_contain_text("iot.nanhai.example:8883")

        # Signed, then amended from the terms in force.
        sign = page.locator("#sign-form")
        sign.locator("input[name=signer_name]").fill("Zhang Wei")
        sign.locator("input[name=signer_role]").fill("legal representative")
        sign.locator("button[type=submit]").click()
        expect(page.locator("#contract-status")).to_have_text("signed")
        page.click("#amend-panel summary")
        amend = page.locator("#amend-form")
        expect(amend.locator("input[name=max_devices]")).to_have_value("200")
        expect(amend.locator("input[name=service_area][value='46']")).to_be_checked()
        amend.locator("input[name=max_devices]").fill("500")
        amend.locator("button[type=submit]").click()
        expect(page.locator(".flash-success")).to_contain_text("v2 drafted")
        expect(page.locator("h2").first).to_contain_text("version 2")
        screenshot(page, SCREENS / "contract-amendment.png", full_page=True)

    with ctx.db.read() as s:
        customer = s.scalar(select(Customer).where(Customer.uscc == code))
        assert customer is not None and customer.status == "validated"
        versions = list(
            s.scalars(
                select(Contract)
                .where(Contract.customer_id == customer.id)
                .order_by(Contract.version)
            )
        )
    assert [(v.version, v.status, v.max_devices) for v in versions] == [
        (1, "signed", 200),
        (2, "draft", 500),
    ]
    assert versions[1].service_area == ["44", "46"]
