"""The downlink queue end to end in the domain layer: queue, plan, load, send, acknowledge,
expire, fail, cancel; frames; the ACK hook; the workers driven by a manual clock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text

from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import ROLES, Role
from satiot.core.errors import Conflict, NotFound
from satiot.network import frames
from satiot.network.downlink_loads import LoadRules, current_loads
from satiot.network.downlink_station import Receipt, apply_receipts, station_downlinks
from satiot.network.downlink_workers import expire_due, plan_queued
from satiot.network.downlinks import (
    cancel_downlink,
    flush_downlinks,
    get_downlink,
    on_acks,
    prepare_plan,
    queue_downlink,
)
from satiot.network.messages import AcceptedUplink
from satiot.network.models import Device, Downlink, GroundStation
from tests.network.downlink_setup import (
    APP,
    NWK,
    TIBET,
    history,
    import_inventory,
    make_device,
)

CAP = 16


@pytest.fixture
def setup(ctx, world):
    import_inventory(ctx, world)
    tenant = world.tenant("acme")
    device = make_device(ctx, world, tenant)
    return tenant, device


def customer(tenant_id: uuid.UUID, role: Role = Role.CUSTOMER_USER) -> Principal:
    return Principal(tenant_id, role, ROLES[role].scopes, uuid.uuid4(), "cu", "api-key")


def queue(
    ctx,
    dev_eui: str,
    payload: bytes = b"\x01\x02",
    *,
    confirmed=False,
    hours=24.0,
    cap=CAP,
    rules: LoadRules | None = None,
    plan=None,
):
    now = ctx.clock.now()
    with ctx.db.write() as s:
        dl = queue_downlink(
            s,
            customer(s.scalars(select(Device.tenant_id).where(Device.dev_eui == dev_eui)).one()),
            dev_eui=dev_eui,
            payload=payload,
            f_port=10,
            confirmed=confirmed,
            expires_at=now + timedelta(hours=hours),
            at=now,
            cap=cap,
            rules=rules,
            plan=plan,
        )
        return dl


def reload(ctx, dl_id: uuid.UUID) -> Downlink:
    with ctx.db.read() as s:
        dl = s.get(Downlink, dl_id)
        assert dl is not None
        return dl


def station_of(ctx, dl: Downlink) -> GroundStation:
    with ctx.db.read() as s:
        gs = s.get(GroundStation, dl.ground_station_id)
        assert gs is not None
        return gs


def fetch(ctx, station: GroundStation):
    with ctx.db.write() as s:
        return station_downlinks(s, station, ctx.kek, ctx.clock.now())


def receipts(ctx, station: GroundStation, *items: tuple[uuid.UUID, str, str]):
    with ctx.db.write() as s:
        rs = [Receipt(i, sat, status, ctx.clock.now()) for i, sat, status in items]
        return apply_receipts(s, customer(uuid.uuid4()), station, rs, now=ctx.clock.now())


def count(ctx, table: str) -> int:
    with ctx.db.engine.connect() as conn:
        return int(conn.execute(text(f'SELECT COUNT(*) FROM "{table}"')).scalar_one())


def test_queued_downlink_is_scheduled_with_a_plan_and_recorded(ctx, setup):
    _, device = setup
    dl = queue(ctx, device.dev_eui)
    assert dl.status == "scheduled"
    assert dl.satellite and dl.ground_station_id and dl.load_at and dl.load_until
    assert ctx.clock.now() < dl.load_at <= dl.estimated_delivery_at < dl.expires_at
    assert dl.f_cnt_down is None  # a counter is assigned only when a station encodes it
    audit, events = history(ctx, dl.id)
    assert audit == events == ["downlink.queued", "downlink.scheduled"]


def test_full_lifecycle_through_a_station_with_a_decodable_frame(ctx, setup, clock):
    _, device = setup
    with ctx.db.write() as s:
        s.get(Device, device.id).f_cnt_down = 70_000  # past a 16-bit roll-over
    dl = queue(ctx, device.dev_eui, b"open valve 3", confirmed=True)
    station = station_of(ctx, dl)
    [item] = fetch(ctx, station)
    assert item.downlink.id == dl.id and item.f_cnt_down == 70_000
    frame = frames.parse(item.phy_payload)
    assert frame.mtype is frames.MType.CONFIRMED_DOWN and not frame.uplink
    assert frame.dev_addr == device.dev_addr and frame.f_port == 10
    assert frame.f_cnt16 == 70_000 & 0xFFFF
    assert frames.verify_mic(frame, NWK, 70_000)
    assert frames.decrypt(frame, NWK, APP, 70_000) == b"open valve 3"
    # Fetching again returns the same frame and does not spend another counter.
    [again] = fetch(ctx, station)
    assert again.phy_payload == item.phy_payload
    with ctx.db.read() as s:
        assert s.get(Device, device.id).f_cnt_down == 70_001

    clock.set(dl.load_at)
    assert receipts(ctx, station, (dl.id, dl.satellite, "loaded")).applied == 1
    assert reload(ctx, dl.id).status == "on-satellite"
    assert fetch(ctx, station) == []  # no longer waiting to be loaded
    clock.set(dl.estimated_delivery_at)
    assert receipts(ctx, station, (dl.id, dl.satellite, "sent")).applied == 1
    with ctx.db.write() as s:
        on_acks(s, [_uplink(device, ack=True)], at=clock.now())
    done = reload(ctx, dl.id)
    assert done.status == "acknowledged" and done.acknowledged_at is not None
    audit, events = history(ctx, dl.id)
    expected = [
        "downlink.queued",
        "downlink.scheduled",
        "downlink.on-satellite",
        "downlink.sent",
        "downlink.acknowledged",
    ]
    assert audit == events == expected


def test_unconfirmed_frames_and_counters_in_queue_order(ctx, setup):
    _, device = setup
    first = queue(ctx, device.dev_eui, b"a")
    second = queue(ctx, device.dev_eui, b"b")
    assert second.estimated_delivery_at >= first.estimated_delivery_at
    # Whichever station fetches first, counters follow the queue.
    fetched = {i.downlink.id: i for i in fetch(ctx, station_of(ctx, second))}
    fetched |= {i.downlink.id: i for i in fetch(ctx, station_of(ctx, first))}
    assert fetched[first.id].f_cnt_down == 0 and fetched[second.id].f_cnt_down == 1
    frame = frames.parse(fetched[second.id].phy_payload)
    assert frame.mtype is frames.MType.UNCONFIRMED_DOWN
    assert frames.decrypt(frame, NWK, APP, 1) == b"b"


def test_queue_cap_refuses_and_writes_nothing(ctx, setup):
    _, device = setup
    for _ in range(3):
        queue(ctx, device.dev_eui, cap=3)
    before = {t: count(ctx, t) for t in ("downlinks", "audit_log", "events")}
    with pytest.raises(Conflict, match=r"queue full: 3 downlinks pending for device "):
        queue(ctx, device.dev_eui, cap=3)
    assert {t: count(ctx, t) for t in before} == before


def test_device_must_be_active_and_visible(ctx, world, setup):
    tenant, _ = setup
    idle = make_device(ctx, world, tenant, "70B3D57ED0000002", status="suspended")
    with pytest.raises(Conflict, match="is suspended; downlinks need an active device"):
        queue(ctx, idle.dev_eui)
    with pytest.raises(NotFound), ctx.db.write() as s:
        get_downlink(s, "0000000000000000", uuid.uuid4())


def test_unknown_position_stays_queued_and_is_planned_once_known(ctx, world, setup, clock):
    tenant, _ = setup
    lost = make_device(ctx, world, tenant, "70B3D57ED0000003", position=None)
    dl = queue(ctx, lost.dev_eui)
    assert (dl.status, dl.reason, dl.estimated_delivery_at) == ("queued", "position unknown", None)
    with ctx.db.write() as s:
        row = s.get(Device, lost.id)
        row.lat, row.lon = 31.0, 88.0
    clock.advance(timedelta(minutes=6))  # the planner retries after five minutes
    run = plan_queued(ctx.db, clock.now())
    assert (run.scheduled, run.waiting) == (1, 0)
    assert reload(ctx, dl.id).status == "scheduled"


def test_cancel_and_flush_rules(ctx, setup, clock):
    tenant, device = setup
    a, b, c = (queue(ctx, device.dev_eui) for _ in range(3))
    station = station_of(ctx, c)
    clock.set(c.load_at)
    receipts(ctx, station, (c.id, c.satellite, "loaded"))
    with ctx.db.write() as s:
        cancelled = cancel_downlink(s, customer(tenant.id), device.dev_eui, a.id, at=clock.now())
        assert cancelled.status == "cancelled"
    with pytest.raises(Conflict, match="already on satellite"), ctx.db.write() as s:
        cancel_downlink(s, customer(tenant.id), device.dev_eui, c.id, at=clock.now())
    with pytest.raises(Conflict, match="already cancelled"), ctx.db.write() as s:
        cancel_downlink(s, customer(tenant.id), device.dev_eui, a.id, at=clock.now())
    with ctx.db.write() as s:
        flushed = flush_downlinks(s, customer(tenant.id), device.dev_eui, at=clock.now())
    assert (flushed.cancelled, flushed.kept) == ([b.id], 1)
    assert history(ctx, b.id)[1][-1] == "downlink.cancelled"


def test_receipts_are_idempotent_and_rejected_per_item(ctx, setup, clock):
    _, device = setup
    dl = queue(ctx, device.dev_eui)
    early = queue(ctx, device.dev_eui)
    station = station_of(ctx, dl)
    with ctx.db.read() as s:
        other = s.scalars(select(GroundStation).where(GroundStation.id != station.id)).first()
    clock.set(dl.load_at)
    first = receipts(ctx, station, (dl.id, dl.satellite, "loaded"))
    audit_before = count(ctx, "audit_log")
    again = receipts(ctx, station, (dl.id, dl.satellite, "loaded"))
    assert (first.applied, again.applied, again.duplicates) == (1, 0, 1)
    assert count(ctx, "audit_log") == audit_before  # a repeat changes nothing
    wrong = receipts(
        ctx,
        other,
        (uuid.uuid4(), "TQ-A-01-01", "loaded"),  # unknown downlink
        (early.id, early.satellite, "loaded"),  # planned through another station
        (dl.id, "TQ-B-02-07", "sent"),  # carried by another satellite
        (early.id, early.satellite, "sent"),  # the satellite's report may come via any station
    )
    assert wrong.applied == 1
    assert [i for i, _ in wrong.rejected] == [0, 1, 2]
    assert "no downlink" in wrong.rejected[0][1]
    assert f"planned through {station.name}, not {other.name}" in wrong.rejected[1][1]
    assert f"carried by {dl.satellite}, not TQ-B-02-07" in wrong.rejected[2][1]
    # Sent reported before the load receipt: both moves are recorded.
    assert history(ctx, early.id)[0][-2:] == ["downlink.on-satellite", "downlink.sent"]


def _uplink(device, *, ack: bool, f_cnt: int = 1, at=None) -> AcceptedUplink:
    from tests.conftest import T0

    return AcceptedUplink(
        uplink_id=uuid.uuid4(),
        device_id=device.id,
        tenant_id=device.tenant_id,
        dev_eui=device.dev_eui,
        f_cnt=f_cnt,
        ack=ack,
        confirmed=False,
        received_at=at or T0 + timedelta(hours=3),
        satellites=("TQ-A-01-01",),
    )


@contextmanager
def statements(ctx) -> Iterator[list[str]]:
    seen: list[str] = []

    def count_it(conn, cursor, statement, *args):
        seen.append(statement)

    sa_event.listen(ctx.db.engine, "before_cursor_execute", count_it)
    try:
        yield seen
    finally:
        sa_event.remove(ctx.db.engine, "before_cursor_execute", count_it)


def _send(ctx, clock, dl: Downlink) -> None:
    station = station_of(ctx, dl)
    fetch(ctx, station)
    clock.set(max(clock.now(), dl.load_at))
    receipts(ctx, station, (dl.id, dl.satellite, "loaded"))
    receipts(ctx, station, (dl.id, dl.satellite, "sent"))


def test_ack_settles_the_oldest_sent_confirmed_downlink(ctx, setup, clock):
    _, device = setup
    first = queue(ctx, device.dev_eui, confirmed=True)
    plain = queue(ctx, device.dev_eui, confirmed=False)
    second = queue(ctx, device.dev_eui, confirmed=True)
    for dl in (first, plain, second):
        _send(ctx, clock, dl)
    with ctx.db.write() as s, statements(ctx) as seen:
        on_acks(s, [_uplink(device, ack=False)], at=clock.now())
    assert seen == []  # no ACK bit: not one query on ingest's hot path
    with ctx.db.write() as s:
        on_acks(s, [_uplink(device, ack=True, f_cnt=2)], at=clock.now())
    status = {d.id: reload(ctx, d.id).status for d in (first, plain, second)}
    assert status == {first.id: "acknowledged", plain.id: "sent", second.id: "sent"}
    assert reload(ctx, first.id).reason == "ACK in uplink FCnt 2"


def test_expiry_and_failure_when_never_acknowledged(ctx, world, setup, clock):
    tenant, device = setup
    lost = make_device(ctx, world, tenant, "70B3D57ED0000004", position=None)
    waiting = queue(ctx, lost.dev_eui, hours=1)
    loaded = queue(ctx, device.dev_eui, hours=1)
    unacked = queue(ctx, device.dev_eui, confirmed=True, hours=24)
    clock.set(loaded.load_at)
    receipts(ctx, station_of(ctx, loaded), (loaded.id, loaded.satellite, "loaded"))
    _send(ctx, clock, unacked)
    sent_at = clock.now()

    clock.set(waiting.expires_at)
    with ctx.db.write() as s:
        run = expire_due(s, clock.now(), ack_timeout=timedelta(hours=6))
    assert (run.expired, run.failed) == (1, 0)  # the loaded one gets its receipt grace
    assert reload(ctx, waiting.id).status == "expired"
    assert reload(ctx, loaded.id).status == "on-satellite"
    clock.set(sent_at + timedelta(hours=6))
    with ctx.db.write() as s:
        run = expire_due(s, clock.now(), ack_timeout=timedelta(hours=6))
    assert (run.expired, run.failed) == (1, 1)
    late = reload(ctx, loaded.id)
    assert late.status == "expired" and "not reported sent" in (late.reason or "")
    failed = reload(ctx, unacked.id)
    assert failed.status == "failed" and "not acknowledged within 6 h" in (failed.reason or "")
    assert history(ctx, unacked.id)[0][-1] == history(ctx, unacked.id)[1][-1] == "downlink.failed"


def test_missed_load_window_is_planned_again(ctx, setup, clock):
    _, device = setup
    dl = queue(ctx, device.dev_eui)
    clock.set(dl.load_until + timedelta(minutes=5))
    assert plan_queued(ctx.db, clock.now()).requeued == 0  # still within the receipt grace
    clock.set(dl.load_until + timedelta(minutes=11))
    run = plan_queued(ctx.db, clock.now())
    assert (run.requeued, run.scheduled) == (1, 1)
    again = reload(ctx, dl.id)
    assert again.status == "scheduled" and again.load_at > dl.load_until
    audit, events = history(ctx, dl.id)
    assert (
        audit
        == events
        == [
            "downlink.queued",
            "downlink.scheduled",
            "downlink.queued",
            "downlink.scheduled",
        ]
    )
    with ctx.db.read() as s:
        reasons = s.scalars(
            text("SELECT reason FROM audit_log WHERE target_id = :i ORDER BY seq").bindparams(
                i=str(dl.id)
            )
        ).all()
    assert "without a load receipt; planning again" in reasons[2]


def test_events_carry_the_downlink_message_and_stay_in_the_tenant(ctx, setup):
    tenant, device = setup
    dl = queue(ctx, device.dev_eui, b"\xff")
    with ctx.db.read() as s:
        rows = s.execute(
            text("SELECT tenant_id, payload FROM events WHERE subject_id = :i ORDER BY seq"),
            {"i": str(dl.id)},
        ).all()
        n = s.scalar(select(func.count()).select_from(Downlink))
    assert n == 1
    assert all(str(r.tenant_id).replace("-", "") == tenant.id.hex for r in rows)
    import json

    last = rows[-1].payload if isinstance(rows[-1].payload, dict) else json.loads(rows[-1].payload)
    assert last["type"] == "downlink.scheduled" and last["payload"] == "/w=="
    assert last["estimated_delivery_at"].endswith("Z") and last["satellite"] == dl.satellite
    assert last["ground_station"] and "nwk" not in json.dumps(last).lower()


def test_a_station_may_load_another_satellite_and_report_failure(ctx, setup, clock):
    _, device = setup
    moved = queue(ctx, device.dev_eui)
    broken = queue(ctx, device.dev_eui)
    station = station_of(ctx, moved)
    other = "TQ-B-02-07" if moved.satellite != "TQ-B-02-07" else "TQ-A-01-01"
    clock.set(moved.load_at)
    answer = receipts(ctx, station, (moved.id, other, "loaded"), (moved.id, "NOPE", "loaded"))
    assert (answer.applied, answer.duplicates) == (1, 0)
    assert answer.rejected == [(1, f"downlink {moved.id} is carried by {other}, not NOPE")]
    now_on = reload(ctx, moved.id)
    assert now_on.status == "on-satellite" and now_on.satellite == other
    assert now_on.estimated_delivery_at and now_on.estimated_delivery_at >= clock.now()
    assert now_on.estimated_delivery_at != moved.estimated_delivery_at
    with ctx.db.write() as s:
        result = apply_receipts(
            s,
            customer(uuid.uuid4()),
            station_of(ctx, broken),
            [Receipt(broken.id, broken.satellite, "failed", clock.now(), "antenna fault")],
            now=clock.now(),
        )
    assert result.applied == 1
    failed = reload(ctx, broken.id)
    assert (failed.status, failed.reason) == ("failed", "antenna fault")


def test_worker_services_step_until_stopped(ctx, setup, clock):
    import threading
    import time

    from satiot.network.downlink_plan import NoPlan
    from satiot.network.downlink_workers import downlink_expirer, downlink_planner

    _, device = setup
    with ctx.db.write() as s:
        waiting = queue_downlink(
            s,
            customer(device.tenant_id),
            dev_eui=device.dev_eui,
            payload=b"\x01",
            f_port=3,
            confirmed=False,
            expires_at=clock.now() + timedelta(hours=1),
            at=clock.now(),
            cap=CAP,
            plan=NoPlan("no plan yet"),
        )
    assert waiting.status == "queued"
    planner = downlink_planner(interval_s=0.05, retry=timedelta(0))
    expirer = downlink_expirer(interval_s=0.05)
    assert (planner.name, expirer.name) == ("downlink-planner", "downlink-expirer")
    stop = threading.Event()
    threads = [threading.Thread(target=svc.run, args=(ctx, stop)) for svc in (planner, expirer)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60
        while reload(ctx, waiting.id).status == "queued" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reload(ctx, waiting.id).status == "scheduled"
        clock.advance(timedelta(hours=1))
        while reload(ctx, waiting.id).status != "expired" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reload(ctx, waiting.id).status == "expired"
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)


def _prioritise(ctx, world, device) -> None:
    from satiot.network.devices import PRIORITY_EMERGENCY, set_device_priority

    with ctx.db.write() as s:
        set_device_priority(
            s, world.system, device.id, PRIORITY_EMERGENCY, at=ctx.clock.now(), reason="test"
        )


def test_the_planner_takes_a_priority_devices_downlink_before_earlier_ones(
    ctx, world, setup, clock
):
    """A planner run takes at most ``batch`` downlinks: with room for one, the priority
    device's downlink is planned first although the other device's was queued before it."""
    tenant, _ = setup
    normal = make_device(ctx, world, tenant, "70B3D57ED0000011", position=None)
    urgent = make_device(ctx, world, tenant, "70B3D57ED0000012", position=None)
    _prioritise(ctx, world, urgent)
    first = queue(ctx, normal.dev_eui)
    clock.advance(timedelta(seconds=1))
    second = queue(ctx, urgent.dev_eui)
    assert first.status == second.status == "queued"  # no position yet
    with ctx.db.write() as s:
        for d in (normal, urgent):
            row = s.get(Device, d.id)
            row.lat, row.lon = 31.0, 88.0
    clock.advance(timedelta(minutes=6))
    run = plan_queued(ctx.db, clock.now(), batch=1)
    assert (run.scheduled, run.waiting) == (1, 0)
    assert (reload(ctx, first.id).status, reload(ctx, second.id).status) == (
        "queued",
        "scheduled",
    )
    clock.advance(timedelta(seconds=30))
    assert plan_queued(ctx.db, clock.now(), batch=1).scheduled == 1
    planned = reload(ctx, first.id), reload(ctx, second.id)
    assert planned[0].status == "scheduled"
    assert planned[1].estimated_delivery_at <= planned[0].estimated_delivery_at


def test_a_station_is_handed_a_contacts_priority_downlinks_first(ctx, world, setup):
    """Two devices side by side get the same contact (satellite, station, pass); a station
    that can take one downlink gets the priority device's, queued after the other."""
    tenant, _ = setup
    normal = make_device(ctx, world, tenant, "70B3D57ED0000021", dev_addr=0x26000021)
    urgent = make_device(ctx, world, tenant, "70B3D57ED0000022", dev_addr=0x26000022)
    _prioritise(ctx, world, urgent)
    first, second = queue(ctx, normal.dev_eui), queue(ctx, urgent.dev_eui)
    assert first.id < second.id
    contact = (first.satellite, first.ground_station_id, first.load_until, first.load_at)
    assert (second.satellite, second.ground_station_id, second.load_until, second.load_at) == (
        contact
    )
    station = station_of(ctx, first)
    with ctx.db.write() as s:
        [taken] = station_downlinks(s, station, ctx.kek, ctx.clock.now(), limit=1)
    assert taken.downlink.id == second.id
    assert [i.downlink.id for i in fetch(ctx, station)] == [second.id, first.id]


