"""The subscriptions API: a customer's bindings, and suspend / resume / terminate."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from satiot.bss import status_import
from satiot.core import jobs
from satiot.core.auth.roles import Role
from satiot.oss.models import IotNumber
from tests.api.conftest import assert_problem, unchanged
from tests.api.test_orders import add_item
from tests.bss.order_world import shop, terminal

API = "/api/v1/subscriptions"


def _subscribed(client, world, s, n: int = 1) -> list[dict]:
    headers = world.headers(s.admin)
    body = {"productOrderItem": [add_item(terminal()) for _ in range(n)]}
    r = client.post("/api/v1/product-orders", headers=headers, json=body)
    assert r.status_code == 201, r.text
    return client.get(API, headers=headers).json()["items"]


def test_a_customer_sees_its_bindings_and_suspends_resumes_and_terminates(client, ctx, world):
    s = shop(ctx, world)
    headers = world.headers(s.admin)
    (sub,) = _subscribed(client, world, s)
    assert sub["status"] == "active"
    assert sub["iotNumber"] and sub["handle"] and sub["imei"] and sub["devEui"]
    by_imei = client.get(API, headers=headers, params={"imei": sub["imei"]}).json()["items"]
    assert [x["id"] for x in by_imei] == [sub["id"]]
    r = client.post(f"{API}/{sub['id']}/suspend", headers=headers, json={"reason": "stolen"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["statusReason"]) == ("suspended", "stolen")
    assert r.json()["suspendedBy"] == "customer" and r.json()["suspendedAt"]
    handle = client.get(f"/api/handles/{sub['handle']}").json()
    assert {v["type"]: v["data"]["value"] for v in handle["values"]}["STATUS"] == "suspended"
    r = client.post(f"{API}/{sub['id']}/resume", headers=headers, json={"reason": "found"})
    assert r.json()["status"] == "active"
    assert (r.json()["suspendedBy"], r.json()["suspendedAt"]) == (None, None)
    r = client.post(f"{API}/{sub['id']}/terminate", headers=headers, json={"reason": "end"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "terminated" and r.json()["terminationDate"]
    with ctx.db.read() as session:
        number = session.scalar(select(IotNumber).where(IotNumber.number == sub["iotNumber"]))
    assert number.status == "quarantine"
    r = client.post(f"{API}/{sub['id']}/resume", headers=headers, json={"reason": "again"})
    assert_problem(r, 409, "illegal-transition")


def test_who_may_act_on_which_subscription(client, ctx, world):
    s = shop(ctx, world)
    other = shop(ctx, world)
    (sub,) = _subscribed(client, world, s)
    reader = world.headers(world.user(s.tenant, Role.CUSTOMER_USER))
    assert client.get(f"{API}/{sub['id']}", headers=reader).status_code == 200
    r = client.post(f"{API}/{sub['id']}/suspend", headers=reader, json={"reason": "x"})
    assert_problem(r, 403, "forbidden")
    stranger = world.headers(other.admin)
    assert_problem(client.get(f"{API}/{sub['id']}", headers=stranger), 404)
    r = client.post(f"{API}/{sub['id']}/suspend", headers=stranger, json={"reason": "x"})
    assert_problem(r, 404, "subscription-not-found")
    assert client.get(API, headers=stranger).json()["items"] == []
    r = client.post(f"{API}/{sub['id']}/suspend", headers=world.headers(s.admin), json={})
    assert_problem(r, 422, "validation-error")
    # The regulator reads every tenant's subscriptions; staff suspend any.
    regulator = world.headers(world.user(world.operator, Role.REGULATOR))
    assert [x["id"] for x in client.get(API, headers=regulator).json()["items"]] == [sub["id"]]
    noc = world.headers(world.user(world.operator, Role.COMPLIANCE))
    r = client.post(f"{API}/{sub['id']}/suspend", headers=noc, json={"reason": "fraud case 7"})
    assert r.status_code == 200 and r.json()["status"] == "suspended"


def test_the_list_and_the_export_keep_one_kind_of_suspension(client, ctx, world):
    """suspendedBy keeps the subscriptions one origin suspended (the customer, the operator's
    staff, the quota, an empty balance), with the origins the domain knows."""
    from typing import get_args

    from satiot.api.subscriptions import SuspendedByParam
    from satiot.bss.subscriptions import SUSPENSION_ORIGINS

    (literal, _none) = get_args(get_args(SuspendedByParam)[0])
    assert get_args(literal) == SUSPENSION_ORIGINS
    s = shop(ctx, world)
    headers = world.headers(s.admin)
    mine, staffs, running = _subscribed(client, world, s, 3)
    client.post(f"{API}/{mine['id']}/suspend", headers=headers, json={"reason": "winter"})
    noc = world.headers(world.user(world.operator, Role.COMPLIANCE))
    client.post(f"{API}/{staffs['id']}/suspend", headers=noc, json={"reason": "fraud case 8"})
    for origin, expected in (("customer", [mine]), ("operator", [staffs]), ("quota", [])):
        found = client.get(API, headers=headers, params={"suspendedBy": origin}).json()["items"]
        assert [x["id"] for x in found] == [x["id"] for x in expected], origin
    r = client.get(f"{API}/csv", headers=headers, params={"suspendedBy": "operator"})
    assert r.status_code == 200 and staffs["id"] in r.text and mine["id"] not in r.text
    assert running["id"] not in r.text
    assert_problem(client.get(API, headers=headers, params={"suspendedBy": "nobody"}), 422)


def test_the_export_streams_what_the_list_shows_to_whoever_may_read_it(client, ctx, world):
    import csv
    import io

    ours, theirs = shop(ctx, world), shop(ctx, world)
    subs = _subscribed(client, world, ours, 3)
    _subscribed(client, world, theirs, 2)
    headers = world.headers(ours.admin)
    client.post(f"{API}/{subs[0]['id']}/suspend", headers=headers, json={"reason": "stolen"})
    r = client.get(f"{API}/csv", headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == (
        'attachment; filename="satiot-subscriptions-20261125.csv"'
    )
    lines = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
    assert [x["subscription_id"] for x in lines] == sorted(x["id"] for x in subs)
    listed = {x["id"]: x for x in subs}
    for line in lines:
        sub = listed[line["subscription_id"]]
        assert (line["imei"], line["dev_eui"], line["iot_number"], line["handle"]) == (
            sub["imei"],
            sub["devEui"],
            sub["iotNumber"],
            sub["handle"],
        )
    suspended = client.get(f"{API}/csv", headers=headers, params={"status": "suspended"})
    (only,) = list(csv.DictReader(io.StringIO(suspended.content.decode("utf-8-sig"))))
    assert (only["subscription_id"], only["status_reason"]) == (subs[0]["id"], "stolen")
    everyone = client.get(f"{API}/csv", headers=world.admin_headers())
    assert everyone.content.count(b"\r\n") == 1 + 5
    assert_problem(client.get(f"{API}/csv", headers=headers, params={"status": "gone"}), 422)
    regulator = world.headers(world.user(world.operator, Role.REGULATOR))
    assert client.get(f"{API}/csv", headers=regulator).content == everyone.content


def test_devices_suspend_and_resume_from_a_file_all_or_none(client, ctx, world):
    s = shop(ctx, world)
    headers = world.headers(s.admin)
    subs = _subscribed(client, world, s, 3)
    template = client.get(f"{API}/status-csv-template", headers=headers)
    assert template.status_code == 200 and template.content.startswith(b"\xef\xbb\xbfdevice,")
    lines = [f"{x['devEui']},suspend,winter" for x in subs[:2]] + [f"{subs[2]['imei']},x,y"]
    bad = "device,action,reason\n" + "\n".join(lines) + "\n"
    r = client.post(f"{API}/status-csv", headers=headers, files={"file": ("s.csv", bad)})
    problem = assert_problem(r, 422, "status-import-rejected")
    assert problem["errors"] == [
        {"line": 4, "column": "action", "reason": "action must be suspend or resume"}
    ]
    assert {x["status"] for x in client.get(API, headers=headers).json()["items"]} == {"active"}

    good = "device,action,reason\n" + "\n".join(lines[:2]) + "\n"
    keyed = {**headers, "Idempotency-Key": "winter-2026", "Content-Type": "text/csv"}
    r = client.post(f"{API}/status-csv", headers=keyed, content=good)
    assert r.status_code == 200, r.text
    assert r.json() == {"suspended": 2, "resumed": 0, "already": 0}
    replay = client.post(f"{API}/status-csv", headers=keyed, content=good)
    assert replay.status_code == 200 and replay.json() == r.json()
    again = client.post(f"{API}/status-csv", headers={**headers, "Content-Type": "text/csv"},
                        content=good)  # fmt: skip
    assert again.json() == {"suspended": 0, "resumed": 0, "already": 2}
    statuses = {x["id"]: x["status"] for x in client.get(API, headers=headers).json()["items"]}
    assert [statuses[x["id"]] for x in subs] == ["suspended", "suspended", "active"]

    reader = world.headers(world.user(s.tenant, Role.CUSTOMER_USER))
    r = client.post(f"{API}/status-csv", headers=reader, files={"file": ("s.csv", good)})
    assert_problem(r, 403, "forbidden")


def test_a_long_file_is_checked_then_applied_as_a_job_the_customer_follows(
    client, ctx, world, monkeypatch
):
    monkeypatch.setattr(status_import, "MAX_ROWS", 2)  # "long": more than two lines
    s = shop(ctx, world)
    headers = {**world.headers(s.admin), "Content-Type": "text/csv"}
    subs = _subscribed(client, world, s, 3)
    winter = "device,action,reason\n" + "".join(f"{x['devEui']},suspend,winter\n" for x in subs)
    bad = winter + "0011223344556677,suspend,winter\n"
    with unchanged(ctx):  # a bad line anywhere: refused in the answer, nothing queued
        problem = assert_problem(
            client.post(f"{API}/status-csv", headers=headers, content=bad), 422,
            "status-import-rejected",
        )  # fmt: skip
    assert [e["line"] for e in problem["errors"]] == [5]

    r = client.post(f"{API}/status-csv", headers=headers, content=winter)
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/api/v1/jobs/{job['id']}"
    assert (job["kind"], job["state"]) == ("subscription-status-file", "queued")
    assert job["description"] == "Suspend/resume 3 devices from a file"
    with unchanged(ctx):  # one file of a customer at a time
        busy = assert_problem(
            client.post(f"{API}/status-csv", headers=headers, content=winter), 409
        )
    assert f"job {job['id']}" in busy["detail"]
    assert {x["status"] for x in client.get(API, headers=headers).json()["items"]} == {"active"}

    assert jobs.run_pending(ctx.db, ctx.clock, ctx.settings) == [uuid.UUID(job["id"])]
    done = client.get(f"/api/v1/jobs/{job['id']}", headers=headers).json()
    assert (done["state"], done["done"], done["total"]) == ("succeeded", 3, 3)
    assert done["result"] == {"lines": 3, "suspended": 3, "resumed": 0, "already": 0}
    assert done["outcome"] == "3 suspended, 0 resumed, 0 already so"
    assert {x["status"] for x in client.get(API, headers=headers).json()["items"]} == {"suspended"}

    # a short file goes the same way when asked to (and a replay answers the same 202)
    spring = "device,action,reason\n" + f"{subs[0]['devEui']},resume,spring\n"
    asked = {**headers, "Prefer": "respond-async", "Idempotency-Key": "spring-2027"}
    r = client.post(f"{API}/status-csv", headers=asked, content=spring)
    assert r.status_code == 202 and r.headers["preference-applied"] == "respond-async"
    replay = client.post(f"{API}/status-csv", headers=asked, content=spring)
    assert replay.status_code == 202 and replay.json()["id"] == r.json()["id"]
    assert replay.headers["location"] == r.headers["location"]
    other = world.headers(shop(ctx, world).admin)  # another customer sees no such job
    assert_problem(client.get(r.headers["location"], headers=other), 404)
