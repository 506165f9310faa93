"""Month-end work queued with ``Prefer: respond-async``: 202 and a job to follow, refused at
once when it could not succeed, and visible to billing staff only."""

from __future__ import annotations

import uuid

from satiot.core import jobs
from tests.api.conftest import assert_problem, unchanged

RUNS = "/api/v1/bill-runs"
JOBS = "/api/v1/jobs"
ASYNC = {"Prefer": "respond-async"}


def _run_jobs(ctx) -> list:
    return jobs.run_pending(ctx.db, ctx.clock, ctx.settings)


def _queued(r) -> dict:
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"{JOBS}/{job['id']}"
    assert r.headers["preference-applied"] == "respond-async"
    assert job["state"] == "queued" and job["done"] == 0 and job["result"] is None
    return dict(job)


def test_a_month_is_billed_and_released_through_jobs(client, billed, ctx):
    _s, clerk, customer = billed
    job = _queued(client.post(RUNS, headers={**clerk, **ASYNC}, json={"period": "2026-11"}))
    assert job["kind"] == "bill-run" and job["description"] == "Bill 2026-11"
    assert job["asked_by"].endswith("(user:clerk)")  # the API key of the clerk
    assert client.get(RUNS, headers=clerk).json()["items"] == []  # not run yet
    with unchanged(ctx):  # one run of a month waits at a time
        busy = assert_problem(
            client.post(RUNS, headers={**clerk, **ASYNC}, json={"period": "2026-11"}), 409
        )
    assert f"job {job['id']}" in busy["detail"]

    assert _run_jobs(ctx) == [uuid.UUID(job["id"])]
    done = client.get(f"{JOBS}/{job['id']}", headers=clerk).json()
    assert done["state"] == "succeeded" and done["finished_at"] is not None
    assert done["result"]["bills"] == 1 and done["outcome"].startswith("1 bill, ")
    assert done["done"] == done["total"] >= 1  # the accounts looked at, chunk by chunk
    run_id = done["result"]["bill_run_id"]
    assert client.get(f"{RUNS}/{run_id}", headers=clerk).json()["states"] == {"new": 1}

    with unchanged(ctx):  # nothing validated yet: nothing to send, no job queued
        assert_problem(client.post(f"{RUNS}/{run_id}/send", headers={**clerk, **ASYNC}), 409)
    job = _queued(client.post(f"{RUNS}/{run_id}/validate", headers={**clerk, **ASYNC}))
    assert job["kind"] == "bill-release"
    _run_jobs(ctx)
    done = client.get(f"{JOBS}/{job['id']}", headers=clerk).json()
    assert (done["state"], done["done"], done["total"]) == ("succeeded", 1, 1)
    assert done["result"]["states"] == {"validated": 1} and done["outcome"] == "1 bill validated"
    _queued(client.post(f"{RUNS}/{run_id}/send", headers={**clerk, **ASYNC}))
    _run_jobs(ctx)
    (mine,) = client.get("/api/v1/bills", headers=customer).json()["items"]
    assert mine["state"] == "sent"

    listed = client.get(JOBS, headers=clerk, params={"state": "succeeded", "limit": 2}).json()
    assert [j["kind"] for j in listed["items"]] == ["bill-release", "bill-release"]
    assert listed["next_cursor"] is not None


def test_what_cannot_succeed_is_refused_before_it_is_queued(client, billed, ctx):
    _s, clerk, _customer = billed
    with unchanged(ctx):
        assert_problem(
            client.post(RUNS, headers={**clerk, **ASYNC}, json={"period": "2026-12"}), 422
        )
        assert_problem(
            client.post(RUNS, headers={**clerk, **ASYNC}, json={"period": "1970-01"}), 422
        )
        assert_problem(client.post(f"{RUNS}/{uuid.uuid4()}/validate", headers=ASYNC | clerk), 404)
    # Without the preference, or with another one, the work is done in the request.
    r = client.post(RUNS, headers={**clerk, "Prefer": "return=minimal"}, json={"period": "2026-11"})
    assert r.status_code == 201 and r.json()["bills"] == 1
    assert client.get(JOBS, headers=clerk).json()["items"] == []


def test_jobs_are_seen_by_their_tenant_with_the_scope(client, billed, ctx):
    _s, clerk, customer = billed
    job = _queued(client.post(RUNS, headers={**clerk, **ASYNC}, json={"period": "2026-11"}))
    assert_problem(client.get(f"{JOBS}/{job['id']}", headers=customer), 404)
    assert client.get(JOBS, headers=customer).json()["items"] == []
    assert_problem(client.get(f"{JOBS}/{uuid.uuid4()}", headers=clerk), 404)
    assert_problem(client.get(JOBS, headers=clerk, params={"state": "done"}), 422)
    with unchanged(ctx):  # a customer may not queue a run
        assert_problem(
            client.post(RUNS, headers={**customer, **ASYNC}, json={"period": "2026-11"}), 403
        )
