"""Radio link model between a terminal and a satellite: path loss, Doppler, C/N0, bit rate.

The twin needs to know, for every (terminal, satellite, instant), whether an uplink frame
closes and what the receiver sees (power, frequency offset and its drift), so every function
here is vectorised over numpy arrays. The model is a clear-sky free-space budget: no rain,
no ionospheric scintillation, no polarisation mismatch beyond what ``losses_db`` lumps in.

Default numbers describe a Tianqi-like UHF IoT system; they reproduce the worked example of
``shared/REFERENCE.md`` §8 (0.1 W, 0 dBi, G/T −27 dB/K, 4 dB losses, 400 MHz, 800 km, 10°:
C/N0 ≈ 35.6 dB-Hz, ~365 bps uncoded at Eb/N0 = 10 dB, ~1.5 kbps coded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from satiot.network.geometry import OMEGA_EARTH, SPEED_OF_LIGHT_KM_S, Array

BOLTZMANN_DBW_K_HZ = -228.6  # 10·log10(1.380649e-23 J/K)
MU_EARTH_KM3_S2 = 398_600.4418  # WGS-84 gravitational parameter
_FSPL_CONSTANT_DB = 20.0 * np.log10(4.0 * np.pi * 1e3 / (SPEED_OF_LIGHT_KM_S * 1e3))


@dataclass(frozen=True)
class TerminalRadio:
    """A ground terminal's transmitter (REFERENCE §8 example terminal).

    ``required_eb_n0_db`` is for the coded waveform: 4 dB is what a rate-1/2 convolutional
    or LR-FHSS-style code needs at a ~1e-5 error rate, and it turns the §8 example's
    35.6 dB-Hz into the quoted ~1.5 kbps. ``bit_rate_bps`` is the rate the terminal is
    configured to send at; the link margin is computed against it.
    """

    tx_power_w: float = 0.1
    antenna_gain_dbi: float = 0.0
    losses_db: float = 4.0  # cable, pointing, polarisation and atmosphere, lumped
    required_eb_n0_db: float = 4.0
    frequency_hz: float = 400e6
    bit_rate_bps: float = 1000.0

    @property
    def eirp_dbw(self) -> float:
        return float(10.0 * np.log10(self.tx_power_w) + self.antenna_gain_dbi)


@dataclass(frozen=True)
class SatellitePayload:
    """A store-and-forward IoT payload on a small LEO satellite.

    G/T −27 dB/K and 400 MHz are REFERENCE §8's. The rest are assumptions of the same class
    of system (tens of kg satellites with a UHF receiver, an S/L-band downlink to ground
    stations): 8 uplink channels of 25 kHz (a UHF narrow-band allocation split in channels),
    2 dBi receive antenna gain (sets the received power, ``rssi_dbm``), a 3 dBW downlink EIRP,
    and 64 MiB of frame storage. Change them to the licensed values of the real network.
    """

    g_over_t_db_k: float = -27.0
    antenna_gain_dbi: float = 2.0
    eirp_dbw: float = 3.0
    channels: int = 8
    channel_bandwidth_hz: float = 25e3
    storage_bytes: int = 64 * 1024 * 1024
    frequency_hz: float = 400e6


@dataclass(frozen=True)
class LinkBudget:
    """One uplink budget per input element; every field broadcasts like the inputs."""

    range_km: Array
    fspl_db: Array
    c_n0_dbhz: Array
    snr_db: Array  # in one channel bandwidth
    rssi_dbm: Array  # received carrier power at the satellite antenna port
    doppler_hz: Array
    doppler_rate_hz_s: Array | None
    achievable_bit_rate_bps: Array
    margin_db: Array  # against the terminal's configured bit rate
    closes: np.ndarray[tuple[int, ...], np.dtype[np.bool_]]


def fspl_db(frequency_hz: Array | float, range_km: Array | float) -> Array:
    """Free-space path loss 20·log10(4πd f / c)."""
    f = np.asarray(frequency_hz, dtype=np.float64)
    d = np.asarray(range_km, dtype=np.float64)
    return np.asarray(20.0 * np.log10(d) + 20.0 * np.log10(f) + _FSPL_CONSTANT_DB)


def range_and_rate(
    sat_r: Array, sat_v: Array, site_r: Array, site_v: Array | float = 0.0
) -> tuple[Array, Array]:
    """Range (km) and its time derivative (km/s, positive when receding) from ECEF states.

    ``site_v`` is zero for a fixed site; pass a velocity for a moving terminal (ship, truck).
    """
    d = np.asarray(sat_r) - np.asarray(site_r)
    dv = np.asarray(sat_v) - np.asarray(site_v)
    rng = np.linalg.norm(d, axis=-1)
    rate = np.einsum("...i,...i->...", d, dv) / rng
    return np.asarray(rng), np.asarray(rate)


def range_acceleration_km_s2(
    sat_r: Array, sat_v: Array, site_r: Array, site_v: Array | float = 0.0
) -> Array:
    """Second derivative of range for a fixed or uniformly moving site, from the geometry.

    d²ρ/dt² = (|Δv|² + Δr·Δa − ρ̇²)/ρ. The satellite's Earth-fixed acceleration is taken as
    two-body gravity plus the Coriolis and centrifugal terms of the rotating frame; J2 and
    drag are left out, which changes the result by well under 1 %.
    """
    r = np.asarray(sat_r, dtype=np.float64)
    v = np.asarray(sat_v, dtype=np.float64)
    omega = np.array([0.0, 0.0, OMEGA_EARTH])
    gravity = -MU_EARTH_KM3_S2 * r / np.linalg.norm(r, axis=-1, keepdims=True) ** 3
    coriolis = -2.0 * np.cross(omega, v)
    centrifugal = -np.cross(omega, np.cross(omega, r))
    a = gravity + coriolis + centrifugal
    d = r - np.asarray(site_r)
    dv = v - np.asarray(site_v)
    rng = np.linalg.norm(d, axis=-1)
    rate = np.einsum("...i,...i->...", d, dv) / rng
    dv2 = np.einsum("...i,...i->...", dv, dv)
    return np.asarray((dv2 + np.einsum("...i,...i->...", d, a) - rate**2) / rng)


def doppler_hz(frequency_hz: Array | float, range_rate_km_s: Array | float) -> Array:
    """Frequency offset seen by the receiver: −f·ρ̇/c (positive while approaching)."""
    return np.asarray(
        -np.asarray(frequency_hz, dtype=np.float64)
        * np.asarray(range_rate_km_s, dtype=np.float64)
        / SPEED_OF_LIGHT_KM_S
    )


def doppler_rate_hz_s(frequency_hz: Array | float, range_accel_km_s2: Array | float) -> Array:
    """Drift of the Doppler offset: −f·ρ̈/c.

    Take ρ̈ from :func:`range_acceleration_km_s2` (geometry) or from
    :func:`range_accel_from_samples` (finite differences of a sampled pass); they agree to a
    fraction of a per cent on a 1 s grid.
    """
    return np.asarray(
        -np.asarray(frequency_hz, dtype=np.float64)
        * np.asarray(range_accel_km_s2, dtype=np.float64)
        / SPEED_OF_LIGHT_KM_S
    )


def range_accel_from_samples(range_rate_km_s: Array, t_s: Array) -> Array:
    """ρ̈ by second-order finite differences of range rate along the last axis."""
    return np.asarray(np.gradient(range_rate_km_s, t_s, axis=-1))


def c_n0_dbhz(
    eirp_dbw: Array | float,
    fspl_db: Array | float,
    g_over_t_db_k: Array | float,
    losses_db: Array | float = 0.0,
) -> Array:
    """Carrier-to-noise density C/N0 = EIRP − FSPL − losses + G/T − k."""
    return np.asarray(
        np.asarray(eirp_dbw, dtype=np.float64)
        - fspl_db
        - losses_db
        + g_over_t_db_k
        - BOLTZMANN_DBW_K_HZ
    )


def bit_rate_bps(
    c_n0_dbhz: Array | float, eb_n0_db: Array | float, *, margin_db: float = 0.0
) -> Array:
    """Highest bit rate whose Eb/N0 still meets ``eb_n0_db`` with ``margin_db`` to spare."""
    return np.asarray(10.0 ** ((np.asarray(c_n0_dbhz) - eb_n0_db - margin_db) / 10.0))


def shannon_limit_bps(c_n0_dbhz: Array | float, bandwidth_hz: Array | float) -> Array:
    """Capacity B·log2(1 + C/(N0·B)) of an AWGN channel: no code can beat it."""
    b = np.asarray(bandwidth_hz, dtype=np.float64)
    c_n0 = 10.0 ** (np.asarray(c_n0_dbhz, dtype=np.float64) / 10.0)
    return np.asarray(b * np.log2(1.0 + c_n0 / b))


def link_budget(
    terminal: TerminalRadio,
    payload: SatellitePayload,
    range_km: Array | float,
    range_rate_km_s: Array | float = 0.0,
    *,
    range_accel_km_s2: Array | float | None = None,
    bit_rate: float | None = None,
) -> LinkBudget:
    """The uplink budget from a terminal to a satellite at the given ranges.

    The achievable bit rate is what the coded waveform's Eb/N0 allows, capped at the Shannon
    capacity of one channel (the cap only bites when the link is bandwidth-limited). The link
    closes when the margin at ``bit_rate`` (default: the terminal's configured rate) is ≥ 0.
    """
    rng = np.asarray(range_km, dtype=np.float64)
    loss = fspl_db(terminal.frequency_hz, rng)
    cn0 = c_n0_dbhz(terminal.eirp_dbw, loss, payload.g_over_t_db_k, terminal.losses_db)
    snr = cn0 - 10.0 * np.log10(payload.channel_bandwidth_hz)
    rx_dbw = terminal.eirp_dbw - loss - terminal.losses_db + payload.antenna_gain_dbi
    achievable = np.minimum(
        bit_rate_bps(cn0, terminal.required_eb_n0_db),
        shannon_limit_bps(cn0, payload.channel_bandwidth_hz),
    )
    rate = terminal.bit_rate_bps if bit_rate is None else bit_rate
    margin = cn0 - 10.0 * np.log10(rate) - terminal.required_eb_n0_db
    drift = (
        None
        if range_accel_km_s2 is None
        else doppler_rate_hz_s(terminal.frequency_hz, range_accel_km_s2)
    )
    return LinkBudget(
        range_km=rng,
        fspl_db=loss,
        c_n0_dbhz=cn0,
        snr_db=np.asarray(snr),
        rssi_dbm=np.asarray(rx_dbw + 30.0),
        doppler_hz=doppler_hz(terminal.frequency_hz, range_rate_km_s),
        doppler_rate_hz_s=drift,
        achievable_bit_rate_bps=np.asarray(achievable),
        margin_db=np.asarray(margin),
        closes=np.asarray(margin >= 0.0),
    )
