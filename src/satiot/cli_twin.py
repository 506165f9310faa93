"""``satiot twin …``: the digital twin from a shell (contact plans, runs, plots)."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer
from rich.console import Console
from rich.table import Table

from satiot.cli_common import fail, out

# The twin (numpy, numba, SGP4, the land mask, matplotlib) is imported inside the commands
# that use it, so that the rest of `satiot` starts without it.
if TYPE_CHECKING:
    from satiot.network.contacts import Pass, ProgressFn, Site
    from satiot.network.orbits import Tle
    from satiot.network.receptions import Reception
    from satiot.network.scenario import Scenario
    from satiot.network.twin import TwinReport

twin_app = typer.Typer(
    help="The satellite network's digital twin: contact plans, simulated runs, plots.",
    no_args_is_help=True,
)

SITE_HEADER = ("name", "lat", "lon", "alt_m")
PASS_HEADER = ("site", "satellite", "rise", "culmination", "set", "max_elevation_deg")


def read_sites(path: Path) -> list[Site]:
    """Sites from a CSV with header ``name,lat,lon,alt_m``; ValueError names the bad row."""
    from satiot.network.contacts import Site

    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from exc
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None or [h.strip() for h in header] != list(SITE_HEADER):
        raise ValueError(f"{path}: header must be {','.join(SITE_HEADER)}")
    sites: list[Site] = []
    for n, row in enumerate(rows, start=1):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) != len(SITE_HEADER):
            raise ValueError(f"{path} row {n}: expected 4 fields, got {len(row)}")
        name, lat_s, lon_s, alt_s = (c.strip() for c in row)
        values: list[float] = []
        for field, raw in (("lat", lat_s), ("lon", lon_s), ("alt_m", alt_s)):
            try:
                values.append(float(raw))
            except ValueError:
                raise ValueError(f"{path} row {n}: {field} {raw!r} is not a number") from None
        lat, lon, alt = values
        if not name:
            raise ValueError(f"{path} row {n}: empty name")
        if not -90.0 <= lat <= 90.0:
            raise ValueError(f"{path} row {n}: latitude {lat_s} outside -90..90")
        if not -180.0 <= lon <= 360.0:
            raise ValueError(f"{path} row {n}: longitude {lon_s} outside -180..360")
        if not -500.0 <= alt <= 20000.0:
            raise ValueError(f"{path} row {n}: altitude {alt_s} m outside -500..20000")
        sites.append(Site(name, lat, lon, alt))
    if not sites:
        raise ValueError(f"{path} holds no sites")
    return sites


def parse_start(text: str) -> datetime:
    """An ISO-8601 instant with an explicit zone (``Z`` or an offset), as aware UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--start {text!r} is not an ISO-8601 date and time") from None
    if when.tzinfo is None:
        raise ValueError(f"--start {text!r} has no time zone (add Z or +08:00)")
    return when.astimezone(UTC)


