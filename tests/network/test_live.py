"""The live twin: pacing, the idempotent setup, and ground stations posting through the API."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from satiot.api.context import AppContext
from satiot.core.clock import ManualClock
from satiot.core.models import ApiKey, Tenant
from satiot.network import live
from satiot.network.live_downlinks import DownlinkSide
from satiot.network.live_feed import (
    BATCH_SIZE,
    MAX_BACKOFF_S,
    Due,
    Pacer,
    ReceptionQueue,
    StationClient,
    backoff_s,
    batches,
)
from satiot.network.live_setup import DEMO_TENANT_SLUG, Prepared, prepare
from satiot.network.models import Device, GroundStation, Satellite, Uplink, UplinkReception
from satiot.network.receptions import Reception
from satiot.network.scenario import Scenario
from satiot.network.twin import TwinRun
from tests.factories import World

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _small(terminals: int = 120) -> tuple[Scenario, list]:
    scenario, tles = live.load(live.PACKAGED_SCENARIO)
    return scenario.scaled(terminals), tles


def _z(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _reception(at: datetime) -> Reception:
    return Reception("TQ-A01", at, 400_100_000, -130.0, 5.0, 100.0, b"\x40" + bytes(12))


# ---- the packaged scenario ------------------------------------------------------------------


def test_the_packaged_scenario_is_the_repositorys():
    assert live.PACKAGED_SCENARIO.read_text() == (REPO / "scenarios/tianqi-like.toml").read_text()


def test_settings_choose_the_scenario(tmp_path: Path):
    from satiot.core.config import Settings

    assert live.default_scenario(Settings(data_dir=tmp_path)) == live.PACKAGED_SCENARIO
    other = tmp_path / "mine.toml"
    assert live.default_scenario(Settings(data_dir=tmp_path, twin_scenario=other)) == other


# ---- pacing ---------------------------------------------------------------------------------


def test_pacer_maps_simulated_seconds_to_real_instants():
    pacer = Pacer(T0, speed=60.0)
    assert pacer.simulated_at(T0 - timedelta(seconds=5)) == 0.0
    assert pacer.simulated_at(T0 + timedelta(seconds=10)) == 600.0
    assert pacer.instant(600.0) == T0 + timedelta(seconds=10)
    assert pacer.seconds_until(1200.0, T0 + timedelta(seconds=10)) == pytest.approx(10.0)
    assert pacer.seconds_until(60.0, T0 + timedelta(seconds=10)) == 0.0
    # A twin record stamped in simulated time comes out stamped with its real instant.
    t, real = pacer.restamp(_reception(T0 + timedelta(hours=1)), T0)
    assert t == 3600.0 and real.received_at == T0 + timedelta(seconds=60)


def test_at_speed_one_simulated_and_real_time_coincide():
    pacer = Pacer(T0, speed=1.0)
    now = T0 + timedelta(minutes=7)
    assert pacer.instant(pacer.simulated_at(now)) == now


@pytest.mark.parametrize("speed", [0.0, -1.0])
def test_pacer_refuses_a_speed_that_is_not_positive(speed: float):
    with pytest.raises(ValueError, match="positive"):
        Pacer(T0, speed)


def test_queue_releases_in_time_order_only_what_is_due():
    queue = ReceptionQueue()
    for t in (10.0, 20.0, 30.0):
        queue.add(Due(t, "Beijing", _reception(T0), T0))
    assert queue.next_due_s() == 10.0
    assert [d.simulated_s for d in queue.pop_due(20.0)] == [10.0, 20.0]
    assert len(queue) == 1 and queue.pop_due(29.9) == []


def test_batches_are_at_most_the_batch_size():
    records = [_reception(T0)] * (2 * BATCH_SIZE + 1)
    assert [len(b) for b in batches(records)] == [BATCH_SIZE, BATCH_SIZE, 1]


def test_backoff_grows_and_is_capped():
    import random

    rng = random.Random(1)
    first = [backoff_s(1, rng=rng) for _ in range(50)]
    assert all(0.375 <= b <= 0.625 for b in first)
    assert all(backoff_s(30, rng=rng) <= MAX_BACKOFF_S * 1.25 for _ in range(50))


# ---- the twin advanced window by window -----------------------------------------------------


def test_advancing_window_by_window_is_the_same_run():
    scenario, tles = _small(300)
    whole = TwinRun(scenario, tles, 1.0).run()
    stepped = TwinRun(scenario, tles, 1.0)
    seen: list[int] = []
    while stepped.simulated_s < 3600.0:
        stepped.advance(lambda _station, rx: seen.append(len(rx)))
    assert stepped.simulated_s == 3600.0
    assert stepped.report.delivered == whole.delivered > 0
    assert stepped.report.per_station == whole.per_station
    assert sum(seen) == sum(whole.per_station.values())


def test_forgetting_settled_messages_keeps_the_counts_exact():
    scenario, tles = _small(300)
    whole = TwinRun(scenario, tles, 2.0).run()
    lean = TwinRun(scenario, tles, 2.0)
    while lean.simulated_s < 7200.0:
        lean.advance()
        lean.forget_settled()
        held = {item.message for store in lean.stores for item in store}
        assert set(lean._first_receipt) <= held  # only messages with copies still on board
    assert (lean.report.delivered, lean.report.duplicates) == (whole.delivered, whole.duplicates)
    assert lean.report.per_station == whole.per_station
    assert lean.report.latencies_s == []


def test_the_sink_learns_when_each_downloaded_frame_was_transmitted():
    scenario, tles = _small(300)
    twin = TwinRun(scenario, tles, 1.0)
    pairs: list[tuple[float, float]] = []

    def sink(_station: str, receptions) -> None:
        assert len(twin.sink_transmitted_s) == len(receptions)
        start = twin.scenario.start
        for r, sent in zip(receptions, twin.sink_transmitted_s, strict=True):
            pairs.append((sent, (r.received_at - start).total_seconds()))

    twin.advance(sink)
    assert pairs and all(0.0 <= sent <= received for sent, received in pairs)


def test_elevations_follow_the_satellites():
    scenario, tles = _small(10)
    twin = TwinRun(scenario, tles, 1.0)
    el = twin.elevations_deg(0.0)
    assert el.shape == (len(scenario.ground_stations), len(tles))
    assert np.all((el >= -90.0) & (el <= 90.0))
    later = twin.elevations_deg(600.0)
    assert not np.allclose(el, later)


# ---- setup ----------------------------------------------------------------------------------


def test_setup_is_idempotent_across_restarts(ctx: AppContext, world: World):
    scenario, tles = _small()
    first = prepare(ctx.db, ctx.kek, scenario, tles, live.terminals(scenario), at=T0)
    assert first.created_devices == scenario.terminals and first.existing_devices == 0
    # The server accepted frames up to some counter from one device: a restart moves past it.
    eui = live.terminals(scenario).session(5).dev_eui
    with ctx.db.write() as s:
        s.scalar(select(Device).where(Device.dev_eui == eui)).f_cnt_up = 41
    again = prepare(
        ctx.db, ctx.kek, scenario, tles, live.terminals(scenario), at=T0 + timedelta(hours=1)
    )
    assert again.created_devices == 0 and again.existing_devices == scenario.terminals
    assert again.f_cnt[5] == 42 and again.f_cnt[4] == 0
    assert again.station_ids == first.station_ids
    assert again.keys.keys() == first.keys.keys()
    assert set(again.keys.values()).isdisjoint(first.keys.values())  # rotated on each start
    with ctx.db.read() as s:
        assert s.scalar(select(func.count(Satellite.id))) == len(tles)
        assert s.scalar(select(func.count(GroundStation.id))) == len(scenario.ground_stations)
        assert s.scalar(select(func.count(Tenant.id)).where(Tenant.slug == DEMO_TENANT_SLUG)) == 1
        demo = s.scalar(select(Tenant).where(Tenant.slug == DEMO_TENANT_SLUG))
        devices = list(s.scalars(select(Device)))
        assert len(devices) == scenario.terminals
        assert {d.tenant_id for d in devices} == {demo.id}
        assert all(d.lat is not None and -180.0 <= d.lon <= 180.0 for d in devices)
        live_keys = s.scalar(
            select(func.count(ApiKey.id)).where(
                ApiKey.role == "ground-station", ApiKey.revoked_at.is_(None)
            )
        )
        assert live_keys == len(scenario.ground_stations)


# ---- posting through the API of a real app --------------------------------------------------


def _feed(
    ctx: AppContext, client: TestClient, scenario: Scenario, tles: list, speed: float
) -> tuple[live.LiveFeed, Prepared]:
    prepared = prepare(ctx.db, ctx.kek, scenario, tles, live.terminals(scenario), at=T0)
    twin = live.start_twin(scenario, tles, ctx.clock.now())
    twin.population.f_cnt[:] = prepared.f_cnt
    stop = threading.Event()
    station = StationClient(client, prepared.keys.__getitem__, lambda sid: prepared.keys[sid], stop)
    feed = live.LiveFeed(twin, Pacer(ctx.clock.now(), speed), prepared, station, None, ctx.clock)
    return feed, prepared


def test_stations_post_through_the_api_and_uplinks_are_stored(
    ctx: AppContext, world: World, client: TestClient, clock: ManualClock
):
    scenario, tles = _small(400)
    feed, _ = _feed(ctx, client, scenario, tles, speed=60.0)
    feed.step()  # nothing is due at the very start
    assert feed.stats.posted == 0
    clock.advance(60)  # one simulated hour at 60x
    feed.step()
    stats = feed.stats
    assert stats.posted > 0 and stats.dropped_batches == 0 and stats.rejected == 0
    assert stats.accepted + stats.duplicates == stats.posted
    with ctx.db.read() as s:
        uplinks = s.scalar(select(func.count(Uplink.id)))
        receptions = s.scalar(select(func.count(UplinkReception.id)))
        newest = s.scalar(select(func.max(UplinkReception.received_at)))
    assert uplinks == stats.accepted and receptions == stats.posted
    # Real timestamps: within the minute of wall time that passed, not an hour ahead.
    assert T0 < newest <= clock.now()
    # Nothing simulated beyond what is due was posted; the rest waits in the queue.
    assert all(d.simulated_s > 3600.0 for d in feed.queue.pop_due(float("inf")))


def test_a_restarted_feed_is_not_taken_for_a_replay(
    ctx: AppContext, world: World, client: TestClient, clock: ManualClock
):
    scenario, tles = _small(300)
    feed, _ = _feed(ctx, client, scenario, tles, speed=120.0)
    clock.advance(30)
    feed.step()
    assert feed.stats.accepted > 0
    # Restart: a new twin from the same seed, counters moved past what was accepted.
    again, _ = _feed(ctx, client, scenario, tles, speed=120.0)
    clock.advance(30)
    again.step()
    assert again.stats.accepted > 0 and again.stats.rejected == 0


# ---- retrying like a real station -----------------------------------------------------------


def _client(handler, renewed: list[str]) -> StationClient:
    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://server")
    keys = {"gs": "sk_old"}

    def renew(station_id: str) -> str:
        renewed.append(station_id)
        keys[station_id] = "sk_new"
        return "sk_new"

    return StationClient(http, keys.__getitem__, renew, threading.Event())


def test_a_station_retries_server_errors_and_renews_a_refused_key(monkeypatch):
    monkeypatch.setattr("satiot.network.live_feed.backoff_s", lambda attempt, rng=None: 0.0)
    seen: list[tuple[str, str]] = []
    answers = iter([503, 401, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers["authorization"], request.url.path))
        code = next(answers)
        if code == 200:
            return httpx.Response(200, json={"accepted": 1, "duplicates": 0, "rejected": []})
        return httpx.Response(code, json={"detail": "no"})

    renewed: list[str] = []
    station = _client(handler, renewed)
    station.post_receptions("gs", [_reception(T0)])
    assert [auth for auth, _ in seen] == ["Bearer sk_old", "Bearer sk_old", "Bearer sk_new"]
    assert renewed == ["gs"] and station.stats.accepted == 1 and station.stats.retries == 1


def test_a_station_drops_a_batch_the_server_refuses_for_good():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"detail": "bad"})

    station = _client(handler, [])
    station.post_receptions("gs", [_reception(T0)] * 3)
    assert station.stats.dropped_batches == 1 and station.stats.posted == 0


def test_a_station_halves_a_batch_the_server_finds_too_large():
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        n = len(json.loads(request.content)["receptions"])
        sizes.append(n)
        if n > 2:
            return httpx.Response(413, json={"detail": "too large"})
        return httpx.Response(200, json={"accepted": n, "duplicates": 0, "rejected": []})

    station = _client(handler, [])
    station.post_receptions("gs", [_reception(T0)] * 5)
    assert sizes == [5, 2, 3, 1, 2]
    assert station.stats.accepted == 5 and station.stats.dropped_batches == 0


# ---- the stations' downlink side ------------------------------------------------------------


def test_stations_load_downlinks_in_view_and_report_them_sent_after_the_next_uplink():
    scenario, tles = _small(50)
    twin = live.start_twin(scenario, tles, T0)
    el = twin.elevations_deg(0.0)[0]  # the first station, at the start
    up = int(np.argmax(el))
    down = int(np.argmin(el))
    assert el[up] >= twin.gs_mask[0] > el[down]
    sessions = [twin.population.session(i) for i in range(3)]
    listed = {
        "items": [
            {
                "id": "a",
                "dev_eui": sessions[0].dev_eui,
                "satellite": tles[up].name,
                "status": "scheduled",
                "load_at": _z(T0 - timedelta(minutes=1)),
                "load_until": _z(T0 + timedelta(minutes=5)),
            },
            {  # in view, but its load window opens later
                "id": "early",
                "dev_eui": sessions[1].dev_eui,
                "satellite": tles[up].name,
                "status": "scheduled",
                "load_at": _z(T0 + timedelta(hours=1)),
                "load_until": _z(T0 + timedelta(hours=1, minutes=5)),
            },
            {  # in view, but its load window closed: the planner plans it again
                "id": "late",
                "dev_eui": sessions[1].dev_eui,
                "satellite": tles[up].name,
                "status": "scheduled",
                "load_at": _z(T0 - timedelta(minutes=20)),
                "load_until": _z(T0 - timedelta(minutes=10)),
            },
            {
                "id": "b",
                "dev_eui": sessions[1].dev_eui,
                "satellite": tles[down].name,
                "status": "scheduled",
            },
            {
                "id": "c",
                "dev_eui": sessions[2].dev_eui,
                "satellite": "NOPE-1",
                "status": "scheduled",
            },
        ]
    }
    posted: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            assert request.url.path == "/api/v1/ground-stations/gs-0/downlinks"
            return httpx.Response(200, json=listed)
        posted.extend(json.loads(request.content)["receipts"])
        return httpx.Response(200, json={"applied": 1, "duplicates": 0, "rejected": []})

    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://server")
    client = StationClient(http, lambda _sid: "sk", lambda _sid: "sk", threading.Event())
    ids = [f"gs-{g}" for g in range(len(scenario.ground_stations))]
    side = DownlinkSide(client, twin, ids[:1], {s.dev_eui: s.index for s in sessions})
    side.poll(T0)
    assert [(r["downlink_id"], r["status"]) for r in posted] == [("a", "loaded"), ("c", "failed")]
    assert posted[0]["satellite"] == tles[up].name and posted[0]["at"].endswith("Z")
    side.poll(T0 + timedelta(seconds=5))  # nothing twice
    assert len(posted) == 2

    # The terminal's next uplink heard via that satellite: the satellite sent the downlink.
    def heard(satellite: str, transmitted: datetime) -> Due:
        frame = twin.population.build_frame(sessions[0].index, b"hello")
        reception = Reception(satellite, T0 + timedelta(minutes=5), 1, -120.0, 3.0, None, frame)
        return Due(300.0, "Beijing", reception, transmitted)

    later = T0 + timedelta(minutes=2)
    assert side.observe([heard(tles[down].name, later)]) == []  # another satellite
    before = T0 - timedelta(seconds=30)
    assert side.observe([heard(tles[up].name, before)]) == []  # heard before it was loaded
    sent = side.observe([heard(tles[up].name, later)])
    assert [(r.downlink_id, r.status, r.at) for r in sent] == [("a", "sent", later)]
    assert posted[-1]["status"] == "sent" and side.waiting == {}
