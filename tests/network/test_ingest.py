"""Ingest: every reject reason, de-duplication across satellites, stations and hours, replays,
late and out-of-order frames, shared DevAddrs, events in the same transaction, races."""

from __future__ import annotations

import base64
import threading
import time

import pytest
from sqlalchemy import select, update

from satiot.core.models import Event
from satiot.network import downlinks, frames, ingest_decide
from satiot.network.ground_stations import posting_station
from satiot.network.ingest import ingest_batch
from satiot.network.ingest_keys import clear_cache
from satiot.network.keys import Kek
from satiot.network.messages import AcceptedUplink
from satiot.network.models import Device, GroundStation, Uplink, UplinkReception
from tests.network.ingest_helpers import (
    T0,
    add_device,
    add_station,
    counts,
    hours,
    post,
    reasons,
    rec,
)


@pytest.fixture
def tenant(world):
    return world.tenant()


@pytest.fixture
def station(ctx, world):
    return add_station(ctx, world, "Kashgar")[0]


def _uplinks(ctx, dev=None):
    with ctx.db.read() as s:
        stmt = select(Uplink).order_by(Uplink.id)
        if dev is not None:
            stmt = stmt.where(Uplink.device_id == dev.id)
        return list(s.scalars(stmt))


def _device(ctx, dev) -> Device:
    with ctx.db.read() as s:
        found = s.get(Device, dev.id)
        assert found is not None
        return found


def test_a_mixed_batch_rejects_each_bad_item_with_its_reason_and_takes_the_rest(
    ctx, world, tenant, station
):
    good = add_device(ctx, world, tenant.id)
    late = add_device(ctx, world, tenant.id)
    parked = add_device(ctx, world, tenant.id, status="suspended")
    locked = add_device(ctx, world, tenant.id)
    worn = add_device(ctx, world, tenant.id)
    assert post(ctx, station, [rec(good.frame(5)), rec(late.frame(30_000))]).accepted == 2
    with ctx.db.write() as s:
        s.execute(update(Device).where(Device.id == locked.id).values(kek_id="another-kek"))
        s.execute(update(Device).where(Device.id == worn.id).values(f_cnt_up=2**32 - 10))
    naive = rec(good.frame(6))
    naive["received_at"] = "2026-11-25T08:00:00"
    missing = rec(good.frame(6))
    del missing["frequency_hz"]
    extra = rec(good.frame(6)) | {"colour": "red"}
    join_request = bytes([0x00]) + bytes(18) + bytes(4)
    items = [
        rec(good.frame(6)),  # 0 accepted
        naive,  # 1
        missing,  # 2
        "not an object",  # 3
        rec(good.frame(7)) | {"phy_payload": "%%%not-base64%%%"},  # 4
        rec(b"\x40\x01\x02"),  # 5 too short for a frame
        rec(join_request),  # 6
        rec(_downlink(good)),  # 7
        rec(frames.encode(**_unknown_addr())),  # 8
        rec(good.frame(9, nwk=bytes(16))),  # 9 wrong key
        rec(good.frame(5, b"other payload")),  # 10 counter 5 was another frame
        rec(late.frame(100)),  # 11 far below 30000
        rec(parked.frame(1)),  # 12
        rec(locked.frame(1)),  # 13
        rec(worn.frame(100)),  # 14 counter would pass 2**32
        extra,  # 15
        rec(good.frame(10)),  # 16 accepted
        rec(good.frame(5)),  # 17 a copy of an accepted frame
        rec(good.frame(6), rssi_dbm=float("nan")),  # 18
        rec(good.frame(6)) | {"received_at": "yesterday"},  # 19
        rec(good.frame(6)) | {"frequency_hz": True},  # 20
    ]
    result = post(ctx, station, items)
    assert reasons(result) == {
        1: "invalid-reception",
        2: "invalid-reception",
        3: "invalid-reception",
        4: "bad-base64",
        5: "malformed-frame",
        6: "not-data-uplink",
        7: "not-data-uplink",
        8: "unknown-dev-addr",
        9: "mic-failure",
        10: "replayed-counter",
        11: "stale-counter",
        12: "device-inactive",
        13: "session-unavailable",
        14: "counter-exhausted",
        15: "invalid-reception",
        18: "invalid-reception",
        19: "invalid-reception",
        20: "invalid-reception",
    }
    assert (result.accepted, result.duplicates) == (2, 1)
    details = {r.index: r.detail for r in result.rejected}
    assert "time zone" in details[1]
    assert details[2].startswith("frequency_hz")
    assert details[15].startswith("colour")
    assert all(r.detail for r in result.rejected)
    assert [u.f_cnt for u in _uplinks(ctx, good)] == [5, 6, 10]
    assert _device(ctx, good).f_cnt_up == 10


