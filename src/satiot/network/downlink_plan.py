"""Downlink plans: which satellite carries a command, where it is loaded, when it arrives.

Without inter-satellite links a command reaches a terminal in two hops: a ground station
uploads it to a satellite during a pass (the *load*), and the satellite transmits it when it
next passes over the terminal and the terminal uplinks (Class A: the downlink rides the
receive window after an uplink). For each satellite the best plan is therefore

1. its earliest ground-station window still open ``lead_s`` from now (a pass that starts
   later, or one in progress), giving ``load_at``;
2. its first pass over the terminal that is in progress at ``load_at`` or starts after it,
   giving the estimated delivery;

and the plan is the satellite with the earliest estimated delivery. Loading earlier can only
make a satellite's delivery earlier, so the first window per satellite is the only one that
matters.

Cost: the ground-station side (every satellite × every station) changes only with the
inventory, so it is computed once for a long span and cached, keyed by a fingerprint of the
inventory's content (element sets and station siting); the terminal side is one site × N
satellites, computed over a short window first and the full horizon only if nothing was found
there (any delivery found inside the short window beats every delivery after it).

The contact module (numba kernels) is imported on first use, not with this module, so that
the API, which imports the queue, starts without loading the compiler.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.network.downlink_loads import Loads
from satiot.network.models import GroundStation, Satellite
from satiot.network.orbits import Tle

if TYPE_CHECKING:
    from satiot.network.contacts import Pass

#: How far ahead a plan may look (a delivery later than this leaves the downlink queued).
HORIZON_H = 48.0
#: Elevation mask of terminals: low-power handsets need the satellite well above the horizon.
TERMINAL_MASK_DEG = 10.0
#: Time a ground station needs to fetch and upload a command once a plan names it.
LOAD_LEAD_S = 60.0
#: The terminal side is first searched this far ahead (most deliveries fall well inside it).
_FIRST_WINDOW_H = 6.0
#: Ground-station windows are computed this much beyond the horizon, so one computation
#: serves every plan made during that time.
_GS_SPARE_H = 24.0
_CACHE_SIZE = 4


@dataclass(frozen=True)
class StationSite:
    """A ground station as plans see it."""

    id: uuid.UUID
    name: str
    lat: float
    lon: float
    alt_m: float
    min_elevation_deg: float


@dataclass(frozen=True)
class Inventory:
    """The active satellites and ground stations, and a fingerprint of their content."""

    tles: tuple[Tle, ...]
    stations: tuple[StationSite, ...]

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for t in self.tles:
            h.update(f"{t.name}\n{t.line1}\n{t.line2}\n".encode())
        for s in self.stations:
            h.update(f"{s.id}|{s.lat!r}|{s.lon!r}|{s.alt_m!r}|{s.min_elevation_deg!r}\n".encode())
        return h.hexdigest()


def load_inventory(session: Session) -> Inventory:
    """What plans are made on: active satellites (element sets) and active ground stations."""
    rows = session.scalars(
        select(GroundStation).where(GroundStation.status == "active").order_by(GroundStation.name)
    )
    stations = tuple(
        StationSite(g.id, g.name, g.lat, g.lon, g.alt_m, g.min_elevation_deg) for g in rows
    )
    # The same rows as ``inventory.satellites_as_tles``, read here so that importing the
    # planner (and with it the API) does not load the twin's scenario and land-mask modules.
    sats = session.scalars(
        select(Satellite).where(Satellite.status == "active").order_by(Satellite.name)
    )
    return Inventory(tuple(Tle(s.name, s.tle_line1, s.tle_line2) for s in sats), stations)


@dataclass(frozen=True)
class LoadWindow:
    """A pass of a satellite over a ground station: when it could be loaded there."""

    station_id: uuid.UUID
    station: str
    rise: datetime
    set: datetime


@dataclass(frozen=True)
class LoadWindows:
    """Every satellite's ground-station windows over ``[start, end]``, sorted by set time."""

    start: datetime
    end: datetime
    by_satellite: dict[str, tuple[LoadWindow, ...]]
    _sets: dict[str, tuple[datetime, ...]]
    _longest: dict[str, timedelta]

    def first_open(
        self,
        satellite: str,
        at: datetime,
        room: Callable[[LoadWindow], bool] | None = None,
    ) -> LoadWindow | None:
        """The window of ``satellite`` that can load it soonest at or after ``at`` (ties: the
        one that stays open longest, leaving the station the most time), among those with
        ``room`` when given."""
        sets = self._sets.get(satellite, ())
        windows = self.by_satellite.get(satellite, ())
        best: LoadWindow | None = None
        best_key: tuple[datetime, datetime] | None = None
        limit: datetime | None = None
        for w in windows[bisect_left(sets, at) :]:
            # Sorted by set: a window loading earlier than the best rises before the best's
            # load time, so it sets before that plus the longest window; stop past that.
            if limit is not None and w.set > limit:
                break
            if w.set <= at or (room is not None and not room(w)):
                continue
            load = max(w.rise, at)
            if best_key is None or (load, -w.set.timestamp()) < (
                best_key[0],
                -best_key[1].timestamp(),
            ):
                best, best_key = w, (load, w.set)
                limit = load + self._longest[satellite]
        return best