def iso_ms(when: datetime) -> str:
    """UTC with millisecond precision and a ``Z``: 2026-03-01T04:12:07.123Z."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def write_passes(path: Path, passes: list[Pass]) -> None:
    """The contact plan CSV, written to a temporary file and renamed (never half-written)."""
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(PASS_HEADER)
        for p in passes:
            w.writerow(
                [
                    p.site,
                    p.satellite,
                    iso_ms(p.rise),
                    iso_ms(p.culmination),
                    iso_ms(p.set),
                    f"{p.max_elevation_deg:.3f}",
                ]
            )
    tmp.replace(path)


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[ProgressFn | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("screening"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("screening", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@twin_app.command()
def contacts(
    tle: Annotated[Path, typer.Option(help="TLE file (2- or 3-line element sets)")],
    sites: Annotated[Path, typer.Option(help="CSV with header name,lat,lon,alt_m")],
    start: Annotated[str, typer.Option(help="Window start, ISO-8601 with a zone")],
    hours: Annotated[float, typer.Option(help="Window length in hours")],
    min_elevation: Annotated[float, typer.Option(help="Elevation mask in degrees")],
    out: Annotated[Path, typer.Option(help="Output CSV")],
    step: Annotated[float, typer.Option(help="Screening grid step, seconds")] = 60.0,
    cell_km: Annotated[float, typer.Option(help="Share passes between sites this close")] = 0.0,
    refine: Annotated[
        str, typer.Option(help="exact (SGP4 per evaluation) or hermite (bulk plans)")
    ] = "exact",
) -> None:
    """Compute a contact plan: every pass of every satellite over every site.

    Writes site,satellite,rise,culmination,set,max_elevation_deg with times in UTC to the
    millisecond and a Z suffix; passes cut by the window are clipped to its edges.
    """
    from satiot.network.contacts import compute_contacts
    from satiot.network.orbits import load_tles

    try:
        when = parse_start(start)
        if not hours > 0.0:
            raise ValueError(f"--hours must be positive, not {hours}")
        if not -90.0 <= min_elevation < 90.0:
            raise ValueError(f"--min-elevation must be in -90..90 degrees, not {min_elevation}")
        if not 0.0 < step <= 600.0:
            raise ValueError(f"--step must be in (0, 600] seconds, not {step}")
        if cell_km < 0.0:
            raise ValueError(f"--cell-km must not be negative, not {cell_km}")
        if refine not in ("exact", "hermite"):
            raise ValueError(f"--refine must be exact or hermite, not {refine!r}")
        tles = load_tles(tle)
        places = read_sites(sites)
    except ValueError as exc:  # TleError is a ValueError
        fail(str(exc))
    interactive = sys.stderr.isatty() and sys.stdout.isatty()
    began = time.perf_counter()
    with _progress_bar(interactive) as progress:
        passes = compute_contacts(
            tles,
            places,
            when,
            hours,
            min_elevation,
            step_s=step,
            cell_km=cell_km,
            refine="hermite" if refine == "hermite" else "exact",
            progress=progress,
        )
    try:
        write_passes(out, passes)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}")
    Console().print(
        f"{len(passes)} passes, {len(places)} sites, {len(tles)} satellites, "
        f"{time.perf_counter() - began:.2f} s → {out}",
        highlight=False,
        soft_wrap=True,
    )


def _scenario(path: Path) -> tuple[Scenario, list[Tle]]:
    from satiot.network.scenario import ScenarioError, constellation, load_scenario

    try:
        scenario, folder = load_scenario(path)
        return scenario, constellation(scenario, folder)
    except ScenarioError as exc:
        fail(str(exc))


@contextmanager
def _hours_bar(enabled: bool, label: str) -> Iterator[Callable[[float, float], None] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(label), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task(label, total=None)

        def update(done: float, total: float) -> None:
            bar.update(task, completed=done, total=total)

        yield update


class JsonLinesSink:
    """Writes each reception as one JSON line: the station and the record it would post."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.count = 0

    def __call__(self, station: str, receptions: Sequence[Reception]) -> None:
        for r in receptions:
            self.stream.write(json.dumps({"ground_station": station, **r.to_json()}) + "\n")
        self.count += len(receptions)


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.1f} min"