def _downlink(dev):
    return frames.encode(
        mtype=frames.MType.UNCONFIRMED_DOWN,
        dev_addr=dev.dev_addr,
        f_cnt32=1,
        f_port=1,
        payload=b"x",
        nwk_s_key=dev.nwk,
        app_s_key=dev.app,
    )


def _unknown_addr():
    return {
        "mtype": frames.MType.UNCONFIRMED_UP,
        "dev_addr": 0x01020304,
        "f_cnt32": 1,
        "f_port": 1,
        "payload": b"x",
        "nwk_s_key": bytes(16),
        "app_s_key": bytes(16),
    }


def test_an_uplink_is_verified_decrypted_and_stored_with_its_flags(ctx, world, tenant, station):
    dev = add_device(ctx, world, tenant.id)
    items = [
        rec(dev.frame(1, b"sensor data", confirmed=True, ack=True)),
        rec(dev.frame(2, b"\x03\x05", f_port=0)),  # MAC commands: NwkSKey
        rec(dev.frame(3, f_port=None)),  # no port, no payload
    ]
    assert post(ctx, station, items).accepted == 3
    one, two, three = _uplinks(ctx, dev)
    assert (one.payload, one.f_port, one.confirmed, one.ack) == (b"sensor data", 1, True, True)
    assert (two.payload, two.f_port, two.confirmed) == (b"\x03\x05", 0, False)
    assert (three.payload, three.f_port) == (b"", None)
    assert one.mic == int.from_bytes(dev.frame(1, b"sensor data", confirmed=True, ack=True)[-4:])
    assert one.tenant_id == tenant.id and one.dev_eui == dev.dev_eui
    assert one.received_at == T0 and one.accepted_at == ctx.clock.now()
    device = _device(ctx, dev)
    assert device.f_cnt_up == 3 and device.last_seen_at == T0
    with ctx.db.read() as s:
        gs = s.get(GroundStation, station)
        assert gs is not None and gs.last_seen_at == ctx.clock.now()


def test_copies_via_other_satellites_and_stations_hours_apart_are_one_uplink(
    ctx, world, tenant, station, clock
):
    other = add_station(ctx, world, "Sanya")[0]
    dev = add_device(ctx, world, tenant.id)
    phy = dev.frame(42, b"hello")
    first = post(ctx, station, [rec(phy, satellite="SAT-1", at=T0)])
    assert (first.accepted, first.duplicates) == (1, 0)
    clock.advance(hours(3))
    later = post(ctx, other, [rec(phy, satellite="SAT-7", at=T0 + hours(3))])
    clock.advance(hours(9))
    much_later = post(
        ctx, station, [rec(phy, satellite="SAT-2", at=T0 + hours(12)), rec(phy, satellite="SAT-3")]
    )
    assert (later.accepted, later.duplicates) == (0, 1)
    assert (much_later.accepted, much_later.duplicates) == (0, 2)
    (uplink,) = _uplinks(ctx, dev)
    assert uplink.reception_count == 4 and uplink.payload == b"hello"
    with ctx.db.read() as s:
        copies = s.execute(
            select(UplinkReception.satellite, UplinkReception.ground_station_id)
        ).all()
    assert sorted(copies) == sorted(
        [("SAT-1", station), ("SAT-7", other), ("SAT-2", station), ("SAT-3", station)]
    )
    assert counts(ctx) == (1, 4, 1)


