"""The integrations API: create/read/change, the secret that never comes back, the delivery
log, dead letters and replay, all within the caller's tenant."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from satiot.core.auth.roles import Role
from satiot.core.models import AuditEntry
from satiot.network.destinations import set_policy
from tests.api.conftest import assert_problem, bearer, unchanged
from tests.network.delivery_support import (
    Receiver,
    dispatch,
    emit_uplink,
    fan_out,
)
from tests.network.tls_broker import make_pki

API = "/api/v1/integrations"
SECRET = "whsec-0123456789-abcdefghij"


@pytest.fixture
def customer(world):
    tenant = world.tenant()
    admin = world.user(tenant, Role.CUSTOMER_ADMIN)
    user = world.user(tenant, Role.CUSTOMER_USER)
    return tenant, bearer(world.key(admin)), bearer(world.key(user))


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _all_text(ctx, *tables: str) -> str:
    with ctx.db.engine.connect() as conn:
        return "".join(repr(conn.execute(text(f'SELECT * FROM "{t}"')).all()) for t in tables)


def _create(client, headers, **body):
    body = {"kind": "webhook", "url": "https://example.com/hook", "secret": SECRET} | body
    r = client.post(API, json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_create_read_and_list_never_show_the_secret(client, ctx, customer):
    tenant, admin, user = customer
    r = client.post(
        API,
        json={"kind": "webhook", "url": "https://example.com/hook", "secret": SECRET,
              "name": "ops"},
        headers=admin | {"Idempotency-Key": "create-1"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["tenant_id"] == str(tenant.id)
    assert (made["kind"], made["status"], made["has_secret"]) == ("webhook", "active", True)
    assert made["max_attempts"] == ctx.settings.webhook_max_attempts
    again = client.post(
        API,
        json={"kind": "webhook", "url": "https://example.com/hook", "secret": SECRET,
              "name": "ops"},
        headers=admin | {"Idempotency-Key": "create-1"},
    )  # fmt: skip
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == made
    one = client.get(f"{API}/{made['id']}", headers=user)
    listed = client.get(API, headers=user)
    assert one.json() == made and [i["id"] for i in listed.json()["items"]] == [made["id"]]
    patched = client.patch(
        f"{API}/{made['id']}", json={"secret": SECRET + "-rotated"}, headers=admin
    )
    assert patched.status_code == 200
    for resp in (r, again, one, listed, patched):
        assert SECRET not in resp.text and '"secret"' not in resp.text
    stored = _all_text(ctx, "integrations", "audit_log", "events", "idempotency_records")
    assert SECRET not in stored
    with ctx.db.read() as s:
        actions = s.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
    assert "integration.created" in actions and "integration.updated" in actions


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "webhook", "secret": SECRET}, "url"),
        ({"kind": "webhook", "url": "ftp://example.com/x", "secret": SECRET}, "url"),
        ({"kind": "webhook", "url": "example.com/hook", "secret": SECRET}, "url"),
        ({"kind": "webhook", "url": "https://u:p@example.com/", "secret": SECRET}, "url"),
        ({"kind": "webhook", "url": "https://example.com/hook"}, "secret"),
        ({"kind": "webhook", "url": "https://example.com/hook", "secret": "short"}, "secret"),
        ({"kind": "mqtt", "secret": SECRET, "url": "mqtt://broker:1883"}, "secret"),
        ({"kind": "mqtt", "url": "http://broker:1883"}, "url"),
        ({"kind": "mqtt"}, "url"),  # this platform runs no broker of its own
    ],
)
def test_bad_integrations_are_refused_and_change_nothing(client, ctx, customer, body, field):
    _, admin, _ = customer
    with unchanged(ctx):
        problem = assert_problem(client.post(API, json=body, headers=admin), 422, "invalid-input")
    assert problem["field"] == field
    assert SECRET not in str(problem)


def test_unknown_fields_and_kinds_are_validation_errors(client, customer):
    _, admin, _ = customer
    assert_problem(client.post(API, json={"kind": "smtp"}, headers=admin), 422)
    assert_problem(client.post(API, json={"kind": "mqtt", "topic": "x"}, headers=admin), 422)


def test_mqtt_integration_on_the_platform_broker(client, ctx, customer):
    _, admin, _ = customer
    ctx.settings.mqtt_url = "mqtt://127.0.0.1:1883"
    made = _create(client, admin, kind="mqtt", url=None, secret=None)
    assert (made["url"], made["has_secret"]) == (None, False)
    own = _create(client, admin, kind="mqtt", url="mqtt://broker.example:8883", secret=None)
    assert own["url"] == "mqtt://broker.example:8883"
    ctx.settings.mqtt_url = None  # now no platform broker to fall back on
    r = client.patch(f"{API}/{own['id']}", json={"url": None}, headers=admin)
    assert assert_problem(r, 422, "invalid-input")["field"] == "url"


def test_customer_users_read_but_do_not_write(client, ctx, customer):
    _, admin, user = customer
    made = _create(client, admin)
    with unchanged(ctx):
        assert_problem(client.post(API, json={"kind": "mqtt"}, headers=user), 403, "forbidden")
        assert_problem(client.patch(f"{API}/{made['id']}", json={}, headers=user), 403)
        assert_problem(
            client.post(f"{API}/{made['id']}/status", json={"status": "disabled"}, headers=user),
            403,
        )
    assert client.get(f"{API}/{made['id']}/deliveries", headers=user).status_code == 200


def test_operator_staff_create_for_a_named_tenant(client, world, customer):
    tenant, admin, _ = customer
    made = _create(client, world.admin_headers(), tenant_id=str(tenant.id))
    assert made["tenant_id"] == str(tenant.id)
    listed = client.get(API, headers=admin).json()["items"]
    assert [i["id"] for i in listed] == [made["id"]]
    other = world.tenant()
    assert_problem(
        client.post(
            API,
            json={"kind": "webhook", "url": "https://x.example/", "secret": SECRET,
                  "tenant_id": str(other.id)},
            headers=admin,
        ),
        404,
    )  # fmt: skip


def test_patch_and_lifecycle(client, ctx, customer):
    _, admin, _ = customer
    made = _create(client, admin)
    r = client.patch(
        f"{API}/{made['id']}",
        json={"url": "https://example.org/new", "name": "renamed", "max_attempts": 3},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["url"], r.json()["name"], r.json()["max_attempts"]) == (
        "https://example.org/new",
        "renamed",
        3,
    )
    reset = client.patch(f"{API}/{made['id']}", json={"max_attempts": None}, headers=admin)
    assert reset.status_code == 200, reset.text
    assert reset.json()["max_attempts"] == ctx.settings.webhook_max_attempts
    assert_problem(
        client.patch(f"{API}/{made['id']}", json={"url": "gopher://x"}, headers=admin), 422
    )
    off = client.post(
        f"{API}/{made['id']}/status", json={"status": "disabled", "reason": "x"}, headers=admin
    )
    assert off.json()["status"] == "disabled"
    listed = client.get(API, params={"status": "disabled"}, headers=admin).json()["items"]
    assert [i["id"] for i in listed] == [made["id"]]
    on = client.post(f"{API}/{made['id']}/status", json={"status": "active"}, headers=admin)
    assert on.json()["status"] == "active"
    assert_problem(
        client.post(f"{API}/{made['id']}/status", json={"status": "gone"}, headers=admin), 422
    )


def test_delivery_log_dead_letters_and_replay(client, ctx, customer, receiver):
    tenant, admin, user = customer
    receiver.status = 500
    made = _create(client, admin, url=receiver.url, max_attempts=1)
    ids = [emit_uplink(ctx, tenant.id, f"70b3d57ed000000{n}", n) for n in range(3)]
    fan_out(ctx)
    dispatch(ctx)
    log = f"{API}/{made['id']}/deliveries"

    page = client.get(log, params={"status": "dead", "limit": 2}, headers=user)
    assert page.status_code == 200
    first = page.json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    assert 'rel="next"' in page.headers["Link"]
    rest = client.get(
        log, params={"status": "dead", "cursor": first["next_cursor"]}, headers=user
    ).json()
    dead = first["items"] + rest["items"]
    assert sorted(d["message_id"] for d in dead) == sorted(ids)
    assert [d["message_id"] for d in dead] == ids[::-1]  # newest first
    assert client.get(log, params={"status": "pending"}, headers=user).json()["items"] == []

    one = client.get(f"{log}/{dead[0]['id']}", headers=user).json()
    assert one["body"]["id"] == one["message_id"] and one["status"] == "dead"
    assert [(h["outcome"], h["status_code"]) for h in one["history"]] == [("failed", 500)]
    assert one["last_error"] == "HTTP 500"

    receiver.status = 200
    r = client.post(f"{log}/{dead[0]['id']}/replay", json={"reason": "fixed"}, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["attempts"]) == ("pending", 0)
    assert_problem(client.post(f"{log}/{dead[0]['id']}/replay", headers=admin), 409)
    assert_problem(client.post(f"{log}/{dead[1]['id']}/replay", headers=user), 403)
    dispatch(ctx)
    assert [x.headers["X-Satiot-Id"] for x in receiver.delivered()] == [dead[0]["message_id"]]

    r = client.post(f"{API}/{made['id']}/dead-letters/replay", headers=admin)
    assert r.json() == {"replayed": 2}
    dispatch(ctx)
    assert sorted(x.headers["X-Satiot-Id"] for x in receiver.delivered()) == sorted(ids)
    delivered = client.get(log, params={"status": "delivered"}, headers=user).json()["items"]
    assert len(delivered) == 3
    history = client.get(f"{log}/{dead[0]['id']}", headers=user).json()["history"]
    assert [h["outcome"] for h in history] == ["failed", "delivered"]
    with ctx.db.read() as s:
        actions = s.scalars(select(AuditEntry.action)).all()
    assert "delivery.replayed" in actions and "integration.dead-letters-replayed" in actions


def test_another_tenants_integrations_and_deliveries_are_not_found(client, ctx, world, customer):
    tenant, admin, _ = customer
    made = _create(client, admin)
    emit_uplink(ctx, tenant.id, "70b3d57ed0000001", 1)
    fan_out(ctx)
    log = f"{API}/{made['id']}/deliveries"
    delivery_id = client.get(log, headers=admin).json()["items"][0]["id"]

    other = world.tenant()
    stranger = bearer(world.key(world.user(other, Role.CUSTOMER_ADMIN)))
    assert client.get(API, headers=stranger).json()["items"] == []
    with unchanged(ctx):
        for method, path in [
            ("GET", f"{API}/{made['id']}"),
            ("PATCH", f"{API}/{made['id']}"),
            ("POST", f"{API}/{made['id']}/status"),
            ("GET", log),
            ("GET", f"{log}/{delivery_id}"),
            ("POST", f"{log}/{delivery_id}/replay"),
            ("POST", f"{API}/{made['id']}/dead-letters/replay"),
        ]:
            body = {"status": "disabled"} if path.endswith("/status") else {}
            r = client.request(method, path, json=body, headers=stranger)
            assert_problem(r, 404, "not-found")
    # A delivery named under the wrong integration of the right tenant is not found either.
    second = _create(client, admin)
    assert_problem(client.get(f"{API}/{second['id']}/deliveries/{delivery_id}", headers=admin), 404)


def test_a_private_webhook_url_is_refused_unless_the_operator_allows_it(client, ctx, customer):
    _, admin, _ = customer
    ctx.settings.delivery_allow_private = False
    body = {"kind": "webhook", "url": "http://169.254.169.254/latest", "secret": SECRET}
    with unchanged(ctx):
        problem = assert_problem(client.post(API, json=body, headers=admin), 422, "invalid-input")
    assert problem["field"] == "url" and "public" in problem["detail"]
    broker = {"kind": "mqtt", "url": "mqtt://10.0.0.7:1883"}
    assert assert_problem(client.post(API, json=broker, headers=admin), 422)["field"] == "url"
    ctx.settings.delivery_allow_private = True
    assert client.post(API, json=body, headers=admin).status_code == 201


MQTT_PASSWORD = "broker-pa55-0123-xyz"
_CA = make_pki().ca_pem
_KEY_PEM = (
    "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
    "-----END PRIVATE KEY-----\n"
)


def _own_broker(**changes):
    body = {
        "kind": "mqtt",
        "url": "mqtts://broker.example:8883",
        "username": "acme-app",
        "password": MQTT_PASSWORD,
        "ca_pem": _CA,
    }
    return {k: v for k, v in (body | changes).items() if v is not ...}


def test_an_mqtt_broker_password_is_sealed_and_never_shown(client, ctx, customer):
    _, admin, user = customer
    r = client.post(API, json=_own_broker(), headers=admin | {"Idempotency-Key": "mqtt-1"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["url"], made["username"], made["has_password"]) == (
        "mqtts://broker.example:8883",
        "acme-app",
        True,
    )
    assert made["ca_pem"] == _CA.strip() and made["has_secret"] is False
    again = client.post(API, json=_own_broker(), headers=admin | {"Idempotency-Key": "mqtt-1"})
    one = client.get(f"{API}/{made['id']}", headers=user)
    listed = client.get(API, headers=user)
    rotated = client.patch(
        f"{API}/{made['id']}", json={"password": MQTT_PASSWORD + "-new"}, headers=admin
    )
    assert rotated.status_code == 200 and rotated.json()["has_password"] is True
    for resp in (r, again, one, listed, rotated):
        assert MQTT_PASSWORD not in resp.text and '"password"' not in resp.text
    stored = _all_text(ctx, "integrations", "audit_log", "events", "idempotency_records")
    assert MQTT_PASSWORD not in stored
    with ctx.db.read() as s:
        entry = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "integration.updated")
            .order_by(AuditEntry.seq.desc())
        ).first()
    assert entry is not None and entry.after["password_rotated"] is True
    cleared = client.patch(
        f"{API}/{made['id']}", json={"password": None, "ca_pem": None}, headers=admin
    )
    assert (cleared.json()["has_password"], cleared.json()["ca_pem"]) == (False, None)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ca_pem": "not a certificate"}, "ca_pem"),
        ({"ca_pem": "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"},
         "ca_pem"),
        ({"ca_pem": _KEY_PEM}, "ca_pem"),
        ({"ca_pem": _CA + _KEY_PEM}, "ca_pem"),
        ({"ca_pem": ""}, "ca_pem"),
        ({"url": "mqtt://broker.example:1883"}, "password"),  # a password only over TLS
        ({"url": "mqtt://broker.example:1883", "password": ...}, "ca_pem"),
        ({"username": ...}, "password"),  # a password needs a username
        ({"username": ""}, "username"),
        ({"username": "acme\nadmin"}, "username"),  # MQTT: no control characters
        ({"username": "acme\x7f"}, "username"),
        ({"username": "ac\x85me"}, "username"),
        ({"password": ""}, "password"),
        ({"url": "mqtts://acme:pw@broker.example"}, "url"),  # credentials in their fields
        ({"url": ...}, "username"),  # the platform broker takes no login
        ({"kind": "webhook", "url": "https://example.com/h", "secret": SECRET}, "username"),
    ],
)  # fmt: skip
def test_bad_mqtt_logins_are_refused_and_change_nothing(client, ctx, customer, changes, field):
    _, admin, _ = customer
    ctx.settings.mqtt_url = "mqtt://127.0.0.1:1883"
    with unchanged(ctx):
        r = client.post(API, json=_own_broker(**changes), headers=admin)
        problem = assert_problem(r, 422, "invalid-input")
    assert problem["field"] == field, problem
    assert MQTT_PASSWORD not in r.text


def test_a_change_that_leaves_a_password_on_plain_mqtt_is_refused(client, ctx, customer):
    _, admin, _ = customer
    made = _create(client, admin, **_own_broker(), secret=None)
    with unchanged(ctx):
        moved = client.patch(
            f"{API}/{made['id']}", json={"url": "mqtt://broker.example"}, headers=admin
        )
        assert assert_problem(moved, 422, "invalid-input")["field"] == "url"
        bad_ca = client.patch(f"{API}/{made['id']}", json={"ca_pem": "x"}, headers=admin)
        assert assert_problem(bad_ca, 422, "invalid-input")["field"] == "ca_pem"
    assert client.get(f"{API}/{made['id']}", headers=admin).json() == made
    plain = client.patch(
        f"{API}/{made['id']}",
        json={"url": "mqtt://broker.example", "password": None, "ca_pem": None},
        headers=admin,
    )
    assert plain.status_code == 200, plain.text
    assert (plain.json()["url"], plain.json()["username"]) == ("mqtt://broker.example", "acme-app")


def test_a_customer_delivers_only_to_its_contracts_allow_list(client, ctx, world):
    """The onboarded customer's contract lists 203.0.113.10:443 and iot.example.com."""
    ready = world.customer()
    admin = bearer(world.key(world.user(ready.tenant_id, Role.CUSTOMER_ADMIN)))
    with unchanged(ctx):
        problem = assert_problem(
            client.post(
                API,
                json={"kind": "webhook", "url": "https://8.8.8.8/hook", "secret": SECRET},
                headers=admin,
            ),
            422,
            "invalid-input",
        )
    assert problem["field"] == "url"
    assert problem["detail"] == (
        f"8.8.8.8:443 is not on the destination allow-list of {ready.contract_number} v1"
    )
    made = _create(client, admin, url="https://iot.example.com/hook")
    assert made["destination"] == {"state": "allowed", "reason": None}
    r = client.patch(f"{API}/{made['id']}", json={"url": "https://8.8.4.4/x"}, headers=admin)
    assert assert_problem(r, 422, "invalid-input")["field"] == "url"
    assert client.get(f"{API}/{made['id']}", headers=admin).json()["url"] == (
        "https://iot.example.com/hook"
    )


