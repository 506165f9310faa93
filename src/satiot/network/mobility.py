"""Where terminals are: movement models for the terminal classes the MIIT notice names.

The notice lists data-collection terminals, wearables, handhelds, and terminals on cars, ships
and aircraft. Which satellite hears a terminal, and how often, depends on where it is, so the
twin needs positions for up to ~10⁵ terminals at arbitrary (not only increasing) times.

Every moving terminal therefore follows a closed itinerary drawn once from the seed: waypoints,
the time it stops at each, and a constant speed on each leg between them (along the great
circle). The itinerary repeats with its own period and each terminal starts at a random phase,
so a position is a pure function of time: one vectorised search for the current leg and one
interpolation, no state and no per-terminal Python loop. Altitudes are metres above sea level;
ground terminals report 0 (there is no terrain model; a few km of height moves a satellite's
elevation angle by a fraction of a degree), aircraft report flight level or airport elevation.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

import numpy as np
from global_land_mask import globe
from numpy.typing import NDArray

from satiot.network.geometry import Array, great_circle_km
from satiot.network.places import (
    AIRPORTS,
    MIN_FLIGHT_KM,
    PORTS,
    SEA_LANES,
    SEA_POINTS,
    BoolArray,
    Region,
    Surface,
    region_named,
)

KNOT_KMH = 1.852


class TerminalClass(StrEnum):
    """The terminal classes of MIIT notice 307 (2025)."""

    FIXED = "fixed"
    WEARABLE = "wearable"
    HANDHELD = "handheld"
    CAR = "car"
    SHIP = "ship"
    AIRCRAFT = "aircraft"


# Horizontal speed while moving, km/h. Aircraft fly slower while climbing and descending;
# the bounds are their cruise speed.
SPEED_KMH: Mapping[TerminalClass, tuple[float, float]] = MappingProxyType(
    {
        TerminalClass.FIXED: (0.0, 0.0),
        TerminalClass.WEARABLE: (3.6, 5.4),
        TerminalClass.HANDHELD: (3.6, 5.4),
        TerminalClass.CAR: (40.0, 120.0),
        TerminalClass.SHIP: (12 * KNOT_KMH, 25 * KNOT_KMH),
        TerminalClass.AIRCRAFT: (800.0, 900.0),
    }
)
CRUISE_ALT_M = (10_000.0, 11_000.0)
CLIMB_KMH = (450.0, 550.0)


# --- sphere helpers --------------------------------------------------------------------------


def _unit(lat: Array, lon: Array) -> Array:
    la, lo = np.deg2rad(lat), np.deg2rad(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _angle(a: Array, b: Array) -> Array:
    """Central angle between unit vectors, accurate for metre-scale legs too."""
    return np.asarray(2.0 * np.arcsin(np.clip(np.linalg.norm(b - a, axis=-1) / 2, 0, 1)))


def _slerp_weights(f: Array, omega: Array) -> tuple[Array, Array]:
    """Weights of a and b for the point a fraction ``f`` along the great circle a→b."""
    small = omega < 1e-12
    s = np.where(small, 1.0, np.sin(omega))
    ca = np.where(small, 1.0 - f, np.sin((1.0 - f) * omega) / s)
    cb = np.where(small, f, np.sin(f * omega) / s)
    return ca, cb


def _slerp(a: Array, b: Array, f: Array, omega: Array) -> Array:
    """Points a fraction ``f`` of the way along great circles a→b (constant speed in f)."""
    ca, cb = _slerp_weights(f, omega)
    return np.asarray(ca[..., None] * a + cb[..., None] * b)


def _lat_lon(p: Array) -> tuple[Array, Array]:
    lat = np.rad2deg(np.arcsin(np.clip(p[..., 2], -1.0, 1.0)))
    return np.asarray(lat), np.asarray(np.rad2deg(np.arctan2(p[..., 1], p[..., 0])))


def _on_surface(lat: Array, lon: Array, surface: Surface | None) -> BoolArray:
    if surface is None:
        return np.ones(np.shape(lat), dtype=bool)
    land = np.asarray(globe.is_land(lat, lon), dtype=bool)
    return land if surface == "land" else ~land


def _place(
    n: int, region: Region, surface: Surface | None, rng: np.random.Generator, grid: float = 0.0
) -> tuple[Array, Array]:
    """``n`` points uniform over the box's area on the required surface (rejection sampling)."""
    lat, lon = np.empty(0), np.empty(0)
    s_lo, s_hi = np.sin(np.deg2rad([region.lat_min, region.lat_max]))
    for _ in range(200):
        if lat.size >= n:
            break
        m = max(2 * (n - lat.size), 64)
        la = np.rad2deg(np.arcsin(rng.uniform(s_lo, s_hi, m)))
        lo = rng.uniform(region.lon_min, region.lon_max, m)
        if grid:
            la, lo = np.round(la / grid) * grid, np.round(lo / grid) * grid
        keep = _on_surface(la, lo, surface) & region.contains(la, lo)
        lat, lon = np.concatenate([lat, la[keep]]), np.concatenate([lon, lo[keep]])
    if lat.size < n:
        raise ValueError(f"region {region.name!r} has too little {surface} to place terminals")
    return lat[:n], lon[:n]


