"""Earth geometry shared by the twin: WGS-84 positions, the TEME→ECEF rotation, look angles.

Every function is vectorised over numpy arrays so that a contact plan for thousands of sites
and a hundred satellites is a handful of array operations. Positions are kilometres in an
Earth-centred, Earth-fixed frame (ECEF ≈ ITRS without polar motion, which moves a ground
point by at most ~15 m); times are Julian dates split in two for precision, as SGP4 uses them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

WGS84_A_KM = 6378.137
WGS84_F = 1.0 / 298.257223563
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)
EARTH_RADIUS_KM = 6371.0  # mean radius, for spherical approximations (footprints, flights)
OMEGA_EARTH = 7.292115146706979e-5  # rad/s, as in the IAU-82 model SGP4's TEME frame uses
SPEED_OF_LIGHT_KM_S = 299_792.458
_JD_UNIX_EPOCH = 2440587.5


def julian_date(when: datetime) -> tuple[float, float]:
    """(whole, fraction) Julian date of an aware datetime, the form sgp4 wants."""
    seconds = when.astimezone(UTC).timestamp()
    days = seconds / 86400.0
    whole = np.floor(days)
    return _JD_UNIX_EPOCH + float(whole), float(days - whole)


def gmst_rad(jd: Array | float, fr: Array | float) -> Array:
    """Greenwich mean sidereal time (IAU 1982), the rotation between TEME and ECEF.

    Skyfield and Vallado use the same expression, so contact times computed here agree with
    theirs to well under a second.
    """
    jd_a = np.asarray(jd, dtype=np.float64)
    fr_a = np.asarray(fr, dtype=np.float64)
    t = ((jd_a - 2451545.0) + fr_a) / 36525.0
    g = 67310.54841 + (876600.0 * 3600.0 + 8640184.812866) * t + 0.093104 * t**2 - 6.2e-6 * t**3
    return np.asarray((np.deg2rad(g / 240.0) % (2.0 * np.pi)), dtype=np.float64)


def teme_to_ecef(r_teme: Array, v_teme: Array, gmst: Array) -> tuple[Array, Array]:
    """Rotate TEME position/velocity (..., 3) to ECEF; ``gmst`` broadcasts over the leading axes.

    The velocity includes the transport term −ω×r, so it is the velocity seen from the ground
    (what Doppler needs).
    """
    c = np.cos(gmst)[..., None]
    s = np.sin(gmst)[..., None]
    x, y, z = r_teme[..., 0:1], r_teme[..., 1:2], r_teme[..., 2:3]
    r = np.concatenate([c * x + s * y, -s * x + c * y, z], axis=-1)
    vx, vy, vz = v_teme[..., 0:1], v_teme[..., 1:2], v_teme[..., 2:3]
    v = np.concatenate([c * vx + s * vy, -s * vx + c * vy, vz], axis=-1)
    v[..., 0] += OMEGA_EARTH * r[..., 1]
    v[..., 1] -= OMEGA_EARTH * r[..., 0]
    return r, v


def geodetic_to_ecef(
    lat_deg: Array | float, lon_deg: Array | float, alt_km: Array | float = 0.0
) -> Array:
    """WGS-84 geodetic coordinates to ECEF kilometres, shape (..., 3)."""
    lat = np.deg2rad(np.asarray(lat_deg, dtype=np.float64))
    lon = np.deg2rad(np.asarray(lon_deg, dtype=np.float64))
    h = np.asarray(alt_km, dtype=np.float64)
    sin_lat = np.sin(lat)
    n = WGS84_A_KM / np.sqrt(1.0 - WGS84_E2 * sin_lat**2)
    x = (n + h) * np.cos(lat) * np.cos(lon)
    y = (n + h) * np.cos(lat) * np.sin(lon)
    z = (n * (1.0 - WGS84_E2) + h) * sin_lat
    return np.stack(np.broadcast_arrays(x, y, z), axis=-1)


def ecef_to_geodetic(r: Array) -> tuple[Array, Array, Array]:
    """ECEF kilometres to WGS-84 (lat°, lon°, alt km) by Bowring's method (sub-metre at LEO)."""
    x, y, z = r[..., 0], r[..., 1], r[..., 2]
    lon = np.arctan2(y, x)
    p = np.hypot(x, y)
    b = WGS84_A_KM * (1.0 - WGS84_F)
    ep2 = (WGS84_A_KM**2 - b**2) / b**2
    theta = np.arctan2(z * WGS84_A_KM, p * b)
    lat = np.arctan2(
        z + ep2 * b * np.sin(theta) ** 3, p - WGS84_E2 * WGS84_A_KM * np.cos(theta) ** 3
    )
    n = WGS84_A_KM / np.sqrt(1.0 - WGS84_E2 * np.sin(lat) ** 2)
    alt = p / np.cos(lat) - n
    return np.rad2deg(lat), np.rad2deg(lon), alt