def test_a_retried_post_is_all_duplicates_and_adds_nothing(ctx, world, tenant, station):
    dev = add_device(ctx, world, tenant.id)
    batch = [rec(dev.frame(i), satellite=f"SAT-{i % 3}") for i in range(1, 21)]
    batch += [rec(dev.frame(3), satellite="SAT-9")]  # a second copy inside the batch
    first = post(ctx, station, batch)
    assert (first.accepted, first.duplicates, first.rejected) == (20, 1, [])
    before = counts(ctx)
    again = post(ctx, station, batch)
    assert (again.accepted, again.duplicates, again.rejected) == (0, 21, [])
    assert counts(ctx) == before == (20, 21, 20)
    assert sum(u.reception_count for u in _uplinks(ctx, dev)) == 21


def test_the_same_copy_twice_in_one_batch_is_one_reception(ctx, world, tenant, station):
    dev = add_device(ctx, world, tenant.id)
    result = post(ctx, station, [rec(dev.frame(1)), rec(dev.frame(1))])
    assert (result.accepted, result.duplicates) == (1, 1)
    assert counts(ctx) == (1, 1, 1)
    assert _uplinks(ctx, dev)[0].reception_count == 1


def test_same_counter_other_mic_is_a_replay_same_bytes_a_duplicate(ctx, world, tenant, station):
    dev = add_device(ctx, world, tenant.id)
    assert post(ctx, station, [rec(dev.frame(7, b"original"))]).accepted == 1
    result = post(
        ctx,
        station,
        [
            rec(dev.frame(7, b"forged"), satellite="SAT-2"),
            rec(dev.frame(7, b"original"), satellite="SAT-3"),
        ],
    )
    assert reasons(result) == {0: "replayed-counter"}
    assert result.duplicates == 1
    (uplink,) = _uplinks(ctx, dev)
    assert uplink.payload == b"original" and uplink.reception_count == 2
    # a replay inside one batch: the first frame with the counter wins
    result = post(ctx, station, [rec(dev.frame(8, b"a")), rec(dev.frame(8, b"b"))])
    assert (result.accepted, reasons(result)) == (1, {1: "replayed-counter"})


def test_late_and_out_of_order_frames_within_the_window_are_accepted(ctx, world, tenant, station):
    dev = add_device(ctx, world, tenant.id)
    assert post(ctx, station, [rec(dev.frame(1000))]).accepted == 1
    result = post(ctx, station, [rec(dev.frame(500)), rec(dev.frame(999)), rec(dev.frame(1001))])
    assert (result.accepted, result.rejected) == (3, [])
    assert post(ctx, station, [rec(dev.frame(2))]).accepted == 1
    assert [u.f_cnt for u in _uplinks(ctx, dev)] == [1000, 500, 999, 1001, 2]
    assert _device(ctx, dev).f_cnt_up == 1001


def test_a_counter_below_the_window_is_stale_unless_it_is_a_known_copy(ctx, world, tenant, station):
    dev = add_device(ctx, world, tenant.id)
    assert post(ctx, station, [rec(dev.frame(10)), rec(dev.frame(5000))], window=100).accepted == 2
    result = post(
        ctx,
        station,
        [rec(dev.frame(11)), rec(dev.frame(10), satellite="SAT-5"), rec(dev.frame(4900))],
        window=100,
    )
    assert reasons(result) == {0: "stale-counter"}
    assert (result.accepted, result.duplicates) == (1, 1)
    # the window follows the newest counter inside a batch too
    result = post(ctx, station, [rec(dev.frame(9000)), rec(dev.frame(4950))], window=100)
    assert reasons(result) == {1: "stale-counter"}


def test_a_counter_past_a_16_bit_rollover_is_recovered(ctx, world, tenant, station):
    dev = add_device(ctx, world, tenant.id)
    assert post(ctx, station, [rec(dev.frame(65_530))]).accepted == 1
    assert post(ctx, station, [rec(dev.frame(65_536 + 3))]).accepted == 1
    assert [u.f_cnt for u in _uplinks(ctx, dev)] == [65_530, 65_539]