def _offset(lat: Array, lon: Array, north_km: Array, east_km: Array) -> tuple[Array, Array]:
    """Small displacements on a local flat patch (walks span a few km)."""
    dlat = np.rad2deg(north_km / 6371.0)
    dlon = np.rad2deg(east_km / (6371.0 * np.cos(np.deg2rad(lat))))
    return lat + dlat, (lon + dlon + 180.0) % 360.0 - 180.0


# --- the fleet -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Fleet:
    """``n`` terminals of one class; ``positions`` evaluates them at any time.

    Internals: each terminal's itinerary is ``knots`` points (latitude, longitude unwrapped
    along the itinerary, altitude, time since it began) whose first and last positions
    coincide, so it repeats every ``period_s`` seconds; a terminal is at itinerary time
    ``(t - start_s + phase_s) mod period_s``. To find the current leg without a search,
    ``_bins`` holds, for ``bins`` equal slices of each period, the knot at each slice's start;
    a few vectorised steps then reach the knot. Between knots, terminals on short legs
    (walkers, cars) move linearly in latitude/longitude; ships and aircraft, whose legs are
    hundreds of km, move along great circles. A fleet with one knot per terminal stands still.
    """

    cls: TerminalClass
    region: Region
    start_s: float
    period_s: Array
    phase_s: Array
    _lat: Array  # (n·knots,)
    _lon: Array
    _alt: Array
    _t: Array
    _xyz: tuple[Array, Array, Array]  # knot unit vectors (great-circle fleets)
    _omega: Array  # central angle to the next knot
    _bins: NDArray[np.int64]  # (n·bins,) flat knot index at each slice start
    knots: int
    bins: int
    great_circle: bool

    @property
    def n(self) -> int:
        """Number of terminals."""
        return int(self.period_s.size)

    def positions(self, t_seconds: float | Array) -> tuple[Array, Array, Array]:
        """(lat°, lon°, alt m) of every terminal at the given time(s).

        A scalar time gives three arrays of shape (n,); a 1-D array of m times gives (n, m),
        column j being the fleet at ``t_seconds[j]``.
        """
        t = np.asarray(t_seconds, dtype=np.float64)
        if t.ndim > 1:
            raise ValueError("times must be a scalar or a 1-D array")
        tt = np.atleast_1d(t)
        n, m, k = self.n, tt.size, self.knots
        if k == 1:
            lat = np.repeat(self._lat[:, None], m, axis=1)
            lon = np.repeat(self._lon[:, None], m, axis=1)
            alt = np.repeat(self._alt[:, None], m, axis=1)
        else:
            lat, lon, alt = (v.reshape(n, m) for v in self._moving(tt))
        if t.ndim == 0:
            return lat[:, 0], lon[:, 0], alt[:, 0]
        return lat, lon, alt

    def _moving(self, tt: Array) -> tuple[Array, Array, Array]:
        n, m = self.n, tt.size
        period = np.repeat(self.period_s, m)
        tau = np.mod((tt[None, :] - self.start_s + self.phase_s[:, None]).ravel(), period)
        tau = np.where(tau >= period, 0.0, tau)
        rows = np.repeat(np.arange(n), m)
        slot = np.minimum((tau / period * self.bins).astype(np.int64), self.bins - 1)
        i = self._bins.take(rows * self.bins + slot)
        last = rows * self.knots + self.knots - 2
        todo = np.arange(i.size)
        while todo.size:  # few knots fall in one slice, and fewer terminals need each step
            ahead = i[todo]
            todo = todo[(self._t.take(ahead + 1) <= tau[todo]) & (ahead < last[todo])]
            i[todo] += 1
        t0 = self._t.take(i)
        dt = self._t.take(i + 1) - t0
        f = np.clip((tau - t0) / np.where(dt > 0, dt, 1.0), 0.0, 1.0)
        lat0, lat1 = self._lat.take(i), self._lat.take(i + 1)
        lon0, lon1 = self._lon.take(i), self._lon.take(i + 1)
        alt = self._alt.take(i) + f * (self._alt.take(i + 1) - self._alt.take(i))
        if self.great_circle:
            ca, cb = _slerp_weights(f, self._omega.take(i))
            x, y, z = (ca * c.take(i) + cb * c.take(i + 1) for c in self._xyz)
            lat = np.rad2deg(np.arcsin(np.clip(z, -1.0, 1.0)))
            lon = np.rad2deg(np.arctan2(y, x))
        else:
            lat = lat0 + f * (lat1 - lat0)
            lon = (lon0 + f * (lon1 - lon0) + 180.0) % 360.0 - 180.0
        return lat, lon, alt