def _build_windows(inv: Inventory, start: datetime, hours: float) -> LoadWindows:
    from satiot.network.contacts import Site, compute_contacts

    by_mask: dict[float, list[StationSite]] = {}
    for s in inv.stations:
        by_mask.setdefault(s.min_elevation_deg, []).append(s)
    by_name = {s.name: s for s in inv.stations}
    found: dict[str, list[LoadWindow]] = {t.name: [] for t in inv.tles}
    for mask, stations in by_mask.items():
        sites = [Site(s.name, s.lat, s.lon, s.alt_m) for s in stations]
        for p in compute_contacts(list(inv.tles), sites, start, hours, mask):
            st = by_name[p.site]
            found[p.satellite].append(LoadWindow(st.id, st.name, p.rise, p.set))
    ordered = {k: tuple(sorted(v, key=lambda w: (w.set, w.rise))) for k, v in found.items()}
    sets = {k: tuple(w.set for w in v) for k, v in ordered.items()}
    longest = {
        k: max((w.set - w.rise for w in v), default=timedelta(0)) for k, v in ordered.items()
    }
    return LoadWindows(start, start + timedelta(hours=hours), ordered, sets, longest)


_lock = threading.Lock()
_cache: OrderedDict[tuple[str, float], LoadWindows] = OrderedDict()


def load_windows(inv: Inventory, now: datetime, horizon_h: float = HORIZON_H) -> LoadWindows:
    """The ground-station windows for plans made at ``now``, from the cache when still valid.

    The cache is keyed by the inventory's content, so a new element set or a moved station
    recomputes, and an entry is reused only while it covers ``[now, now + horizon]``.
    """
    key = (inv.fingerprint, horizon_h)
    need_end = now + timedelta(hours=horizon_h)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit.start <= now and need_end <= hit.end:
            _cache.move_to_end(key)
            return hit
        built = _build_windows(inv, now, horizon_h + _GS_SPARE_H)
        _cache[key] = built
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return built


def warm_up(tle: Tle, at: datetime) -> None:
    """Load the compiled contact kernels now (seconds, once per process), so that the first
    customer to queue a downlink does not wait for them."""
    from satiot.network.contacts import Site, compute_contacts

    compute_contacts([tle], [Site("warm-up", 0.0, 0.0)], at, 0.1, 10.0)


def clear_cache() -> None:
    """Forget every cached window set (tests; an operator never needs it)."""
    with _lock:
        _cache.clear()


