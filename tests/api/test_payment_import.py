"""Payment import API: a bank statement's payments recorded against bills in one call, a bad
file refused whole with each line named, the same file again recorded once; billing staff
only."""

from __future__ import annotations

from tests.api.conftest import assert_problem, unchanged
from tests.api.conftest import run_november as _run

API = "/api/v1"


def _sent_bill(client, clerk) -> dict:  # type: ignore[no-untyped-def, type-arg]
    _run(client, clerk)
    (bill,) = client.get(f"{API}/bills?period=2026-11", headers=clerk).json()["items"]
    for step in ("validate", "send"):
        assert client.post(f"{API}/bills/{bill['id']}/{step}", headers=clerk).status_code == 200
    return dict(bill)


def test_a_statement_is_recorded_once_as_a_file_or_a_body(client, billed, ctx):
    _s, clerk, customer = billed
    bill = _sent_bill(client, clerk)  # ¥106.01
    statement = f"bill,amount,reference,received_on\n{bill['number']},100.00,ICBC-7,2026-11-30\n"
    r = client.post(
        f"{API}/payments/csv",
        headers=clerk,
        files={"file": ("statement.csv", statement.encode(), "text/csv")},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"recorded": 1, "already": 0, "amount_micros": 100_000_000, "settled": 0}
    again = client.post(
        f"{API}/payments/csv",
        headers=clerk | {"Content-Type": "text/csv; charset=utf-8"},
        content=statement.encode(),
    )
    assert again.json() == {"recorded": 0, "already": 1, "amount_micros": 0, "settled": 0}
    rest = f"bill,amount,reference\n{bill['id']},6.01,ICBC-8\n"  # by the bill's id
    done = client.post(
        f"{API}/payments/csv", headers=clerk | {"Content-Type": "text/csv"}, content=rest
    )
    assert done.json()["settled"] == 1
    mine = client.get(f"{API}/bills/{bill['id']}", headers=customer).json()
    assert (mine["state"], mine["amount_due"]) == ("settled", "0.00")
    payments = client.get(f"{API}/bills/{bill['id']}/payments", headers=clerk).json()
    assert [p["reference"] for p in payments] == ["ICBC-7", "ICBC-8"]


def test_a_bad_file_records_nothing_and_names_each_line(client, billed, ctx):
    _s, clerk, customer = billed
    bill = _sent_bill(client, clerk)
    statement = (
        f"bill,amount,reference\n{bill['number']},6.01,OK-1\n"
        f"{bill['number']},999.00,TOO-MUCH\nSAT2026-00000999,1.00,NOBODY\n"
    )
    with unchanged(ctx):
        r = client.post(
            f"{API}/payments/csv", headers=clerk | {"Content-Type": "text/csv"}, content=statement
        )
        body = assert_problem(r, 422, "payment-import-rejected")
        assert [(e["line"], e["column"]) for e in body["errors"]] == [(3, "amount"), (4, "bill")]
        assert "nothing was recorded" in body["detail"]
        assert_problem(
            client.post(
                f"{API}/payments/csv", headers=customer | {"Content-Type": "text/csv"},
                content=statement,
            ),
            403,
        )  # fmt: skip
        assert_problem(client.post(f"{API}/payments/csv", headers=clerk, json={"bill": "x"}), 415)
    assert client.get(f"{API}/bills/{bill['id']}/payments", headers=clerk).json() == []


def test_the_template_is_the_header_to_fill_in(client, billed):
    _s, clerk, _ = billed
    r = client.get(f"{API}/payments/csv-template", headers=clerk)
    assert r.status_code == 200 and "satiot-payments.csv" in r.headers["content-disposition"]
    assert r.content.decode("utf-8-sig").strip() == "bill,amount,reference,method,received_on"
