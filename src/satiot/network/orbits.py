"""Orbits: two-line element sets, Walker constellations, and vectorised SGP4 propagation.

SGP4 itself is the ``sgp4`` package's C++ implementation; this module only reads and writes
element sets and turns ``SatrecArray`` output (TEME) into Earth-fixed positions in one array
operation for all satellites and times.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from sgp4.api import WGS72, Satrec, SatrecArray
from sgp4.earth_gravity import wgs72
from sgp4.exporter import export_tle

from satiot.network.geometry import Array, gmst_rad, julian_date, teme_to_ecef


class TleError(ValueError):
    """A TLE file or element set that cannot be used, with the line where it went wrong."""


def _checksum(line: str) -> int:
    total = sum(int(c) if c.isdigit() else (1 if c == "-" else 0) for c in line[:68])
    return total % 10


@dataclass(frozen=True)
class Tle:
    """One element set. ``name`` is the name line, or the NORAD id when the file has none."""

    name: str
    line1: str
    line2: str

    @property
    def norad_id(self) -> int:
        return int(self.line1[2:7].replace(" ", "0"))

    def satrec(self) -> Satrec:
        return Satrec.twoline2rv(self.line1, self.line2)


def _check_line(line: str, expected: str, lineno: int, checksums: bool) -> None:
    if len(line) < 69 or not line.startswith(expected + " "):
        raise TleError(f"line {lineno}: expected TLE line {expected} of 69 characters")
    if checksums and (not line[68].isdigit() or int(line[68]) != _checksum(line)):
        raise TleError(f"line {lineno}: checksum mismatch")


def parse_tles(text: str, *, checksums: bool = True) -> list[Tle]:
    """Read 2-line or 3-line element sets (names optional, ``0 `` name prefixes allowed).

    Columns after 69 (some files append test metadata) and ``#`` comments are ignored.
    ``checksums=False`` accepts lines whose check digit is wrong (Vallado's verification set
    has a few on purpose).
    """
    lines = [(n, raw.rstrip()) for n, raw in enumerate(text.splitlines(), 1)]
    lines = [(n, line) for n, line in lines if line.strip() and not line.lstrip().startswith("#")]
    out: list[Tle] = []
    i = 0
    name: str | None = None
    while i < len(lines):
        n, line = lines[i]
        if line.startswith("1 ") and i + 1 < len(lines) and lines[i + 1][1].startswith("2 "):
            l1, (n2, l2) = line[:69], (lines[i + 1][0], lines[i + 1][1][:69])
            _check_line(l1, "1", n, checksums)
            _check_line(l2, "2", n2, checksums)
            if l1[2:7] != l2[2:7]:
                raise TleError(f"line {n2}: satellite number differs from line {n}")
            norad = int(l1[2:7].replace(" ", "0"))
            out.append(Tle(name or str(norad), l1, l2))
            name = None
            i += 2
            continue
        if line.startswith(("1 ", "2 ")):
            raise TleError(f"line {n}: TLE line without its partner")
        if name is not None:
            raise TleError(f"line {n}: two name lines in a row")
        name = line[2:].strip() if line.startswith("0 ") else line.strip()
        i += 1
    if name is not None:
        raise TleError("the file ends with a name line and no element set")
    return out


def load_tles(path: Path, *, checksums: bool = True) -> list[Tle]:
    try:
        text = path.read_text(encoding="utf-8")  # element sets are ASCII
    except OSError as exc:
        raise TleError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise TleError(f"{path} is not a text file (byte {exc.start})") from None
    tles = parse_tles(text, checksums=checksums)
    if not tles:
        raise TleError(f"{path} holds no element sets")
    return tles


def satrec_array(tles: Iterable[Tle]) -> SatrecArray:
    return SatrecArray([t.satrec() for t in tles])


def propagate_ecef(
    sats: SatrecArray, jd: Array, fr: Array
) -> tuple[Array, Array, NDArray[np.bool_]]:
    """Positions and velocities (km, km/s) of every satellite at every time, Earth-fixed.

    Returns ``r`` and ``v`` of shape (satellites, times, 3) and an ``ok`` mask of shape
    (satellites, times) that is False where SGP4 reported an error (decayed orbit, …).
    """
    err, r, v = sats.sgp4(np.asarray(jd, dtype=np.float64), np.asarray(fr, dtype=np.float64))
    gmst = gmst_rad(jd, fr)[None, :]
    r_ecef, v_ecef = teme_to_ecef(r, v, gmst)
    return r_ecef, v_ecef, err == 0


def time_grid(jd0: float, fr0: float, seconds: Sequence[float] | Array) -> tuple[Array, Array]:
    """Split Julian dates for offsets in seconds from (jd0, fr0), keeping full precision."""
    offsets = np.asarray(seconds, dtype=np.float64) / 86400.0 + fr0
    whole = np.floor(offsets)
    return jd0 + whole, offsets - whole


# SGP4 element sets count their epoch in days from 1949 December 31 00:00 UT.
_SGP4_EPOCH_JD = 2433281.5
MIN_ALTITUDE_KM = 160.0
MAX_ALTITUDE_KM = 2000.0


def circular_mean_motion(altitude_km: float) -> float:
    """Mean motion (rad/min) of a circular orbit at ``altitude_km`` above SGP4's Earth.

    Uses the WGS-72 constants that SGP4 itself uses, so the orbit SGP4 flies sits at the
    requested altitude (give or take the ~10 km of J2 short-period motion), not 2 km off.
    """
    a = wgs72.radiusearthkm + altitude_km
    return math.sqrt(wgs72.mu / a**3) * 60.0


def _check_walker(
    pattern: str,
    total: int,
    planes: int,
    phasing: int,
    altitude_km: float,
    inclination_deg: float,
    epoch: datetime,
    first_norad: int,
) -> None:
    if pattern not in ("delta", "star"):
        raise ValueError(f"pattern must be 'delta' or 'star', not {pattern!r}")
    if total < 1 or planes < 1:
        raise ValueError("total and planes must be at least 1")
    if total % planes:
        raise ValueError(f"planes ({planes}) must divide total ({total})")
    if not 0 <= phasing < planes:
        raise ValueError(f"phasing must be in 0..{planes - 1}, not {phasing}")
    if not MIN_ALTITUDE_KM <= altitude_km <= MAX_ALTITUDE_KM:
        raise ValueError(
            f"altitude must be {MIN_ALTITUDE_KM:.0f}–{MAX_ALTITUDE_KM:.0f} km "
            f"(SGP4 near-Earth LEO), not {altitude_km}"
        )
    if not 0.0 <= inclination_deg <= 180.0:
        raise ValueError(f"inclination must be 0–180°, not {inclination_deg}")
    if epoch.tzinfo is None:
        raise ValueError("epoch must be timezone-aware (UTC)")
    if first_norad < 1 or first_norad + total - 1 > 99999:
        raise ValueError("NORAD ids must stay within 1..99999 (five-digit TLE field)")


def walker(
    pattern: Literal["delta", "star"],
    total: int,
    planes: int,
    phasing: int,
    altitude_km: float,
    inclination_deg: float,
    epoch: datetime,
    *,
    name_prefix: str = "SAT",
    first_norad: int = 90000,
) -> list[Tle]:
    """Element sets of a Walker constellation T/P/F, circular at ``altitude_km``.

    A delta pattern spreads the P orbital planes' ascending nodes over 360°, a star pattern
    over 180° (polar constellations, where the planes would otherwise meet head on). Within a
    plane the S = T/P satellites are 360/S apart; plane p is shifted by p·F·360/T. The sets are
    built by ``Satrec.sgp4init`` and written by ``sgp4.exporter.export_tle`` (with check
    digits), so they read back through ``parse_tles`` exactly like catalogue TLEs.
    """
    _check_walker(pattern, total, planes, phasing, altitude_km, inclination_deg, epoch, first_norad)
    per_plane = total // planes
    spread = 360.0 if pattern == "delta" else 180.0
    jd, fr = julian_date(epoch)
    epoch_days = (jd - _SGP4_EPOCH_JD) + fr
    no_kozai = circular_mean_motion(altitude_km)
    out: list[Tle] = []
    for p in range(planes):
        raan = p * spread / planes
        for k in range(per_plane):
            anomaly = (k * 360.0 / per_plane + p * phasing * 360.0 / total) % 360.0
            sat = Satrec()
            sat.sgp4init(
                WGS72,
                "i",
                first_norad + len(out),
                epoch_days,
                0.0,  # bstar: no drag, the constellation keeps station
                0.0,
                0.0,
                1.0e-7,  # eccentricity: circular (SGP4 dislikes exactly zero)
                0.0,
                math.radians(inclination_deg),
                math.radians(anomaly),
                no_kozai,
                math.radians(raan),
            )
            line1, line2 = export_tle(sat)
            out.append(Tle(f"{name_prefix}-{p + 1:02d}-{k + 1:02d}", line1, line2))
    return out
