"""Bills API: runs, lifecycle, lines, PDF, payments, dry runs and top-ups; who sees what."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from satiot.core.auth.roles import Role
from tests.api.conftest import assert_problem, unchanged
from tests.api.conftest import run_november as _run
from tests.bss.billing_world import offering, price, rate_all, shop, uplink

API = "/api/v1"
DEC_1 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def _sent(client, clerk) -> dict:  # type: ignore[no-untyped-def]
    """November's one bill, run, validated and sent."""
    _run(client, clerk)
    bill = client.get(f"{API}/bills", headers=clerk).json()["items"][0]
    for step in ("validate", "send"):
        client.post(f"{API}/bills/{bill['id']}/{step}", headers=clerk)
    return bill


def test_a_run_bills_once_and_customers_see_a_bill_only_once_sent(client, billed):
    _s, clerk, customer = billed
    run = _run(client, clerk)
    assert (run["bills"], run["status"]) == (1, "completed")
    assert _run(client, clerk)["bills"] == 0
    (bill,) = client.get(f"{API}/bills?period=2026-11", headers=clerk).json()["items"]
    assert bill["number"] == "SAT2026-00000001" and bill["state"] == "new"
    assert bill["total"] == "106.01" and bill["amount_due"] == "106.01"
    assert client.get(f"{API}/bills", headers=customer).json()["items"] == []
    assert_problem(client.get(f"{API}/bills/{bill['id']}", headers=customer), 404)
    for step in ("validate", "send"):
        r = client.post(f"{API}/bills/{bill['id']}/{step}", headers=clerk)
        assert r.status_code == 200, r.text
    mine = client.get(f"{API}/bills/{bill['id']}", headers=customer).json()
    assert mine["state"] == "sent"
    lines = client.get(f"{API}/bills/{bill['id']}/lines", headers=customer).json()
    assert [ln["kind"] for ln in lines] == ["recurring", "usage"]
    assert [ln["amount"] for ln in lines] == ["100.00", "0.01"]
    pdf = client.get(f"{API}/bills/{bill['id']}/pdf", headers=customer)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert (
        pdf.content.startswith(b"%PDF") and "SAT2026-00000001" in pdf.headers["content-disposition"]
    )


@pytest.mark.parametrize("period", ["\u0662\u0660\u0662\u0666-11", "\uff12\uff10\uff12\uff16-11"])
def test_a_period_in_non_ascii_digits_is_refused_not_billed_twice(client, billed, ctx, period):
    _s, clerk, _ = billed
    _run(client, clerk)
    with unchanged(ctx):
        assert_problem(client.post(f"{API}/bill-runs", headers=clerk, json={"period": period}), 422)
    assert len(client.get(f"{API}/bills", headers=clerk).json()["items"]) == 1
    assert_problem(client.get(f"{API}/bills", headers=clerk, params={"period": period}), 422)


def test_runs_and_transitions_need_billing_staff(client, billed, ctx):
    _s, clerk, customer = billed
    with unchanged(ctx):
        assert_problem(
            client.post(f"{API}/bill-runs", headers=customer, json={"period": "2026-11"}), 403
        )
    run = _run(client, clerk)
    bill = client.get(f"{API}/bills", headers=clerk).json()["items"][0]
    assert_problem(
        client.post(f"{API}/bills/{bill['id']}/send", headers=clerk), 409, "illegal-transition"
    )
    assert_problem(client.post(f"{API}/bills/{bill['id']}/validate", headers=customer), 403)
    assert client.get(f"{API}/bill-runs/{run['id']}", headers=clerk).json()["bills"] == 1
    assert_problem(client.get(f"{API}/bill-runs/{run['id']}", headers=customer), 404)
    r = client.post(f"{API}/bills/{bill['id']}/hold", headers=clerk, json={"reason": "dispute"})
    assert r.json()["state"] == "onHold"


def test_an_unfinished_period_cannot_be_run(client, billed, ctx):
    _, clerk, _ = billed
    ctx.clock.set(datetime(2026, 11, 20, tzinfo=UTC))
    with unchanged(ctx):
        assert_problem(
            client.post(f"{API}/bill-runs", headers=clerk, json={"period": "2026-11"}), 422
        )