def _static_fleet(
    cls: TerminalClass, region: Region, lat: Array, lon: Array, alt: Array, start_s: float
) -> Fleet:
    zeros = np.zeros(lat.size)
    empty = np.zeros(0, dtype=np.int64)
    return Fleet(
        cls, region, start_s, np.ones(lat.size), zeros, lat, lon, alt, zeros,
        (zeros, zeros, zeros), zeros, empty, 1, 1, False,
    )  # fmt: skip


def _itinerary_fleet(
    cls: TerminalClass,
    region: Region,
    waypoints: tuple[Array, Array, Array],
    speed_kmh: Array,
    dwell_s: Array,
    rng: np.random.Generator,
    start_s: float,
) -> Fleet:
    """Build a fleet from closed itineraries: P waypoints per terminal (the last equal to the
    first), the speed on each of the P-1 legs, and the stop at each waypoint."""
    lat, lon, alt = waypoints
    n, p = lat.shape
    travel = great_circle_km(lat[:, :-1], lon[:, :-1], lat[:, 1:], lon[:, 1:]) / speed_kmh * 3600
    steps = np.empty((n, 2 * p - 1))
    steps[:, 0::2] = dwell_s
    steps[:, 1::2] = travel
    t = np.concatenate([np.zeros((n, 1)), np.cumsum(steps, axis=1)], axis=1)
    period = t[:, -1].copy()
    k = 2 * p
    great = cls in (TerminalClass.SHIP, TerminalClass.AIRCRAFT)
    knot_lat = np.repeat(lat, 2, axis=1)
    knot_lon = np.rad2deg(np.unwrap(np.deg2rad(np.repeat(lon, 2, axis=1)), axis=1))
    omega = np.zeros((n, k))
    xyz = _unit(knot_lat, knot_lon)
    omega[:, :-1] = _angle(xyz[:, :-1], xyz[:, 1:])
    bins = 2 * k
    edges = np.arange(bins)[None, :] * period[:, None] / bins
    keys = (np.arange(n)[:, None] + 0.5 * t / period[:, None]).ravel()
    slot_keys = (np.arange(n)[:, None] + 0.5 * edges / period[:, None]).ravel()
    first = np.searchsorted(keys, slot_keys, "right") - 2  # one early: rounding-proof
    first = np.maximum(first, np.repeat(np.arange(n) * k, bins))
    return Fleet(
        cls=cls,
        region=region,
        start_s=start_s,
        period_s=period,
        phase_s=rng.uniform(0.0, period),
        _lat=knot_lat.ravel(),
        _lon=knot_lon.ravel(),
        _alt=np.repeat(alt, 2, axis=1).ravel(),
        _t=t.ravel(),
        _xyz=(xyz[..., 0].ravel(), xyz[..., 1].ravel(), xyz[..., 2].ravel()),
        _omega=omega.ravel(),
        _bins=first.astype(np.int64),
        knots=k,
        bins=bins,
        great_circle=great,
    )