def up_vectors(lat_deg: Array | float, lon_deg: Array | float) -> Array:
    """Unit normals to the ellipsoid (geodetic "up") at the given points, shape (..., 3)."""
    lat = np.deg2rad(np.asarray(lat_deg, dtype=np.float64))
    lon = np.deg2rad(np.asarray(lon_deg, dtype=np.float64))
    return np.stack(
        np.broadcast_arrays(np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)),
        axis=-1,
    )


def elevation_deg(sat_ecef: Array, site_ecef: Array, site_up: Array) -> Array:
    """Elevation of satellites above sites' horizons; arrays broadcast over leading axes."""
    d = sat_ecef - site_ecef
    rng = np.linalg.norm(d, axis=-1)
    sin_el = np.einsum("...i,...i->...", d, site_up) / rng
    return np.asarray(np.rad2deg(np.arcsin(np.clip(sin_el, -1.0, 1.0))), dtype=np.float64)


def azimuth_deg(
    sat_ecef: Array, site_ecef: Array, lat_deg: Array | float, lon_deg: Array | float
) -> Array:
    """Azimuth (clockwise from north) of satellites seen from sites."""
    lat = np.deg2rad(np.asarray(lat_deg, dtype=np.float64))
    lon = np.deg2rad(np.asarray(lon_deg, dtype=np.float64))
    d = sat_ecef - site_ecef
    east = -np.sin(lon) * d[..., 0] + np.cos(lon) * d[..., 1]
    north = (
        -np.sin(lat) * np.cos(lon) * d[..., 0]
        - np.sin(lat) * np.sin(lon) * d[..., 1]
        + np.cos(lat) * d[..., 2]
    )
    return np.asarray(np.rad2deg(np.arctan2(east, north)) % 360.0, dtype=np.float64)


def footprint_half_angle_rad(altitude_km: float, min_elevation_deg: float) -> float:
    """Earth-central half-angle of the area that sees a satellite above ``min_elevation``."""
    re = EARTH_RADIUS_KM
    el = np.deg2rad(min_elevation_deg)
    nadir = np.arcsin(re / (re + altitude_km) * np.cos(el))
    return float(np.pi / 2.0 - el - nadir)


def slant_range_km(altitude_km: float, elevation: float) -> float:
    """Distance to a satellite at ``altitude_km`` seen at ``elevation`` degrees (sphere)."""
    re = EARTH_RADIUS_KM
    el = np.deg2rad(elevation)
    return float(np.sqrt((re + altitude_km) ** 2 - (re * np.cos(el)) ** 2) - re * np.sin(el))


def great_circle_km(
    lat1: Array | float, lon1: Array | float, lat2: Array | float, lon2: Array | float
) -> Array:
    """Haversine distance on the mean sphere."""
    p1, p2 = np.deg2rad(lat1), np.deg2rad(lat2)
    dlat = p2 - p1
    dlon = np.deg2rad(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return np.asarray(
        2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))), dtype=np.float64
    )
