"""Credit notes API: billing staff credit a sent bill once per Idempotency-Key; the customer
reads its bill's notes and their PDF, and nobody else does."""

from __future__ import annotations

import csv
import io

from pypdf import PdfReader

from satiot.core.auth.roles import Role
from tests.api.conftest import assert_problem, run_november, unchanged
from tests.bss.billing_world import USCCS, shop

API = "/api/v1"


def _sent_bill(client, clerk) -> dict:  # type: ignore[type-arg]
    run_november(client, clerk)
    bill = client.get(f"{API}/bills", headers=clerk).json()["items"][0]
    for step in ("validate", "send"):
        assert client.post(f"{API}/bills/{bill['id']}/{step}", headers=clerk).status_code == 200
    return bill


def test_billing_staff_credit_a_sent_bill_once_per_idempotency_key(client, billed, ctx, world):
    _s, clerk, customer = billed
    run_november(client, clerk)
    bill = client.get(f"{API}/bills", headers=clerk).json()["items"][0]
    url = f"{API}/bills/{bill['id']}/credit-notes"
    body = {"amount": "50.00", "reason": "Credit for the outage of 12 November"}
    with unchanged(ctx):  # a new bill is adjusted, not credited
        early = assert_problem(client.post(url, headers=clerk, json=body), 409, "conflict")
    assert "adjust" in early["detail"]
    for step in ("validate", "send"):
        client.post(f"{API}/bills/{bill['id']}/{step}", headers=clerk)
    key = {**clerk, "Idempotency-Key": "cn-0001"}
    r = client.post(url, headers=key, json=body)
    assert r.status_code == 201, r.text
    note, after = r.json()["credit_note"], r.json()["bill"]
    assert (note["number"], note["total"], note["tax_micros"]) == (
        "SATCN2026-00000001", "53.00", 3_000_000,
    )  # fmt: skip
    assert (after["total"], after["credited_micros"], after["amount_due"]) == (
        "106.01", 53_000_000, "53.01",
    )  # fmt: skip
    with unchanged(ctx):  # the same key and body: the first answer, no second note
        again = client.post(url, headers=key, json=body)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["credit_note"]["id"] == note["id"]
    with unchanged(ctx):
        assert_problem(client.post(url, headers=customer, json=body), 403)
        for bad in ({"amount": "0"}, {"amount": "-5.00"}, {"amount": "0.001"}, {"reason": ""}):
            assert_problem(client.post(url, headers=clerk, json=body | bad), 422)
    # the customer sees the note, its PDF and what it still owes
    (mine,) = client.get(url, headers=customer).json()
    assert (mine["number"], mine["reason"]) == (note["number"], body["reason"])
    assert client.get(f"{API}/bills/{bill['id']}", headers=customer).json()["amount_due"] == "53.01"
    pdf = client.get(f"{API}/credit-notes/{note['id']}/pdf", headers=customer)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert f"credit-note-{note['number']}.pdf" in pdf.headers["content-disposition"]
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert note["number"] in text and bill["number"] in text
    # another customer sees neither the bill's notes nor the PDF
    stranger = world.headers(world.user(shop(world, uscc=USCCS[1]).tenant, Role.CUSTOMER_ADMIN))
    assert_problem(client.get(url, headers=stranger), 404)
    assert_problem(client.get(f"{API}/credit-notes/{note['id']}/pdf", headers=stranger), 404)
    assert_problem(
        client.get(f"{API}/credit-notes/00000000-0000-7000-8000-000000000000/pdf", headers=clerk),
        404,
        "credit-note-not-found",
    )
    # a credit beyond what is still owed is owed back to the customer until refunded
    pay = {"method": "bank-transfer"}
    payments = f"{API}/bills/{bill['id']}/payments"
    paid = client.post(payments, headers=clerk, json=pay | {"amount": "10.00", "reference": "C1"})
    assert paid.status_code == 201, paid.text
    refunds = f"{API}/bills/{bill['id']}/refunds"
    with unchanged(ctx):
        nothing = assert_problem(
            client.post(refunds, headers=clerk, json=pay | {"amount": "1.00", "reference": "R"}),
            409,
            "conflict",
        )
    assert "owes the customer nothing" in nothing["detail"]
    r = client.post(url, headers=clerk, json=body | {"amount": "50.01"})  # ¥53.01 with VAT
    assert r.status_code == 201, r.text
    assert (r.json()["bill"]["amount_due"], r.json()["bill"]["state"]) == ("-10.00", "settled")
    owing = client.get(f"{API}/bills?to_refund=true", headers=clerk).json()["items"]
    assert [b["number"] for b in owing] == [bill["number"]]
    sheet = client.get(f"{API}/bills/csv?to_refund=true", headers=clerk).text
    assert bill["number"] in sheet and len(sheet.splitlines()) == 2
    refund = pay | {"amount": "10.00", "reference": "R1"}
    with unchanged(ctx):
        assert_problem(client.post(refunds, headers=customer, json=refund), 403)
        assert_problem(client.post(refunds, headers=clerk, json=refund | {"amount": "10.01"}), 422)
        assert_problem(client.post(refunds, headers=clerk, json=refund | {"amount": "0"}), 422)
    done = client.post(refunds, headers=clerk, json=refund)
    assert done.status_code == 201 and done.json()["amount"] == "-10.00", done.text
    assert client.post(refunds, headers=clerk, json=refund).status_code == 200  # recorded once
    assert client.get(f"{API}/bills?to_refund=true", headers=clerk).json()["items"] == []
    got = client.get(f"{API}/bills/{bill['id']}", headers=customer).json()
    assert (got["amount_due"], got["paid_micros"]) == ("0.00", 0)
    listed = client.get(payments, headers=customer).json()
    assert [p["amount"] for p in listed] == ["10.00", "-10.00"]
    # the list of all payments tells money paid in from money paid back
    for kind, amounts in (("refund", ["-10.00"]), ("payment", ["10.00"]), ("top-up", [])):
        found = client.get(f"{API}/payments", headers=clerk, params={"kind": kind}).json()
        assert [p["amount"] for p in found["items"]] == amounts, kind


