"""Downlink plans against an independent brute-force search, and the plan cache."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from skyfield.api import EarthSatellite, load, wgs84

from satiot.network import downlink_plan
from satiot.network.downlink_plan import (
    Inventory,
    NoPlan,
    Plan,
    Request,
    StationSite,
    delivery_on,
    load_inventory,
    plan_batch,
    plan_delivery,
)
from tests.network.downlink_setup import TIBET, import_inventory, scenario_inventory

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
STEP_S = 5.0
BRUTE_HOURS = 8.0
TS = load.timescale()


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return scenario_inventory()


class BruteForce:
    """Elevations of every satellite over a grid of ``STEP_S`` seconds, from Skyfield (its own
    SGP4 and Earth rotation): visibility is read straight off the samples, no refinement."""

    def __init__(self, inv: Inventory, start: datetime, hours: float) -> None:
        self.start = start
        self.seconds = np.arange(0.0, hours * 3600.0 + STEP_S, STEP_S)
        self.times = TS.from_datetimes([start + timedelta(seconds=float(s)) for s in self.seconds])
        self.sats = {t.name: EarthSatellite(t.line1, t.line2, t.name, TS) for t in inv.tles}
        self.station_view = {}
        for name, sat in self.sats.items():
            seen = np.zeros(len(self.seconds), dtype=bool)
            for s in inv.stations:
                seen |= self._elevation(sat, s.lat, s.lon, s.alt_m) >= s.min_elevation_deg
            self.station_view[name] = seen

    def _elevation(self, sat: EarthSatellite, lat: float, lon: float, alt_m: float = 0.0):
        return (sat - wgs84.latlon(lat, lon, alt_m)).at(self.times).altaz()[0].degrees

    def deliveries(
        self, lat: float, lon: float, *, lead_s: float, not_before: datetime | None = None
    ) -> dict[str, float]:
        """Per satellite: seconds after start of the first sample in view of the terminal at
        or after the first sample in view of a station (at least ``lead_s`` from start)."""
        floor = 0.0 if not_before is None else (not_before - self.start).total_seconds()
        out = {}
        for name, sat in self.sats.items():
            load_i = np.nonzero(self.station_view[name] & (self.seconds >= lead_s))[0]
            if not len(load_i):
                continue
            start_s = max(self.seconds[load_i[0]], floor)
            seen = self._elevation(sat, lat, lon) >= downlink_plan.TERMINAL_MASK_DEG
            hit = np.nonzero(seen & (self.seconds >= start_s - STEP_S / 2))[0]
            if len(hit):
                out[name] = float(self.seconds[hit[0]])
        return out


@pytest.fixture(scope="module")
def brute(inv: Inventory) -> BruteForce:
    return BruteForce(inv, NOW, BRUTE_HOURS)


# Terminals in Tibet, the far north-east, the South China Sea, Xinjiang and, away from every
# station, Europe and Australia (long waits: the satellite must carry it a long way).
PLACES = [TIBET, (47.5, 132.0), (12.0, 114.0), (44.0, 82.0), (48.0, 2.0), (-33.9, 151.2)]


@pytest.mark.parametrize(("lat", "lon"), PLACES)
def test_plan_matches_brute_force_and_picks_the_earliest_satellite(
    inv: Inventory, brute: BruteForce, lat: float, lon: float
) -> None:
    plan = plan_delivery(inv, lat, lon, NOW)
    assert isinstance(plan, Plan), plan
    ref = brute.deliveries(lat, lon, lead_s=downlink_plan.LOAD_LEAD_S)
    best = min(ref.values())
    got = (plan.estimated_delivery_at - NOW).total_seconds()
    # Sampling at 5 s can only find a rise up to one step late.
    assert best - STEP_S - 0.5 <= got <= best + 0.5, (plan, best)
    # The chosen satellite is (one of) the minimum: the brute force sees it deliver then too.
    assert ref[plan.satellite] <= best + STEP_S + 0.5
    # The plan's legs are real: the satellite is in view of the station at load time and of
    # the terminal at the estimated delivery.
    sat = brute.sats[plan.satellite]
    station = next(s for s in inv.stations if s.id == plan.station_id)
    for when, (la, lo, alt, mask) in (
        (plan.load_at, (station.lat, station.lon, station.alt_m, station.min_elevation_deg)),
        (plan.estimated_delivery_at + timedelta(seconds=1), (lat, lon, 0.0, 10.0)),
    ):
        el = (sat - wgs84.latlon(la, lo, alt)).at(TS.from_datetime(when)).altaz()[0].degrees
        assert el >= mask - 0.05, (when, el)
    assert NOW + timedelta(seconds=downlink_plan.LOAD_LEAD_S) <= plan.load_at < plan.load_until
    assert plan.load_at <= plan.estimated_delivery_at


def test_a_chain_of_downlinks_is_delivered_in_order(inv: Inventory, brute: BruteForce) -> None:
    lat, lon = 48.0, 2.0
    [chain] = plan_batch(inv, [Request(lat, lon, None, count=3)], NOW)
    assert all(isinstance(p, Plan) for p in chain)
    deliveries = [p.estimated_delivery_at for p in chain if isinstance(p, Plan)]
    assert deliveries == sorted(deliveries)
    # "Not before" is honoured exactly as the brute force reads it.
    later = NOW + timedelta(hours=3)
    plan = plan_delivery(inv, lat, lon, NOW, not_before=later)
    assert isinstance(plan, Plan)
    ref = brute.deliveries(lat, lon, lead_s=downlink_plan.LOAD_LEAD_S, not_before=later)
    got = (plan.estimated_delivery_at - NOW).total_seconds()
    assert min(ref.values()) - STEP_S - 0.5 <= got <= min(ref.values()) + 0.5


def test_batch_answers_equal_single_plans(inv: Inventory) -> None:
    batch = plan_batch(inv, [Request(lat, lon) for lat, lon in PLACES], NOW)
    assert [c[0] for c in batch] == [plan_delivery(inv, lat, lon, NOW) for lat, lon in PLACES]


def test_no_plan_reasons(inv: Inventory) -> None:
    empty = Inventory((), inv.stations)
    assert plan_delivery(empty, *TIBET, NOW) == NoPlan("no active satellites in the inventory")
    no_gs = Inventory(inv.tles, ())
    assert plan_delivery(no_gs, *TIBET, NOW) == NoPlan("no active ground stations in the inventory")
    # Near the South Pole nothing of this constellation passes above 10° within half an hour.
    answer = plan_delivery(inv, -89.0, 0.0, NOW, horizon_h=0.5)
    assert isinstance(answer, NoPlan)
    assert "within 0.5 h" in answer.reason


def test_station_windows_are_cached_by_inventory_content(
    inv: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    downlink_plan.clear_cache()
    calls: list[datetime] = []
    real = downlink_plan._build_windows

    def counting(i: Inventory, start: datetime, hours: float):
        calls.append(start)
        return real(i, start, hours)

    monkeypatch.setattr(downlink_plan, "_build_windows", counting)
    plan_delivery(inv, *TIBET, NOW)
    plan_delivery(inv, 40.0, 90.0, NOW + timedelta(hours=1))
    assert len(calls) == 1  # same inventory, still covered: reused
    plan_delivery(inv, *TIBET, NOW + timedelta(hours=25))
    assert len(calls) == 2  # the span no longer covers the horizon: recomputed
    moved = Inventory(
        inv.tles, (*inv.stations[:-1], StationSite(uuid.uuid4(), "Moved", 30.0, 100.0, 0.0, 5.0))
    )
    plan_delivery(moved, *TIBET, NOW + timedelta(hours=25))
    assert len(calls) == 3  # the inventory changed: recomputed


def test_inventory_from_the_database_and_delivery_on_a_given_satellite(db, ctx, world) -> None:
    import_inventory(ctx, world)
    with db.read() as s:
        inv = load_inventory(s)
    assert len(inv.tles) == 38 and {s.name for s in inv.stations} >= {"Beijing", "Sanya"}
    plan = plan_delivery(inv, *TIBET, NOW)
    assert isinstance(plan, Plan)
    assert delivery_on(plan.satellite, inv, *TIBET, plan.load_at) == plan.estimated_delivery_at
    assert delivery_on("NOT-A-SATELLITE", inv, *TIBET, NOW) is None