@dataclass(frozen=True)
class Plan:
    """Load ``satellite`` at ``station`` during ``[load_at, load_until]``; it should reach the
    terminal at ``estimated_delivery_at`` (if the terminal uplinks during that pass)."""

    satellite: str
    station_id: uuid.UUID
    station: str
    load_at: datetime
    load_until: datetime
    estimated_delivery_at: datetime


@dataclass(frozen=True)
class NoPlan:
    """Why no plan exists now (the downlink stays queued and is planned again later)."""

    reason: str


@dataclass(frozen=True)
class Request:
    """``count`` downlinks for one terminal, each delivered no earlier than the one before
    it (and the first no earlier than ``not_before``): a device's commands arrive in the
    order they were queued, so their frame counters only go up."""

    lat: float
    lon: float
    not_before: datetime | None = None
    count: int = 1
    #: The device's downlink priority: it may use the load windows' emergency reserve.
    priority: int = 0


def _choose(
    windows: LoadWindows,
    passes: dict[str, list[Pass]],
    tles: Sequence[Tle],
    now: datetime,
    not_before: datetime | None,
    lead_s: float,
    loads: Loads | None = None,
    priority: int = 0,
) -> Plan | None:
    ready = now + timedelta(seconds=lead_s)
    best: Plan | None = None
    for tle in tles:
        room = None
        if loads is not None:

            def room(w: LoadWindow, name: str = tle.name) -> bool:
                return loads.has_room(name, w.station_id, w.set, priority)

        window = windows.first_open(tle.name, ready, room)
        if window is None:
            continue
        load_at = max(window.rise, ready)
        start = max(load_at, not_before) if not_before else load_at
        for p in passes.get(tle.name, ()):  # sorted by rise
            if p.set > start:
                delivery = max(p.rise, start)
                if best is None or (delivery, load_at, tle.name) < (
                    best.estimated_delivery_at,
                    best.load_at,
                    best.satellite,
                ):
                    best = Plan(
                        tle.name, window.station_id, window.station, load_at, window.set, delivery
                    )
                break
    return best


def _chain(
    windows: LoadWindows,
    passes: dict[str, list[Pass]],
    tles: Sequence[Tle],
    now: datetime,
    request: Request,
    lead_s: float,
    loads: Loads | None = None,
) -> list[Plan | None]:
    out: list[Plan | None] = []
    after = request.not_before
    for _ in range(request.count):
        plan = _choose(windows, passes, tles, now, after, lead_s, loads, request.priority)
        out.append(plan)
        if plan is None:
            out.extend([None] * (request.count - len(out)))
            break
        if loads is not None:
            loads.take(plan.satellite, plan.station_id, plan.load_until)
        after = plan.estimated_delivery_at
    return out


def _passes_at(
    tles: Sequence[Tle],
    positions: Sequence[tuple[float, float]],
    now: datetime,
    hours: float,
    mask_deg: float,
) -> dict[tuple[float, float], dict[str, list[Pass]]]:
    """Every satellite's passes over each terminal position (one contact computation)."""
    from satiot.network.contacts import Site, compute_contacts

    names = {f"site-{n}": pos for n, pos in enumerate(positions)}
    found: dict[tuple[float, float], dict[str, list[Pass]]] = {pos: {} for pos in positions}
    sites = [Site(name, pos[0], pos[1]) for name, pos in names.items()]
    for p in compute_contacts(list(tles), sites, now, hours, mask_deg):
        found[names[p.site]].setdefault(p.satellite, []).append(p)
    return found


