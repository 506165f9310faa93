"""Operator plots: written in both formats, land where land is, tracks never cross the map."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from satiot.network import plots

STATIONS = [("Beijing", 39.90, 116.40), ("Kashgar", 39.47, 75.99), ("Sanya", 18.25, 109.50)]


def _track(inclination: float = 97.5, minutes: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """A circular-orbit ground track on a rotating sphere: crosses the antimeridian."""
    t = np.arange(0, minutes * 60, 30.0)
    u = 2 * np.pi * t / 6050.0
    inc = np.deg2rad(inclination)
    lat = np.rad2deg(np.arcsin(np.sin(inc) * np.sin(u)))
    lon = np.rad2deg(np.arctan2(np.cos(inc) * np.sin(u), np.cos(u))) - t * 360 / 86164
    return lat, (lon + 180) % 360 - 180


def _png_pixel(fig: Figure, ax_lon: float, ax_lat: float) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    ax = fig.axes[0]
    x, y = ax.transData.transform((ax_lon, ax_lat))
    rgba = np.asarray(canvas.buffer_rgba())
    return rgba[rgba.shape[0] - round(y), round(x), :3].astype(int)


def _hex_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])


def test_world_map_puts_land_over_china_and_sea_over_the_pacific() -> None:
    fig = Figure(figsize=(8, 4), dpi=100)
    plots.world_map(fig.add_subplot())
    land = _hex_rgb(plots.LAND_COLOUR)
    sea = _hex_rgb(plots.SEA_COLOUR)
    # Points away from the 30° graticule lines, which are drawn over both.
    for lon, lat in [(105.0, 35.0), (-100.0, 40.0), (22.0, 3.0)]:  # China, USA, Congo
        assert np.abs(_png_pixel(fig, lon, lat) - land).max() <= 3
    for lon, lat in [(-145.0, 5.0), (-35.0, 25.0), (80.0, -20.0)]:  # Pacific, Atlantic, Indian
        assert np.abs(_png_pixel(fig, lon, lat) - sea).max() <= 3


def test_regional_extent_is_respected() -> None:
    fig = Figure()
    ax = plots.world_map(fig.add_subplot(), (70.0, 140.0, 15.0, 55.0))
    assert ax.get_xlim() == (70.0, 140.0)
    assert ax.get_ylim() == (15.0, 55.0)


def test_land_grid_is_coarse_and_cached() -> None:
    lat, lon, frac = plots.land_fraction_grid(0.5)
    assert frac.shape == (360, 720) == (lat.size, lon.size)
    assert plots.land_fraction_grid(0.5) is plots.land_fraction_grid(0.5)
    # ~29 % of the Earth's surface is land; cells are equal-angle so weight by cos(latitude)
    weights = np.cos(np.deg2rad(lat))[:, None] * np.ones_like(frac)
    assert np.average(frac, weights=weights) == pytest.approx(0.29, abs=0.02)


@given(
    st.lists(st.floats(-90, 90), min_size=2, max_size=50),
    st.lists(st.floats(-720, 720), min_size=2, max_size=50),
)
def test_split_tracks_never_span_more_than_half_the_map(
    lats: list[float], lons: list[float]
) -> None:
    n = min(len(lats), len(lons))
    lat, lon = plots.split_antimeridian(lats[:n], lons[:n])
    assert lat.shape == lon.shape
    steps = np.abs(np.diff(lon))
    assert np.all(steps[np.isfinite(steps)] <= 180.0)
    assert np.nanmin(lon) >= -180.0 and np.nanmax(lon) < 180.0
    assert np.count_nonzero(np.isfinite(lon)) == n  # breaks are added, no point is lost


def test_real_track_is_split_where_it_wraps() -> None:
    lat, lon = _track()
    _slat, slon = plots.split_antimeridian(lat, lon)
    assert np.isnan(slon).sum() >= 1
    assert np.nanmax(np.abs(np.diff(slon))) < 20  # 30 s steps move a few degrees at most


def test_geodesic_circle_has_the_requested_radius() -> None:
    from satiot.network.geometry import great_circle_km

    lat, lon = plots.geodesic_circle(39.9, 116.4, 2100.0)
    np.testing.assert_allclose(great_circle_km(39.9, 116.4, lat, lon), 2100.0, rtol=1e-6)
    lat, lon = plots.geodesic_circle(80.0, 170.0, 2100.0)  # encloses the pole
    assert np.ptp(lon) == pytest.approx(360.0, abs=1e-6)


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_every_plot_writes_both_formats(tmp_path: Path, suffix: str) -> None:
    start = datetime(2025, 6, 1, tzinfo=UTC)
    passes = [
        ("TQ-1", start + timedelta(minutes=10), start + timedelta(minutes=19), 75.0),
        ("TQ-2", start + timedelta(minutes=40), start + timedelta(minutes=44), 12.0),
        ("TQ-10", start + timedelta(minutes=90), start + timedelta(minutes=98), 40.0),
    ]
    written = [
        plots.plot_ground_tracks(
            {"TQ-1": _track(), "TQ-2": _track(50.0)},
            tmp_path / f"tracks{suffix}",
            footprints=[(39.9, 116.4, 2100.0), (85.0, -170.0, 2100.0)],
            stations=STATIONS,
        ),
        plots.plot_pass_timeline(passes, "Beijing", start, start + timedelta(hours=2),
                                 tmp_path / f"passes{suffix}"),
        plots.plot_latency_histogram(
            np.random.default_rng(0).gamma(2.0, 200.0, 2000), tmp_path / f"lat{suffix}",
            title="Delivery latency",
        ),
    ]  # fmt: skip
    for path in written:
        assert path.suffix == suffix and path.exists()
        head = path.read_bytes()[:200]
        if suffix == ".png":
            assert head.startswith(b"\x89PNG")
            assert path.stat().st_size > 20_000  # a real picture, not an empty canvas
        else:
            assert b"<svg" in path.read_bytes()[:2000] or b"<?xml" in head


def test_histogram_labels_percentiles_in_minutes(tmp_path: Path) -> None:
    latencies = np.arange(1, 101) * 60.0  # 1..100 minutes
    path = plots.plot_latency_histogram(latencies, tmp_path / "h.svg", title="t")
    text = path.read_text()
    for label in ("p50 50.5 min", "p95 95.0 min", "max 100.0 min", "latency (minutes)"):
        assert label in text


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        plots.plot_latency_histogram([60.0], tmp_path / "h.pdf")


def test_empty_inputs_still_draw(tmp_path: Path) -> None:
    assert plots.plot_latency_histogram([], tmp_path / "empty.png").exists()
    start = datetime(2025, 6, 1, tzinfo=UTC)
    assert plots.plot_pass_timeline([], "Sanya", start, start + timedelta(hours=1),
                                    tmp_path / "none.png").exists()  # fmt: skip
    assert plots.plot_ground_tracks({}, tmp_path / "map.png").exists()
