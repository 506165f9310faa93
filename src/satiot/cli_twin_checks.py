"""The limits of ``satiot twin``'s options, checked before any work.

Each option that sizes the work (hours, steps, terminals) has a bound that keeps memory
finite, and each output path is checked before a long run, so that bad input is one
``error:`` line (``cli_common.fail``) and never a traceback, a huge allocation or a run lost
at its last step. The bounds are named here once and quoted in the options' help.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from satiot.cli_common import fail

#: The longest window a command plans or simulates: a week. Contact plans keep one grid time
#: (8 bytes, 48 per satellite with --refine hermite) per --step and a run keeps ~90 bytes per
#: message, so an unbounded --hours (1e9 asked for 447 GiB) is refused, not attempted.
MAX_HOURS = 168.0
#: Ground tracks are drawn for at most the same week.
MAX_MINUTES = MAX_HOURS * 60.0
#: The screening grid: finer than a second buys nothing (rise and set are refined to 0.1 ms
#: anyway) and a step of 1e-300 s would ask for an unbounded grid.
STEP_RANGE_S = (1.0, 600.0)
#: Sites sharing one computation this far apart already differ by minutes on a pass.
MAX_CELL_KM = 1000.0
#: A resized fleet: the most terminals a scenario fleet may hold (``FleetSpec.count``),
#: ~200 bytes each.
MAX_TERMINALS = 10_000_000


def check_range(
    option: str,
    value: float,
    low: float,
    high: float = math.inf,
    unit: str = "",
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> None:
    """One ``error:`` line naming ``option`` unless ``value`` is a finite number in range.

    Every bound is tested as "inside", never as "outside": NaN compares false with
    everything, so ``value < low`` alone would let it through.
    """
    above = low < value if open_low else low <= value
    below = value < high if open_high else value <= high
    if math.isfinite(value) and above and below:
        return
    if open_low and low == 0.0:
        allowed = "positive"
    else:
        allowed = f"{'above' if open_low else 'at least'} {number(low)}"
    if math.isfinite(high):
        allowed += f" and {'below' if open_high else 'at most'} {number(high)}"
    fail(f"{option} must be {allowed}{unit}, not {number(value)}")


def number(value: float) -> str:
    """10,000,000 rather than 1e+07; 1e+300 rather than three hundred digits."""
    if math.isfinite(value) and float(value).is_integer() and abs(value) < 1e12:
        return f"{int(value):,}"
    return f"{value:g}"


def check_hours(hours: float) -> None:
    check_range("--hours", hours, 0.0, MAX_HOURS, " hours (a week)", open_low=True)


def check_elevation(option: str, degrees: float) -> None:
    """The same mask range everywhere: from straight down to just short of the zenith."""
    check_range(option, degrees, -90.0, 90.0, " degrees", open_high=True)


def check_terminals(terminals: int | None) -> None:
    if terminals is not None:
        check_range("--terminals", terminals, 0, MAX_TERMINALS, open_low=True)


def check_output(option: str, path: Path) -> None:
    """Refuse an output path that cannot be written before any work, so that a long run is
    not lost to a typo in its last step."""
    parent = path.parent
    if path.is_dir():
        fail(f"{option} {path} is a directory")
    if not parent.is_dir():
        why = "is not a directory" if parent.exists() else "does not exist"
        fail(f"{option} {path}: {parent} {why}")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        fail(f"{option} {path}: not writable")


def check_image(option: str, path: Path) -> None:
    if path.suffix.lower() not in (".png", ".svg"):
        fail(f"{option} {path}: write .png or .svg")
    check_output(option, path)


def parse_extent(text: str) -> tuple[float, float, float, float]:
    """West, east, south, north in degrees, on the map the plots draw (-180..180, -90..90)."""
    try:
        west, east, south, north = (float(x) for x in text.split(","))
    except ValueError:
        fail("--extent takes four numbers: west,east,south,north (lon0,lon1,lat0,lat1)")
    for name, value, limit in (
        ("west", west, 180.0),
        ("east", east, 180.0),
        ("south", south, 90.0),
        ("north", north, 90.0),
    ):
        if not (math.isfinite(value) and -limit <= value <= limit):
            fail(f"--extent: {name} {value:g} is outside -{limit:g}..{limit:g} degrees")
    if not west < east:
        fail(f"--extent: west {west:g} must be less than east {east:g}")
    if not south < north:
        fail(f"--extent: south {south:g} must be less than north {north:g}")
    return west, east, south, north
