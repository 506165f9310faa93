"""The devices API: provisioning with sealed keys, lists, changes, lifecycle, and the pull API."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from satiot.core.auth.roles import Role
from satiot.core.models import AuditEntry, Event
from satiot.network import devices as network_devices
from satiot.network.models import Device
from satiot.network.states import DEVICE
from tests.api.conftest import assert_problem, unchanged
from tests.network.ingest_helpers import T0, Dev, add_station, hours, post, rec

API = "/api/v1/devices"
NWK = "0123456789ABCDEF0123456789ABCDEF"
APP = "FEDCBA9876543210FEDCBA9876543210"


def body(n: int = 1, **over):
    return {
        "dev_eui": f"70B3D57E0000{n:04X}",
        "dev_addr": f"2601{n:04X}",
        "nwk_s_key": NWK,
        "app_s_key": APP,
        "name": f"tracker {n}",
    } | over


@pytest.fixture
def customer(world):
    tenant = world.tenant()
    admin = world.user(tenant, Role.CUSTOMER_ADMIN)
    user = world.user(tenant, Role.CUSTOMER_USER)
    return tenant, world.headers(admin), world.headers(user)


def _secrets_absent(text: str) -> None:
    for secret in (NWK, APP):
        assert secret not in text.upper()
        assert base64.b64encode(bytes.fromhex(secret)).decode() not in text


def test_a_customer_admin_provisions_a_device_in_its_tenant(client, ctx, customer):
    tenant, admin, _ = customer
    r = client.post(API, json=body(lat=31.2, lon=121.5), headers=admin)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["tenant_id"] == str(tenant.id)
    assert (out["dev_eui"], out["dev_addr"], out["status"]) == (
        "70B3D57E00000001",
        "26010001",
        "inventory",  # service starts with activation under a contract, not here
    )
    assert (out["lat"], out["lon"], out["f_cnt_up"], out["f_cnt_down"]) == (31.2, 121.5, None, 0)
    assert not {"nwk_s_key", "app_s_key", "nwk_s_key_sealed", "kek_id"} & set(out)
    _secrets_absent(r.text)
    with ctx.db.read() as s:
        device = s.scalar(select(Device))
        assert device is not None
        assert bytes.fromhex(NWK) not in device.nwk_s_key_sealed
        assert network_devices.open_keys(ctx.kek, device) == (
            bytes.fromhex(NWK),
            bytes.fromhex(APP),
        )
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "device.created")).one()
        event = s.scalars(select(Event).where(Event.type == "device.created")).one()
        _secrets_absent(str(audit.after) + str(event.payload))


def test_a_sealed_key_does_not_open_on_another_device(ctx, world):
    """The DevEUI and purpose are bound into the seal: a key copied to another row is useless."""
    from satiot.network.keys import KekError

    tenant = world.tenant()
    with ctx.db.write() as s:
        a = network_devices.create_device(
            s,
            world.system,
            kek=ctx.kek,
            tenant_id=tenant.id,
            dev_eui="00000000000000AA",
            dev_addr="00000001",
            nwk_s_key=NWK,
            app_s_key=APP,
            at=T0,
        )
        b = network_devices.create_device(
            s,
            world.system,
            kek=ctx.kek,
            tenant_id=tenant.id,
            dev_eui="00000000000000BB",
            dev_addr="00000002",
            nwk_s_key=NWK,
            app_s_key=APP,
            at=T0,
        )
        b.nwk_s_key_sealed = a.nwk_s_key_sealed
        with pytest.raises(KekError):
            network_devices.open_keys(ctx.kek, b)
        a.app_s_key_sealed = a.nwk_s_key_sealed  # the other purpose
        with pytest.raises(KekError):
            network_devices.open_keys(ctx.kek, a)
        s.rollback()


def test_operator_staff_provision_into_a_named_tenant(client, clock, world):
    tenant = world.tenant()
    r = client.post(API, json=body(tenant_id=str(tenant.id)), headers=world.admin_headers())
    assert r.status_code == 201 and r.json()["tenant_id"] == str(tenant.id)
    # an ABP device made active can talk at once: its silence counts from its creation
    assert r.json()["status"] == "active" and _instant(r.json()["active_since"]) == clock.now()


def test_a_customer_cannot_register_a_device_straight_into_service(client, ctx, customer):
    _, admin, _ = customer
    with unchanged(ctx):
        r = client.post(API, json=body(status="active"), headers=admin)
    assert "signed contract" in assert_problem(r, 403, "forbidden")["detail"]
    assert client.post(API, json=body(status="test"), headers=admin).json()["status"] == "test"


def test_a_customer_cannot_provision_into_another_tenant(client, ctx, world, customer):
    other = world.tenant()
    _, admin, _ = customer
    with unchanged(ctx):
        r = client.post(API, json=body(tenant_id=str(other.id)), headers=admin)
    assert_problem(r, 404)


def test_a_duplicate_dev_eui_is_a_conflict_even_across_tenants(client, ctx, world, customer):
    _, admin, _ = customer
    assert client.post(API, json=body(), headers=admin).status_code == 201
    with unchanged(ctx):
        assert_problem(client.post(API, json=body(), headers=admin), 409, "conflict")
        lower = body(dev_eui=body()["dev_eui"].lower())
        assert_problem(client.post(API, json=lower, headers=admin), 409, "conflict")
    other_admin = world.user(world.tenant(), Role.CUSTOMER_ADMIN)
    r = client.post(API, json=body(), headers=world.headers(other_admin))
    assert_problem(r, 409, "conflict")


@pytest.mark.parametrize(
    "change",
    [
        {"dev_eui": "70B3D57E0000001"},
        {"dev_eui": "70B3D57E0000000G"},
        {"dev_addr": "2601"},
        {"nwk_s_key": NWK[:-2]},
        {"app_s_key": "zz" * 16},
        {"status": "flying"},
        {"lat": 91.0},
        {"lon": -181.0},
        {"colour": "red"},
    ],
)
def test_bad_device_input_is_refused_and_never_echoes_keys(client, ctx, customer, change):
    _, admin, _ = customer
    with unchanged(ctx):
        r = client.post(API, json=body() | change, headers=admin)
    assert_problem(r, 422)
    _secrets_absent(r.text)


def test_the_creating_post_is_idempotent(client, ctx, customer):
    _, admin, _ = customer
    headers = admin | {"Idempotency-Key": "dev-1"}
    first = client.post(API, json=body(), headers=headers)
    again = client.post(API, json=body(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.json() == again.json()
    _secrets_absent(again.text)
    assert_problem(client.post(API, json=body(name="other"), headers=headers), 409)
    with ctx.db.read() as s:
        assert len(s.scalars(select(Device)).all()) == 1


def test_devices_are_listed_by_page_and_status_and_read_one_by_one(client, customer):
    _, admin, user = customer
    for n in range(1, 6):
        status = "inventory" if n % 2 else "test"
        assert client.post(API, json=body(n, status=status), headers=admin).status_code == 201
    page = client.get(f"{API}?limit=2", headers=user)
    assert page.status_code == 200 and len(page.json()["items"]) == 2
    assert 'rel="next"' in page.headers["Link"]
    nxt = client.get(f"{API}?limit=2&cursor={page.json()['next_cursor']}", headers=user).json()
    assert [d["name"] for d in page.json()["items"] + nxt["items"]] == [
        f"tracker {n}" for n in range(1, 5)
    ]
    listed = client.get(f"{API}?status=inventory", headers=user).json()["items"]
    assert [d["name"] for d in listed] == ["tracker 1", "tracker 3", "tracker 5"]
    one = client.get(f"{API}/70b3d57e00000002", headers=user)
    assert one.status_code == 200 and one.json()["name"] == "tracker 2"
    _secrets_absent(client.get(API, headers=user).text)
    assert_problem(client.get(f"{API}/70B3D57E000000FF", headers=user), 404, "not-found")
    assert_problem(client.get(f"{API}/not-an-eui", headers=user), 404, "not-found")


def test_name_and_position_change_and_are_audited(client, ctx, customer):
    _, admin, user = customer
    client.post(API, json=body(lat=1.0, lon=2.0), headers=admin)
    url = f"{API}/70B3D57E00000001"
    r = client.patch(url, json={"name": "  renamed ", "lat": 10.5}, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["lat"], r.json()["lon"]) == ("renamed", 10.5, 2.0)
    r = client.patch(url, json={"lon": None}, headers=admin)
    assert r.json()["lon"] is None and r.json()["lat"] == 10.5
    assert_problem(client.patch(url, json={"lat": 100}, headers=admin), 422)
    assert_problem(client.patch(url, json={"status": "retired"}, headers=admin), 422)
    # A name can be changed, not removed: a null was a 500 (pydantic's TypeError).
    for refused in ({"name": None}, {"name": None, "lat": 1.0}, {"name": "x" * 101}):
        problem = assert_problem(client.patch(url, json=refused, headers=admin), 422)
        assert "name" in problem["detail"], problem
    assert client.get(url, headers=admin).json()["name"] == "renamed"
    assert_problem(client.patch(url, json={"name": "x"}, headers=user), 403, "forbidden")
    with ctx.db.read() as s:
        updates = s.scalars(select(AuditEntry).where(AuditEntry.action == "device.updated")).all()
    assert [u.after["name"] for u in updates] == ["renamed", "renamed"]
    assert updates[1].before["lon"] == 2.0 and updates[1].after["lon"] is None


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_status_moves_through_the_lifecycle_with_who_and_why(client, ctx, clock, world, customer):
    _, admin, user = customer
    assert client.post(API, json=body(), headers=admin).json()["active_since"] is None
    url = f"{API}/70B3D57E00000001/status"
    # a customer declares its device ready; only the operator (or activation) puts it in service
    ready = client.post(url, json={"status": "activation-ready"}, headers=admin)
    assert ready.json()["status"] == "activation-ready"
    assert_problem(client.post(url, json={"status": "active"}, headers=admin), 403, "forbidden")
    operator = world.admin_headers()
    first = clock.now()
    assert client.post(url, json={"status": "active"}, headers=operator).status_code == 200
    clock.advance(timedelta(days=3))
    r = client.post(url, json={"status": "suspended", "reason": "lost in transit"}, headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    assert _instant(r.json()["active_since"]) == first  # when it last became active
    problem = assert_problem(
        client.post(url, json={"status": "retired"}, headers=admin), 409, "illegal-transition"
    )
    assert "allowed" in problem["detail"]
    assert_problem(client.post(url, json={"status": "active"}, headers=user), 403)
    # nor does the customer switch its traffic back on after a suspension
    assert_problem(client.post(url, json={"status": "active"}, headers=admin), 403, "forbidden")
    client.post(url, json={"status": "deactivated", "reason": "contract ended"}, headers=admin)
    # deactivated -> active is the operator's move, not the customer's
    assert_problem(client.post(url, json={"status": "active"}, headers=admin), 403, "forbidden")
    clock.advance(timedelta(days=3))
    r = client.post(
        url, json={"status": "active", "reason": "reinstated"}, headers=world.admin_headers()
    )
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert _instant(r.json()["active_since"]) == clock.now()  # silence counts from here
    with ctx.db.read() as s:
        moves = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "device.status-changed")
            .order_by(AuditEntry.seq)
        ).all()
    assert [(m.before["status"], m.after["status"], m.reason) for m in moves] == [
        ("inventory", "activation-ready", None),
        ("activation-ready", "active", None),
        ("active", "suspended", "lost in transit"),
        ("suspended", "deactivated", "contract ended"),
        ("deactivated", "active", "reinstated"),
    ]
    assert moves[0].actor.startswith("api-key:")


def test_the_api_knows_every_lifecycle_state():
    from satiot.api.devices import DeviceState

    assert DeviceState.__args__ == DEVICE.states


def _provision(client, headers, n=1, *, operator=None) -> Dev:
    """A customer's device, put in service by the operator (as activation would)."""
    r = client.post(API, json=body(n), headers=headers)
    assert r.status_code == 201, r.text
    out = r.json()
    if operator is not None:
        for status in ("activation-ready", "active"):
            moved = client.post(
                f"{API}/{out['dev_eui']}/status", json={"status": status}, headers=operator
            )
            assert moved.status_code == 200, moved.text
    return Dev(
        uuid.UUID(out["id"]),
        uuid.UUID(out["tenant_id"]),
        out["dev_eui"],
        int(out["dev_addr"], 16),
        bytes.fromhex(NWK),
        bytes.fromhex(APP),
    )