def test_the_bills_export_has_what_was_credited(client, billed):
    _s, clerk, _customer = billed
    bill = _sent_bill(client, clerk)
    body = {"amount": "10.00", "reason": "Goodwill"}
    client.post(f"{API}/bills/{bill['id']}/credit-notes", headers=clerk, json=body)
    text = client.get(f"{API}/bills/csv", headers=clerk).content.decode("utf-8-sig")
    (line,) = csv.DictReader(io.StringIO(text, newline=""))
    assert (line["total_yuan"], line["credited_yuan"], line["balance_due_yuan"]) == (
        "106.01", "10.60", "95.41",
    )  # fmt: skip


def test_the_credit_notes_register_as_pages_and_csv_for_whose_they_are(client, billed, world):
    _s, clerk, customer = billed
    bill = _sent_bill(client, clerk)
    body = {"amount": "10.00", "reason": "Goodwill"}
    note = client.post(f"{API}/bills/{bill['id']}/credit-notes", headers=clerk, json=body)
    number = note.json()["credit_note"]["number"]
    for who in (clerk, customer):
        (listed,) = client.get(f"{API}/credit-notes?month=2026-12", headers=who).json()["items"]
        assert listed["number"] == number
    assert client.get(f"{API}/credit-notes?month=2026-11", headers=clerk).json()["items"] == []
    sheet = client.get(f"{API}/credit-notes/csv?month=2026-12", headers=customer)
    assert 'filename="satiot-credit-notes-2026-12.csv"' in sheet.headers["content-disposition"]
    (line,) = csv.DictReader(io.StringIO(sheet.content.decode("utf-8-sig"), newline=""))
    assert (line["number"], line["total_credited_yuan"]) == (number, "10.60")
    stranger = world.headers(world.user(shop(world, uscc=USCCS[1]).tenant, Role.CUSTOMER_ADMIN))
    assert client.get(f"{API}/credit-notes", headers=stranger).json()["items"] == []
    assert len(client.get(f"{API}/credit-notes/csv", headers=stranger).text.splitlines()) == 1
    assert_problem(client.get(f"{API}/credit-notes?month=2026-13", headers=clerk), 422)
    assert_problem(client.get(f"{API}/credit-notes/csv?month=26-12", headers=clerk), 422)