def plan_batch(
    inv: Inventory,
    requests: Sequence[Request],
    now: datetime,
    *,
    horizon_h: float = HORIZON_H,
    mask_deg: float = TERMINAL_MASK_DEG,
    lead_s: float = LOAD_LEAD_S,
    loads: Loads | None = None,
) -> list[list[Plan | NoPlan]]:
    """Plan for many terminals at once (one contact computation covers all their sites);
    one list of ``count`` answers per request.

    With ``loads``, each load window holds only so many commands (:mod:`.downlink_loads`):
    requests take room in the order given (the caller's priority order), and ``loads`` is
    left counting what these plans take. Terminal passes are computed over a short window
    first; a terminal whose commands do not all arrive inside it gets the full horizon, and
    the requests are planned again from the start, so the order of who takes which room
    never depends on which terminals needed the longer computation."""
    if not inv.tles or not inv.stations:
        what = "satellites" if not inv.tles else "ground stations"
        return [[NoPlan(f"no active {what} in the inventory")] * r.count for r in requests]
    if not requests:
        return []
    windows = load_windows(inv, now, horizon_h)
    tles = list(inv.tles)
    short_h = min(_FIRST_WINDOW_H, horizon_h)
    positions = sorted({(r.lat, r.lon) for r in requests})
    short = _passes_at(tles, positions, now, short_h, mask_deg)
    full: dict[tuple[float, float], dict[str, list[Pass]]] = {}
    if short_h >= horizon_h:
        full = short
    deadline = now + timedelta(hours=short_h)
    while True:
        trial = loads.copy() if loads is not None else None
        chains: list[list[Plan | None]] = []
        need: set[tuple[float, float]] = set()
        for r in requests:
            pos = (r.lat, r.lon)
            passes = full[pos] if pos in full else short[pos]
            chain = _chain(windows, passes, tles, now, r, lead_s, trial)
            # A pass clipped at the short window's end still rises inside it, so a delivery
            # found there is the true earliest; only a chain not completed needs more.
            if pos not in full and not all(
                p is not None and p.estimated_delivery_at <= deadline for p in chain
            ):
                need.add(pos)
            chains.append(chain)
        if not need:
            break
        full |= _passes_at(tles, sorted(need), now, horizon_h, mask_deg)
    if loads is not None and trial is not None:
        loads.planned = trial.planned
    unreachable = NoPlan(
        f"no satellite can be loaded at a ground station and then pass over the device "
        f"within {horizon_h:g} h"
    )
    full_windows = NoPlan(
        f"every load window that could reach the device within {horizon_h:g} h is full"
    )
    out: list[list[Plan | NoPlan]] = []
    for r, chain in zip(requests, chains, strict=True):
        why = unreachable
        if loads is not None and None in chain:  # would it go if windows had room?
            pos = (r.lat, r.lon)
            unlimited = _chain(windows, full.get(pos, short[pos]), tles, now, r, lead_s)
            if unlimited.count(None) < chain.count(None):
                why = full_windows
        out.append([p if p is not None else why for p in chain])
    return out


def plan_delivery(
    inv: Inventory,
    lat: float,
    lon: float,
    now: datetime,
    *,
    not_before: datetime | None = None,
    horizon_h: float = HORIZON_H,
    mask_deg: float = TERMINAL_MASK_DEG,
    lead_s: float = LOAD_LEAD_S,
) -> Plan | NoPlan:
    """The earliest-delivery plan for one terminal (see the module docstring)."""
    return plan_batch(
        inv,
        [Request(lat, lon, not_before)],
        now,
        horizon_h=horizon_h,
        mask_deg=mask_deg,
        lead_s=lead_s,
    )[0][0]


def delivery_on(
    satellite: str,
    inv: Inventory,
    lat: float,
    lon: float,
    after: datetime,
    *,
    horizon_h: float = HORIZON_H,
    mask_deg: float = TERMINAL_MASK_DEG,
) -> datetime | None:
    """When ``satellite`` next serves the terminal at or after ``after`` (a station loaded a
    different satellite than planned, so the estimate follows the one that carries it)."""
    from satiot.network.contacts import Site, compute_contacts

    tle = next((t for t in inv.tles if t.name == satellite), None)
    if tle is None:
        return None
    for p in compute_contacts([tle], [Site("terminal", lat, lon)], after, horizon_h, mask_deg):
        if p.set > after:
            return max(p.rise, after)
    return None