def test_months_with_nothing_to_know_are_422(client, billed, ctx):
    """A run for a month before any activation, a dry run of one not begun: a clear 422,
    not an empty run on record or "nothing to bill"."""
    s, clerk, _ = billed
    with unchanged(ctx):
        r = client.post(f"{API}/bill-runs", headers=clerk, json={"period": "1970-01"})
        assert "nothing to bill for 1970-01" in assert_problem(r, 422)["detail"]
    dry = f"{API}/billing-accounts/{s.account_id}/dry-run?period=9998-12"
    assert "has not begun" in assert_problem(client.get(dry, headers=clerk), 422)["detail"]


@pytest.mark.parametrize("period", ["0000-01", "0001-01", "9999-12"])
def test_a_period_outside_the_calendar_is_422_not_500(client, billed, ctx, period):
    s, clerk, _ = billed
    with unchanged(ctx):
        assert_problem(client.post(f"{API}/bill-runs", headers=clerk, json={"period": period}), 422)
    dry = f"{API}/billing-accounts/{s.account_id}/dry-run?period={period}"
    assert_problem(client.get(dry, headers=clerk), 422)


def test_payments_are_idempotent_by_reference(client, billed):
    _s, clerk, customer = billed
    bill = _sent(client, clerk)
    body = {"amount": "50.00", "method": "bank-transfer", "reference": "CMB-0001"}
    first = client.post(f"{API}/bills/{bill['id']}/payments", headers=clerk, json=body)
    assert first.status_code == 201, first.text
    again = client.post(f"{API}/bills/{bill['id']}/payments", headers=clerk, json=body)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert_problem(
        client.post(
            f"{API}/bills/{bill['id']}/payments", headers=clerk, json=body | {"amount": "1.00"}
        ),
        409,
    )
    assert_problem(
        client.post(f"{API}/bills/{bill['id']}/payments", headers=customer, json=body), 403
    )
    rest = {"amount": "56.01", "method": "bank-transfer", "reference": "CMB-0002"}
    client.post(f"{API}/bills/{bill['id']}/payments", headers=clerk, json=rest)
    got = client.get(f"{API}/bills/{bill['id']}", headers=customer).json()
    assert (got["state"], got["amount_due"]) == ("settled", "0.00")
    paid = client.get(f"{API}/bills/{bill['id']}/payments", headers=customer).json()
    assert [p["amount"] for p in paid] == ["50.00", "56.01"]
    assert_problem(
        client.post(
            f"{API}/bills/{bill['id']}/payments",
            headers=clerk,
            json={"amount": "1.001", "method": "x", "reference": "y"},
        ),
        422,
    )