# ---- load windows have limited room ---------------------------------------------------------


def _window(dl: Downlink) -> tuple:
    return dl.satellite, dl.ground_station_id, dl.load_until


def test_queued_commands_fill_a_window_and_leave_its_reserve_to_priority(ctx, world, setup):
    """Two slots per pass, one held for priority: the second ordinary command goes to a later
    window, the priority device's still gets the first."""
    tenant, _ = setup
    rules = LoadRules(per_pass=2, reserve=0.5)
    a = make_device(ctx, world, tenant, "70B3D57ED0000031", dev_addr=0x26000031)
    b = make_device(ctx, world, tenant, "70B3D57ED0000032", dev_addr=0x26000032)
    urgent = make_device(ctx, world, tenant, "70B3D57ED0000033", dev_addr=0x26000033)
    _prioritise(ctx, world, urgent)
    first, second, third = (queue(ctx, d.dev_eui, rules=rules) for d in (a, b, urgent))
    assert first.status == second.status == third.status == "scheduled"
    assert _window(second) != _window(first)
    assert second.estimated_delivery_at >= first.estimated_delivery_at
    assert _window(third) == _window(first)


def test_a_plan_whose_window_filled_meanwhile_leaves_the_command_queued(ctx, world, setup):
    tenant, device = setup
    rules = LoadRules(per_pass=1, reserve=0)
    other = make_device(ctx, world, tenant, "70B3D57ED0000041", dev_addr=0x26000041)
    with ctx.db.read() as s:
        stale = prepare_plan(s, s.get(Device, device.id), ctx.clock.now(), rules)
    taken = queue(ctx, other.dev_eui, rules=rules)  # takes the only slot of that window
    assert _window(taken) == (stale.satellite, stale.station_id, stale.load_until)
    late = queue(ctx, device.dev_eui, rules=rules, plan=stale)
    assert late.status == "queued"
    assert late.reason == (
        f"the load window of {stale.satellite} at {stale.station} filled up meanwhile; "
        "planning again"
    )
    run = plan_queued(ctx.db, ctx.clock.now() + timedelta(minutes=6), rules=rules)
    assert run.scheduled == 1
    assert _window(reload(ctx, late.id)) != _window(taken)


def test_the_planner_gives_limited_room_to_priority_devices_first(ctx, world, setup, clock):
    tenant, _ = setup
    rules = LoadRules(per_pass=1, reserve=0)
    normal = make_device(ctx, world, tenant, "70B3D57ED0000051", position=None)
    urgent = make_device(ctx, world, tenant, "70B3D57ED0000052", position=None)
    _prioritise(ctx, world, urgent)
    first = queue(ctx, normal.dev_eui, rules=rules)
    clock.advance(timedelta(seconds=1))
    second = queue(ctx, urgent.dev_eui, rules=rules)
    with ctx.db.write() as s:
        for d in (normal, urgent):
            row = s.get(Device, d.id)
            row.lat, row.lon = TIBET
    clock.advance(timedelta(minutes=6))
    assert plan_queued(ctx.db, clock.now(), rules=rules).scheduled == 2
    late, early = reload(ctx, first.id), reload(ctx, second.id)
    assert _window(late) != _window(early)
    assert early.estimated_delivery_at <= late.estimated_delivery_at
    with ctx.db.read() as s:
        loads = current_loads(s, clock.now(), rules)
    assert loads.used(*_window(early)) == loads.used(*_window(late)) == 1
