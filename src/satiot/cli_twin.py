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
from satiot.cli_twin_checks import (
    MAX_CELL_KM,
    MAX_HOURS,
    MAX_TERMINALS,
    STEP_RANGE_S,
    check_elevation,
    check_hours,
    check_image,
    check_output,
    check_range,
    check_terminals,
)

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


def window_end(start: datetime, hours: float) -> datetime:
    """Where the window ends, refused up front: a start near year 9999 would otherwise
    overflow in the middle of the work."""
    try:
        return start + timedelta(hours=hours)
    except OverflowError:
        fail(f"--hours: a window of {hours:g} h from {iso_ms(start)} ends after the year 9999")


#: The options of the commands that run a scenario (``run`` and ``plot latency``).
SimulatedHours = Annotated[
    float, typer.Option(help=f"Simulated hours, at most {MAX_HOURS:g} (a week)")
]
FleetSize = Annotated[
    int | None, typer.Option(help=f"Resize the fleet to this many, at most {MAX_TERMINALS:,}")
]


def read_sites(path: Path) -> list[Site]:
    """Sites from a CSV with header ``name,lat,lon,alt_m``; ValueError names the bad row."""
    from satiot.network.contacts import Site

    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (byte {exc.start})") from None
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


@contextmanager
def _staged(path: Path, newline: str | None = None) -> Iterator[TextIO]:
    """A text file that appears whole or not at all: written beside its target, renamed
    into place when the block succeeds, removed when anything in it fails."""
    tmp = path.with_name(path.name + ".part")
    try:
        with tmp.open("w", newline=newline, encoding="utf-8") as fh:
            yield fh
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_passes(path: Path, passes: list[Pass]) -> None:
    """The contact plan CSV, written to a temporary file and renamed (never half-written)."""
    with _staged(path, newline="") as fh:
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
    hours: Annotated[
        float, typer.Option(help=f"Window length in hours, at most {MAX_HOURS:g} (a week)")
    ],
    min_elevation: Annotated[
        float, typer.Option(help="Elevation mask in degrees, -90 up to (not including) 90")
    ],
    out: Annotated[Path, typer.Option(help="Output CSV")],
    step: Annotated[
        float,
        typer.Option(
            help=f"Screening grid step, {STEP_RANGE_S[0]:g} to {STEP_RANGE_S[1]:g} seconds"
        ),
    ] = 60.0,
    cell_km: Annotated[
        float,
        typer.Option(help=f"Share passes between sites this close, 0 to {MAX_CELL_KM:g} km"),
    ] = 0.0,
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

    check_hours(hours)
    check_elevation("--min-elevation", min_elevation)
    check_range("--step", step, *STEP_RANGE_S, " seconds")
    check_range("--cell-km", cell_km, 0.0, MAX_CELL_KM, " km")
    if refine not in ("exact", "hermite"):
        fail(f"--refine must be exact or hermite, not {refine!r}")
    try:
        when = parse_start(start)
    except ValueError as exc:
        fail(str(exc))
    window_end(when, hours)
    check_output("--out", out)
    try:
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
    Console(markup=False).print(
        f"{len(passes)} passes, {len(places)} sites, {len(tles)} satellites, "
        f"{time.perf_counter() - began:.2f} s → {out}",
        highlight=False,
        soft_wrap=True,
    )


def read_scenario(path: Path) -> tuple[Scenario, list[Tle]]:
    """A scenario and its satellites, or one ``error:`` line naming what is wrong with it."""
    from satiot.network.scenario import ScenarioError, constellation, load_scenario

    try:
        scenario, folder = load_scenario(path)
        return scenario, constellation(scenario, folder)
    except ScenarioError as exc:
        fail(str(exc))


@contextmanager
def hours_bar(enabled: bool, label: str) -> Iterator[Callable[[float, float], None] | None]:
    """A progress bar over simulated hours on stderr (None where no one watches)."""
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
    hours: SimulatedHours = 6.0,
    terminals: FleetSize = None,
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write every reception (JSON lines) as ground stations would post it"
        ),
    ] = None,
    latency_plot: Annotated[Path | None, typer.Option(help="Latency histogram, .png/.svg")] = None,
    json_report: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    top: Annotated[int, typer.Option(help="Satellites listed in the report, 0 or more")] = 10,
) -> None:
    """Simulate a scenario faster than real time and report what reached the ground."""
    from satiot.network.plots import plot_latency_histogram
    from satiot.network.twin import TwinRun

    check_hours(hours)
    check_terminals(terminals)
    check_range("--top", top, 0)
    if out_file is not None:
        check_output("--out", out_file)
    if latency_plot is not None:
        check_image("--latency-plot", latency_plot)
    spec, tles = run_spec(scenario, hours, terminals)
    try:
        sim = TwinRun(spec, tles, hours)
    except ValueError as exc:
        fail(str(exc))
    interactive = sys.stderr.isatty() and not json_report
    # The receptions file is renamed into place only once the plot is written too: a run
    # that fails leaves neither behind.
    with _staged_or_none(out_file) as stream:
        sink = JsonLinesSink(stream) if stream is not None else None
        try:
            with hours_bar(interactive, "simulating") as progress:
                report = sim.run(sink, progress)
        except OSError as exc:
            fail(f"cannot write {out_file}: {exc.strerror}")
        if latency_plot is not None:
            write_plot(
                latency_plot,
                lambda: plot_latency_histogram(
                    report.latencies_s,
                    latency_plot,
                    title=f"{spec.name}: transmission to ground receipt",
                ),
            )
    if json_report:
        print(json.dumps(report.summary()))
    else:
        _print_report(report, top)


@contextmanager
def _staged_or_none(path: Path | None) -> Iterator[TextIO | None]:
    if path is None:
        yield None
        return
    try:
        with _staged(path) as stream:
            yield stream
    except OSError as exc:  # opening or renaming the staged file
        fail(f"cannot write {path}: {exc.strerror}")


def run_spec(scenario: Path, hours: float, terminals: int | None) -> tuple[Scenario, list[Tle]]:
    """The scenario a run simulates, resized as asked, refused before the run if the window
    would end past what a datetime holds (receptions carry their time)."""
    spec, tles = read_scenario(scenario)
    window_end(spec.start, hours)
    if terminals is not None:
        spec = spec.scaled(terminals)
    return spec, tles


def write_plot(path: Path, draw: Callable[[], Path]) -> Path:
    """Draw, turning a failure to write (full disk, a path changed since it was checked)
    into one line."""
    try:
        return draw()
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}")


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
    from satiot.core.clock import SystemClock
    from satiot.network.inventory import import_ground_stations, import_satellites

    spec, tles = read_scenario(scenario)
    with _database() as database:  # refuses one that is not migrated
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