def test_all_payments_newest_first_by_account_kind_and_time(client, billed, world):
    s, clerk, customer = billed
    bill = _sent(client, clerk)
    pay = {"amount": "50.00", "method": "bank-transfer", "reference": "CMB-L1",
           "received_at": "2026-12-03T02:00:00Z"}  # fmt: skip
    paid = client.post(f"{API}/bills/{bill['id']}/payments", headers=clerk, json=pay).json()
    prepaid = shop(world, payment_mode="prepaid", uscc="91310115MA1K3BTP2B")
    world.ctx.clock.set(datetime(2026, 12, 5, tzinfo=UTC))  # a top-up is received when recorded
    top = {"amount": "200.00", "method": "alipay", "reference": "ALI-L1"}
    topped = client.post(
        f"{API}/billing-accounts/{prepaid.account_id}/top-ups", headers=clerk, json=top
    ).json()

    def ids(headers, **params):  # type: ignore[no-untyped-def]
        r = client.get(f"{API}/payments", headers=headers, params=params)
        assert r.status_code == 200, r.text
        return [p["id"] for p in r.json()["items"]]

    assert ids(clerk) == [topped["id"], paid["id"]]  # newest first
    assert ids(clerk, kind="payment") == [paid["id"]]
    assert ids(clerk, kind="top-up") == [topped["id"]]
    assert ids(clerk, billing_account_id=str(s.account_id)) == [paid["id"]]
    assert ids(clerk, received_before="2026-12-03T02:00:00Z") == []
    assert ids(clerk, received_from="2026-12-03T02:00:01Z") == [topped["id"]]
    assert ids(clerk, received_from="2026-12-03T02:00:00Z", kind="payment") == [paid["id"]]
    assert ids(customer) == [paid["id"]]  # a customer sees its own only
    assert len(ids(clerk, limit=1)) == 1
    for bad in ({"kind": "cash"}, {"received_from": "2026-12-01T00:00:00"}):
        assert_problem(client.get(f"{API}/payments", headers=clerk, params=bad), 422)
        assert_problem(client.get(f"{API}/payments/csv", headers=clerk, params=bad), 422)
    # the same filters as one file, oldest first; a customer's holds its own only
    sheet = client.get(f"{API}/payments/csv", headers=clerk).content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(sheet, newline="")))
    assert [(r["kind"], r["amount_yuan"], r["reference"]) for r in rows] == [
        ("payment", "50.00", "CMB-L1"), ("top-up", "200.00", "ALI-L1"),
    ]  # fmt: skip
    assert rows[0]["received_at"] == "2026-12-03 10:00:00"  # China's time
    assert rows[0]["bill_number"] == bill["number"] and rows[1]["bill_number"] == ""
    assert rows[0]["payment_id"] == paid["id"]
    only = client.get(f"{API}/payments/csv", headers=clerk, params={"kind": "top-up"}).text
    assert "ALI-L1" in only and "CMB-L1" not in only
    mine = client.get(f"{API}/payments/csv", headers=customer).text
    assert "CMB-L1" in mine and "ALI-L1" not in mine


def test_a_payment_time_without_a_zone_is_422_not_500(client, billed, ctx):
    _s, clerk, _ = billed
    bill = _sent(client, clerk)
    body = {"amount": "1.00", "method": "bank-transfer", "reference": "CMB-NAIVE"}
    url = f"{API}/bills/{bill['id']}/payments"
    with unchanged(ctx):
        naive = client.post(url, headers=clerk, json=body | {"received_at": "2026-12-01T10:00:00"})
    assert_problem(naive, 422, "validation-error")
    aware = client.post(url, headers=clerk, json=body | {"received_at": "2026-12-01T10:00:00Z"})
    assert aware.status_code == 201, aware.text


def test_the_dry_run_matches_the_real_run_and_writes_nothing(client, billed, ctx, world):
    s, clerk, customer = billed
    url = f"{API}/billing-accounts/{s.account_id}/dry-run?period=2026-11"
    with unchanged(ctx):
        dry = client.get(url, headers=customer)
    assert dry.status_code == 200, dry.text
    assert dry.json()["total"] == "106.01"
    _run(client, clerk)
    bill = client.get(f"{API}/bills", headers=clerk).json()["items"][0]
    assert dry.json()["total_micros"] == bill["total_micros"]
    assert_problem(client.get(url, headers=customer), 409)
    other = shop(world, uscc="91310115MA1K3BTP2B")
    assert_problem(
        client.get(
            f"{API}/billing-accounts/{other.account_id}/dry-run?period=2026-11", headers=customer
        ),
        404,
    )
    assert_problem(client.get(url.replace("2026-11", "2026-13"), headers=customer), 422)


def test_top_ups_credit_a_prepaid_account_once(client, world, ctx):
    s = shop(world, payment_mode="prepaid")
    clerk = world.headers(world.user(world.operator, Role.BILLING, "clerk2"))
    url = f"{API}/billing-accounts/{s.account_id}/top-ups"
    body = {"amount": "200.00", "method": "alipay", "reference": "ALI-9"}
    assert client.post(url, headers=clerk, json=body).status_code == 201
    assert client.post(url, headers=clerk, json=body).status_code == 200
    post = shop(world, uscc="91310115MA1K3BTP2B")
    assert_problem(
        client.post(f"{API}/billing-accounts/{post.account_id}/top-ups", headers=clerk, json=body),
        409,
    )


