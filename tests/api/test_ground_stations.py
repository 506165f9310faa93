"""The ground-stations API: registration, keys shown once and rotated, and the ingest endpoint."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from satiot.core.auth.roles import Role
from satiot.core.errors import InvalidInput
from satiot.core.models import ApiKey
from satiot.network.ground_stations import register_station
from satiot.network.inventory import import_ground_stations
from satiot.network.models import GroundStation
from satiot.network.scenario import Station
from tests.api.conftest import assert_problem, bearer, unchanged
from tests.network.ingest_helpers import T0, add_device, counts, rec

API = "/api/v1/ground-stations"
KASHGAR = {"name": "Kashgar", "lat": 39.5, "lon": 76.0, "alt_m": 1290.0, "antennas": 2}


@pytest.fixture
def registered(client, world):
    r = client.post(API, json=KASHGAR, headers=world.admin_headers())
    assert r.status_code == 201, r.text
    return r.json()


def test_registering_a_station_returns_its_key_once(client, ctx, world, registered):
    key = registered["api_key"]
    assert key.startswith("sk_")
    assert registered["api_key_id"] and registered["min_elevation_deg"] == 10.0
    assert (registered["name"], registered["antennas"], registered["status"]) == (
        "Kashgar",
        2,
        "active",
    )
    admin = world.admin_headers()
    one = client.get(f"{API}/{registered['id']}", headers=admin)
    listed = client.get(API, headers=admin)
    assert one.status_code == listed.status_code == 200
    assert one.json()["api_key_id"] == registered["api_key_id"] and "api_key" not in one.json()
    assert [s["name"] for s in listed.json()["items"]] == ["Kashgar"]
    assert key not in one.text + listed.text
    # the station's key is a machine key of role ground-station in the operator's tenant
    keys = client.get("/api/v1/api-keys", headers=admin).json()["items"]
    (station_key,) = [k for k in keys if k["id"] == registered["api_key_id"]]
    assert station_key["role"] == "ground-station" and station_key["scopes"] == ["receptions:write"]
    assert station_key["tenant_id"] == str(world.operator.id)


def test_a_replayed_registration_does_not_show_the_key_again(client, world):
    headers = world.admin_headers() | {"Idempotency-Key": "gs-1"}
    first = client.post(API, json=KASHGAR, headers=headers)
    again = client.post(API, json=KASHGAR, headers=headers)
    assert first.json()["api_key"] and again.json()["api_key"] is None
    assert again.json()["id"] == first.json()["id"]


def test_station_input_is_checked(client, ctx, world, registered):
    admin = world.admin_headers()
    with unchanged(ctx):
        assert_problem(client.post(API, json=KASHGAR, headers=admin), 409, "conflict")
        assert_problem(
            client.post(API, json=KASHGAR | {"name": "X", "lat": 95}, headers=admin), 422
        )
        bad = KASHGAR | {"name": "Y", "min_elevation_deg": 90}
        assert_problem(client.post(API, json=bad, headers=admin), 422)
        assert_problem(client.post(API, json={"name": "Z"}, headers=admin), 422)
    assert_problem(client.get(f"{API}/{uuid.uuid4()}", headers=admin), 404)


def test_who_may_see_and_register_stations(client, world):
    noc = world.headers(world.user(world.operator, Role.NOC))
    regulator = world.headers(world.user(world.operator, Role.REGULATOR))
    customer = world.headers(world.user(world.tenant(), Role.CUSTOMER_ADMIN))
    assert client.post(API, json=KASHGAR, headers=noc).status_code == 201
    assert client.get(API, headers=regulator).status_code == 200
    assert_problem(client.post(API, json=KASHGAR | {"name": "R"}, headers=regulator), 403)
    assert_problem(client.get(API, headers=customer), 403)
    assert_problem(client.post(API, json=KASHGAR | {"name": "C"}, headers=customer), 403)


def test_rotating_a_key_revokes_the_old_one(client, ctx, world, registered):
    old = registered["api_key"]
    station = registered["id"]
    post_url = f"{API}/{station}/receptions"
    assert client.post(post_url, json={"receptions": []}, headers=bearer(old)).status_code == 200
    r = client.post(f"{API}/{station}/key", headers=world.admin_headers())
    assert r.status_code == 201, r.text
    new = r.json()["api_key"]
    assert new != old and r.json()["station_id"] == station
    assert_problem(client.post(post_url, json={"receptions": []}, headers=bearer(old)), 401)
    assert client.post(post_url, json={"receptions": []}, headers=bearer(new)).status_code == 200
    got = client.get(f"{API}/{station}", headers=world.admin_headers()).json()
    assert got["api_key_id"] == r.json()["key_id"]
    assert_problem(client.post(f"{API}/{uuid.uuid4()}/key", headers=world.admin_headers()), 404)


def test_an_imported_station_has_no_key_until_one_is_issued(client, ctx, world, registered):
    with ctx.db.write() as s:
        import_ground_stations(s, world.system, [Station(name="Sanya", lat=18.3, lon=109.5)], at=T0)
        sanya = s.scalar(select(GroundStation).where(GroundStation.name == "Sanya"))
        assert sanya is not None and sanya.api_key_id is None
    url = f"{API}/{sanya.id}/receptions"
    r = client.post(url, json={"receptions": []}, headers=bearer(registered["api_key"]))
    assert_problem(r, 403, "forbidden")
    key = client.post(f"{API}/{sanya.id}/key", headers=world.admin_headers()).json()["api_key"]
    assert client.post(url, json={"receptions": []}, headers=bearer(key)).status_code == 200


def test_a_station_posts_its_receptions_and_gets_the_answer(client, ctx, world, registered):
    dev = add_device(ctx, world, world.tenant().id)
    items = [rec(dev.frame(1)), rec(dev.frame(1), satellite="SAT-2"), {"satellite": "S"}]
    r = client.post(
        f"{API}/{registered['id']}/receptions",
        json={"receptions": items, "batch_id": "pass-17"},
        headers=bearer(registered["api_key"]),
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "accepted": 1,
        "duplicates": 1,
        "rejected": [
            {"index": 2, "reason": "invalid-reception", "detail": "frequency_hz: field required"}
        ],
        "batch_id": "pass-17",
    }
    assert counts(ctx) == (1, 2, 1)
    got = client.get(f"{API}/{registered['id']}", headers=world.admin_headers()).json()
    assert got["last_seen_at"] is not None


def test_a_key_of_another_station_is_refused(client, ctx, world, registered):
    other = client.post(API, json=KASHGAR | {"name": "Sanya"}, headers=world.admin_headers()).json()
    dev = add_device(ctx, world, world.tenant().id)
    with unchanged(ctx):
        r = client.post(
            f"{API}/{registered['id']}/receptions",
            json={"receptions": [rec(dev.frame(1))]},
            headers=bearer(other["api_key"]),
        )
    assert_problem(r, 403, "forbidden")
    assert "another ground station" in r.json()["detail"]
    assert counts(ctx) == (0, 0, 0)


def test_operator_admin_may_post_for_any_station_others_may_not(client, ctx, world, registered):
    dev = add_device(ctx, world, world.tenant().id)
    url = f"{API}/{registered['id']}/receptions"
    r = client.post(url, json={"receptions": [rec(dev.frame(1))]}, headers=world.admin_headers())
    assert r.status_code == 200 and r.json()["accepted"] == 1
    noc = world.headers(world.user(world.operator, Role.NOC))
    customer = world.headers(world.user(world.tenant(), Role.CUSTOMER_ADMIN))
    for headers in (noc, customer):
        assert_problem(client.post(url, json={"receptions": []}, headers=headers), 403)
    assert_problem(client.post(url, json={"receptions": []}), 401)
    missing = f"{API}/{uuid.uuid4()}/receptions"
    assert_problem(
        client.post(missing, json={"receptions": []}, headers=world.admin_headers()), 404
    )


@pytest.mark.parametrize(
    "payload",
    [[], "receptions", {"receptions": {"a": 1}}, {"receptions": [], "extra": 1}, {}],
)
def test_a_malformed_envelope_refuses_the_whole_request(client, ctx, registered, payload):
    with unchanged(ctx):
        r = client.post(
            f"{API}/{registered['id']}/receptions",
            json=payload,
            headers=bearer(registered["api_key"]),
        )
    assert_problem(r, 422)


def test_too_many_receptions_in_one_post_is_413(client, ctx, registered):
    url = f"{API}/{registered['id']}/receptions"
    r = client.post(url, json={"receptions": [0] * 5001}, headers=bearer(registered["api_key"]))
    body = assert_problem(r, 413, "payload-too-large")
    assert body["max_items"] == 5000
    r = client.post(url, json={"receptions": [0] * 5000}, headers=bearer(registered["api_key"]))
    assert r.status_code == 200 and len(r.json()["rejected"]) == 5000


def test_malformed_json_is_400(client, registered):
    r = client.post(
        f"{API}/{registered['id']}/receptions",
        content=b'{"receptions": [',
        headers=bearer(registered["api_key"]) | {"content-type": "application/json"},
    )
    assert_problem(r, 400, "malformed-json")


@pytest.mark.parametrize("name", ["Kash\x1b[2Jgar", "Kashgar\nEast", "Kash\u202eragh"])
def test_a_station_name_with_control_or_direction_characters_is_refused(client, ctx, world, name):
    """The name is shown in contact plans, reports and the console, and names the station's
    key: an escape, line break or directional override would garble or reorder them."""
    admin = world.admin_headers()
    with unchanged(ctx):
        problem = assert_problem(
            client.post(API, json=KASHGAR | {"name": name}, headers=admin), 422, "invalid-input"
        )
    assert problem["field"] == "name"
    with ctx.db.read() as s:
        assert s.scalars(select(GroundStation)).all() == []


def test_the_station_checks_its_own_name_before_writing_anything(ctx, world):
    """The key issued with the station is named after it and checks its name too, but only
    after the station row is written: the station's own check refuses first, so a caller
    that goes on with the session (or a key named otherwise) finds nothing half-made."""
    with ctx.db.write() as s:
        with pytest.raises(InvalidInput) as refused:
            register_station(
                s, world.system, name="Kash\u202eragh", lat=39.5, lon=76.0, alt_m=0.0,
                min_elevation_deg=10.0, antennas=2, at=T0,
            )  # fmt: skip
        assert refused.value.extensions["field"] == "name"
        assert s.scalars(select(GroundStation)).all() == []
        assert s.scalars(select(ApiKey)).all() == []


def test_a_chinese_station_name_is_registered_trimmed(client, world):
    r = client.post(API, json=KASHGAR | {"name": " 喀什站 "}, headers=world.admin_headers())
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "喀什站"
