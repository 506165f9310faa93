"""Orbits: two-line element sets, Walker constellations, and vectorised SGP4 propagation.

SGP4 itself is the ``sgp4`` package's C++ implementation; this module only reads and writes
element sets and turns ``SatrecArray`` output (TEME) into Earth-fixed positions in one array
operation for all satellites and times.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sgp4.api import Satrec, SatrecArray

from satiot.network.geometry import Array, gmst_rad, teme_to_ecef


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
        text = path.read_text()
    except OSError as exc:
        raise TleError(f"cannot read {path}: {exc.strerror}") from exc
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