def test_top_ups_past_the_largest_balance_are_422_not_500(client, world, ctx):
    s = shop(world, payment_mode="prepaid")
    clerk = world.headers(world.user(world.operator, Role.BILLING, "clerk3"))
    url = f"{API}/billing-accounts/{s.account_id}/top-ups"
    body = {"amount": "999999999999.99", "method": "bank-transfer"}
    assert client.post(url, headers=clerk, json=body | {"reference": "BIG-0"}).status_code == 201
    with unchanged(ctx):
        r = client.post(url, headers=clerk, json=body | {"reference": "BIG-1"})
    assert assert_problem(r, 422, "invalid-input")["field"] == "amount_micros"
    small = client.post(url, headers=clerk, json=body | {"amount": "0.01", "reference": "S-1"})
    assert small.status_code == 201, small.text


def test_a_bills_usage_by_device_as_pages_and_as_csv_once_sent(client, billed, ctx):
    s, clerk, customer = billed
    off = offering(ctx, "Metered", [price("per-message", 10_000)])
    for n in range(2):
        sub = s.device(off, datetime(2026, 10, 1, tzinfo=UTC))
        uplink(ctx, sub, 20, datetime(2026, 11, 6, n, tzinfo=UTC))
    rate_all(ctx)
    _run(client, clerk)
    (bill,) = client.get(f"{API}/bills?period=2026-11", headers=clerk).json()["items"]
    url = f"{API}/bills/{bill['id']}/device-usage"
    assert_problem(client.get(url, headers=customer), 404)  # not sent yet
    assert_problem(client.get(f"{url}/csv", headers=customer), 404)
    for step in ("validate", "send"):
        assert client.post(f"{API}/bills/{bill['id']}/{step}", headers=clerk).status_code == 200
    first = client.get(f"{url}?limit=2", headers=customer)
    assert first.status_code == 200, first.text
    assert 'rel="next"' in first.headers["link"]
    rest = client.get(f"{url}?limit=2&cursor={first.json()['next_cursor']}", headers=customer)
    devices = first.json()["items"] + rest.json()["items"]
    assert rest.json()["next_cursor"] is None and len(devices) == 3
    assert {d["charge"] for d in devices} == {"0.010000"}
    assert sum(d["charge_micros"] for d in devices) == 30_000
    assert all(d["uplink_messages"] == 1 and d["downlink_messages"] == 0 for d in devices)
    # the fixture's device pays ¥100 a month; the two metered ones have no days or fees
    fees = [d for d in devices if d["service_days"] is not None]
    assert [(d["first_day"], d["last_day"], d["recurring_micros"], d["total"]) for d in fees] == [
        (1, 30, 100_000_000, "100.010000")
    ]
    metered = [d for d in devices if d not in fees]
    assert len(metered) == 2
    assert all(d["recurring_micros"] == 0 and d["total"] == d["charge"] for d in metered)
    csv_file = client.get(f"{url}/csv", headers=customer)
    assert csv_file.status_code == 200 and csv_file.headers["content-type"].startswith("text/csv")
    assert f"satiot-usage-{bill['number']}.csv" in csv_file.headers["content-disposition"]
    lines = csv_file.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("bill_number,subscription_id,dev_eui") and len(lines) == 4
    assert_problem(client.get(f"{url}?cursor=nonsense", headers=customer), 422)