def test_messages_are_pulled_in_acceptance_order_with_every_reception(
    client, ctx, world, customer, clock
):
    _, admin, user = customer
    dev = _provision(client, admin, operator=world.admin_headers())
    station, _ = add_station(ctx, world, "Kashgar")
    other, _ = add_station(ctx, world, "Sanya")
    post(ctx, station, [rec(dev.frame(n, f"m{n}".encode())) for n in (5, 3, 4)])
    clock.advance(hours(2))
    post(
        ctx,
        other,
        [rec(dev.frame(3, b"m3"), satellite="SAT-9", at=T0 + hours(2)), rec(dev.frame(6, b"m6"))],
    )
    url = f"{API}/{dev.dev_eui}/uplinks"
    first = client.get(f"{url}?limit=2", headers=user)
    assert first.status_code == 200, first.text
    assert 'rel="next"' in first.headers["Link"]
    rest = client.get(first.headers["Link"].split(">")[0].lstrip("<"), headers=user).json()
    items = first.json()["items"] + rest["items"]
    assert rest["next_cursor"] is None
    assert [(m["f_cnt"], base64.b64decode(m["payload"])) for m in items] == [
        (5, b"m5"),
        (3, b"m3"),
        (4, b"m4"),
        (6, b"m6"),
    ]
    three = items[1]
    assert [(r["ground_station"], r["satellite"]) for r in three["receptions"]] == [
        ("Kashgar", "SAT-1"),
        ("Sanya", "SAT-9"),
    ]
    # the same shape as the uplink.accepted event, which knew only the first reception
    with ctx.db.read() as s:
        event = s.scalars(
            select(Event).where(Event.type == "uplink.accepted").order_by(Event.seq).offset(1)
        ).first()
    assert event is not None
    assert {k: v for k, v in event.payload.items() if k != "receptions"} == {
        k: v for k, v in three.items() if k != "receptions"
    }
    assert event.payload["receptions"] == three["receptions"][:1]
    _secrets_absent(first.text)


