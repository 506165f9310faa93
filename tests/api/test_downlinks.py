"""The downlink API: the customer's queue and the ground stations' fetch and receipts."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from satiot.core.auth.roles import Role
from satiot.network import frames
from satiot.network.downlinks import on_acks
from satiot.network.messages import AcceptedUplink
from satiot.network.models import Downlink
from tests.api.conftest import assert_problem, bearer, unchanged
from tests.network.downlink_setup import APP, NWK, import_inventory, make_device, station_key

API = "/api/v1"
EUI = "70B3D57ED0000001"


@pytest.fixture
def env(ctx, world, client):
    import_inventory(ctx, world)
    tenant = world.tenant("acme")
    admin = world.user(tenant, Role.CUSTOMER_ADMIN, "acme-admin")
    device = make_device(ctx, world, tenant, EUI)
    keys = {name: station_key(ctx, world, name) for name in ("Beijing", "Kashgar", "Sanya")}
    keys |= {"Jiamusi": station_key(ctx, world, "Jiamusi")}
    return {
        "tenant": tenant,
        "device": device,
        "h": world.headers(admin),
        "stations": {str(sid): bearer(secret) for sid, secret in keys.values()},
    }


def body(ctx, payload: bytes = b"\x01\x02\x03", **extra):
    expires = ctx.clock.now() + timedelta(hours=24)
    return {
        "payload": base64.b64encode(payload).decode(),
        "f_port": 10,
        "expires_at": expires.isoformat(),
        **extra,
    }


def post(client, ctx, env, payload: bytes = b"\x01\x02\x03", headers=None, **extra):
    return client.post(
        f"{API}/devices/{EUI}/downlinks",
        headers=env["h"] | (headers or {}),
        json=body(ctx, payload, **extra),
    )


def downlink_rows(ctx) -> int:
    with ctx.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(Downlink)) or 0)


def test_post_answers_with_the_plan_and_get_shows_it(client, ctx, env):
    r = post(client, ctx, env, confirmed=True)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["status"] == "scheduled" and made["confirmed"] is True
    assert made["satellite"] and made["ground_station"] in {
        "Beijing",
        "Kashgar",
        "Sanya",
        "Jiamusi",
    }
    assert made["estimated_delivery_at"] and made["payload"] == "AQID"
    assert made["dev_eui"] == EUI and made["reason"] is None
    one = client.get(f"{API}/devices/{EUI}/downlinks/{made['id']}", headers=env["h"])
    assert one.status_code == 200 and one.json() == made
    post(client, ctx, env)
    page = client.get(f"{API}/devices/{EUI}/downlinks?limit=1", headers=env["h"])
    assert page.json()["items"][0]["id"] == made["id"] and page.json()["next_cursor"]
    assert 'rel="next"' in page.headers["link"]
    rest = client.get(
        f"{API}/devices/{EUI}/downlinks?cursor={page.json()['next_cursor']}", headers=env["h"]
    )
    assert len(rest.json()["items"]) == 1 and rest.json()["next_cursor"] is None
    only = client.get(f"{API}/devices/{EUI.lower()}/downlinks?status=queued", headers=env["h"])
    assert only.status_code == 200 and only.json()["items"] == []
    bad = client.get(f"{API}/devices/{EUI}/downlinks?status=lost", headers=env["h"])
    assert_problem(bad, 422)


def test_idempotency_key_replays_the_first_answer(client, ctx, env):
    first = post(client, ctx, env, headers={"Idempotency-Key": "cmd-1"})
    again = post(client, ctx, env, headers={"Idempotency-Key": "cmd-1"})
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert downlink_rows(ctx) == 1
    other = post(client, ctx, env, b"\x09", headers={"Idempotency-Key": "cmd-1"})
    assert_problem(other, 409, "conflict")
    assert downlink_rows(ctx) == 1


def test_full_queue_is_a_409_that_says_so_and_changes_nothing(client, ctx, env, monkeypatch):
    monkeypatch.setattr(ctx.settings, "downlink_queue_cap", 2)
    assert post(client, ctx, env).status_code == 201
    assert post(client, ctx, env).status_code == 201
    with unchanged(ctx):
        r = post(client, ctx, env, headers={"Idempotency-Key": "full"})
    problem = assert_problem(r, 409, "conflict")
    assert problem["detail"] == (
        f"queue full: 2 downlinks pending for device {EUI}; cancel or wait"
    )
    assert downlink_rows(ctx) == 2


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"payload": base64.b64encode(b"x" * 52).decode()}, "at most 51"),
        ({"payload": "not base64!"}, "base64"),
        ({"payload": ""}, "empty"),
        ({"f_port": 0}, "greater than or equal to 1"),
        ({"f_port": 224}, "less than or equal to 223"),
        ({"expires_at": "2026-11-25T09:00:00"}, "timezone"),
        ({"surprise": 1}, "Extra inputs"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(client, ctx, env, change, needle):
    with unchanged(ctx):
        r = client.post(f"{API}/devices/{EUI}/downlinks", headers=env["h"], json=body(ctx) | change)
    problem = assert_problem(r, 422)
    assert needle in r.text, problem


def test_expiry_must_be_in_the_future(client, ctx, env):
    past = (ctx.clock.now() - timedelta(minutes=1)).isoformat()
    with unchanged(ctx):
        r = post(client, ctx, env, expires_at=past)
    assert "expires_at must be in the future" in assert_problem(r, 422, "invalid-input")["detail"]


def test_inactive_and_foreign_devices(client, ctx, world, env):
    make_device(ctx, world, env["tenant"], "70B3D57ED00000AA", status="suspended")
    r = client.post(f"{API}/devices/70B3D57ED00000AA/downlinks", headers=env["h"], json=body(ctx))
    assert "downlinks need an active device" in assert_problem(r, 409)["detail"]
    other = world.tenant("globex")
    make_device(ctx, world, other, "70B3D57ED00000BB")
    theirs = client.post(
        f"{API}/devices/70B3D57ED00000BB/downlinks", headers=env["h"], json=body(ctx)
    )
    missing = client.post(
        f"{API}/devices/70B3D57ED00000CC/downlinks", headers=env["h"], json=body(ctx)
    )
    assert_problem(theirs, 404)
    assert theirs.json()["detail"].replace("BB", "CC") == missing.json()["detail"]


def test_cancel_one_and_flush(client, ctx, env):
    ids = [post(client, ctx, env).json()["id"] for _ in range(3)]
    r = client.delete(f"{API}/devices/{EUI}/downlinks/{ids[0]}", headers=env["h"])
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    again = client.delete(f"{API}/devices/{EUI}/downlinks/{ids[0]}", headers=env["h"])
    assert "already cancelled" in assert_problem(again, 409)["detail"]
    gone = client.delete(f"{API}/devices/{EUI}/downlinks/{uuid.uuid4()}", headers=env["h"])
    assert_problem(gone, 404)
    flushed = client.delete(f"{API}/devices/{EUI}/downlinks", headers=env["h"])
    assert flushed.status_code == 200
    assert flushed.json() == {"cancelled": 2, "ids": ids[1:], "kept": 0}
    listed = client.get(f"{API}/devices/{EUI}/downlinks?status=cancelled", headers=env["h"])
    assert [d["id"] for d in listed.json()["items"]] == ids


def _fetch(client, env, station_id: str):
    r = client.get(
        f"{API}/ground-stations/{station_id}/downlinks", headers=env["stations"][station_id]
    )
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _receipts(client, env, station_id: str, *items):
    r = client.post(
        f"{API}/ground-stations/{station_id}/downlink-receipts",
        headers=env["stations"][station_id],
        json={"receipts": list(items)},
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_ground_station_protocol_full_lifecycle(client, ctx, env, clock):
    made = post(client, ctx, env, b"reboot", confirmed=True).json()
    plain = post(client, ctx, env, b"ping").json()
    gs = made["ground_station_id"]
    [item, *_] = [i for i in _fetch(client, env, gs) if i["id"] == made["id"]]
    assert item["dev_eui"] == EUI and item["dev_addr"] == "26000001"
    assert item["satellite"] == made["satellite"] and item["status"] == "scheduled"
    frame = frames.parse(base64.b64decode(item["phy_payload"]))
    assert frame.mtype is frames.MType.CONFIRMED_DOWN and frame.f_port == 10
    assert frame.f_cnt16 == item["f_cnt_down"] == 0
    assert frames.verify_mic(frame, NWK, 0) and frames.decrypt(frame, NWK, APP, 0) == b"reboot"
    assert [i for i in _fetch(client, env, gs) if i["id"] == made["id"]] == [item]
    # The unconfirmed one got the next counter, whichever station fetches it.
    [p] = [i for i in _fetch(client, env, plain["ground_station_id"]) if i["id"] == plain["id"]]
    pf = frames.parse(base64.b64decode(p["phy_payload"]))
    assert pf.mtype is frames.MType.UNCONFIRMED_DOWN and p["f_cnt_down"] == 1

    clock.set(ctx.clock.now() + timedelta(minutes=2))
    at = clock.now().isoformat()
    loaded = {
        "downlink_id": made["id"],
        "satellite": made["satellite"],
        "status": "loaded",
        "at": at,
    }
    assert _receipts(client, env, gs, loaded) == {"applied": 1, "duplicates": 0, "rejected": []}
    assert _receipts(client, env, gs, loaded) == {"applied": 0, "duplicates": 1, "rejected": []}
    url = f"{API}/devices/{EUI}/downlinks/{made['id']}"
    assert client.get(url, headers=env["h"]).json()["status"] == "on-satellite"
    cancel = client.delete(url, headers=env["h"])
    assert f"already on satellite {made['satellite']}" in assert_problem(cancel, 409)["detail"]
    # "sent" comes down through whichever station the satellite passes next.
    other = next(s for s in env["stations"] if s != gs)
    sent = loaded | {"status": "sent"}
    assert _receipts(client, env, other, sent)["applied"] == 1
    with ctx.db.write() as s:
        dl = s.get(Downlink, uuid.UUID(made["id"]))
        on_acks(
            s,
            [
                AcceptedUplink(
                    uuid.uuid4(), dl.device_id, dl.tenant_id, EUI, 5, True, False, clock.now(), ()
                )
            ],
            at=clock.now(),
        )
    final = client.get(url, headers=env["h"]).json()
    assert final["status"] == "acknowledged" and final["acknowledged_at"]
    assert final["sent_at"] and final["loaded_at"] and final["f_cnt_down"] == 0


def test_receipt_items_are_checked_one_by_one(client, ctx, env):
    made = post(client, ctx, env).json()
    gs = made["ground_station_id"]
    at = ctx.clock.now().isoformat()
    answer = _receipts(
        client,
        env,
        gs,
        {"downlink_id": made["id"], "satellite": made["satellite"], "status": "lost", "at": at},
        {"downlink_id": "nope", "satellite": "X", "status": "loaded", "at": at},
        "not an object",
        {"downlink_id": made["id"], "satellite": made["satellite"], "status": "loaded", "at": at},
        {"downlink_id": str(uuid.uuid4()), "satellite": "X", "status": "sent", "at": at},
        {
            "downlink_id": made["id"],
            "satellite": made["satellite"],
            "status": "sent",
            "at": (ctx.clock.now() + timedelta(hours=1)).isoformat(),
        },
    )
    assert answer["applied"] == 1 and answer["duplicates"] == 0
    reasons = {r["index"]: r["reason"] for r in answer["rejected"]}
    assert set(reasons) == {0, 1, 2, 4, 5}
    assert reasons[0].startswith("status:") and reasons[1].startswith("downlink_id:")
    assert "no downlink" in reasons[4] and "in the future" in reasons[5]


def test_only_the_stations_own_key_or_operator_staff(client, ctx, world, env):
    made = post(client, ctx, env).json()
    gs = made["ground_station_id"]
    other = next(s for s in env["stations"] if s != gs)
    r = client.get(f"{API}/ground-stations/{gs}/downlinks", headers=env["stations"][other])
    assert "another ground station" in assert_problem(r, 403)["detail"]
    r = client.get(f"{API}/ground-stations/{gs}/downlinks", headers=env["h"])
    assert_problem(r, 403)  # a customer lacks receptions:write
    r = client.post(
        f"{API}/ground-stations/{gs}/downlink-receipts", headers=env["h"], json={"receipts": []}
    )
    assert_problem(r, 403)
    staff = client.get(f"{API}/ground-stations/{gs}/downlinks", headers=world.admin_headers())
    assert [i["id"] for i in staff.json()["items"]] == [made["id"]]
    unknown = client.get(
        f"{API}/ground-stations/{uuid.uuid4()}/downlinks", headers=world.admin_headers()
    )
    assert_problem(unknown, 404)


def test_listing_costs_the_same_queries_for_5_or_30_downlinks(client, ctx, env, monkeypatch):
    from tests.performance.test_query_counts import count_queries

    monkeypatch.setattr(ctx.settings, "downlink_queue_cap", 40)
    for _ in range(30):
        assert post(client, ctx, env).status_code == 201
    counts = []
    for limit in (5, 30):
        with count_queries(ctx.db.engine) as seen:
            r = client.get(f"{API}/devices/{EUI}/downlinks?limit={limit}", headers=env["h"])
        assert r.status_code == 200 and len(r.json()["items"]) == limit
        counts.append(len(seen))
    # authentication (3), the device, one page, the stations' names
    assert counts == [6, 6]