def test_a_shared_dev_addr_is_resolved_by_the_mic(ctx, world, tenant, station):
    other_tenant = world.tenant()
    a = add_device(ctx, world, tenant.id, dev_addr=0x26ABCDEF)
    b = add_device(ctx, world, other_tenant.id, dev_addr=0x26ABCDEF)
    c = add_device(ctx, world, tenant.id, dev_addr=0x26ABCDEF, status="inventory")
    result = post(
        ctx,
        station,
        [rec(a.frame(1, b"from a")), rec(b.frame(1, b"from b")), rec(b.frame(2)), rec(c.frame(1))],
    )
    assert (result.accepted, reasons(result)) == (3, {3: "device-inactive"})
    assert [(u.payload, u.tenant_id) for u in _uplinks(ctx, a)] == [(b"from a", tenant.id)]
    assert [u.f_cnt for u in _uplinks(ctx, b)] == [1, 2]
    assert _uplinks(ctx, b)[0].tenant_id == other_tenant.id


def test_frames_of_an_inactive_device_are_refused_until_it_is_active_again(
    ctx, world, tenant, station
):
    from satiot.network.devices import set_device_status

    dev = add_device(ctx, world, tenant.id)
    with ctx.db.write() as s:
        set_device_status(s, world.system, dev.dev_eui, "suspended", at=T0, reason="test")
    assert reasons(post(ctx, station, [rec(dev.frame(1))])) == {0: "device-inactive"}
    with ctx.db.write() as s:
        set_device_status(s, world.system, dev.dev_eui, "active", at=T0, reason="test")
    assert post(ctx, station, [rec(dev.frame(1))]).accepted == 1


def test_received_at_is_fixed_at_acceptance_from_the_earliest_copy_then(
    ctx, world, tenant, station
):
    dev = add_device(ctx, world, tenant.id)
    phy = dev.frame(1)
    post(
        ctx,
        station,
        [rec(phy, satellite="A", at=T0 + hours(2)), rec(phy, satellite="B", at=T0 + hours(1))],
    )
    post(ctx, station, [rec(phy, satellite="C", at=T0)])  # an even earlier copy, arriving late
    (uplink,) = _uplinks(ctx, dev)
    assert uplink.received_at == T0 + hours(1)
    assert uplink.reception_count == 3


def test_each_accepted_uplink_emits_one_event_with_the_message(ctx, world, tenant, station):
    dev = add_device(ctx, world, tenant.id)
    phy = dev.frame(3, b"payload", confirmed=True)
    post(ctx, station, [rec(phy, satellite="SAT-1"), rec(phy, satellite="SAT-2", at=T0 + hours(1))])
    post(ctx, station, [rec(phy, satellite="SAT-3"), rec(dev.frame(4))])
    with ctx.db.read() as s:
        evs = list(
            s.scalars(select(Event).where(Event.type == "uplink.accepted").order_by(Event.seq))
        )
    (uplink3, uplink4) = _uplinks(ctx, dev)
    assert [e.payload["id"] for e in evs] == [str(uplink3.id), str(uplink4.id)]
    first = evs[0]
    assert first.tenant_id == tenant.id
    assert (first.subject_type, first.subject_id) == ("device", dev.dev_eui)
    assert first.payload == {
        "type": "uplink.accepted",
        "id": str(uplink3.id),
        "tenant_id": str(tenant.id),
        "dev_eui": dev.dev_eui,
        "f_cnt": 3,
        "f_port": 1,
        "payload": base64.b64encode(b"payload").decode(),
        "confirmed": True,
        "ack": False,
        "received_at": "2026-11-25T08:00:00Z",
        "accepted_at": "2026-11-25T08:00:00Z",
        "receptions": [
            {
                "ground_station_id": str(station),
                "ground_station": "Kashgar",
                "satellite": sat,
                "received_at": when,
                "frequency_hz": 400_100_000,
                "rssi_dbm": -128.5,
                "snr_db": -3.5,
                "doppler_hz": 1234.5,
            }
            for sat, when in (("SAT-1", "2026-11-25T08:00:00Z"), ("SAT-2", "2026-11-25T09:00:00Z"))
        ],
    }


