"""Terminal movement: speeds per class, continuity, fixed sites, ships at sea, flight profile."""

from __future__ import annotations

import time

import numpy as np
import pytest
from global_land_mask import globe

from satiot.network.geometry import great_circle_km
from satiot.network.mobility import (
    CRUISE_ALT_M,
    SPEED_KMH,
    Fleet,
    TerminalClass,
    make_fleet,
)
from satiot.network.places import AIRPORTS, PORTS, SEA_POINTS, region_named

CASES = [
    (TerminalClass.WEARABLE, "china"),
    (TerminalClass.HANDHELD, "tibet"),
    (TerminalClass.CAR, "northeast"),
    (TerminalClass.SHIP, "pacific-lanes"),
    (TerminalClass.AIRCRAFT, "china"),
]


def _fleet(cls: TerminalClass, region: str, n: int = 2000, seed: int = 7) -> Fleet:
    return make_fleet(cls, n, region, np.random.default_rng(seed), start_s=1000.0)


def _speeds_kmh(fleet: Fleet, times: np.ndarray, dt: float) -> np.ndarray:
    lat0, lon0, _ = fleet.positions(times)
    lat1, lon1, _ = fleet.positions(times + dt)
    return great_circle_km(lat0, lon0, lat1, lon1) / dt * 3600.0


@pytest.mark.parametrize(("cls", "region"), CASES)
def test_speed_stays_within_class_bounds(cls: TerminalClass, region: str):
    fleet = _fleet(cls, region)
    times = np.linspace(0.0, 5 * 86400.0, 40)
    speed = _speeds_kmh(fleet, times, 1.0)
    low, high = SPEED_KMH[cls]
    assert speed.max() <= high * 1.01
    moving = speed[speed > 0.2 * low]
    assert moving.size > 0
    assert np.median(moving) >= low * (0.55 if cls is TerminalClass.AIRCRAFT else 0.99)
    if cls is not TerminalClass.AIRCRAFT:  # aircraft climb and descend slower than cruise
        assert np.mean((moving >= low * 0.98) & (moving <= high * 1.01)) > 0.97


@pytest.mark.parametrize(("cls", "region"), CASES)
def test_positions_are_continuous(cls: TerminalClass, region: str):
    fleet = _fleet(cls, region, n=500)
    times = np.random.default_rng(1).uniform(0.0, 30 * 86400.0, 200)
    lat0, lon0, alt0 = fleet.positions(times)
    lat1, lon1, alt1 = fleet.positions(times + 0.01)
    step_km = great_circle_km(lat0, lon0, lat1, lon1)
    assert step_km.max() <= SPEED_KMH[cls][1] * 1.01 * 0.01 / 3600 + 1e-6
    assert np.abs(alt1 - alt0).max() <= 1.0


@pytest.mark.parametrize(("cls", "region"), CASES)
def test_itineraries_close_at_the_period_wrap(cls: TerminalClass, region: str):
    fleet = _fleet(cls, region, n=300)
    wrap = fleet.start_s + fleet.period_s - fleet.phase_s  # itinerary time = period
    before = [fleet.positions(w - 0.01) for w in wrap[:50]]
    after = [fleet.positions(w + 0.01) for w in wrap[:50]]
    for j, (b, a) in enumerate(zip(before, after, strict=True)):
        assert great_circle_km(b[0][j], b[1][j], a[0][j], a[1][j]) < 0.01


def test_fixed_terminals_never_move_and_stand_on_land():
    fleet = make_fleet("fixed", 5000, "xinjiang", np.random.default_rng(3))
    lat, lon, alt = fleet.positions(np.array([0.0, 1e3, 1e7, -5e5]))
    assert (lat == lat[:, :1]).all() and (lon == lon[:, :1]).all() and (alt == 0).all()
    assert globe.is_land(lat[:, 0], lon[:, 0]).all()
    assert region_named("xinjiang").contains(lat[:, 0], lon[:, 0]).all()


def test_fixed_buoys_in_a_sea_region_are_at_sea():
    lat, lon, _ = make_fleet("fixed", 2000, "south-china-sea", np.random.default_rng(3)).positions(
        0.0
    )
    assert not globe.is_land(lat, lon).any()


@pytest.mark.parametrize("cls", [TerminalClass.WEARABLE, TerminalClass.HANDHELD])
def test_walkers_stay_near_home_on_land(cls: TerminalClass):
    fleet = _fleet(cls, "china", n=1000)
    lat, lon, _ = fleet.positions(np.linspace(0.0, 3 * 86400.0, 100))
    radius = 2.0 if cls is TerminalClass.WEARABLE else 8.0
    spread = great_circle_km(lat[:, :1], lon[:, :1], lat, lon)
    assert spread.max() <= 2 * radius * 1.01
    assert globe.is_land(lat, lon).mean() > 0.97


