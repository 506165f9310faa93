"""A console form that creates something does it once: a double click or a resent POST with the
same rendered form leads where the first led and creates nothing more, while a refused form can
be corrected and sent again."""

from __future__ import annotations

import re
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from satiot.api.context import AppContext
from satiot.bss.models import BillingAccount, Contract, Customer, Payment
from satiot.core.auth.roles import Role
from satiot.core.models import ApiKey
from satiot.web.once import ALREADY_SENT
from tests.bss.billing_world import shop
from tests.factories import World
from tests.web.console_helpers import signed_in
from tests.web.test_bss_customer_forms import flash_text, onboarding, terms_form


def form_key(page: str, form_id: str) -> str:
    """The form_key of the form with ``form_id`` on a rendered page."""
    found = re.search(
        rf'<form [^>]*id="{re.escape(form_id)}"[^>]*><input type="hidden" name="form_key" '
        r'value="([^"]+)"',
        page,
    )
    assert found, f"no form_key in form {form_id}"
    return found[1]


def count(ctx: AppContext, model: type) -> int:
    with ctx.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_each_rendering_of_a_form_has_its_own_key(client: TestClient, world: World):
    signed_in(client, "admin")
    first = form_key(client.get("/customers").text, "onboard-form")
    second = form_key(client.get("/customers").text, "onboard-form")
    assert first != second and len(first) >= 20


def test_onboarding_sent_twice_creates_one_customer(
    client: TestClient, world: World, ctx: AppContext
):
    token = signed_in(client, "admin")
    key = form_key(client.get("/customers").text, "onboard-form")
    before = count(ctx, Customer)
    form = onboarding(911, csrf_token=token, form_key=key)
    first = client.post("/customers", data=form, follow_redirects=False)
    again = client.post("/customers", data=form, follow_redirects=False)
    assert first.status_code == again.status_code == 303
    assert again.headers["location"] == first.headers["location"]
    assert count(ctx, Customer) == before + 1
    page = client.get(again.headers["location"]).text
    assert flash_text(page) == f"info: {ALREADY_SENT}"


def test_a_refused_form_can_be_corrected_and_sent_with_its_key(
    client: TestClient, world: World, ctx: AppContext
):
    token = signed_in(client, "admin")
    key = form_key(client.get("/customers").text, "onboard-form")
    before = count(ctx, Customer)
    bad = client.post(
        "/customers", data=onboarding(912, uscc="123", csrf_token=token, form_key=key)
    )
    assert bad.status_code == 422 and count(ctx, Customer) == before
    good = client.post(
        "/customers",
        data=onboarding(912, csrf_token=token, form_key=key),
        follow_redirects=False,
    )
    assert good.status_code == 303 and count(ctx, Customer) == before + 1
    assert "onboarded" in flash_text(client.get(good.headers["location"]).text)


def test_a_contract_draft_sent_twice_is_one_draft(
    client: TestClient, world: World, ctx: AppContext
):
    ready = world.customer()
    token = signed_in(client, "admin")
    key = form_key(client.get(f"/customers/{ready.customer_id}").text, "draft-form")
    form = {**terms_form(ready), "csrf_token": token, "form_key": key}
    path = f"/customers/{ready.customer_id}/contracts"
    before = count(ctx, Contract)
    first = client.post(path, data=form, follow_redirects=False)
    again = client.post(path, data=form, follow_redirects=False)
    assert first.status_code == again.status_code == 303
    assert again.headers["location"] == first.headers["location"]
    assert count(ctx, Contract) == before + 1
    # A new rendering is a new form: it drafts another contract.
    other = form_key(client.get(f"/customers/{ready.customer_id}").text, "draft-form")
    assert client.post(path, data={**form, "form_key": other}).status_code == 200
    assert count(ctx, Contract) == before + 2


def test_a_top_up_sent_twice_credits_once(client: TestClient, world: World, ctx: AppContext):
    mine = shop(world, payment_mode="prepaid", balance=0, name="Prepaid Co")
    world.user(world.operator, Role.BILLING, "clerk")
    token = signed_in(client, "clerk")
    page = client.get(f"/billing-accounts/{mine.account_id}").text
    key = form_key(page, "top-up-form")
    form = {"csrf_token": token, "amount": "100", "reference": "BANK-1", "form_key": key}
    path = f"/billing-accounts/{mine.account_id}/top-ups"
    first = client.post(path, data=form)
    assert flash_text(first.text) == "success: Top-up of ¥100.00 recorded."
    again = client.post(path, data=form)
    assert flash_text(again.text) == f"info: {ALREADY_SENT}"
    with ctx.db.read() as s:
        account = s.get(BillingAccount, mine.account_id)
        assert account is not None and account.balance_micros == 100_000_000
    assert count(ctx, Payment) == 1


def test_a_key_form_sent_again_shows_no_secret_and_makes_no_key(
    client: TestClient, world: World, ctx: AppContext
):
    token = signed_in(client, "admin")
    key = form_key(client.get("/access").text, "create-key")
    form = {"csrf_token": token, "name": "fleet", "scopes": ["devices:read"], "form_key": key}
    before = count(ctx, ApiKey)
    first = client.post("/access/keys", data=form)
    assert first.status_code == 201 and 'id="secret"' in first.text
    again = client.post("/access/keys", data=form, follow_redirects=False)
    assert again.status_code == 303 and count(ctx, ApiKey) == before + 1
    assert flash_text(client.get(again.headers["location"]).text) == f"info: {ALREADY_SENT}"


def test_keys_are_per_person(client: TestClient, world: World, ctx: AppContext):
    """The same key sent by two people is two submissions (the store is per identity)."""
    world.user(world.operator, Role.BUSINESS, "seller")
    key = str(uuid.uuid4())
    before = count(ctx, Customer)
    for n, who in ((913, "admin"), (914, "seller")):
        client.cookies.clear()
        token = signed_in(client, who)
        form = onboarding(n, csrf_token=token, form_key=key)
        assert client.post("/customers", data=form, follow_redirects=False).status_code == 303
    assert count(ctx, Customer) == before + 2