def test_the_uplinks_and_their_events_commit_together_or_not_at_all(
    ctx, world, tenant, station, monkeypatch
):
    dev = add_device(ctx, world, tenant.id)
    with ctx.db.write() as s:
        gs = posting_station(s, station)
        result = ingest_batch(s, gs, [rec(dev.frame(1))], kek=ctx.kek, at=T0, fcnt_window=16384)
        assert result.accepted == 1
        s.rollback()
    assert counts(ctx) == (0, 0, 0)

    def broken(*_a, **_k):
        raise RuntimeError("downlink queue failed")

    monkeypatch.setattr(downlinks, "on_acks", broken)
    with pytest.raises(RuntimeError):
        post(ctx, station, [rec(dev.frame(1))])
    assert counts(ctx) == (0, 0, 0)
    assert _device(ctx, dev).f_cnt_up is None


def test_the_downlink_queue_hears_of_every_new_ack_in_the_transaction(
    ctx, world, tenant, station, monkeypatch
):
    dev = add_device(ctx, world, tenant.id)
    heard: list[AcceptedUplink] = []

    def on_acks(session, acks, *, at):
        assert session.in_transaction()
        heard.extend(acks)

    monkeypatch.setattr(downlinks, "on_acks", on_acks)
    post(ctx, station, [rec(dev.frame(1, ack=True), satellite="S2"), rec(dev.frame(1, ack=True))])
    post(ctx, station, [rec(dev.frame(1, ack=True), satellite="S3")])  # a copy: no news
    post(ctx, station, [rec(dev.frame(2))])  # no ACK: nothing to settle
    up, no_ack = sorted(_uplinks(ctx, dev), key=lambda u: u.f_cnt)
    assert no_ack.f_cnt == 2
    assert heard == [
        AcceptedUplink(
            uplink_id=up.id,
            device_id=dev.id,
            tenant_id=tenant.id,
            dev_eui=dev.dev_eui,
            f_cnt=1,
            ack=True,
            confirmed=False,
            received_at=T0,
            satellites=("S2", "SAT-1"),
        )
    ]


def test_session_keys_are_opened_once_per_device_not_per_frame(
    ctx, world, tenant, station, monkeypatch
):
    devs = [add_device(ctx, world, tenant.id) for _ in range(3)]
    opened = []
    real_open = Kek.open

    def counting_open(self, sealed, aad):
        opened.append(aad)
        return real_open(self, sealed, aad)

    monkeypatch.setattr(Kek, "open", counting_open)
    clear_cache()
    for batch in range(4):
        post(ctx, station, [rec(d.frame(batch * 10 + i)) for d in devs for i in range(5)])
    assert len(opened) == 6  # two keys per device, once


def _second_waits_for_first(ctx, first_post, second_post):
    """Ingest ``first_post`` (station, items) in a transaction left open while another thread
    posts ``second_post``; check the second waits, then commit. Both results."""
    s1 = ctx.db.writer()
    s1.begin()
    gs = posting_station(s1, first_post[0])
    first = ingest_batch(s1, gs, first_post[1], kek=ctx.kek, at=T0, fcnt_window=100)
    second: list = []
    t = threading.Thread(target=lambda: second.append(post(ctx, *second_post)))
    t.start()
    time.sleep(0.5)
    assert t.is_alive(), "the second poster must wait for the first"
    s1.commit()
    s1.close()
    t.join(10)
    (result,) = second
    return first, result


