"""Exact pass refinement: rise/set roots and culmination maxima of the true elevation.

The screening kernel in :mod:`satiot.network.contacts` only says *which grid interval* holds
an event; here the elevation is evaluated exactly (single-satellite SGP4 at arbitrary times,
the same Earth-fixed geometry) and solved, vectorised over all events of one satellite per
SGP4 call so that millions of events cost a few hundred calls rather than millions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray
from sgp4.api import Satrec

from satiot.network.geometry import (
    Array,
    geodetic_to_ecef,
    gmst_rad,
    teme_to_ecef,
    up_vectors,
)
from satiot.network.orbits import Tle, time_grid

ROOT_TOL_S = 1e-4  # rise/set to a tenth of a millisecond
IntArray = NDArray[np.int64]
PEAK_TOL_S = 1e-2  # culmination time; the maximum elevation is flat there (error ∝ δt²)
MAX_ITERATIONS = 60


@dataclass(frozen=True)
class Targets:
    """Satellites and places to evaluate elevations for, indexed as the kernel numbers them."""

    satrecs: list[Satrec]
    fixed_pos: Array
    fixed_up: Array
    moving: list[Callable[[Array], tuple[Array, Array, Array]]]
    jd0: float
    fr0: float

    @classmethod
    def build(
        cls,
        tles: Sequence[Tle],
        fixed: Sequence[Any],
        moving: Sequence[Any],
        jd0: float,
        fr0: float,
    ) -> Targets:
        lat = np.array([s.lat for s in fixed], dtype=np.float64)
        lon = np.array([s.lon for s in fixed], dtype=np.float64)
        alt = np.array([s.alt_m for s in fixed], dtype=np.float64) / 1000.0
        return cls(
            [t.satrec() for t in tles],
            geodetic_to_ecef(lat, lon, alt).reshape(-1, 3),
            up_vectors(lat, lon).reshape(-1, 3),
            [m.positions for m in moving],
            jd0,
            fr0,
        )

    def _places(self, tgt: NDArray[np.int64], t: Array) -> tuple[Array, Array]:
        n_fixed = len(self.fixed_pos)
        pos = np.empty((len(tgt), 3))
        up = np.empty((len(tgt), 3))
        fixed = tgt < n_fixed
        pos[fixed] = self.fixed_pos[tgt[fixed]]
        up[fixed] = self.fixed_up[tgt[fixed]]
        for m in np.unique(tgt[~fixed]):
            sel = tgt == m
            lat, lon, alt = self.moving[int(m) - n_fixed](t[sel])
            pos[sel] = geodetic_to_ecef(lat, lon, np.asarray(alt) / 1000.0)
            up[sel] = up_vectors(lat, lon)
        return pos, up

    def look(self, sat: NDArray[np.int64], tgt: NDArray[np.int64], t: Array) -> tuple[Array, Array]:
        """sin(elevation) and its time derivative (1/s) at seconds ``t`` after the start.

        The derivative treats the place as fixed on the ground; for moving places it is only a
        Newton guide (the solvers keep a bracket, so they still converge).
        """
        r = np.full((len(t), 3), np.nan)
        v = np.full((len(t), 3), np.nan)
        order = np.argsort(sat, kind="stable")
        bounds = np.flatnonzero(np.diff(sat[order])) + 1
        for group in np.split(order, bounds):
            if len(group) == 0:
                continue
            jd, fr = time_grid(self.jd0, self.fr0, t[group])
            err, rg, vg = self.satrecs[int(sat[group[0]])].sgp4_array(jd, fr)
            re, ve = teme_to_ecef(rg, vg, gmst_rad(jd, fr))
            bad = err != 0
            re[bad] = np.nan
            r[group], v[group] = re, ve
        pos, up = self._places(tgt, t)
        d = r - pos
        rho = np.sqrt(np.einsum("ij,ij->i", d, d))
        du = np.einsum("ij,ij->i", d, up)
        h = du / rho
        hdot = np.einsum("ij,ij->i", v, up) / rho - du * np.einsum("ij,ij->i", d, v) / rho**3
        return h, hdot


def solve_roots(
    targets: Targets,
    sat: NDArray[np.int64],
    tgt: NDArray[np.int64],
    a: Array,
    b: Array,
    fa: Array,
    fb: Array,
    sin_mask: float,
) -> Array:
    """Times in [a, b] where sin(elevation) = sin(mask), given f = sin(el) − sin(mask) at the
    ends with opposite signs. Newton steps from the regula-falsi guess, falling back to
    bisection whenever a step would leave the bracket, to ``ROOT_TOL_S``."""
    a, b, fa, fb = a.copy(), b.copy(), fa.copy(), fb.copy()
    span = fb - fa
    t = np.where(span != 0.0, a - fa * (b - a) / np.where(span != 0.0, span, 1.0), 0.5 * (a + b))
    active = np.flatnonzero(b - a > ROOT_TOL_S)
    for _ in range(MAX_ITERATIONS):
        if len(active) == 0:
            break
        ta = t[active]
        h, hdot = targets.look(sat[active], tgt[active], ta)
        f = h - sin_mask
        same = np.sign(f) == np.sign(fa[active])
        a[active] = np.where(same, ta, a[active])
        fa[active] = np.where(same, f, fa[active])
        b[active] = np.where(same, b[active], ta)
        fb[active] = np.where(same, fb[active], f)
        with np.errstate(divide="ignore", invalid="ignore"):
            tn = ta - f / hdot
        lo, hi = a[active], b[active]
        outside = ~((tn > lo) & (tn < hi))
        tn = np.where(outside, 0.5 * (lo + hi), tn)
        done = (np.abs(tn - ta) < ROOT_TOL_S) | (f == 0.0) | (hi - lo < ROOT_TOL_S)
        t[active] = np.where(f == 0.0, ta, tn)
        active = active[~done]
    return t


def maximise(
    targets: Targets,
    sat: NDArray[np.int64],
    tgt: NDArray[np.int64],
    lo: Array,
    hi: Array,
) -> tuple[Array, Array]:
    """Time and value of the largest sin(elevation) in each [lo, hi] (one peak assumed).

    An end is the answer when the elevation falls away from it (a pass clipped by the
    window); otherwise the zero of the elevation rate is found by the Illinois method.
    """
    h_lo, d_lo = targets.look(sat, tgt, lo)
    h_hi, d_hi = targets.look(sat, tgt, hi)
    t = np.where(h_lo >= h_hi, lo, hi)
    best = np.maximum(h_lo, h_hi)
    inner = np.flatnonzero((d_lo > 0.0) & (d_hi < 0.0) & (hi - lo > PEAK_TOL_S))
    a, b, fa, fb = lo[inner].copy(), hi[inner].copy(), d_lo[inner].copy(), d_hi[inner].copy()
    side = np.zeros(len(inner))
    prev = np.full(len(inner), np.inf)
    active = np.arange(len(inner))
    for _ in range(MAX_ITERATIONS):
        if len(active) == 0:
            break
        ia = inner[active]
        ta = (a[active] * fb[active] - b[active] * fa[active]) / (fb[active] - fa[active])
        h, d = targets.look(sat[ia], tgt[ia], ta)
        t[ia], best[ia] = ta, h
        rising = d > 0.0
        fb[active] = np.where(rising & (side[active] > 0), 0.5 * fb[active], fb[active])
        fa[active] = np.where(~rising & (side[active] < 0), 0.5 * fa[active], fa[active])
        a[active] = np.where(rising, ta, a[active])
        fa[active] = np.where(rising, d, fa[active])
        b[active] = np.where(rising, b[active], ta)
        fb[active] = np.where(rising, fb[active], d)
        side[active] = np.where(rising, 1.0, -1.0)
        done = (np.abs(ta - prev[active]) < PEAK_TOL_S) | (d == 0.0) | ~np.isfinite(d)
        done |= b[active] - a[active] < PEAK_TOL_S
        prev[active] = ta
        active = active[~done]
    return t, best


@njit(cache=True, fastmath=False)
def _hermite_look(
    r: Array, v: Array, times: Array, s: int, px: Array, ux: Array, t: float
) -> tuple[float, float]:
    """sin(elevation) and its rate from the cubic Hermite interpolant of grid states.

    Between two SGP4 samples 60 s apart, positions and velocities pin a cubic whose error is
    under a metre in LEO (the fourth derivative of an orbit is ~ω⁴r), i.e. ~0.1 ms in time.
    """
    k: int = min(max(int(np.searchsorted(times, t)) - 1, 0), len(times) - 2)
    h = times[k + 1] - times[k]
    u = (t - times[k]) / h
    u2 = u * u
    u3 = u2 * u
    a0, a1, b0, b1 = 2 * u3 - 3 * u2 + 1, u3 - 2 * u2 + u, -2 * u3 + 3 * u2, u3 - u2
    da0, da1 = (6 * u2 - 6 * u) / h, 3 * u2 - 4 * u + 1
    db0, db1 = (-6 * u2 + 6 * u) / h, 3 * u2 - 2 * u
    du = dd = dv = vu = 0.0
    for j in range(3):
        p = a0 * r[s, k, j] + a1 * h * v[s, k, j] + b0 * r[s, k + 1, j] + b1 * h * v[s, k + 1, j]
        w = da0 * r[s, k, j] + da1 * v[s, k, j] + db0 * r[s, k + 1, j] + db1 * v[s, k + 1, j]
        d = p - px[j]
        du += d * ux[j]
        dd += d * d
        dv += d * w
        vu += w * ux[j]
    rho = np.sqrt(dd)
    return du / rho, vu / rho - du * dv / (rho * dd)


@njit(parallel=True, cache=True, fastmath=False)
def hermite_roots(
    r: Array,
    v: Array,
    times: Array,
    sat: NDArray[np.int64],
    pos: Array,
    up: Array,
    a: Array,
    b: Array,
    fa: Array,
    fb: Array,
    sin_mask: float,
) -> Array:
    """:func:`solve_roots` on the Hermite interpolant, compiled, one event per thread step."""
    out = np.empty(len(a))
    for i in prange(len(a)):
        lo, hi, flo = a[i], b[i], fa[i]
        span = fb[i] - flo
        t = lo - flo * (hi - lo) / span if span != 0.0 else 0.5 * (lo + hi)
        for _ in range(MAX_ITERATIONS):
            h, hd = _hermite_look(r, v, times, sat[i], pos[i], up[i], t)
            f = h - sin_mask
            if f == 0.0:
                break
            if (f > 0.0) == (flo > 0.0):
                lo, flo = t, f
            else:
                hi = t
            tn = t - f / hd if hd != 0.0 else 0.5 * (lo + hi)
            if not lo < tn < hi:
                tn = 0.5 * (lo + hi)
            step = abs(tn - t)
            t = tn
            if step < ROOT_TOL_S or hi - lo < ROOT_TOL_S:
                break
        out[i] = t
    return out


@njit(parallel=True, cache=True, fastmath=False)
def hermite_peaks(
    r: Array,
    v: Array,
    times: Array,
    sat: NDArray[np.int64],
    pos: Array,
    up: Array,
    lo_in: Array,
    hi_in: Array,
) -> tuple[Array, Array]:
    """:func:`maximise` on the Hermite interpolant, compiled."""
    t_out = np.empty(len(lo_in))
    h_out = np.empty(len(lo_in))
    for i in prange(len(lo_in)):
        a, b = lo_in[i], hi_in[i]
        ha, da = _hermite_look(r, v, times, sat[i], pos[i], up[i], a)
        hb, db = _hermite_look(r, v, times, sat[i], pos[i], up[i], b)
        t, best = (a, ha) if ha >= hb else (b, hb)
        if da > 0.0 and db < 0.0 and b - a > PEAK_TOL_S:
            side = 0
            prev = np.inf
            for _ in range(MAX_ITERATIONS):
                t = (a * db - b * da) / (db - da)
                best, d = _hermite_look(r, v, times, sat[i], pos[i], up[i], t)
                if d > 0.0:
                    if side > 0:
                        db *= 0.5
                    a, da, side = t, d, 1
                else:
                    if side < 0:
                        da *= 0.5
                    b, db, side = t, d, -1
                if abs(t - prev) < PEAK_TOL_S or d == 0.0 or b - a < PEAK_TOL_S:
                    break
                prev = t
        t_out[i] = t
        h_out[i] = best
    return t_out, h_out


class Solver(Protocol):
    """Where refinement gets its elevation from: exact SGP4 or the grid's interpolant."""

    def roots(
        self, sat: IntArray, tgt: IntArray, a: Array, b: Array, fa: Array, fb: Array, sm: float
    ) -> Array: ...

    def peaks(self, sat: IntArray, tgt: IntArray, lo: Array, hi: Array) -> tuple[Array, Array]: ...


