"""``satiot twin plot …``: pictures of a scenario (ground tracks, a site's passes, the
latency histogram), drawn from the same scenario files and checks as ``satiot twin run``.

Registered under ``twin`` by :mod:`satiot.cli` (this module builds on :mod:`satiot.cli_twin`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from satiot.cli_common import fail, out
from satiot.cli_twin import (
    FleetSize,
    SimulatedHours,
    hours_bar,
    read_scenario,
    run_spec,
    window_end,
    write_plot,
)
from satiot.cli_twin_checks import (
    MAX_HOURS,
    MAX_MINUTES,
    check_elevation,
    check_hours,
    check_image,
    check_range,
    check_terminals,
    parse_extent,
)

plot_app = typer.Typer(
    help="Pictures of a scenario: ground tracks, passes, latency.", no_args_is_help=True
)


@plot_app.command("tracks")
def plot_tracks(
    scenario: Annotated[Path, typer.Option(help="Scenario file (TOML)")],
    out_file: Annotated[Path, typer.Option("--out", help="Image to write, .png or .svg")],
    minutes: Annotated[
        float,
        typer.Option(help=f"Length of each ground track, at most {MAX_MINUTES:g} (a week)"),
    ] = 100.0,
    extent: Annotated[
        str | None,
        typer.Option(help="lon0,lon1,lat0,lat1 in degrees to zoom (default: the world)"),
    ] = None,
    mask: Annotated[
        float,
        typer.Option(help="Elevation mask for the footprints, -90 up to (not including) 90"),
    ] = 10.0,
) -> None:
    """Ground tracks from the scenario's start, footprints at the start, ground stations."""
    import numpy as np

    from satiot.network.geometry import (
        EARTH_RADIUS_KM,
        ecef_to_geodetic,
        footprint_half_angle_rad,
        julian_date,
    )
    from satiot.network.orbits import propagate_ecef, satrec_array, time_grid
    from satiot.network.plots import plot_ground_tracks

    check_image("--out", out_file)
    check_range("--minutes", minutes, 0.0, MAX_MINUTES, " minutes (a week)", open_low=True)
    check_elevation("--mask", mask)
    box = parse_extent(extent) if extent else None
    spec, tles = read_scenario(scenario)
    jd0, fr0 = julian_date(spec.start)
    jd, fr = time_grid(jd0, fr0, np.arange(0.0, minutes * 60.0 + 1.0, 30.0))
    r, _, ok = propagate_ecef(satrec_array(tles), jd, fr)
    lat, lon, alt = ecef_to_geodetic(r)
    tracks = {t.name: (lat[i][ok[i]], lon[i][ok[i]]) for i, t in enumerate(tles)}
    footprints = []
    for i in range(len(tles)):
        half = footprint_half_angle_rad(float(alt[i, 0]), mask)
        footprints.append((float(lat[i, 0]), float(lon[i, 0]), half * EARTH_RADIUS_KM))
    stations = [(g.name, g.lat, g.lon) for g in spec.ground_stations]
    path = write_plot(
        out_file,
        lambda: plot_ground_tracks(
            tracks,
            out_file,
            footprints=footprints,
            stations=stations,
            extent=box,
            title=f"{spec.name}: {len(tles)} satellites, {minutes:g} min of ground track, "
            f"footprints at {mask:g}°",
        ),
    )
    out.print(f"wrote {path}")


@plot_app.command("passes")
def plot_passes(
    scenario: Annotated[Path, typer.Option(help="Scenario file (TOML)")],
    out_file: Annotated[Path, typer.Option("--out", help="Image to write, .png or .svg")],
    site: Annotated[str, typer.Option(help="A ground station of the scenario, or lat,lon")],
    hours: Annotated[
        float,
        typer.Option(help=f"Window from the scenario's start, at most {MAX_HOURS:g} (a week)"),
    ] = 24.0,
    min_elevation: Annotated[
        float, typer.Option(help="Elevation mask in degrees, -90 up to (not including) 90")
    ] = 10.0,
) -> None:
    """A pass timeline for one site: which satellite is overhead when, and how high."""
    from satiot.network.contacts import Site, compute_contacts
    from satiot.network.plots import plot_pass_timeline

    check_image("--out", out_file)
    check_hours(hours)
    check_elevation("--min-elevation", min_elevation)
    spec, tles = read_scenario(scenario)
    end = window_end(spec.start, hours)
    station = next((g for g in spec.ground_stations if g.name.lower() == site.lower()), None)
    if station is not None:
        place = Site(station.name, station.lat, station.lon, station.alt_m)
    else:
        try:
            lat_s, lon_s = site.split(",")
            place = Site(site, float(lat_s), float(lon_s), 0.0)
            if not (-90.0 <= place.lat <= 90.0 and -180.0 <= place.lon <= 360.0):
                raise ValueError(site)
        except ValueError:
            names = ", ".join(g.name for g in spec.ground_stations)
            fail(f"--site: not a ground station ({names}) nor lat,lon in degrees")
    passes = compute_contacts(tles, [place], spec.start, hours, min_elevation)
    path = write_plot(
        out_file,
        lambda: plot_pass_timeline(
            [(p.satellite, p.rise, p.set, p.max_elevation_deg) for p in passes],
            place.name,
            spec.start,
            end,
            out_file,
        ),
    )
    out.print(f"wrote {path} ({len(passes)} passes)")


@plot_app.command("latency")
def plot_latency(
    scenario: Annotated[Path, typer.Option(help="Scenario file (TOML)")],
    out_file: Annotated[Path, typer.Option("--out", help="Image to write, .png or .svg")],
    hours: SimulatedHours = 6.0,
    terminals: FleetSize = None,
) -> None:
    """Run the scenario and draw the delivery-latency histogram."""
    from satiot.network.plots import plot_latency_histogram
    from satiot.network.twin import TwinRun

    check_image("--out", out_file)
    check_hours(hours)
    check_terminals(terminals)
    spec, tles = run_spec(scenario, hours, terminals)
    try:
        sim = TwinRun(spec, tles, hours)
    except ValueError as exc:
        fail(str(exc))
    with hours_bar(sys.stderr.isatty(), "simulating") as progress:
        report = sim.run(None, progress)
    path = write_plot(
        out_file,
        lambda: plot_latency_histogram(
            report.latencies_s,
            out_file,
            title=f"{spec.name}: transmission to ground receipt, {report.delivered:,} messages",
        ),
    )
    out.print(f"wrote {path}")