def test_a_race_for_the_same_frame_stores_one_uplink_with_both_receptions(
    ctx, world, tenant, station, request, monkeypatch
):
    """Two stations post the same new frame at once: the second transaction's INSERT meets the
    first one's row (PostgreSQL: it waits on the unique index, then skips and re-reads;
    SQLite: its BEGIN IMMEDIATE waits), and its copy joins the winner's uplink."""
    other = add_station(ctx, world, "Sanya")[0]
    dev = add_device(ctx, world, tenant.id)
    phy = dev.frame(1)
    races = []
    real = ingest_decide.Batch.lost_race

    def spy(self, lost, winners):
        races.append(len(lost))
        return real(self, lost, winners)

    monkeypatch.setattr(ingest_decide.Batch, "lost_race", spy)
    first, result = _second_waits_for_first(
        ctx,
        (station, [rec(phy, satellite="A")]),
        (other, [rec(phy, satellite="B"), rec(dev.frame(1, b"forged"), satellite="C")]),
    )
    assert first.accepted == 1
    assert (result.accepted, result.duplicates, reasons(result)) == (0, 1, {1: "replayed-counter"})
    assert counts(ctx) == (1, 2, 1)
    assert _uplinks(ctx, dev)[0].reception_count == 2
    if request.config.getoption("--db") == "postgresql":
        assert races == [1]  # the ON CONFLICT path ran


def test_an_unknown_station_is_not_found_and_a_foreign_key_is_refused(ctx, world, station):
    import uuid

    from satiot.core.auth.credentials import authenticate_api_key
    from satiot.core.errors import NotFound, PermissionDenied
    from satiot.network.ingest import ingest

    with pytest.raises(NotFound):
        post(ctx, uuid.uuid4(), [])
    _, other_key = add_station(ctx, world, "Other")
    with ctx.db.read() as s:
        other = authenticate_api_key(s, other_key, T0)
    with pytest.raises(PermissionDenied, match="another ground station"):
        ingest(ctx.db, station, [], kek=ctx.kek, at=T0, fcnt_window=10, principal=other)
    assert counts(ctx) == (0, 0, 0)


def test_an_uplink_insert_reports_only_the_rows_it_wrote(ctx, world, tenant, station):
    """What a transaction that lost the race sees: its row for a stored (device, FCnt) is
    skipped and left out of the ids it gets back (RETURNING on PostgreSQL, the row count and
    one query on SQLite)."""
    from satiot.core.bulk import stored_id
    from satiot.core.ids import new_id
    from satiot.network.ingest_store import UplinkRow, insert_uplinks

    dev = add_device(ctx, world, tenant.id)
    post(ctx, station, [rec(dev.frame(1))])
    (stored,) = _uplinks(ctx, dev)

    def row(s, f_cnt, uplink_id):
        return UplinkRow(
            id=stored_id(s, uplink_id),  # rows carry ids as the database stores them
            tenant_id=stored_id(s, tenant.id),
            device_id=stored_id(s, dev.id),
            dev_eui=dev.dev_eui,
            f_cnt=f_cnt,
            f_port=1,
            mic=7,
            confirmed=False,
            ack=False,
            adr=False,
            f_opts=b"",
            payload=b"",
            received_at=T0,
            accepted_at=T0,
            reception_count=1,
        )

    won_id = new_id()  # after the stored uplink's, as ingest's ids are
    with ctx.db.write() as s:
        lost, won = row(s, 1, new_id()), row(s, 2, won_id)
        assert insert_uplinks(s, [lost, won]) == {stored_id(s, won_id)}
    assert [u.id for u in _uplinks(ctx, dev)] == [stored.id, won_id]


def test_stations_posting_the_same_frames_at_once_store_each_frame_once(ctx, world, tenant):
    """Four stations post copies of the same 120 frames concurrently, each in its own order:
    every frame is one uplink with four receptions and one event, whichever won each race."""
    import random

    devs = [add_device(ctx, world, tenant.id) for _ in range(6)]
    stations = [add_station(ctx, world)[0] for _ in range(4)]
    phys = [dev.frame(n) for dev in devs for n in range(20)]
    errors: list[BaseException] = []

    def station_loop(k: int) -> None:
        order = phys[:]
        random.Random(k).shuffle(order)
        try:
            for i in range(0, len(order), 30):
                part = [rec(p, satellite=f"SAT-{k}") for p in order[i : i + 30]]
                assert post(ctx, stations[k], part).rejected == []
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=station_loop, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert counts(ctx) == (120, 480, 120)
    assert {u.reception_count for u in _uplinks(ctx)} == {4}