def _land_region(cls: TerminalClass, region: Region) -> None:
    if region.surface == "sea":
        raise ValueError(f"{cls.value} terminals need land; region {region.name!r} is sea")


def _walkers(
    cls: TerminalClass, n: int, region: Region, rng: np.random.Generator, start_s: float
) -> Fleet:
    """Bounded random walks around a home: visit random spots within a radius, pausing."""
    _land_region(cls, region)
    radius_km, stops, pause_s, home_s = (
        (2.0, 6, (60.0, 1200.0), (1800.0, 8 * 3600.0))
        if cls is TerminalClass.WEARABLE
        else (8.0, 8, (300.0, 3600.0), (1800.0, 4 * 3600.0))
    )
    home_lat, home_lon = _place(n, region, "land", rng)
    r = radius_km * np.sqrt(rng.uniform(0.0, 1.0, (n, stops)))
    bearing = rng.uniform(0.0, 2 * np.pi, (n, stops))
    lat, lon = _offset(
        home_lat[:, None], home_lon[:, None], r * np.cos(bearing), r * np.sin(bearing)
    )
    wet = ~_on_surface(lat, lon, "land")
    lat = np.where(wet, home_lat[:, None], lat)
    lon = np.where(wet, home_lon[:, None], lon)
    lat = np.concatenate([home_lat[:, None], lat, home_lat[:, None]], axis=1)
    lon = np.concatenate([home_lon[:, None], lon, home_lon[:, None]], axis=1)
    lo, hi = SPEED_KMH[cls]
    dwell = rng.uniform(*pause_s, (n, stops + 2))
    dwell[:, 0] = rng.uniform(*home_s, n)
    dwell[:, -1] = 0.0
    speed = rng.uniform(lo, hi, (n, stops + 1))
    return _itinerary_fleet(cls, region, (lat, lon, np.zeros_like(lat)), speed, dwell, rng, start_s)