@dataclass(frozen=True)
class ExactSolver:
    """Single-satellite SGP4 at every time the solvers ask for (the reference method)."""

    targets: Targets

    def roots(
        self, sat: IntArray, tgt: IntArray, a: Array, b: Array, fa: Array, fb: Array, sm: float
    ) -> Array:
        return solve_roots(self.targets, sat, tgt, a, b, fa, fb, sm)

    def peaks(self, sat: IntArray, tgt: IntArray, lo: Array, hi: Array) -> tuple[Array, Array]:
        return maximise(self.targets, sat, tgt, lo, hi)


@dataclass(frozen=True)
class HermiteSolver:
    """Compiled refinement on the Hermite interpolant of the grid's SGP4 states.

    For bulk plans (millions of passes) where calling SGP4 ~15 times per pass would dominate;
    agrees with :class:`ExactSolver` to about a millisecond. Moving places still go exact.
    """

    targets: Targets
    r: Array
    v: Array
    times: Array

    def _split(self, tgt: IntArray) -> tuple[IntArray, IntArray]:
        fixed = tgt < len(self.targets.fixed_pos)
        return np.flatnonzero(fixed), np.flatnonzero(~fixed)

    def roots(
        self, sat: IntArray, tgt: IntArray, a: Array, b: Array, fa: Array, fb: Array, sm: float
    ) -> Array:
        f, m = self._split(tgt)
        out = np.empty(len(a))
        t = self.targets
        out[f] = hermite_roots(
            self.r, self.v, self.times, sat[f], t.fixed_pos[tgt[f]], t.fixed_up[tgt[f]],
            a[f], b[f], fa[f], fb[f], sm,
        )  # fmt: skip
        out[m] = solve_roots(t, sat[m], tgt[m], a[m], b[m], fa[m], fb[m], sm)
        return out

    def peaks(self, sat: IntArray, tgt: IntArray, lo: Array, hi: Array) -> tuple[Array, Array]:
        f, m = self._split(tgt)
        t_out, h_out = np.empty(len(lo)), np.empty(len(lo))
        t = self.targets
        t_out[f], h_out[f] = hermite_peaks(
            self.r, self.v, self.times, sat[f], t.fixed_pos[tgt[f]], t.fixed_up[tgt[f]],
            lo[f], hi[f],
        )  # fmt: skip
        t_out[m], h_out[m] = maximise(t, sat[m], tgt[m], lo[m], hi[m])
        return t_out, h_out