def test_billing_staff_adjust_a_new_bill_once_per_idempotency_key(client, billed, ctx):
    _s, clerk, customer = billed
    _run(client, clerk)
    bill = client.get(f"{API}/bills", headers=clerk).json()["items"][0]
    url = f"{API}/bills/{bill['id']}/adjustments"
    body = {"amount": "-50.00", "reason": "Credit for the outage of 12 November"}
    key = {**clerk, "Idempotency-Key": "adj-0001"}
    r = client.post(url, headers=key, json=body)
    assert r.status_code == 201, r.text
    line, after = r.json()["line"], r.json()["bill"]
    assert (line["kind"], line["amount"], line["description"]) == (
        "adjustment",
        "-50.00",
        "Credit for the outage of 12 November",
    )
    assert (after["adjustment_micros"], after["subtotal_micros"]) == (-50_000_000, 50_010_000)
    assert (after["tax_micros"], after["total"]) == (3_000_000, "53.01")
    with unchanged(ctx):  # the same key and body: the first answer, nothing added
        again = client.post(url, headers=key, json=body)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["line"]["id"] == line["id"]
    lines = client.get(f"{API}/bills/{bill['id']}/lines", headers=clerk).json()
    assert [ln["kind"] for ln in lines] == ["recurring", "usage", "adjustment"]
    with unchanged(ctx):
        assert_problem(client.post(url, headers=customer, json=body), 403)
        assert_problem(client.post(url, headers=clerk, json=body | {"amount": "0"}), 422)
        too_much = assert_problem(
            client.post(url, headers=clerk, json=body | {"amount": "-60.00"}), 422
        )
        assert "more than the bill's subtotal of ¥50.01" in too_much["detail"]
        assert_problem(client.post(url, headers=clerk, json=body | {"amount": "-0.001"}), 422)
        assert_problem(client.post(url, headers=clerk, json=body | {"reason": ""}), 422)
    client.post(f"{API}/bills/{bill['id']}/validate", headers=clerk)
    with unchanged(ctx):
        late = assert_problem(client.post(url, headers=clerk, json=body), 409, "conflict")
    assert "validated" in late["detail"]
    assert client.get(f"{API}/bills/{bill['id']}", headers=clerk).json()["total"] == "53.01"


def test_the_bills_export_keeps_the_lists_filters_and_a_customer_its_sent_bills(client, billed):
    _s, clerk, customer = billed
    _run(client, clerk)
    bill = client.get(f"{API}/bills", headers=clerk).json()["items"][0]
    export = client.get(f"{API}/bills/csv?period=2026-11", headers=clerk)
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert 'filename="satiot-bills-2026-11.csv"' in export.headers["content-disposition"]
    (line,) = csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"), newline=""))
    assert (line["number"], line["state"], line["total_yuan"]) == (bill["number"], "new", "106.01")
    empty = client.get(f"{API}/bills/csv?period=2026-10", headers=clerk).content
    assert len(empty.decode("utf-8-sig").splitlines()) == 1  # the header alone
    # a customer's export holds its bills once sent, as its list does
    assert len(client.get(f"{API}/bills/csv", headers=customer).text.splitlines()) == 1
    for step in ("validate", "send"):
        client.post(f"{API}/bills/{bill['id']}/{step}", headers=clerk)
    mine = client.get(f"{API}/bills/csv", headers=customer).content.decode("utf-8-sig")
    assert bill["number"] in mine and len(mine.splitlines()) == 2
    assert_problem(client.get(f"{API}/bills/csv?period=2026-13", headers=clerk), 422)
    assert_problem(client.get(f"{API}/bills/csv?state=lost", headers=clerk), 422)


def test_the_overdue_filter_keeps_bills_still_owed_past_their_due_date(client, billed, ctx):
    _s, clerk, customer = billed
    bill = _sent(client, clerk)
    assert client.get(f"{API}/bills?overdue=true", headers=clerk).json()["items"] == []
    ctx.clock.set(datetime(2027, 1, 5, tzinfo=UTC))  # due 31 December
    for who in (clerk, customer):
        late = client.get(f"{API}/bills?overdue=true", headers=who).json()["items"]
        assert [b["number"] for b in late] == [bill["number"]]
    sheet = client.get(f"{API}/bills/csv?overdue=true", headers=clerk).text
    assert bill["number"] in sheet
    pay = {"amount": "106.01", "method": "bank-transfer", "reference": "LATE-1"}
    client.post(f"{API}/bills/{bill['id']}/payments", headers=clerk, json=pay)
    assert client.get(f"{API}/bills?overdue=true", headers=clerk).json()["items"] == []
