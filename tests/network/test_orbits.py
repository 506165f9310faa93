"""Walker constellations: element sets that read back and fly where they were asked to."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sgp4.earth_gravity import wgs72

from satiot.network.geometry import julian_date
from satiot.network.orbits import parse_tles, propagate_ecef, satrec_array, time_grid, walker

EPOCH = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


@st.composite
def walker_params(draw: st.DrawFn) -> tuple[str, int, int, int, float, float]:
    planes = draw(st.integers(1, 8))
    per_plane = draw(st.integers(1, 6))
    phasing = draw(st.integers(0, planes - 1))
    altitude = draw(st.floats(300.0, 2000.0))
    inclination = draw(st.floats(0.0, 180.0))
    pattern = draw(st.sampled_from(["delta", "star"]))
    return pattern, planes * per_plane, planes, phasing, altitude, inclination


@settings(max_examples=30, deadline=None)
@given(walker_params())
def test_walker_sets_read_back_and_fly_at_the_requested_orbit(params) -> None:
    pattern, total, planes, phasing, altitude, inclination = params
    tles = walker(pattern, total, planes, phasing, altitude, inclination, EPOCH)  # type: ignore[arg-type]
    text = "\n".join(f"{t.name}\n{t.line1}\n{t.line2}" for t in tles)
    back = parse_tles(text)  # checks every check digit
    assert back == tles
    sats = [t.satrec() for t in back]
    for s in sats:
        assert math.degrees(s.inclo) == pytest.approx(inclination, abs=1e-4)
    spread = 360.0 if pattern == "delta" else 180.0
    per_plane = total // planes
    for p in range(planes):
        raan = math.degrees(sats[p * per_plane].nodeo)
        assert raan == pytest.approx(p * spread / planes, abs=1e-3)
        for k in range(per_plane):
            anomaly = math.degrees(sats[p * per_plane + k].mo)
            expected = (k * 360.0 / per_plane + p * phasing * 360.0 / total) % 360.0
            assert (anomaly - expected + 180.0) % 360.0 - 180.0 == pytest.approx(0.0, abs=1e-3)
    jd0, fr0 = julian_date(EPOCH)
    jd, fr = time_grid(jd0, fr0, np.arange(0.0, 2 * 3600.0, 120.0))
    r, _, ok = propagate_ecef(satrec_array(back), jd, fr)
    assert ok.all()
    height = np.linalg.norm(r, axis=-1) - wgs72.radiusearthkm
    assert np.abs(height - altitude).max() < 15.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"total": 10, "planes": 3}, "must divide"),
        ({"phasing": 3}, "phasing"),
        ({"altitude_km": 100.0}, "altitude"),
        ({"altitude_km": 3000.0}, "altitude"),
        ({"inclination_deg": 200.0}, "inclination"),
        ({"epoch": datetime(2026, 3, 1)}, "timezone"),
        ({"first_norad": 99990}, "NORAD"),
    ],
)
def test_walker_rejects_impossible_constellations(kwargs, message) -> None:
    args = {
        "pattern": "delta",
        "total": 12,
        "planes": 3,
        "phasing": 1,
        "altitude_km": 800.0,
        "inclination_deg": 53.0,
        "epoch": EPOCH,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        walker(**args)  # type: ignore[arg-type]


def test_walker_names_and_ids_are_unique_and_epoch_is_kept() -> None:
    tles = walker("star", 6, 3, 0, 550.0, 97.6, EPOCH, name_prefix="IOT", first_norad=70000)
    assert [t.norad_id for t in tles] == list(range(70000, 70006))
    assert len({t.name for t in tles}) == 6 and tles[0].name.startswith("IOT")
    s = tles[0].satrec()
    epoch = datetime(2000 + s.epochyr, 1, 1, tzinfo=UTC) + timedelta(days=s.epochdays - 1)
    assert abs((epoch - EPOCH).total_seconds()) < 1e-3