def test_cars_drive_on_a_grid():
    fleet = _fleet(TerminalClass.CAR, "northeast", n=1000)
    times = np.linspace(0.0, 2 * 86400.0, 300)
    lat, lon, _ = fleet.positions(times)
    lat1, lon1, _ = fleet.positions(times + 1.0)
    dlat, dlon = np.abs(lat1 - lat), np.abs(lon1 - lon)
    moving = (dlat > 1e-9) | (dlon > 1e-9)
    turning = (dlat > 1e-9) & (dlon > 1e-9)
    assert turning.sum() < 0.01 * moving.sum()  # cars run north-south or east-west
    assert globe.is_land(lat, lon).mean() > 0.95


def test_ships_stay_at_sea():
    fleet = _fleet(TerminalClass.SHIP, "pacific-lanes", n=2000)
    lat, lon, alt = fleet.positions(np.linspace(0.0, 20 * 86400.0, 100))
    ports = np.array([SEA_POINTS[p] for p in PORTS])
    near_port = (
        great_circle_km(lat[..., None], lon[..., None], ports[:, 0], ports[:, 1]) < 30.0
    ).any(axis=-1)
    far = ~near_port
    assert far.mean() > 0.5
    assert (~globe.is_land(lat[far], lon[far])).mean() >= 0.99
    assert (alt == 0).all()


def test_regional_ships_keep_to_their_ports():
    fleet = _fleet(TerminalClass.SHIP, "yellow-sea", n=500)
    lat, lon, _ = fleet.positions(np.linspace(0.0, 10 * 86400.0, 50))
    assert lat.min() > 30.0 and lon.max() < 131.0


def test_aircraft_profile():
    fleet = _fleet(TerminalClass.AIRCRAFT, "china", n=2000)
    times = np.linspace(0.0, 3 * 86400.0, 120)
    _, _, alt = fleet.positions(times)
    speed = _speeds_kmh(fleet, times, 1.0)
    _, _, alt1 = fleet.positions(times + 1.0)
    low, high = SPEED_KMH[TerminalClass.AIRCRAFT]
    assert CRUISE_ALT_M[0] <= alt.max() <= CRUISE_ALT_M[1]
    cruising = alt >= CRUISE_ALT_M[0]
    level = cruising & (np.abs(alt1 - alt) < 1e-6)
    assert level.mean() > 0.1
    assert (speed[level] >= low * 0.99).all() and (speed[level] <= high * 1.01).all()
    assert np.abs(alt1 - alt).max() <= 15.0  # climb/descent rate, m/s
    on_ground = speed < 1e-6
    assert on_ground.mean() > 0.1
    elevations = np.array([a[2] for a in AIRPORTS.values()])
    assert np.isin(np.round(alt[on_ground], 6), np.round(elevations, 6)).all()
    assert (alt >= 0).all()


def test_same_seed_same_fleet_and_other_seed_differs():
    for cls, region in CASES:
        a = _fleet(cls, region, n=200, seed=11).positions(np.array([0.0, 12345.0]))
        b = _fleet(cls, region, n=200, seed=11).positions(np.array([0.0, 12345.0]))
        c = _fleet(cls, region, n=200, seed=12).positions(np.array([0.0, 12345.0]))
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
        assert not np.array_equal(a[0], c[0])


def test_shapes_scalar_and_vector_times_agree():
    fleet = _fleet(TerminalClass.CAR, "china", n=300)
    times = np.array([5.0, 500.0, 5e5])
    vec = fleet.positions(times)
    for j, t in enumerate(times):
        one = fleet.positions(float(t))
        for v, s in zip(vec, one, strict=True):
            assert v.shape == (300, 3) and s.shape == (300,)
            np.testing.assert_allclose(v[:, j], s, atol=1e-9)
    with pytest.raises(ValueError, match="1-D"):
        fleet.positions(np.zeros((2, 2)))


def test_bad_requests_are_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="sea"):
        make_fleet("car", 10, "yellow-sea", rng)
    with pytest.raises(ValueError, match="ports"):
        make_fleet("ship", 10, "xinjiang", rng)
    with pytest.raises(ValueError, match="unknown region"):
        make_fleet("fixed", 10, "atlantis", rng)
    with pytest.raises(ValueError):
        make_fleet("bicycle", 10, "china", rng)


def test_hundred_thousand_terminals_in_one_vectorised_call():
    """Speed is for benchmarks/, so this only reports the time of one call."""
    for cls in (TerminalClass.FIXED, TerminalClass.WEARABLE, TerminalClass.AIRCRAFT):
        fleet = make_fleet(cls, 100_000, "china", np.random.default_rng(5))
        fleet.positions(0.0)
        started = time.perf_counter()
        lat, _, _ = fleet.positions(86400.0)
        print(f"{cls.value}: 100000 positions in {(time.perf_counter() - started) * 1e3:.1f} ms")
        assert lat.shape == (100_000,) and np.isfinite(lat).all()
