"""The simulated terminals: who they are, where they are, and when they have something to say.

Everything is held column-wise in numpy arrays (one entry per terminal) so that a national
fleet of a hundred thousand terminals costs a few array operations per simulated step.
Each terminal holds a real ABP session (DevAddr, NwkSKey, AppSKey, frame counter) and builds
real LoRaWAN frames, so what the twin emits is exactly what a real ground station relays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from satiot.network import frames
from satiot.network.geometry import Array, geodetic_to_ecef
from satiot.network.mobility import Fleet, TerminalClass, make_fleet
from satiot.network.scenario import FRAME_OVERHEAD, FleetSpec

#: The twin's terminals use addresses from this block (NetID-style prefix 0x26…).
DEV_ADDR_BASE = 0x26_00_00_00
#: Uplink frames carry application data on port 1 (the LoRaWAN convention for sensor data).
APP_PORT = 1

IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Session:
    """One terminal's ABP session, as the network server will be provisioned with it."""

    index: int
    fleet: str
    dev_eui: str
    dev_addr: int
    nwk_s_key: bytes
    app_s_key: bytes


class Population:
    """All terminals of a scenario, fleets laid out one after another."""

    def __init__(self, specs: Sequence[FleetSpec], rng: np.random.Generator) -> None:
        self.specs = list(specs)
        self.fleets: list[Fleet] = []
        offsets = [0]
        for spec in self.specs:
            self.fleets.append(
                make_fleet(TerminalClass(spec.terminal_class), spec.count, spec.region, rng)
            )
            offsets.append(offsets[-1] + spec.count)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        n = int(self.offsets[-1])
        self.size = n
        self.fleet_of = np.repeat(np.arange(len(self.specs)), [s.count for s in self.specs])
        keys = rng.integers(0, 256, size=(n, 2, 16), dtype=np.uint8)
        self._nwk = keys[:, 0, :]
        self._app = keys[:, 1, :]
        self.dev_addr = DEV_ADDR_BASE + np.arange(n, dtype=np.int64)
        self.f_cnt = np.zeros(n, dtype=np.int64)

        def column(attr: str) -> Array:
            return np.asarray([getattr(s, attr) for s in self.specs], dtype=np.float64)[
                self.fleet_of
            ]

        self.eirp_dbw = 10.0 * np.log10(column("tx_power_w")) + column("antenna_gain_dbi")
        self.losses_db = column("losses_db")
        self.bit_rate_bps = column("bit_rate_bps")
        self.required_eb_n0_db = column("required_eb_n0_db")
        self.min_elevation_deg = column("min_elevation_deg")
        self.interval_s = column("message_interval_s")
        self.payload_bytes = column("payload_bytes").astype(np.int64)
        self.emergency_share = column("emergency_share")
        self.blind = np.asarray([s.policy == "blind" for s in self.specs])[self.fleet_of]
        self.airtime_s = (self.payload_bytes + FRAME_OVERHEAD) * 8.0 / self.bit_rate_bps
        # First message of each terminal at a random phase of its interval.
        self.next_message_s = rng.uniform(0.0, self.interval_s)

    def session(self, index: int) -> Session:
        spec = self.specs[int(self.fleet_of[index])]
        return Session(
            index=index,
            fleet=spec.name,
            dev_eui=f"{0x70B3D5_7E_0000_0000 + index:016X}",
            dev_addr=int(self.dev_addr[index]),
            nwk_s_key=bytes(self._nwk[index]),
            app_s_key=bytes(self._app[index]),
        )

    def positions_ecef(self, t_s: float, which: IntArray) -> Array:
        """Earth-fixed positions (km) of the terminals ``which`` at ``t_s`` seconds in."""
        out = np.empty((len(which), 3), dtype=np.float64)
        if len(which) == 0:
            return out
        fleet_idx = self.fleet_of[which]
        for f in np.unique(fleet_idx):
            members = np.flatnonzero(fleet_idx == f)
            lat, lon, alt_m = self.fleets[int(f)].positions(t_s)
            local = which[members] - self.offsets[f]
            out[members] = geodetic_to_ecef(lat[local], lon[local], alt_m[local] / 1000.0)
        return out

    def due(self, until_s: float, rng: np.random.Generator) -> tuple[IntArray, Array]:
        """Messages generated before ``until_s``: (terminal, generation time), in time order.

        Arrivals are a Poisson process per terminal (exponential gaps around its interval).
        """
        terms: list[IntArray] = []
        times: list[Array] = []
        while True:
            idx = np.flatnonzero(self.next_message_s < until_s)
            if len(idx) == 0:
                break
            terms.append(idx)
            times.append(self.next_message_s[idx].copy())
            self.next_message_s[idx] += rng.exponential(self.interval_s[idx])
        if not terms:
            return np.empty(0, dtype=np.int64), np.empty(0)
        t = np.concatenate(times)
        order = np.argsort(t, kind="stable")
        return np.concatenate(terms)[order], t[order]

    def build_frame(self, index: int, payload: bytes) -> bytes:
        """The next uplink frame of terminal ``index`` (advances its frame counter)."""
        f_cnt = int(self.f_cnt[index])
        self.f_cnt[index] = f_cnt + 1
        return frames.encode(
            mtype=frames.MType.UNCONFIRMED_UP,
            dev_addr=int(self.dev_addr[index]),
            f_cnt32=f_cnt,
            f_port=APP_PORT,
            payload=payload,
            nwk_s_key=bytes(self._nwk[index]),
            app_s_key=bytes(self._app[index]),
        )