def _print_report(report: TwinReport, top: int) -> None:
    s = report.summary()
    table = Table(title=f"twin run: {report.scenario}", show_header=False, title_justify="left")
    rows = [
        ("satellites / terminals", f"{report.satellites} / {report.terminals:,}"),
        (
            "simulated",
            f"{report.hours:g} h in {report.wall_s:.1f} s "
            f"({report.speedup:.2f} simulated h/s, {report.speedup * 3600:,.0f}× "
            "real time)",
        ),
        ("messages generated", f"{report.generated:,}"),
        ("transmitted", f"{report.transmitted:,}"),
        ("not heard by any satellite", f"{report.not_heard:,}"),
        ("collided (lost at every satellite)", f"{report.collided:,}"),
        ("dropped frames (full stores)", f"{report.dropped_frames:,}"),
        ("messages lost to full stores", f"{report.lost_to_drops:,}"),
        ("delivered to the ground", f"{report.delivered:,}"),
        ("duplicate receptions", f"{report.duplicates:,}"),
        (
            "still on satellites (frames / undelivered messages) / waiting",
            f"{report.stored_at_end:,} / {report.undelivered_on_satellites:,} / "
            f"{report.pending_at_end:,}",
        ),
        (
            "latency tx→ground p50 / p95 / max",
            f"{_minutes(s['latency_p50_s'])} / {_minutes(s['latency_p95_s'])} / "
            f"{_minutes(s['latency_max_s'])}",
        ),
        ("waiting for a satellite p95", _minutes(s["wait_p95_s"])),
        (
            "channel load G mean / peak",
            f"{report.channel_load_mean:.3f} / {report.channel_load_peak:.3f}",
        ),
    ]
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
    sats = Table(
        "satellite",
        "received",
        "dumped",
        "dropped",
        "high water",
        "peak G per channel",
        title=f"busiest {top} satellites by buffer high-water mark",
        title_justify="left",
    )
    for st in sorted(report.per_satellite, key=lambda x: -x.high_water_bytes)[:top]:
        sats.add_row(
            st.name,
            f"{st.received:,}",
            f"{st.dumped:,}",
            f"{st.dropped:,}",
            f"{st.high_water_bytes / 1024:,.1f} KiB ({st.high_water_frames:,} frames)",
            f"{st.peak_window_load:.3f}",
        )
    out.print(sats)
    stations = Table("ground station", "receptions", title_justify="left")
    for name, n in sorted(report.per_station.items(), key=lambda kv: -kv[1]):
        stations.add_row(name, f"{n:,}")
    out.print(stations)


@twin_app.command()
def run(
    scenario: Annotated[Path, typer.Option(help="Scenario file (TOML), e.g. scenarios/…")],
    hours: Annotated[float, typer.Option(help="Simulated hours")] = 6.0,
    terminals: Annotated[int | None, typer.Option(help="Resize the fleet to this many")] = None,
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write every reception (JSON lines) as ground stations would post it"
        ),
    ] = None,
    latency_plot: Annotated[Path | None, typer.Option(help="Latency histogram, .png/.svg")] = None,
    json_report: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    top: Annotated[int, typer.Option(help="Satellites listed in the report")] = 10,
) -> None:
    """Simulate a scenario faster than real time and report what reached the ground."""
    from satiot.network.plots import plot_latency_histogram
    from satiot.network.twin import TwinRun

    if not hours > 0:
        fail(f"--hours must be positive, not {hours}")
    if terminals is not None and terminals <= 0:
        fail(f"--terminals must be positive, not {terminals}")
    if latency_plot is not None:
        _check_image(latency_plot)
    spec, tles = _scenario(scenario)
    if terminals is not None:
        spec = spec.scaled(terminals)
    try:
        sim = TwinRun(spec, tles, hours)
    except ValueError as exc:
        fail(str(exc))
    interactive = sys.stderr.isatty() and not json_report
    stream = None
    try:
        if out_file is not None:
            stream = out_file.open("w")
        sink = JsonLinesSink(stream) if stream is not None else None
        with _hours_bar(interactive, "simulating") as progress:
            report = sim.run(sink, progress)
    except OSError as exc:
        fail(f"cannot write {out_file}: {exc.strerror}")
    finally:
        if stream is not None:
            stream.close()
    if latency_plot is not None:
        plot_latency_histogram(
            report.latencies_s, latency_plot, title=f"{spec.name}: transmission to ground receipt"
        )
    if json_report:
        print(json.dumps(report.summary()))
    else:
        _print_report(report, top)


plot_app = typer.Typer(
    help="Pictures of a scenario: ground tracks, passes, latency.", no_args_is_help=True
)
twin_app.add_typer(plot_app, name="plot")


def _check_image(path: Path) -> None:
    if path.suffix.lower() not in (".png", ".svg"):
        fail(f"{path}: write .png or .svg")