def _cars(n: int, region: Region, rng: np.random.Generator, start_s: float) -> Fleet:
    """Trips on a 0.05° road grid: alternate north-south and east-west runs, then drive home."""
    _land_region(TerminalClass.CAR, region)
    grid, moves, reach = 0.05, 8, 16
    home_lat, home_lon = _place(n, region, "land", rng, grid)
    cells = np.zeros((n, 2), dtype=np.int64)
    lats, lons = [home_lat], [home_lon]
    for step in range(moves):
        axis = step % 2
        move = rng.integers(1, 8, n) * rng.choice([-1, 1], n)
        trial = cells.copy()
        trial[:, axis] = np.clip(trial[:, axis] + move, -reach, reach)
        la, lo = home_lat + trial[:, 0] * grid, home_lon + trial[:, 1] * grid
        ok = _on_surface(la, lo, "land") & region.contains(la, lo)
        cells = np.where(ok[:, None], trial, cells)
        lats.append(home_lat + cells[:, 0] * grid)
        lons.append(home_lon + cells[:, 1] * grid)
    lats += [home_lat, home_lat]  # back along the row to the home column, then home
    lons += [lons[-1], home_lon]
    lat, lon = np.stack(lats, axis=1), np.stack(lons, axis=1)
    p = lat.shape[1]
    dwell = np.where(rng.uniform(size=(n, p)) < 0.4, rng.uniform(30.0, 600.0, (n, p)), 0.0)
    dwell[:, moves // 2] = rng.uniform(600.0, 4 * 3600.0, n)  # the errand halfway round
    dwell[:, 0] = rng.uniform(3600.0, 12 * 3600.0, n)  # parked at home
    dwell[:, -1] = 0.0
    speed = rng.uniform(*SPEED_KMH[TerminalClass.CAR], (n, p - 1))
    return _itinerary_fleet(
        TerminalClass.CAR, region, (lat, lon, np.zeros_like(lat)), speed, dwell, rng, start_s
    )


def _sea_route(a: str, b: str) -> list[str]:
    """Shortest chain of sea points from port a to port b (Dijkstra over SEA_LANES)."""
    graph: dict[str, list[tuple[float, str]]] = {}
    for u, v in SEA_LANES:
        d = float(great_circle_km(*SEA_POINTS[u], *SEA_POINTS[v]))
        graph.setdefault(u, []).append((d, v))
        graph.setdefault(v, []).append((d, u))
    best: dict[str, float] = {a: 0.0}
    previous: dict[str, str] = {}
    queue = [(0.0, a)]
    while queue:
        d, u = heapq.heappop(queue)
        if u == b:
            break
        for w, v in graph[u]:
            if d + w < best.get(v, np.inf):
                best[v], previous[v] = d + w, u
                heapq.heappush(queue, (d + w, v))
    route = [b]
    while route[-1] != a:
        route.append(previous[route[-1]])
    return route[::-1]


def _ships(n: int, region: Region, rng: np.random.Generator, start_s: float) -> Fleet:
    """Round trips between two ports of the region along the sea lanes, waiting in port."""
    ports = [p for p in PORTS if region.contains(*SEA_POINTS[p])]
    pairs = [(a, b) for a in ports for b in ports if a != b]  # ordered: a is the home port
    if not pairs:
        raise ValueError(f"region {region.name!r} holds fewer than two ports: {ports}")
    routes = [_sea_route(a, b) for a, b in pairs]
    loops = [route + route[-2::-1] for route in routes]  # out and back
    p = max(len(loop) for loop in loops)
    padded = [loop + [loop[-1]] * (p - len(loop)) for loop in loops]  # idle legs of length 0
    table = np.array([[SEA_POINTS[s] for s in loop] for loop in padded])
    choice = rng.integers(len(loops), size=n)
    lat, lon = table[choice, :, 0], table[choice, :, 1]
    half = np.array([len(route) - 1 for route in routes], dtype=np.int64)[choice]
    dwell = np.zeros((n, p))
    dwell[:, 0] = rng.uniform(6 * 3600.0, 48 * 3600.0, n)
    dwell[np.arange(n), half] = rng.uniform(6 * 3600.0, 48 * 3600.0, n)
    speed = np.repeat(rng.uniform(*SPEED_KMH[TerminalClass.SHIP], (n, 1)), p - 1, axis=1)
    return _itinerary_fleet(
        TerminalClass.SHIP, region, (lat, lon, np.zeros_like(lat)), speed, dwell, rng, start_s
    )


def _along(lat1: Array, lon1: Array, lat2: Array, lon2: Array, km: Array) -> tuple[Array, Array]:
    """The point ``km`` along the great circle from point 1 towards point 2."""
    a, b = _unit(lat1, lon1), _unit(lat2, lon2)
    omega = _angle(a, b)
    return _lat_lon(_slerp(a, b, km / (omega * 6371.0), omega))


def _aircraft(n: int, region: Region, rng: np.random.Generator, start_s: float) -> Fleet:
    """Return flights between two airports: climb, cruise, descent, turnaround on the ground."""
    names = [a for a in AIRPORTS if region.contains(*AIRPORTS[a][:2])]
    ap = np.array([AIRPORTS[a] for a in names]).reshape(-1, 3)
    d = great_circle_km(ap[:, None, 0], ap[:, None, 1], ap[None, :, 0], ap[None, :, 1])
    pairs = np.argwhere(d >= MIN_FLIGHT_KM)
    if pairs.size == 0:
        raise ValueError(f"region {region.name!r} has no airports {MIN_FLIGHT_KM:.0f} km apart")
    pick = pairs[rng.integers(len(pairs), size=n)]
    a, b = ap[pick[:, 0]], ap[pick[:, 1]]
    dist = d[pick[:, 0], pick[:, 1]]
    cruise_alt = rng.uniform(*CRUISE_ALT_M, n)
    cruise = rng.uniform(*SPEED_KMH[TerminalClass.AIRCRAFT], (n, 1))
    lats, lons, alts, speeds = [], [], [], []
    for src, dst in ((a, b), (b, a)):
        climb_kmh, descent_kmh = rng.uniform(*CLIMB_KMH, (2, n))
        climb_km = climb_kmh * rng.uniform(18.0, 25.0, n) / 60.0
        descent_km = dist - descent_kmh * rng.uniform(20.0, 30.0, n) / 60.0
        toc = _along(src[:, 0], src[:, 1], dst[:, 0], dst[:, 1], climb_km)
        tod = _along(src[:, 0], src[:, 1], dst[:, 0], dst[:, 1], descent_km)
        lats += [src[:, 0], toc[0], tod[0]]
        lons += [src[:, 1], toc[1], tod[1]]
        alts += [src[:, 2], cruise_alt, cruise_alt]
        speeds += [climb_kmh[:, None], cruise, descent_kmh[:, None]]
    lat = np.stack([*lats, a[:, 0]], axis=1)
    lon = np.stack([*lons, a[:, 1]], axis=1)
    alt = np.stack([*alts, a[:, 2]], axis=1)
    dwell = np.zeros((n, 7))
    dwell[:, 0] = rng.uniform(40 * 60.0, 120 * 60.0, n)
    dwell[:, 3] = rng.uniform(40 * 60.0, 120 * 60.0, n)
    return _itinerary_fleet(
        TerminalClass.AIRCRAFT, region, (lat, lon, alt), np.hstack(speeds), dwell, rng, start_s
    )


def make_fleet(
    cls: TerminalClass | str,
    n: int,
    region: Region | str,
    rng: np.random.Generator,
    start_s: float = 0.0,
) -> Fleet:
    """``n`` terminals of a class in a region, drawn from ``rng`` (same seed, same fleet).

    Fixed terminals sit on the region's surface (land if it has none); walkers and cars need
    land; ships sail between the region's ports; aircraft fly between its airports.
    """
    cls = TerminalClass(cls)
    reg = region_named(region) if isinstance(region, str) else region
    if n < 0:
        raise ValueError("n must be non-negative")
    if cls is TerminalClass.FIXED:
        lat, lon = _place(n, reg, reg.surface or "land", rng)
        return _static_fleet(cls, reg, lat, lon, np.zeros(n), start_s)
    builders = {
        TerminalClass.CAR: _cars,
        TerminalClass.SHIP: _ships,
        TerminalClass.AIRCRAFT: _aircraft,
    }
    if cls in (TerminalClass.WEARABLE, TerminalClass.HANDHELD):
        return _walkers(cls, n, reg, rng, start_s)
    return builders[cls](n, reg, rng, start_s)