def test_pulling_needs_the_scope_and_a_visible_device(client, ctx, world, customer):
    _, admin, _ = customer
    dev = _provision(client, admin)
    outsider = world.user(world.tenant(), Role.CUSTOMER_ADMIN)
    url = f"{API}/{dev.dev_eui}/uplinks"
    assert_problem(client.get(url, headers=world.headers(outsider)), 404)
    bare = world.headers(outsider, scopes=["devices:read"])
    assert_problem(client.get(url, headers=bare), 403, "forbidden")
    assert_problem(client.get(f"{url}?cursor=garbage", headers=admin), 422)
    assert client.get(url, headers=world.admin_headers()).json() == {
        "items": [],
        "next_cursor": None,
    }


def test_keys_appear_in_no_answer_of_any_device_route(client, ctx, world, customer):
    _, admin, _ = customer
    dev = _provision(client, admin, operator=world.admin_headers())
    station, _ = add_station(ctx, world)
    post(ctx, station, [rec(dev.frame(1))])
    texts = [
        client.get(API, headers=admin).text,
        client.get(f"{API}/{dev.dev_eui}", headers=admin).text,
        client.get(f"{API}/{dev.dev_eui}/uplinks", headers=admin).text,
        client.patch(f"{API}/{dev.dev_eui}", json={"name": "n"}, headers=admin).text,
        client.post(
            f"{API}/{dev.dev_eui}/status", json={"status": "suspended"}, headers=admin
        ).text,
        client.get("/api/v1/audit", headers=world.admin_headers()).text,
    ]
    for text in texts:
        _secrets_absent(text)


