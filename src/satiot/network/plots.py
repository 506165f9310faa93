"""Pictures for operators: ground tracks over a world map, pass timelines, latency histograms.

A NOC engineer reads a map of where the satellites fly and which ground stations see them
faster than a table of coordinates, so the twin renders these with matplotlib (Agg, no
display, no network access). The coastline comes from the 1 km land mask shipped inside the
``global_land_mask`` package, averaged to a coarse grid once per process.

Every ``plot_*`` function writes PNG or SVG (chosen by the path's suffix) and returns the path.
Figures are built with ``matplotlib.figure.Figure`` directly, not pyplot, so nothing global
is left behind between calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from numpy.typing import ArrayLike, NDArray

from satiot.network.geometry import EARTH_RADIUS_KM

Array = NDArray[np.float64]
Extent = tuple[float, float, float, float]  # lon_min, lon_max, lat_min, lat_max

SEA_COLOUR = "#dceaf5"
LAND_COLOUR = "#f1ede4"
COAST_COLOUR = "#8a8a80"
_FORMATS = {".png": "png", ".svg": "svg"}
_HALO = [patheffects.withStroke(linewidth=2.5, foreground="white")]


@lru_cache(maxsize=4)
def land_fraction_grid(step_deg: float = 0.25) -> tuple[Array, Array, Array]:
    """(lat, lon, fraction of land) at cell centres of a ``step_deg`` grid, north row first.

    The package's mask is 1/120° (21600 × 43200); block-averaging it gives a fraction whose
    0.5 contour is a smooth coastline instead of the staircase a plain subsample would draw.
    """
    from global_land_mask import globe  # loads a 2.5 MB archive: only when a map is drawn

    ocean = np.asarray(globe._mask)  # True over water (``is_land`` inverts it); no public API
    factor = round(step_deg * 120)
    if factor < 1 or ocean.shape[0] % factor or ocean.shape[1] % factor:
        raise ValueError(f"step_deg must divide 1/120° evenly, got {step_deg}")
    rows, cols = ocean.shape[0] // factor, ocean.shape[1] // factor
    frac = np.empty((rows, cols), dtype=np.float64)
    chunk = max(1, 2400 // factor)  # rows of cells per pass, to bound memory
    for r0 in range(0, rows, chunk):
        r1 = min(rows, r0 + chunk)
        block = ocean[r0 * factor : r1 * factor].reshape(r1 - r0, factor, cols, factor)
        frac[r0:r1] = 1.0 - block.sum(axis=(1, 3), dtype=np.int32) / factor**2
    lat = 90.0 - step_deg * (np.arange(rows) + 0.5)
    lon = -180.0 + step_deg * (np.arange(cols) + 0.5)
    return lat, lon, frac


def _degrees(value: float, positive: str, negative: str) -> str:
    if abs(value) < 1e-9:
        return "0°"
    return f"{abs(value):g}°{positive if value > 0 else negative}"


def world_map(ax: Axes, extent: Extent | None = None, *, step_deg: float = 0.25) -> Axes:
    """Draw land, coastlines and a graticule on ``ax`` in plate carrée (lon/lat) degrees."""
    lon0, lon1, lat0, lat1 = extent if extent is not None else (-180.0, 180.0, -90.0, 90.0)
    lat, lon, frac = land_fraction_grid(step_deg)
    pad = 2 * step_deg
    rows = (lat >= lat0 - pad) & (lat <= lat1 + pad)
    cols = (lon >= lon0 - pad) & (lon <= lon1 + pad)
    sub = frac[np.ix_(rows, cols)]
    ax.set_facecolor(SEA_COLOUR)
    ax.contourf(lon[cols], lat[rows], sub, levels=[0.5, 1.5], colors=[LAND_COLOUR], zorder=0)
    ax.contour(
        lon[cols], lat[rows], sub, levels=[0.5], colors=[COAST_COLOUR], linewidths=0.5, zorder=1
    )
    ax.set_xlim(lon0, lon1)
    ax.set_ylim(lat0, lat1)
    ax.set_aspect("equal")
    span = max(lon1 - lon0, lat1 - lat0)
    step = 30 if span > 120 else 10 if span > 40 else 5
    ax.set_xticks(np.arange(np.ceil(lon0 / step) * step, lon1 + 1e-9, step))
    ax.set_yticks(np.arange(np.ceil(lat0 / step) * step, lat1 + 1e-9, step))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _degrees(v, "E", "W")))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _degrees(v, "N", "S")))
    ax.tick_params(labelsize=8)
    ax.grid(True, color="white", linewidth=0.6, alpha=0.9, zorder=0.5)
    return ax


def split_antimeridian(lat: ArrayLike, lon: ArrayLike) -> tuple[Array, Array]:
    """Insert NaN breaks where a track jumps across ±180° so no drawn segment spans the map."""
    lat_a = np.asarray(lat, dtype=np.float64)
    lon_a = (np.asarray(lon, dtype=np.float64) + 180.0) % 360.0 - 180.0
    jumps = np.flatnonzero(np.abs(np.diff(lon_a)) > 180.0) + 1
    return np.insert(lat_a, jumps, np.nan), np.insert(lon_a, jumps, np.nan)


def geodesic_circle(
    lat_deg: float, lon_deg: float, radius_km: float, points: int = 181
) -> tuple[Array, Array]:
    """Points at ``radius_km`` (great-circle, mean sphere) around a centre; lon unwrapped.

    Longitudes are continuous (they may leave [-180, 180]) so that the polygon can be drawn
    shifted by ±360° to wrap across the antimeridian.
    """
    phi1, lam1 = np.deg2rad(lat_deg), np.deg2rad(lon_deg)
    delta = radius_km / EARTH_RADIUS_KM
    bearing = np.linspace(0.0, 2.0 * np.pi, points)
    sin_phi2 = np.sin(phi1) * np.cos(delta) + np.cos(phi1) * np.sin(delta) * np.cos(bearing)
    phi2 = np.arcsin(np.clip(sin_phi2, -1.0, 1.0))
    lam2 = lam1 + np.arctan2(
        np.sin(bearing) * np.sin(delta) * np.cos(phi1), np.cos(delta) - np.sin(phi1) * sin_phi2
    )
    return np.rad2deg(phi2), np.rad2deg(np.unwrap(lam2))


def _draw_footprint(ax: Axes, lat: float, lon: float, radius_km: float, colour: str) -> None:
    clat, clon = geodesic_circle(lat, lon, radius_km)
    flat, flon = clat, clon
    if np.ptp(clon) > 300.0:  # the circle encloses a pole: close the filled area along it
        pole = 90.0 if lat > 0 else -90.0
        flat = np.r_[clat, pole, pole]
        flon = np.r_[clon, clon[-1], clon[0]]
    for shift in (-360.0, 0.0, 360.0):
        ax.fill(flon + shift, flat, color=colour, alpha=0.12, linewidth=0, zorder=2)
        ax.plot(clon + shift, clat, color=colour, linewidth=0.7, alpha=0.8, zorder=2)


def _save(fig: Figure, path: str | Path) -> Path:
    out = Path(path)
    fmt = _FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ValueError(f"plots are written as .png or .svg, not {out.suffix or 'no suffix'!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Text stays text in SVG, so a label can be searched and copied from the browser.
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(out, format=fmt, dpi=150, bbox_inches="tight")
    return out


def plot_ground_tracks(
    tracks: Mapping[str, tuple[ArrayLike, ArrayLike]],
    path: str | Path,
    *,
    footprints: Sequence[tuple[float, float, float]] = (),
    stations: Sequence[tuple[str, float, float]] = (),
    title: str = "Ground tracks",
    extent: Extent | None = None,
) -> Path:
    """Satellites' sub-satellite tracks, their footprints and the ground stations on a map.

    With up to 12 tracks each gets a legend entry; with more, tracks are labelled by name
    where they start (a 38-entry legend would hide the map).
    """
    fig = Figure(figsize=(13, 7.2), layout="constrained")
    ax = fig.add_subplot()
    world_map(ax, extent)
    palette = [matplotlib.colormaps[name] for name in ("tab20", "tab20b")]
    colours = [cmap(i / 20.0 + 0.025) for cmap in palette for i in range(20)]
    many = len(tracks) > 12
    for k, (name, (lat, lon)) in enumerate(tracks.items()):
        colour = colours[k % len(colours)]
        slat, slon = split_antimeridian(lat, lon)
        ax.plot(slon, slat, color=colour, linewidth=1.0, label=name, zorder=3)
        if many and slat.size:
            ax.annotate(
                name, (slon[0], slat[0]), fontsize=6, color=colour, zorder=4,
                xytext=(2, 2), textcoords="offset points", path_effects=_HALO,
            )  # fmt: skip
            ax.plot(slon[0], slat[0], "o", color=colour, markersize=2.5, zorder=4)
    for lat0, lon0, radius in footprints:
        _draw_footprint(ax, lat0, lon0, radius, "#c0392b")
    for name, lat0, lon0 in stations:
        ax.plot(
            lon0, lat0, marker="^", color="#c0392b", markeredgecolor="black", markersize=8,
            linestyle="none", zorder=5,
        )  # fmt: skip
        ax.annotate(
            name, (lon0, lat0), xytext=(5, -10), textcoords="offset points", fontsize=8,
            fontweight="bold", zorder=6, path_effects=_HALO,
        )  # fmt: skip
    if tracks and not many:
        ax.legend(loc="lower left", fontsize=7, ncols=2, framealpha=0.9)
    subtitle = f"{len(tracks)} satellites"
    if stations:
        subtitle += f", {len(stations)} ground stations (▲)"
    if footprints:
        subtitle += f", {len(footprints)} footprints (shaded)"
    ax.set_title(f"{title}\n{subtitle}", fontsize=11)
    return _save(fig, path)


def plot_pass_timeline(
    passes: Sequence[tuple[str, datetime, datetime, float]],
    site_name: str,
    start: datetime,
    end: datetime,
    path: str | Path,
) -> Path:
    """One row per satellite, one bar per pass coloured by its maximum elevation (UTC axis)."""
    names = sorted({p[0] for p in passes}, key=_natural_key)
    row = {name: i for i, name in enumerate(names)}
    height = max(2.5, 0.28 * len(names) + 1.5)
    fig = Figure(figsize=(12, height), layout="constrained")
    ax = fig.add_subplot()
    norm = Normalize(0.0, 90.0)
    cmap = matplotlib.colormaps["viridis"]
    for sat, rise, set_, max_el in passes:
        x0 = _date_num(rise)
        width = _date_num(set_) - x0
        ax.barh(
            row[sat], width, left=x0, height=0.7, color=cmap(norm(max_el)),
            edgecolor="black", linewidth=0.3,
        )  # fmt: skip
    ax.set_yticks(range(len(names)), names, fontsize=7 if len(names) > 20 else 9)
    ax.set_ylim(max(len(names), 1) - 0.5, -0.5)
    ax.set_xlim(_date_num(start), _date_num(end))
    _utc_time_axis(ax)
    ax.set_xlabel("time (UTC)")
    ax.grid(True, axis="x", color="#cccccc", linewidth=0.6)
    ax.set_axisbelow(True)
    colourbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, pad=0.01)
    colourbar.set_label("maximum elevation (°)")
    total_min = sum((p[2] - p[1]).total_seconds() for p in passes) / 60.0
    ax.set_title(
        f"Passes over {site_name}, {start.astimezone(UTC):%Y-%m-%d %H:%M} – "
        f"{end.astimezone(UTC):%Y-%m-%d %H:%M} UTC\n"
        f"{len(passes)} passes by {len(names)} satellites, {total_min:.0f} min in view",
        fontsize=11,
    )
    return _save(fig, path)


# matplotlib.dates has no type hints; these two helpers keep the untyped calls in one place.
def _date_num(when: datetime) -> float:
    return float(mdates.date2num(when))  # type: ignore[no-untyped-call]


def _utc_time_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator(tz=UTC, minticks=6, maxticks=14)  # type: ignore[no-untyped-call]
    formatter = mdates.ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)


def _natural_key(name: str) -> tuple[str, int, str]:
    """Sort SAT-2 before SAT-10."""
    stem = name.rstrip("0123456789")
    digits = name[len(stem) :]
    return (stem, int(digits) if digits else -1, name)


def plot_latency_histogram(
    latencies_s: ArrayLike, path: str | Path, *, title: str = "Delivery latency"
) -> Path:
    """Distribution of delivery latencies in minutes with the median, p95 and worst marked."""
    minutes = np.asarray(latencies_s, dtype=np.float64).ravel() / 60.0
    minutes = minutes[np.isfinite(minutes)]
    fig = Figure(figsize=(10, 5), layout="constrained")
    ax = fig.add_subplot()
    if minutes.size == 0:
        ax.text(0.5, 0.5, "no deliveries", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        return _save(fig, path)
    edges = np.histogram_bin_edges(minutes, bins="auto")
    if edges.size > 81:
        edges = np.linspace(minutes.min(), minutes.max(), 81)
    ax.hist(
        minutes, bins=[float(e) for e in edges], color="#4c72b0", edgecolor="white", linewidth=0.4
    )
    marks = [
        ("p50", float(np.percentile(minutes, 50)), "#2ca02c"),
        ("p95", float(np.percentile(minutes, 95)), "#ff7f0e"),
        ("max", float(minutes.max()), "#d62728"),
    ]
    top = ax.get_ylim()[1]
    ax.set_ylim(0, top * 1.18)
    for k, (label, value, colour) in enumerate(marks):
        ax.axvline(value, color=colour, linewidth=1.6, linestyle="--")
        ax.annotate(
            f"{label} {value:.1f} min", (value, top * (1.12 - 0.07 * k)), color=colour,
            fontsize=9, fontweight="bold", ha="right" if k == 2 else "left",
            xytext=(-4 if k == 2 else 4, 0), textcoords="offset points",
        )  # fmt: skip
    ax.set_xlabel("latency (minutes)")
    ax.set_ylabel("messages")
    ax.set_xlim(left=0)
    ax.grid(True, axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(f"{title}\n{minutes.size:,} messages", fontsize=11)
    return _save(fig, path)