def test_a_throttled_device_gets_one_new_message_per_interval(ctx, world):
    """At a contract's quota with throttling the BSS sets an interval; ingest then takes one
    new message per interval of reception time, in and across batches. A copy of a message
    already taken is still a duplicate, never throttled."""
    station, _ = add_station(ctx, world)
    dev = add_device(ctx, world, world.tenant().id)
    with ctx.db.write() as s:
        s.execute(update(Device).where(Device.id == dev.id).values(throttle_gap_s=3600))
    first = post(ctx, station, [rec(dev.frame(1), at=T0), rec(dev.frame(2), at=T0 + hours(0.5))])
    assert first.accepted == 1 and reasons(first) == {1: "throttled"}
    assert "one message per 3600 s" in first.rejected[0].detail
    later = post(
        ctx,
        station,
        [
            rec(dev.frame(1), satellite="SAT-2", at=T0 + hours(0.7)),  # a copy: duplicate
            rec(dev.frame(3), at=T0 + hours(0.9)),  # still too soon (the limit is stored)
            rec(dev.frame(4), at=T0 + hours(1)),  # an hour after the first: taken
            rec(dev.frame(5), at=T0 + hours(1.5)),
        ],
    )
    assert (later.accepted, later.duplicates) == (1, 1)
    assert reasons(later) == {1: "throttled", 3: "throttled"}
    with ctx.db.write() as s:  # the month is over: the BSS lifts it
        s.execute(update(Device).where(Device.id == dev.id).values(throttle_gap_s=None))
    free = post(ctx, station, [rec(dev.frame(n), at=T0 + hours(2)) for n in (6, 7, 8)])
    assert free.accepted == 3


def _throttle(ctx, dev, next_at=None) -> None:
    with ctx.db.write() as s:
        s.execute(
            update(Device)
            .where(Device.id == dev.id)
            .values(throttle_gap_s=3600, throttle_next_at=next_at)
        )


def test_a_throttled_device_posted_by_two_stations_at_once_gets_one_message_through(
    ctx, world, tenant, station
):
    """Two stations post different new frames of one throttled device while the first
    transaction is still open: the second waits for it (the device's row is locked on
    PostgreSQL; SQLite's writer lock) and then decides on what it admitted."""
    other = add_station(ctx, world, "Sanya")[0]
    dev = add_device(ctx, world, tenant.id)
    _throttle(ctx, dev)
    first, result = _second_waits_for_first(
        ctx,
        (station, [rec(dev.frame(1), satellite="A")]),
        (other, [rec(dev.frame(2), satellite="B"), rec(dev.frame(1), satellite="C")]),
    )
    assert first.accepted == 1
    # its copy of the frame the first took is a duplicate; its new frame came too soon
    assert (result.accepted, result.duplicates, reasons(result)) == (0, 1, {0: "throttled"})
    assert counts(ctx) == (1, 2, 1)
    assert _device(ctx, dev).throttle_next_at == T0 + hours(1)


def test_racing_stations_admit_one_message_per_interval_of_a_throttled_device(ctx, world, tenant):
    """Two threads post a different new frame of the same throttled device at the same
    instant, round after round: each round exactly one is accepted and one throttled."""
    stations = [add_station(ctx, world)[0] for _ in range(2)]
    dev = add_device(ctx, world, tenant.id)
    _throttle(ctx, dev)
    rounds = 6
    for n in range(rounds):
        at = T0 + hours(2 * n)  # a new interval each round
        barrier = threading.Barrier(2)
        results: list = [None, None]
        errors: list[BaseException] = []

        def poster(k: int, at=at, barrier=barrier, results=results, errors=errors, n=n) -> None:
            try:
                items = [rec(dev.frame(2 * n + k + 1), satellite=f"SAT-{k}", at=at)]
                barrier.wait(10)
                results[k] = post(ctx, stations[k], items)
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=poster, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors
        outcomes = sorted((r.accepted, tuple(reasons(r).values())) for r in results)
        assert outcomes == [(0, ("throttled",)), (1, ())], (n, outcomes)
    assert counts(ctx)[0] == rounds
    assert _device(ctx, dev).throttle_next_at == T0 + hours(2 * (rounds - 1) + 1)
