"""Contact plans: when each satellite rises above, culminates over and sets below each site.

A day of passes for a hundred satellites over ten thousand sites is a billion (satellite,
site, minute) triples, so the work is split the way REFERENCE §8 measured to be fast:

1. ``SatrecArray`` propagates every satellite on a coarse time grid (``step_s``), a chunk of
   time at a time so that memory stays bounded however long the window;
2. a compiled kernel (numba, parallel over sites) evaluates sin(elevation) at every triple and
   streams through time keeping a little state per (site, satellite): it records each pass
   (the grid intervals holding its rise and set, and its highest sample) and each *near miss*,
   a grid local maximum a few degrees below the mask, where a grazing pass may peak above the
   mask between two samples;
3. only at those places, the exact elevation (single-satellite SGP4 at arbitrary times and the
   same geometry) is solved for rise and set (safeguarded Newton, to 0.1 ms) and maximised for
   the culmination.

Passes already in progress when the window opens, or still going when it closes, are clipped:
their rise (or set) is the window's start (or end), and their culmination is the highest
point inside the window. Times are seconds after ``start`` internally and aware UTC datetimes
in the returned :class:`Pass` records.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from satiot.network.contact_refine import ExactSolver, HermiteSolver, Solver, Targets
from satiot.network.geometry import (
    EARTH_RADIUS_KM,
    Array,
    geodetic_to_ecef,
    julian_date,
    up_vectors,
)
from satiot.network.orbits import Tle, propagate_ecef, satrec_array, time_grid

IntArray = NDArray[np.int64]
ProgressFn = Callable[[int, int], None]
Refine = Literal["exact", "hermite"]
PositionsFn = Callable[[Array], tuple[Array, Array, Array]]

# Screening flags a grid local maximum as a possible grazing pass when it is within this many
# degrees below the mask at a 60 s step; the margin grows with the square of the step because
# the peak can hide half a step from the nearest sample.
NEAR_MISS_DEG_AT_60S = 3.0
CHUNK_SECONDS = 3 * 3600.0
FLOPS_PER_TRIPLE = 16  # 3 sub, 5 for d·u, 5 for |d|², sqrt, divide, compare


@dataclass(frozen=True)
class Site:
    """A fixed place on the ground (WGS-84 degrees, metres above the ellipsoid)."""

    name: str
    lat: float
    lon: float
    alt_m: float = 0.0


@dataclass(frozen=True)
class MovingSite:
    """A site that moves: ``positions(seconds since start)`` → (lat°, lon°, alt m) arrays.

    The twin's terminal mobility models (ships, trucks, aircraft) provide the callable; it is
    sampled at the grid times and again at every time the refinement needs.
    """

    name: str
    positions: PositionsFn


@dataclass(frozen=True)
class Pass:
    """One pass of a satellite over a site, times as aware UTC datetimes."""

    site: str
    satellite: str
    rise: datetime
    culmination: datetime
    set: datetime
    max_elevation_deg: float


@dataclass(frozen=True)
class PassArrays:
    """Passes as columns (seconds after the window start), before they become objects.

    ``target`` indexes the computed places (a cell centre stands for several sites when
    clustering); :func:`compute_contacts` expands them into :class:`Pass` records.
    """

    sat: IntArray
    target: IntArray
    rise_s: Array
    culmination_s: Array
    set_s: Array
    max_elevation_deg: Array
    screen_seconds: float
    propagate_seconds: float
    refine_seconds: float
    triples: int


@njit(parallel=True, cache=True, fastmath=False)
def _screen(
    sat: Array,
    site: Array,
    up: Array,
    moving: int,
    sin_mask: float,
    sin_near: float,
    first: int,
    last: bool,
    state_f: Array,
    state_i: IntArray,
    out_i: IntArray,
    out_f: Array,
    count: IntArray,
) -> None:
    """Screen every (site, satellite, step) of one time chunk; see the module docstring.

    ``sat`` is (3, satellites, steps); ``site``/``up`` are (3, sites, 1 or steps), with
    ``moving`` 1 when sites carry a position per step. ``first`` is the global index of the
    chunk's first step. Per (site, satellite) state carried between chunks: ``state_f`` =
    (value two steps back, one step back, best value in the current pass, value before the
    rise, value after the rise) and ``state_i`` = (rise step or -2 when not in a pass, -1
    when the pass began before the window, step of the best value). Records go to
    ``out_i`` = (kind 0 pass / 1 near miss, satellite, rise step, peak step, set step or -1)
    and ``out_f`` = (f before rise, f after rise, f before set, f after set), with f =
    sin(elevation) − sin(mask).
    """
    n_sites = site.shape[1]
    n_sats = sat.shape[1]
    n = sat.shape[2]
    cap = out_i.shape[1]
    for i in prange(n_sites):
        buf = np.empty(n)
        c = count[i]
        for s in range(n_sats):
            if moving:
                for t in range(n):
                    dx = sat[0, s, t] - site[0, i, t]
                    dy = sat[1, s, t] - site[1, i, t]
                    dz = sat[2, s, t] - site[2, i, t]
                    dot = dx * up[0, i, t] + dy * up[1, i, t] + dz * up[2, i, t]
                    buf[t] = dot / np.sqrt(dx * dx + dy * dy + dz * dz)
            else:
                qx, qy, qz = site[0, i, 0], site[1, i, 0], site[2, i, 0]
                ex, ey, ez = up[0, i, 0], up[1, i, 0], up[2, i, 0]
                for t in range(n):
                    dx = sat[0, s, t] - qx
                    dy = sat[1, s, t] - qy
                    dz = sat[2, s, t] - qz
                    buf[t] = (dx * ex + dy * ey + dz * ez) / np.sqrt(dx * dx + dy * dy + dz * dz)
            p2 = state_f[0, i, s]
            p1 = state_f[1, i, s]
            rise = state_i[0, i, s]
            if rise == -2 and p1 <= sin_near and buf.max() <= sin_near:
                # Nothing near the mask in this chunk (the common case): skip the scan.
                state_f[0, i, s] = buf[n - 2] if n >= 2 else p1
                state_f[1, i, s] = buf[n - 1]
                continue
            best = state_f[2, i, s]
            ra = state_f[3, i, s]
            rb = state_f[4, i, s]
            best_t = state_i[1, i, s]
            for t in range(n):
                g = buf[t]
                gt = first + t
                above = g >= sin_mask
                if gt == 0:
                    if above:
                        rise, best, best_t, ra, rb = -1, g, 0, 0.0, 0.0
                else:
                    was = p1 >= sin_mask
                    if above and not was:
                        rise, best, best_t = gt - 1, g, gt
                        ra, rb = p1 - sin_mask, g - sin_mask
                    elif above:
                        if g > best:
                            best, best_t = g, gt
                    elif was:
                        if c < cap:
                            out_i[i, c, 0] = 0
                            out_i[i, c, 1] = s
                            out_i[i, c, 2] = rise
                            out_i[i, c, 3] = best_t
                            out_i[i, c, 4] = gt - 1
                            out_f[i, c, 0] = ra
                            out_f[i, c, 1] = rb
                            out_f[i, c, 2] = p1 - sin_mask
                            out_f[i, c, 3] = g - sin_mask
                        c += 1
                        rise = -2
                    elif gt >= 2 and sin_near < p1 and p1 >= p2 and p1 > g:
                        if c < cap:
                            out_i[i, c, 0] = 1
                            out_i[i, c, 1] = s
                            out_i[i, c, 2] = gt - 2
                            out_i[i, c, 3] = gt - 1
                            out_i[i, c, 4] = gt
                        c += 1
                p2 = p1
                p1 = g
            if last and rise != -2:
                if c < cap:
                    out_i[i, c, 0] = 0
                    out_i[i, c, 1] = s
                    out_i[i, c, 2] = rise
                    out_i[i, c, 3] = best_t
                    out_i[i, c, 4] = -1
                    out_f[i, c, 0] = ra
                    out_f[i, c, 1] = rb
                c += 1
            state_f[0, i, s] = p2
            state_f[1, i, s] = p1
            state_f[2, i, s] = best
            state_f[3, i, s] = ra
            state_f[4, i, s] = rb
            state_i[0, i, s] = rise
            state_i[1, i, s] = best_t
        count[i] = c


def cluster_sites(sites: Sequence[Site], cell_km: float) -> tuple[list[Site], list[list[int]]]:
    """Group fixed sites into grid cells about ``cell_km`` across; one centroid per cell.

    Cells are latitude bands ``cell_km`` tall, cut into longitude steps of the same ground
    width at the band's middle. Every member gets the centroid's passes, so the error is the
    timing difference between two places up to a cell diagonal apart: a few seconds for
    sites within ~10 km of each other (REFERENCE §8), more for wider cells.
    """
    if cell_km <= 0.0:
        return list(sites), [[i] for i in range(len(sites))]
    dlat = math.degrees(cell_km / EARTH_RADIUS_KM)
    cells: dict[tuple[int, int], list[int]] = {}
    for i, s in enumerate(sites):
        row = math.floor((s.lat + 90.0) / dlat)
        middle = -90.0 + (row + 0.5) * dlat
        dlon = dlat / max(math.cos(math.radians(middle)), 1e-3)
        cells.setdefault((row, math.floor((s.lon + 180.0) / dlon)), []).append(i)
    centres: list[Site] = []
    members: list[list[int]] = []
    for idx in cells.values():
        ecef = geodetic_to_ecef(
            np.array([sites[i].lat for i in idx]),
            np.array([sites[i].lon for i in idx]),
            np.array([sites[i].alt_m for i in idx]) / 1000.0,
        ).mean(axis=0)
        lat = math.degrees(math.atan2(ecef[2], math.hypot(ecef[0], ecef[1])))
        lon = math.degrees(math.atan2(ecef[1], ecef[0]))
        alt = float(np.mean([sites[i].alt_m for i in idx]))
        centres.append(Site(f"cell{len(centres)}", lat, lon, alt))
        members.append(idx)
    return centres, members


def _grid(hours: float, step_s: float) -> Array:
    end = hours * 3600.0
    times = np.arange(0.0, end, step_s, dtype=np.float64)
    return np.asarray(np.append(times, end), dtype=np.float64)


def _site_arrays(
    fixed: Sequence[Site], moving: Sequence[MovingSite], seconds: Array
) -> tuple[Array, Array, Array, Array]:
    """(3, sites, 1) fixed and (3, sites, steps) moving positions and up vectors."""
    lat = np.array([s.lat for s in fixed], dtype=np.float64)
    lon = np.array([s.lon for s in fixed], dtype=np.float64)
    alt = np.array([s.alt_m for s in fixed], dtype=np.float64) / 1000.0
    fpos = np.ascontiguousarray(geodetic_to_ecef(lat, lon, alt).T[:, :, None])
    fup = np.ascontiguousarray(up_vectors(lat, lon).T[:, :, None])
    mpos = np.empty((3, len(moving), len(seconds)))
    mup = np.empty((3, len(moving), len(seconds)))
    for j, m in enumerate(moving):
        mlat, mlon, malt = m.positions(seconds)
        mpos[:, j, :] = geodetic_to_ecef(mlat, mlon, np.asarray(malt) / 1000.0).T
        mup[:, j, :] = up_vectors(mlat, mlon).T
    return fpos, fup, mpos, mup


def _run_chunk(
    sat: Array,
    pos: Array,
    up: Array,
    moving: int,
    sines: tuple[float, float],
    first: int,
    last: bool,
    state: tuple[Array, IntArray],
) -> tuple[IntArray, Array]:
    """Run the kernel on one chunk, growing the output buffers if a site overflows them."""
    n_sites, n_sats = pos.shape[1], sat.shape[1]
    cap = max(8, int(n_sats * (1.0 + sat.shape[2] / 90.0)))
    while True:
        saved = (state[0].copy(), state[1].copy())
        out_i = np.zeros((n_sites, cap, 5), dtype=np.int64)
        out_f = np.zeros((n_sites, cap, 4), dtype=np.float64)
        count = np.zeros(n_sites, dtype=np.int64)
        _screen(sat, pos, up, moving, sines[0], sines[1], first, last, *state, out_i, out_f, count)
        if n_sites == 0 or count.max() <= cap:
            break
        state[0][...], state[1][...] = saved
        cap = int(count.max())
    keep = np.arange(cap)[None, :] < count[:, None]
    site_idx = np.broadcast_to(np.arange(n_sites)[:, None], keep.shape)[keep]
    rows_i = np.concatenate([out_i[keep], site_idx[:, None]], axis=1)
    return rows_i, out_f[keep]


def _new_state(n_sites: int, n_sats: int) -> tuple[Array, IntArray]:
    state_f = np.zeros((5, n_sites, n_sats))
    state_i = np.full((2, n_sites, n_sats), -2, dtype=np.int64)
    return state_f, state_i


def contact_arrays(
    tles: Sequence[Tle],
    fixed: Sequence[Site],
    moving: Sequence[MovingSite],
    start: datetime,
    hours: float,
    min_elevation_deg: float,
    *,
    step_s: float = 60.0,
    refine: Refine = "exact",
    progress: ProgressFn | None = None,
) -> PassArrays:
    """The engine behind :func:`compute_contacts`, returning columns instead of objects.

    Targets are numbered fixed sites first, then moving ones. Times are seconds after
    ``start``. See the module docstring for the method; ``refine="hermite"`` solves on the
    interpolated grid states instead of calling SGP4 again (for bulk plans, see
    :class:`~satiot.network.contact_refine.HermiteSolver`).
    """
    import time

    jd0, fr0 = julian_date(start)
    times = _grid(hours, step_s)
    sin_mask = math.sin(math.radians(min_elevation_deg))
    near_deg = min(NEAR_MISS_DEG_AT_60S * (step_s / 60.0) ** 2, 30.0)
    sin_near = math.sin(math.radians(max(min_elevation_deg - near_deg, -90.0)))
    sats = satrec_array(tles)
    n_sats, n_fixed = len(tles), len(fixed)
    chunk = max(16, int(CHUNK_SECONDS / step_s))
    fstate = _new_state(n_fixed, n_sats)
    mstate = _new_state(len(moving), n_sats)
    rows_i: list[IntArray] = []
    rows_f: list[Array] = []
    t_prop = t_screen = 0.0
    fpos, fup, _, _ = _site_arrays(fixed, [], times[:0])
    keep_r: list[Array] = []
    keep_v: list[Array] = []
    for first in range(0, len(times), chunk):
        sec = times[first : first + chunk]
        last = first + chunk >= len(times)
        t0 = time.perf_counter()
        jd, fr = time_grid(jd0, fr0, sec)
        r, v, ok = propagate_ecef(sats, jd, fr)
        r[~ok] = 0.0  # an errored satellite sits at the Earth's centre: never above a mask
        if refine == "hermite":
            keep_r.append(r)
            keep_v.append(v)
        sat = np.ascontiguousarray(np.moveaxis(r, 2, 0))
        _, _, mpos, mup = _site_arrays([], moving, sec)
        t1 = time.perf_counter()
        for pos, up, mv, state, offset in (
            (fpos, fup, 0, fstate, 0),
            (mpos, mup, 1, mstate, n_fixed),
        ):
            if pos.shape[1] == 0:
                continue
            ri, rf = _run_chunk(sat, pos, up, mv, (sin_mask, sin_near), first, last, state)
            ri[:, 5] += offset
            rows_i.append(ri)
            rows_f.append(rf)
        t2 = time.perf_counter()
        t_prop += t1 - t0
        t_screen += t2 - t1
        if progress is not None:
            progress(min(first + chunk, len(times)), len(times))
    t3 = time.perf_counter()
    ev_i = np.concatenate(rows_i) if rows_i else np.zeros((0, 6), dtype=np.int64)
    ev_f = np.concatenate(rows_f) if rows_f else np.zeros((0, 4))
    targets = Targets.build(tles, fixed, moving, jd0, fr0)
    solver: Solver = ExactSolver(targets)
    if refine == "hermite":
        r_all = np.ascontiguousarray(np.concatenate(keep_r, axis=1))
        v_all = np.ascontiguousarray(np.concatenate(keep_v, axis=1))
        solver = HermiteSolver(targets, r_all, v_all, times)
    passes = _refine(ev_i, ev_f, times, solver, sin_mask)
    t4 = time.perf_counter()
    sat_i, target, rise, culm, sett, max_sin = passes
    return PassArrays(
        sat=sat_i,
        target=target,
        rise_s=rise,
        culmination_s=culm,
        set_s=sett,
        max_elevation_deg=np.degrees(np.arcsin(np.clip(max_sin, -1.0, 1.0))),
        screen_seconds=t_screen,
        propagate_seconds=t_prop,
        refine_seconds=t4 - t3,
        triples=n_sats * (n_fixed + len(moving)) * len(times),
    )


def _refine(
    ev_i: IntArray, ev_f: Array, times: Array, solver: Solver, sin_mask: float
) -> tuple[IntArray, IntArray, Array, Array, Array, Array]:
    """Exact rise, culmination and set for every screened pass and promoted near miss."""
    last = len(times) - 1
    kind, sat, tgt = ev_i[:, 0], ev_i[:, 1], ev_i[:, 5]
    # Near misses: maximise exactly; those that peak above the mask become passes.
    near = kind == 1
    n_sat, n_tgt = sat[near], tgt[near]
    lo, hi = times[ev_i[near, 2]], times[ev_i[near, 4]]
    t_near, h_near = solver.peaks(n_sat, n_tgt, lo, hi)
    up = h_near > sin_mask
    n_sat, n_tgt, t_near, h_near = n_sat[up], n_tgt[up], t_near[up], h_near[up]
    lo, hi = lo[up], hi[up]
    f_top = h_near - sin_mask
    f_lo = solver.peaks(n_sat, n_tgt, lo, lo)[1] - sin_mask
    f_hi = solver.peaks(n_sat, n_tgt, hi, hi)[1] - sin_mask
    near_rise = solver.roots(n_sat, n_tgt, lo, t_near, f_lo, f_top, sin_mask)
    near_set = solver.roots(n_sat, n_tgt, t_near, hi, f_top, f_hi, sin_mask)
    # Screened passes.
    p = ~near
    p_sat, p_tgt = sat[p], tgt[p]
    r_i, k_i, s_i = ev_i[p, 2], ev_i[p, 3], ev_i[p, 4]
    f = ev_f[p]
    rise = np.zeros(len(p_sat))
    opened = r_i >= 0
    rise[opened] = solver.roots(
        p_sat[opened],
        p_tgt[opened],
        times[r_i[opened]],
        times[r_i[opened] + 1],
        f[opened, 0],
        f[opened, 1],
        sin_mask,
    )
    sett = np.full(len(p_sat), times[last])
    closed = s_i >= 0
    sett[closed] = solver.roots(
        p_sat[closed],
        p_tgt[closed],
        times[s_i[closed]],
        times[s_i[closed] + 1],
        f[closed, 2],
        f[closed, 3],
        sin_mask,
    )
    lo = np.maximum(times[np.maximum(k_i - 1, 0)], rise)
    hi = np.minimum(times[np.minimum(k_i + 1, last)], sett)
    culm, best = solver.peaks(p_sat, p_tgt, lo, hi)
    return (
        np.concatenate([p_sat, n_sat]),
        np.concatenate([p_tgt, n_tgt]),
        np.concatenate([rise, near_rise]),
        np.concatenate([culm, t_near]),
        np.concatenate([sett, near_set]),
        np.concatenate([best, h_near]),
    )


def compute_contacts(
    tles: Sequence[Tle],
    sites: Sequence[Site | MovingSite],
    start: datetime,
    hours: float,
    min_elevation_deg: float,
    *,
    step_s: float = 60.0,
    cell_km: float = 0.0,
    refine: Refine = "exact",
    progress: ProgressFn | None = None,
) -> list[Pass]:
    """Every pass of every satellite above ``min_elevation_deg`` at every site, in a window.

    The window is ``hours`` long from the aware datetime ``start``. Passes in progress at the
    window's start or end are clipped to it (rise = start, or set = end). With ``cell_km > 0``
    fixed sites in the same grid cell share one computation at their centroid (see
    :func:`cluster_sites` for the error this brings); moving sites are always computed on
    their own. ``refine="hermite"`` trades SGP4 calls for the grid's interpolant (~1 ms
    difference) on big plans. ``progress(done, total)`` is called after each chunk of grid steps.
    Returned sorted by (rise, site, satellite).
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if hours <= 0.0 or step_s <= 0.0:
        raise ValueError("hours and step_s must be positive")
    if not -90.0 <= min_elevation_deg < 90.0:
        raise ValueError("min_elevation_deg must be in [-90, 90)")
    fixed = [s for s in sites if isinstance(s, Site)]
    moving = [s for s in sites if isinstance(s, MovingSite)]
    centres, members = cluster_sites(fixed, cell_km)
    arrays = contact_arrays(
        tles,
        centres,
        moving,
        start,
        hours,
        min_elevation_deg,
        step_s=step_s,
        refine=refine,
        progress=progress,
    )
    names = [[fixed[i].name for i in m] for m in members] + [[m.name] for m in moving]
    out: list[Pass] = []
    for j in range(len(arrays.sat)):
        sat_name = tles[int(arrays.sat[j])].name
        rise = start + timedelta(seconds=float(arrays.rise_s[j]))
        culm = start + timedelta(seconds=float(arrays.culmination_s[j]))
        sett = start + timedelta(seconds=float(arrays.set_s[j]))
        elev = float(arrays.max_elevation_deg[j])
        for site_name in names[int(arrays.target[j])]:
            out.append(Pass(site_name, sat_name, rise, culm, sett, elev))
    out.sort(key=lambda p: (p.rise, p.site, p.satellite))
    return out