@pytest.mark.parametrize("name", ["tracker\x1b[2J", "tracker\n7", "tracker \u202e7"])
def test_a_device_name_with_control_or_direction_characters_is_refused(client, ctx, customer, name):
    """The label is listed, exported and shown in the console: an escape, line break or
    directional override would garble or reorder them. Refused on creation and on change,
    and nothing is stored either way."""
    _, admin, _ = customer
    with unchanged(ctx):
        problem = assert_problem(client.post(API, json=body(name=name), headers=admin), 422)
    assert problem["field"] == "name"
    with ctx.db.read() as s:
        assert s.scalars(select(Device)).all() == []
    client.post(API, json=body(), headers=admin)
    url = f"{API}/70B3D57E00000001"
    with unchanged(ctx):
        problem = assert_problem(client.patch(url, json={"name": name}, headers=admin), 422)
    assert problem["field"] == "name"
    assert client.get(url, headers=admin).json()["name"] == "tracker 1"


def test_a_chinese_device_name_or_none_is_kept(client, customer):
    _, admin, _ = customer
    made = client.post(API, json=body(name=" 北斗追踪器 "), headers=admin)
    assert made.status_code == 201, made.text
    assert made.json()["name"] == "北斗追踪器"
    url = f"{API}/70B3D57E00000001"
    assert client.patch(url, json={"name": "  "}, headers=admin).json()["name"] == ""
    unnamed = client.post(API, json=body(2, name=""), headers=admin)
    assert unnamed.status_code == 201 and unnamed.json()["name"] == ""


def test_silent_devices_as_a_page_and_as_csv_without_their_keys(client, ctx, world, customer):
    from datetime import timedelta

    from tests.network.test_device_export import devices as make_devices

    tenant, _admin, user = customer
    now = ctx.clock.now()
    recent, quiet, never = make_devices(ctx, tenant.id, [now, now - timedelta(days=9), None])
    make_devices(ctx, world.tenant().id, [None])  # another tenant's, silent too
    found = client.get(f"{API}?silent_for_days=7", headers=user)
    assert found.status_code == 200, found.text
    assert [d["dev_eui"] for d in found.json()["items"]] == [quiet, never]
    export = client.get(f"{API}/csv?silent_for_days=7", headers=user)
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert "satiot-devices-" in export.headers["content-disposition"]
    lines = export.content.decode("utf-8-sig").splitlines()
    assert len(lines) == 3 and lines[1].startswith(quiet) and lines[2].startswith(never)
    everything = client.get(f"{API}/csv?status=active", headers=user).content.decode("utf-8-sig")
    assert recent in everything
    _secrets_absent(everything)
    for bad in ("0", "3651", "x"):
        assert_problem(client.get(f"{API}?silent_for_days={bad}", headers=user), 422)
        assert_problem(client.get(f"{API}/csv?silent_for_days={bad}", headers=user), 422)
