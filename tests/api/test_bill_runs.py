"""Bill runs API: list and read runs with their bills by state, and release a run's bills in
bulk (validate, then send); staff only, and bad calls change nothing."""

from __future__ import annotations

import uuid

from tests.api.conftest import assert_problem, unchanged
from tests.api.conftest import run_november as _run

API = "/api/v1/bill-runs"


def test_a_run_is_released_in_two_calls_and_its_bills_counted(client, billed, ctx):
    _s, clerk, customer = billed
    run = _run(client, clerk)
    assert run["states"] == {"new": 1} and run["accounts"] == 1
    with unchanged(ctx):
        assert_problem(client.post(f"{API}/{run['id']}/send", headers=clerk), 409)
    r = client.post(f"{API}/{run['id']}/validate", headers=clerk)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "run_id": run["id"], "action": "validate", "moved": 1, "states": {"validated": 1},
    }  # fmt: skip
    with unchanged(ctx):
        again = assert_problem(client.post(f"{API}/{run['id']}/validate", headers=clerk), 409)
    assert "nothing to validate" in again["detail"]
    assert client.get(f"{API}/{run['id']}", headers=clerk).json()["states"] == {"validated": 1}
    assert client.get("/api/v1/bills", headers=customer).json()["items"] == []  # not yet sent
    sent = client.post(f"{API}/{run['id']}/send", headers=clerk).json()
    assert (sent["moved"], sent["states"]) == (1, {"sent": 1})
    (mine,) = client.get("/api/v1/bills", headers=customer).json()["items"]
    assert mine["state"] == "sent"


def test_runs_are_listed_newest_first_for_staff_only(client, billed, ctx, world):
    _s, clerk, customer = billed
    first = _run(client, clerk)
    listed = client.get(API, headers=clerk, params={"limit": 1})
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [r["id"] for r in body["items"]] == [first["id"]] and body["next_cursor"] is None
    assert body["items"][0]["states"] == {"new": 1}
    assert_problem(client.get(API, headers=customer), 404)
    assert_problem(client.get(API, headers=clerk, params={"cursor": "not-a-cursor"}), 422)


def test_releasing_needs_billing_staff_and_a_real_run(client, billed, ctx):
    _s, clerk, customer = billed
    run = _run(client, clerk)
    with unchanged(ctx):
        assert_problem(client.post(f"{API}/{run['id']}/validate", headers=customer), 403)
        assert_problem(client.post(f"{API}/{uuid.uuid4()}/validate", headers=clerk), 404)
        assert_problem(client.post(f"{API}/not-an-id/send", headers=clerk), 422)
    assert client.get(f"{API}/{run['id']}", headers=clerk).json()["states"] == {"new": 1}


def test_a_run_left_part_way_is_taken_up_by_the_next_run_of_the_month(client, billed, ctx):
    """The API bills in chunks of accounts as the CLI and the job do: a run of the month left
    ``running`` (its runner died between chunks) is completed, not started again."""
    from datetime import UTC, datetime

    from satiot.bss.billing import start_run

    _s, clerk, _customer = billed
    with ctx.db.write() as w:
        stopped = start_run(w, "2026-11", at=datetime(2026, 12, 1, 1, tzinfo=UTC)).id
    run = _run(client, clerk)
    assert (run["id"], run["status"], run["bills"]) == (str(stopped), "completed", 1)
    assert run["states"] == {"new": 1}