@plot_app.command("tracks")
def plot_tracks(
    scenario: Annotated[Path, typer.Option(help="Scenario file (TOML)")],
    out_file: Annotated[Path, typer.Option("--out", help="Image to write, .png or .svg")],
    minutes: Annotated[float, typer.Option(help="Length of each ground track")] = 100.0,
    extent: Annotated[
        str | None, typer.Option(help="lon0,lon1,lat0,lat1 to zoom (default: the world)")
    ] = None,
    mask: Annotated[float, typer.Option(help="Elevation mask for the footprints")] = 10.0,
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

    _check_image(out_file)
    spec, tles = _scenario(scenario)
    box = None
    if extent:
        try:
            lon0, lon1, lat0, lat1 = (float(x) for x in extent.split(","))
        except ValueError:
            fail("--extent takes four numbers: lon0,lon1,lat0,lat1")
        box = (lon0, lon1, lat0, lat1)
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
    path = plot_ground_tracks(
        tracks,
        out_file,
        footprints=footprints,
        stations=stations,
        extent=box,
        title=f"{spec.name}: {len(tles)} satellites, {minutes:g} min of ground track, "
        f"footprints at {mask:g}°",
    )
    out.print(f"wrote {path}")


@plot_app.command("passes")
def plot_passes(
    scenario: Annotated[Path, typer.Option(help="Scenario file (TOML)")],
    out_file: Annotated[Path, typer.Option("--out", help="Image to write, .png or .svg")],
    site: Annotated[str, typer.Option(help="A ground station of the scenario, or lat,lon")],
    hours: Annotated[float, typer.Option(help="Window from the scenario's start")] = 24.0,
    min_elevation: Annotated[float, typer.Option(help="Elevation mask in degrees")] = 10.0,
) -> None:
    """A pass timeline for one site: which satellite is overhead when, and how high."""
    from satiot.network.contacts import Site, compute_contacts
    from satiot.network.plots import plot_pass_timeline

    _check_image(out_file)
    if not hours > 0:
        fail(f"--hours must be positive, not {hours}")
    spec, tles = _scenario(scenario)
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
    end = spec.start + timedelta(hours=hours)
    path = plot_pass_timeline(
        [(p.satellite, p.rise, p.set, p.max_elevation_deg) for p in passes],
        place.name,
        spec.start,
        end,
        out_file,
    )
    out.print(f"wrote {path} ({len(passes)} passes)")


@plot_app.command("latency")
def plot_latency(
    scenario: Annotated[Path, typer.Option(help="Scenario file (TOML)")],
    out_file: Annotated[Path, typer.Option("--out", help="Image to write, .png or .svg")],
    hours: Annotated[float, typer.Option(help="Simulated hours")] = 6.0,
    terminals: Annotated[int | None, typer.Option(help="Resize the fleet to this many")] = None,
) -> None:
    """Run the scenario and draw the delivery-latency histogram."""
    from satiot.network.plots import plot_latency_histogram
    from satiot.network.twin import TwinRun

    _check_image(out_file)
    if not hours > 0:
        fail(f"--hours must be positive, not {hours}")
    spec, tles = _scenario(scenario)
    if terminals is not None:
        spec = spec.scaled(terminals)
    with _hours_bar(sys.stderr.isatty(), "simulating") as progress:
        report = TwinRun(spec, tles, hours).run(None, progress)
    path = plot_latency_histogram(
        report.latencies_s,
        out_file,
        title=f"{spec.name}: transmission to ground receipt, {report.delivered:,} messages",
    )
    out.print(f"wrote {path}")


@twin_app.command("import")
def import_inventory(
    scenario: Annotated[Path, typer.Option(help="Scenario file (TOML)")],
) -> None:
    """Write the scenario's satellites and ground stations into the inventory.

    Known satellites (by name) get the new element set and payload, known ground stations
    their new siting; every change is audited. The database must already be migrated.
    """
    # Imported here: satiot.cli imports this module.
    from satiot.cli import _database, _operator_principal
    from satiot.core import migrate
    from satiot.core.clock import SystemClock
    from satiot.network.inventory import import_ground_stations, import_satellites

    spec, tles = _scenario(scenario)
    with _database() as database:
        if migrate.current_revision(database.engine) is None:
            fail("the database is not migrated: run `satiot migrate` first")
        principal = _operator_principal(database)
        at = SystemClock().now()
        with database.write() as s:
            sats = import_satellites(s, principal, tles, spec.payload, at=at)
            stations = import_ground_stations(s, principal, spec.ground_stations, at=at)
    for what, result in (("satellites", sats), ("ground stations", stations)):
        out.print(
            f"{what}: {result.created} created, {result.updated} updated, "
            f"{result.unchanged} unchanged",
            highlight=False,
        )
