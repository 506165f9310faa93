"""Activation: terminal, number and handle bound one-to-one-to-one; suspension, resumption and
termination carried down to the network server, the number and the handle."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from satiot.bss import activation, rating_sql
from satiot.bss.activation import ActivationRequest, activate, register_pending_handles
from satiot.bss.models import Subscription
from satiot.bss.subscriptions import (
    resume_subscription,
    suspend_subscription,
    terminate_subscription,
)
from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import ROLES, Role
from satiot.core.errors import Conflict, IllegalTransition, PermissionDenied
from satiot.core.models import AuditEntry
from satiot.network import frames
from satiot.network.ingest_validate import REASONS
from satiot.network.models import Device
from satiot.oss.handle_client import NodeConfig
from satiot.oss.identifiers import record_of
from satiot.oss.models import Handle, IotNumber
from tests.bss.order_world import MODEL, PREFIX, Shop, Terminal, shop, terminal
from tests.network.ingest_helpers import add_station, post, reasons, rec
from tests.oss.fake_node import FakeNode


def activate_one(s: Shop, t: Terminal, **kw) -> Subscription:
    request = ActivationRequest(
        customer_id=s.customer_id,
        billing_account_id=s.account_id,
        offering_id=s.offerings["SAT-BUNDLE-100"],
        terminal=t.spec(**kw),
        reason="test activation",
    )
    with s.ctx.db.write() as session:
        return activate(session, s.world.system, request, at=s.ctx.clock.now(), config=s.config)


def customer_admin(s: Shop) -> Principal:
    return Principal(
        tenant_id=s.tenant.id,
        role=Role.CUSTOMER_ADMIN,
        scopes=ROLES[Role.CUSTOMER_ADMIN].scopes,
        user_id=s.admin.id,
        username=s.admin.username,
        via="session",
    )


def frame(t: Terminal, f_cnt: int) -> bytes:
    return frames.encode(
        mtype=frames.MType.UNCONFIRMED_UP,
        dev_addr=int(t.dev_addr, 16),
        f_cnt32=f_cnt,
        f_port=1,
        payload=b"\x01\x02\x03",
        nwk_s_key=bytes.fromhex(t.nwk_s_key),
        app_s_key=bytes.fromhex(t.app_s_key),
    )


def test_activation_binds_terminal_number_and_handle_one_to_one_to_one(ctx, world, client):
    s = shop(ctx, world)
    t = terminal()
    sub = activate_one(s, t, iccid="8986001234567890120")
    assert (sub.status, sub.imei, sub.dev_eui) == ("active", t.imei, t.dev_eui)
    assert sub.iot_number and sub.iot_number.startswith("14101234")
    assert sub.handle and sub.handle.startswith(PREFIX + "/")
    with ctx.db.read() as session:
        number = session.scalar(select(IotNumber).where(IotNumber.number == sub.iot_number))
        handle = session.scalar(select(Handle).where(Handle.handle == sub.handle))
        device = session.get(Device, sub.device_id)
        record = record_of(session, handle)
        actions = [a for a in session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq))]
    assert (number.status, number.tenant_id) == ("active", s.tenant.id)
    assert (handle.terminal_id, handle.iot_number, handle.status) == (
        t.imei,
        sub.iot_number,
        "active",
    )
    assert (record.model, record.licence_number, record.iccid) == (
        MODEL,
        "00-B182-228209",
        "8986001234567890120",
    )
    assert (device.dev_eui, device.status, device.tenant_id) == (t.dev_eui, "active", s.tenant.id)
    assert actions[-5:] == [
        "number.reserved",
        "device.created",
        "handle.created",
        "number.active",
        "subscription.activated",
    ]
    # The handle resolves through the Handle REST API (public values only, no credential).
    r = client.get(f"/api/handles/{sub.handle}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["responseCode"] == 1 and body["handle"] == sub.handle
    public = {v["type"]: v["data"]["value"] for v in body["values"]}
    assert public == {"MODEL": MODEL, "LICENCE_NO": "00-B182-228209", "STATUS": "active"}
    # Operator staff see the binding itself.
    r = client.get(f"/api/handles/{sub.handle}", headers=world.admin_headers())
    full = {v["type"]: v["data"]["value"] for v in r.json()["values"]}
    assert (full["TERMINAL_ID"], full["IOT_NUMBER"]) == (t.imei, sub.iot_number)


def test_one_identity_binds_one_live_subscription(ctx, world):
    s = shop(ctx, world)
    t = terminal()
    activate_one(s, t)
    same_imei = Terminal(t.imei, "70B3D57EFFFF0001", "26FFFF02", t.nwk_s_key, t.app_s_key)
    with pytest.raises(Conflict, match="already bound"):
        activate_one(s, same_imei)
    same_eui = Terminal(terminal().imei, t.dev_eui, t.dev_addr, t.nwk_s_key, t.app_s_key)
    with pytest.raises(Conflict, match="already bound"):
        activate_one(s, same_eui, with_session=False)


def test_a_suspended_subscription_stops_traffic_at_the_network_server(ctx, world):
    s = shop(ctx, world)
    t = terminal()
    sub = activate_one(s, t)
    station, _key = add_station(ctx, world)
    assert post(ctx, station, [rec(frame(t, 1))]).accepted == 1
    with ctx.db.write() as session:
        suspend_subscription(session, customer_admin(s), sub.id, "stolen vehicle", ctx.clock.now())
    result = post(ctx, station, [rec(frame(t, 2))])
    assert result.accepted == 0 and reasons(result) == {0: "device-inactive"}
    assert "not active" in REASONS["device-inactive"]
    with ctx.db.read() as session:
        row = session.get(Subscription, sub.id)
        number = session.scalar(select(IotNumber).where(IotNumber.number == sub.iot_number))
        handle = session.scalar(select(Handle).where(Handle.handle == sub.handle))
        device = session.get(Device, sub.device_id)
    assert (row.status, row.status_reason) == ("suspended", "stolen vehicle")
    assert (number.status, handle.status, device.status) == ("suspended", "suspended", "suspended")
    with ctx.db.write() as session:
        resume_subscription(session, customer_admin(s), sub.id, "recovered", ctx.clock.now())
    assert post(ctx, station, [rec(frame(t, 3))]).accepted == 1


def test_a_customer_lifts_only_a_suspension_it_made_itself(ctx, world):
    s = shop(ctx, world)
    sub = activate_one(s, terminal())
    with ctx.db.write() as session:
        suspend_subscription(session, world.system, sub.id, "fraud review", ctx.clock.now())
    with ctx.db.write() as session, pytest.raises(PermissionDenied, match="by the operator"):
        resume_subscription(session, customer_admin(s), sub.id, "we need it", ctx.clock.now())
    with ctx.db.read() as session:
        row = session.get(Subscription, sub.id)
        device = session.get(Device, sub.device_id)
    assert (row.status, row.suspended_by, device.status) == ("suspended", "operator", "suspended")
    with ctx.db.write() as session:
        resume_subscription(session, world.system, sub.id, "review passed", ctx.clock.now())
        suspend_subscription(session, customer_admin(s), sub.id, "seasonal", ctx.clock.now())
    with ctx.db.write() as session:
        resume_subscription(session, customer_admin(s), sub.id, "season again", ctx.clock.now())
    with ctx.db.read() as session:
        row = session.get(Subscription, sub.id)
    assert (row.status, row.suspended_by, row.suspended_at) == ("active", None, None)


def _pool_mark(ctx):
    with ctx.db.read() as session:
        return rating_sql.membership_mark(session.connection())


def test_terminate_quarantines_the_number_and_frees_the_terminal(ctx, world):
    s = shop(ctx, world)
    t = terminal()
    marks = [_pool_mark(ctx)]
    sub = activate_one(s, t)
    marks.append(_pool_mark(ctx))
    with ctx.db.write() as session:
        terminate_subscription(
            session, world.system, sub.id, "contract ended", ctx.clock.now(), quarantine_days=120
        )
    # Rating counts pool sizes again after each (it keeps them while this mark stays put).
    marks.append(_pool_mark(ctx))
    assert marks[0] < marks[1] < marks[2]
    with ctx.db.read() as session:
        number = session.scalar(select(IotNumber).where(IotNumber.number == sub.iot_number))
        handle = session.scalar(select(Handle).where(Handle.handle == sub.handle))
        device = session.get(Device, sub.device_id)
        row = session.get(Subscription, sub.id)
    assert number.status == "quarantine"
    assert number.quarantine_until == ctx.clock.now() + timedelta(days=120)
    assert (handle.status, handle.terminal_id, handle.iot_number) == ("retired", None, None)
    assert device.status == "deactivated"
    assert (row.status, row.terminated_at) == ("terminated", ctx.clock.now())
    with ctx.db.write() as session, pytest.raises(IllegalTransition):
        resume_subscription(session, world.system, sub.id, "oops", ctx.clock.now())
    # The terminal may be activated again: a new subscription, device back to active, and a
    # new number (the old one rests in quarantine).
    again = activate_one(s, t, with_session=False)
    assert again.id != sub.id and again.device_id == sub.device_id
    assert again.iot_number != sub.iot_number


def test_who_may_suspend_follows_the_lifecycle_table(ctx, world):
    s = shop(ctx, world)
    sub = activate_one(s, terminal())
    user = Principal(
        s.tenant.id, Role.CUSTOMER_USER, ROLES[Role.CUSTOMER_USER].scopes, None, "u", "session"
    )
    with ctx.db.write() as session, pytest.raises(PermissionDenied):
        suspend_subscription(session, user, sub.id, "no", ctx.clock.now())
    with ctx.db.write() as session, pytest.raises(Exception, match="reason"):
        suspend_subscription(session, world.system, sub.id, " ", ctx.clock.now())


def test_registration_at_the_node_is_queued_and_retried(ctx, world):
    s = shop(ctx, world)
    sub = activate_one(s, terminal())
    with FakeNode() as node:
        config = NodeConfig(base_url=node.url, token=node.token, max_attempts=1, backoff_s=0)
        node.fail_next = 1
        assert register_pending_handles(ctx.db, config, at=ctx.clock.now()) is None
        with ctx.db.read() as session:
            assert session.scalar(select(Handle.registered_at)) is None, "still pending"
        result = register_pending_handles(ctx.db, config, at=ctx.clock.now())
        assert result is not None and result.registered == [sub.handle]
        assert sub.handle in node.records
        ctx.clock.advance(60)
        with ctx.db.write() as session:
            suspend_subscription(session, world.system, sub.id, "audit", ctx.clock.now())
        result = register_pending_handles(ctx.db, config, at=ctx.clock.now())
        assert result is not None and result.registered == [sub.handle], "a change re-registers"
        status = [v for v in node.records[sub.handle] if v["type"] == "STATUS"]
        assert status[0]["data"]["value"] == "suspended"
    assert register_pending_handles(ctx.db, None, at=ctx.clock.now()) is None


def test_concurrent_activation_of_one_imei_yields_one_subscription(ctx, world, monkeypatch):
    """Two activations of one IMEI (under two DevEUIs) at once: one subscription, one 409.

    On PostgreSQL both transactions are made to pass the code's own check before either
    commits, so the database's unique indexes decide; SQLite serialises writers anyway."""
    s = shop(ctx, world)
    t = terminal()
    twins = [t, Terminal(t.imei, "70B3D57EEEEE0001", "26EEEE01", t.nwk_s_key, t.app_s_key)]
    barrier = threading.Barrier(2, timeout=20)
    if not ctx.db.is_sqlite:
        monkeypatch.setattr(activation, "_check_unbound", lambda _session, _t: barrier.wait())
    outcomes: list[str] = []

    def run(term: Terminal) -> None:
        if ctx.db.is_sqlite:
            barrier.wait()
        try:
            activate_one(s, term)
            outcomes.append("ok")
        except Conflict as exc:
            outcomes.append(f"conflict: {exc.detail}")

    threads = [threading.Thread(target=run, args=(term,)) for term in twins]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert sorted(o[:8] for o in outcomes) == ["conflict", "ok"], outcomes
    with ctx.db.read() as session:
        subs = session.scalars(select(Subscription).where(Subscription.imei == t.imei)).all()
        handles = session.scalars(select(Handle)).all()
        active_numbers = session.scalars(
            select(IotNumber).where(IotNumber.status.in_(("reserved", "active")))
        ).all()
    assert len(subs) == 1 and len(handles) == 1 and len(active_numbers) == 1


def test_without_an_operator_prefix_nothing_is_activated(ctx, world):
    """One device, one code, one number: no handle prefix, no activation (and nothing left)."""
    s = shop(ctx, world)
    ctx.settings = ctx.settings.model_copy(update={"handle_prefix": None})
    with pytest.raises(Conflict, match="SATIOT_HANDLE_PREFIX"):
        activate_one(s, terminal())
    with ctx.db.read() as session:
        assert session.scalar(select(Subscription.id)) is None
        assert session.scalar(select(Device.id)) is None