def test_answers_say_whether_the_allow_list_lets_messages_through(client, ctx, world, customer):
    """An integration registered before a narrower contract is marked, in one and in lists."""
    tenant, admin, user = customer
    made = _create(client, admin, url="https://hooks.example.com/in")
    assert made["destination"] == {"state": "unrestricted", "reason": None}
    with ctx.db.write() as s:
        set_policy(s, tenant.id, ["iot.example.com", "203.0.113.0/24"], source="SC-1 v1",
                   at=ctx.clock.now())  # fmt: skip
    one = client.get(f"{API}/{made['id']}", headers=user).json()
    assert one["destination"] == {"state": "by-address", "reason": None}
    with ctx.db.write() as s:
        set_policy(s, tenant.id, ["iot.example.com"], source="SC-1 v2", at=ctx.clock.now())
    (listed,) = client.get(API, headers=user).json()["items"]
    assert listed["destination"] == {
        "state": "refused",
        "reason": "hooks.example.com:443 is not on the destination allow-list of SC-1 v2",
    }


@pytest.mark.parametrize("name", ["ops\x1b[2J", "ops\nteam", "ops \u202emaet"])
def test_an_integration_name_with_control_or_direction_characters_is_refused(
    client, ctx, customer, name
):
    """The label is listed and shown in the console: an escape, line break or directional
    override would garble or reorder it. Refused on creation and on change, storing nothing."""
    _, admin, _ = customer
    hook = {"kind": "webhook", "url": "https://example.com/hook", "secret": SECRET}
    with unchanged(ctx):
        problem = assert_problem(client.post(API, json=hook | {"name": name}, headers=admin), 422)
    assert problem["field"] == "name"
    assert client.get(API, headers=admin).json()["items"] == []
    made = _create(client, admin, name="ops")
    url = f"{API}/{made['id']}"
    change = {"name": name, "url": "https://example.org/new"}
    with unchanged(ctx):
        problem = assert_problem(client.patch(url, json=change, headers=admin), 422)
    assert problem["field"] == "name"
    after = client.get(url, headers=admin).json()
    assert (after["name"], after["url"]) == ("ops", "https://example.com/hook")


def test_a_chinese_integration_name_is_kept_trimmed(client, customer):
    _, admin, _ = customer
    made = _create(client, admin, name=" 运维告警 ")
    assert made["name"] == "运维告警"
    url = f"{API}/{made['id']}"
    assert client.patch(url, json={"name": "数据平台"}, headers=admin).json()["name"] == "数据平台"
    assert client.patch(url, json={"name": None}, headers=admin).json()["name"] == ""
