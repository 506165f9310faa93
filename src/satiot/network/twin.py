"""A twin run: terminals transmit, satellites hear, collide, store, and dump to the ground.

The run advances in fixed steps (the scenario's ``step_s``, 10 s by default) and resolves
random access once per window of steps, because a collision needs every transmission that
overlaps it:

1. satellites are propagated on the step grid (vectorised SGP4) and interpolated linearly
   inside a step (the error over 10 s is ~0.1 km);
2. terminals generate messages (Poisson); a terminal on the ``wait-for-pass`` policy holds a
   message until a satellite is above its elevation mask, a ``blind`` one sends at once;
3. each transmission reaches every satellite in view whose link budget closes; it is one
   reception attempt per satellite, on the channel the terminal picked;
4. attempts on the same satellite and channel that overlap in time collide (pure or slotted
   ALOHA, optional capture), resolved for the whole window at once;
5. what a satellite receives goes into its bounded store; whenever it is in view of a ground
   station with a free antenna it dumps at the downlink rate, and every frame that reaches
   the ground becomes a :class:`~satiot.network.receptions.Reception`, handed to a sink.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from satiot.network import access, links
from satiot.network.geometry import Array, elevation_deg, geodetic_to_ecef, julian_date, up_vectors
from satiot.network.orbits import Tle, propagate_ecef, satrec_array, time_grid
from satiot.network.population import Population
from satiot.network.receptions import Reception
from satiot.network.scenario import Scenario, constellation, load_scenario
from satiot.network.storeforward import SatelliteStore

#: Steps per collision-resolution window (60 × 10 s = 10 minutes).
WINDOW_STEPS = 60


class Sink(Protocol):
    """Where the ground stations' receptions go: a file, a counter, the network server."""

    def __call__(self, station: str, receptions: Sequence[Reception]) -> None: ...


@dataclass(frozen=True)
class _Stored:
    """What a satellite keeps for one received frame until it dumps it."""

    message: int
    transmitted_s: float
    frequency_hz: int
    rssi_dbm: float
    snr_db: float
    doppler_hz: float
    frame: bytes
    emergency: bool

    @property
    def size(self) -> int:
        return len(self.frame)


@dataclass
class SatelliteStats:
    name: str
    received: int = 0
    airtime_s: float = 0.0
    peak_window_load: float = 0.0
    high_water_bytes: int = 0
    high_water_frames: int = 0
    dropped: int = 0
    dumped: int = 0


@dataclass
class TwinReport:
    """What a run measured. Latencies are seconds from transmission to ground receipt."""

    scenario: str
    hours: float
    terminals: int
    satellites: int
    wall_s: float
    generated: int = 0
    transmitted: int = 0
    not_heard: int = 0
    collided: int = 0
    received: int = 0
    dropped_frames: int = 0
    delivered: int = 0
    duplicates: int = 0
    pending_at_end: int = 0
    stored_at_end: int = 0
    #: Messages received by a satellite, not delivered, with a copy still on board at the end.
    undelivered_on_satellites: int = 0
    #: Messages received by a satellite whose every copy was dropped from a full store.
    lost_to_drops: int = 0
    latencies_s: list[float] = field(default_factory=list)
    wait_s: list[float] = field(default_factory=list)
    per_satellite: list[SatelliteStats] = field(default_factory=list)
    per_station: dict[str, int] = field(default_factory=dict)
    channel_load_mean: float = 0.0
    channel_load_peak: float = 0.0

    @property
    def speedup(self) -> float:
        """Simulated hours per wall-clock second."""
        return self.hours / self.wall_s if self.wall_s > 0 else float("inf")

    def latency(self, q: float) -> float | None:
        return float(np.percentile(self.latencies_s, q)) if self.latencies_s else None

    def summary(self) -> dict[str, Any]:
        """The run in figures. Every transmitted message is counted exactly once:
        ``transmitted == not_heard + collided + delivered + undelivered_on_satellites_at_end
        + lost_to_drops`` and ``generated == transmitted + pending_at_end``; per frame copy,
        ``sum(received per satellite) == delivered + duplicate_receptions + dropped_frames
        + stored_on_satellites_at_end``.
        """
        lat = self.latencies_s
        return {
            "scenario": self.scenario,
            "hours": self.hours,
            "terminals": self.terminals,
            "satellites": self.satellites,
            "generated": self.generated,
            "transmitted": self.transmitted,
            "not_heard": self.not_heard,
            "collided": self.collided,
            "received_by_a_satellite": self.received,
            "dropped_frames": self.dropped_frames,
            "delivered": self.delivered,
            "duplicate_receptions": self.duplicates,
            "pending_at_end": self.pending_at_end,
            "stored_on_satellites_at_end": self.stored_at_end,
            "undelivered_on_satellites_at_end": self.undelivered_on_satellites,
            "lost_to_drops": self.lost_to_drops,
            "latency_p50_s": self.latency(50),
            "latency_p95_s": self.latency(95),
            "latency_max_s": max(lat) if lat else None,
            "wait_p50_s": float(np.percentile(self.wait_s, 50)) if self.wait_s else None,
            "wait_p95_s": float(np.percentile(self.wait_s, 95)) if self.wait_s else None,
            "channel_load_mean": self.channel_load_mean,
            "channel_load_peak": self.channel_load_peak,
            "simulated_hours_per_second": self.speedup,
        }


@dataclass
class _Pending:
    terminal: Any = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    generated_s: Any = field(default_factory=lambda: np.empty(0))


@dataclass
class _Attempts:
    """Reception attempts of one window, column-wise."""

    message: list[Any] = field(default_factory=list)
    satellite: list[Any] = field(default_factory=list)
    channel: list[Any] = field(default_factory=list)
    start: list[Any] = field(default_factory=list)
    duration: list[Any] = field(default_factory=list)
    rssi: list[Any] = field(default_factory=list)
    snr: list[Any] = field(default_factory=list)
    doppler: list[Any] = field(default_factory=list)

    def add(self, **cols: Any) -> None:
        for name, values in cols.items():
            getattr(self, name).append(values)

    def arrays(self) -> dict[str, Any]:
        return {
            name: (np.concatenate(values) if values else np.empty(0))
            for name, values in self.__dict__.items()
        }


class TwinRun:
    """One simulation of a scenario over a number of hours."""

    def __init__(self, scenario: Scenario, tles: Sequence[Tle], hours: float) -> None:
        if hours <= 0:
            raise ValueError("hours must be positive")
        self.scenario = scenario
        self.tles = list(tles)
        self.hours = hours
        self.rng = np.random.default_rng(scenario.seed)
        self.population = Population(scenario.fleets, self.rng)
        self.payload = scenario.payload
        self.stores: list[SatelliteStore[_Stored]] = [
            SatelliteStore(self.payload.storage_bytes, self.payload.store_policy) for _ in self.tles
        ]
        self.stats = [SatelliteStats(t.name) for t in self.tles]
        stations = scenario.ground_stations
        self.gs_ecef = geodetic_to_ecef(
            np.array([s.lat for s in stations]),
            np.array([s.lon for s in stations]),
            np.array([s.alt_m for s in stations]) / 1000.0,
        )
        self.gs_up = up_vectors(
            np.array([s.lat for s in stations]), np.array([s.lon for s in stations])
        )
        self.gs_mask = np.array([s.min_elevation_deg for s in stations])
        self.gs_antennas = [s.antennas for s in stations]
        self._sats = satrec_array(self.tles)
        self._jd0, self._fr0 = julian_date(scenario.start)
        self._frames: dict[int, bytes] = {}
        self._first_receipt: dict[int, float] = {}
        self._received: set[int] = set()
        # Per-message bookkeeping, indexed by message id − ``_base`` (see forget_settled).
        self._base = 0
        self._tx_time: list[float] = []
        self._gen_time: list[float] = []
        self._emergency: list[bool] = []
        #: During a call of the sink: when each of its receptions' frames was transmitted
        #: (simulated seconds), in the same order — which a reception record does not carry.
        self.sink_transmitted_s: list[float] = []
        # Where the run stands, so that it can be advanced a window at a time (live traffic).
        self.report = TwinReport(scenario.name, hours, self.population.size, len(self.tles), 0.0)
        self._step = 0
        self._pending = _Pending()
        self._carry: dict[str, Any] | None = None

    # -- geometry ---------------------------------------------------------------------------

    def _propagate(self, t0: float, steps: int) -> tuple[Array, Array]:
        seconds = t0 + self.scenario.step_s * np.arange(steps + 1, dtype=np.float64)
        jd, fr = time_grid(self._jd0, self._fr0, seconds)
        r, v, ok = propagate_ecef(self._sats, jd, fr)
        r[~ok] = np.nan  # a decayed satellite is never in view
        return r, v

    def elevations_deg(self, t_s: float) -> Array:
        """Elevation of every satellite above every ground station's horizon ``t_s`` simulated
        seconds in, shape (stations, satellites); −90 where SGP4 lost a satellite. A live
        ground station uses it to know which satellites it can load a downlink onto."""
        r, _ = self._propagate(t_s, 0)
        el = elevation_deg(r[None, :, 0, :], self.gs_ecef[:, None, :], self.gs_up[:, None, :])
        return np.nan_to_num(el, nan=-90.0)

    # -- the run ----------------------------------------------------------------------------

    @property
    def simulated_s(self) -> float:
        """Simulated seconds since the scenario's start that the run has covered so far."""
        return self._step * self.scenario.step_s

    def forget_settled(self) -> None:
        """Drop the bookkeeping of messages of which no satellite holds a copy any more, so a
        run advanced for days (live traffic) keeps constant memory instead of ~90 bytes per
        message. A message still on board keeps its record, so duplicates and latencies stay
        exact; only the end-of-run split of undelivered messages (:meth:`run`) no longer is,
        so call this only on runs that are never finished."""
        held = {item.message for store in self.stores for item in store}
        base = min(held, default=self._base + len(self._tx_time))
        if base > self._base:
            del self._tx_time[: base - self._base]
            del self._gen_time[: base - self._base]
            del self._emergency[: base - self._base]
            self._base = base
        self._first_receipt = {m: t for m, t in self._first_receipt.items() if m in held}
        self._received &= held
        self.report.latencies_s.clear()
        self.report.wait_s.clear()

    def run(
        self, sink: Sink | None = None, progress: Callable[[float, float], None] | None = None
    ) -> TwinReport:
        started = time.perf_counter()
        dt = self.scenario.step_s
        total_steps = round(self.hours * 3600.0 / dt)
        while self._step < total_steps:
            self.advance(sink, min(WINDOW_STEPS, total_steps - self._step))
            if progress is not None:
                progress(self._step * dt / 3600.0, self.hours)
        self._finish(self.report, self._pending)
        self.report.wall_s = time.perf_counter() - started
        return self.report

    def advance(self, sink: Sink | None = None, steps: int = WINDOW_STEPS) -> float:
        """Simulate the next ``steps`` steps (one collision window) and return
        :attr:`simulated_s`. The run keeps its state between calls, so a live feed can
        advance it window by window, as far ahead of the wall clock as it likes; ``hours``
        then only bounds :meth:`run`. Windows shorter than :data:`WINDOW_STEPS` resolve
        collisions exactly as well, they only cost more calls."""
        if not 0 < steps <= WINDOW_STEPS:
            raise ValueError(f"steps must be in 1..{WINDOW_STEPS}")
        dt = self.scenario.step_s
        w0, report = self._step, self.report
        r, v = self._propagate(w0 * dt, steps)
        attempts = _Attempts()
        pending = self._pending
        for k in range(steps):
            t = (w0 + k) * dt
            pending = self._transmit(
                t, dt, r[:, k], r[:, k + 1], v[:, k], pending, attempts, report
            )
        self._pending = pending
        window = attempts.arrays()
        ok = self._resolve(window, self._carry, report, w0 * dt, steps * dt)
        self._carry = {key: val for key, val in window.items()} | {"ok": ok}
        self._store_and_dump(window, ok, w0, steps, r, sink, report)
        self._frames.clear()  # every frame of the window now sits in a store or is lost
        self._step = w0 + steps
        return self.simulated_s

    def _transmit(
        self,
        t: float,
        dt: float,
        r0: Array,
        r1: Array,
        v0: Array,
        pending: _Pending,
        attempts: _Attempts,
        report: TwinReport,
    ) -> _Pending:
        pop = self.population
        new_terms, new_times = pop.due(t + dt, self.rng)
        report.generated += len(new_terms)
        terms = np.concatenate([pending.terminal, new_terms])
        gen = np.concatenate([pending.generated_s, new_times])
        if len(terms) == 0:
            return _Pending()
        # When each would go out if a satellite is in view: new messages at their own time,
        # held ones at a random instant of this step.
        tx = np.where(gen >= t, gen, t + self.rng.uniform(0.0, dt, len(gen)))
        pos = pop.positions_ecef(t, terms)
        lat_up = pos / np.linalg.norm(pos, axis=1, keepdims=True)  # spherical "up" is enough here
        frac = ((tx - t) / dt)[:, None, None]
        sat = r0[None, :, :] + (r1 - r0)[None, :, :] * frac  # (messages, satellites, 3)
        el = elevation_deg(sat, pos[:, None, :], lat_up[:, None, :])
        visible = np.nan_to_num(el, nan=-90.0) >= pop.min_elevation_deg[terms][:, None]
        send = visible.any(axis=1) | pop.blind[terms]
        keep = _Pending(terms[~send], gen[~send])
        if not send.any():
            return keep
        m_terms, m_gen, m_tx = terms[send], gen[send], tx[send]
        m_vis, m_sat = visible[send], sat[send]
        first_id = self._base + len(self._tx_time)
        self._tx_time.extend(m_tx.tolist())
        ids = first_id + np.arange(len(m_terms))
        self._gen_time.extend(m_gen.tolist())
        emergency = self.rng.random(len(m_terms)) < pop.emergency_share[m_terms]
        self._emergency.extend(emergency.tolist())
        for mid, term in zip(ids.tolist(), m_terms.tolist(), strict=True):
            size = int(pop.payload_bytes[term])
            self._frames[mid] = pop.build_frame(term, self.rng.bytes(size))
        report.transmitted += len(m_terms)
        msg_i, sat_i = np.nonzero(m_vis)
        if len(msg_i) == 0:
            report.not_heard += len(m_terms)
            return keep
        d = m_sat[msg_i, sat_i] - pos[send][msg_i]
        rng_km = np.linalg.norm(d, axis=1)
        rate = np.einsum("ij,ij->i", d, v0[sat_i]) / rng_km
        term_a = m_terms[msg_i]
        freq = float(self.payload.uplink_frequency_hz)
        loss = links.fspl_db(freq, rng_km)
        cn0 = links.c_n0_dbhz(
            pop.eirp_dbw[term_a], loss, self.payload.g_over_t_db_k, pop.losses_db[term_a]
        )
        margin = cn0 - 10.0 * np.log10(pop.bit_rate_bps[term_a]) - pop.required_eb_n0_db[term_a]
        closes = margin >= 0.0
        heard = np.zeros(len(m_terms), dtype=bool)
        heard[msg_i[closes]] = True
        report.not_heard += int((~heard).sum())
        msg_i, sat_i = msg_i[closes], sat_i[closes]
        if len(msg_i) == 0:
            return keep
        channel = self.rng.integers(0, self.payload.channels, len(m_terms))[msg_i]
        rx_dbm = (pop.eirp_dbw[term_a] - loss - pop.losses_db[term_a])[closes] + 30.0
        attempts.add(
            message=ids[msg_i],
            satellite=sat_i,
            channel=channel,
            start=m_tx[msg_i],
            duration=pop.airtime_s[m_terms[msg_i]],
            rssi=rx_dbm,
            snr=(cn0 - 10.0 * np.log10(self.payload.channel_spacing_hz))[closes],
            doppler=links.doppler_hz(freq, rate)[closes],
        )
        return keep

    def _resolve(
        self,
        window: dict[str, Any],
        carry: dict[str, Any] | None,
        report: TwinReport,
        t0: float,
        length: float,
    ) -> Any:
        n = len(window["message"])
        if n == 0:
            return np.zeros(0, dtype=bool)
        cols = ("satellite", "channel", "start", "duration", "rssi")
        merged = {c: window[c] for c in cols}
        if carry is not None and len(carry["message"]):
            # Frames still on the air from the previous window interfere with this one's.
            tail = carry["start"] + carry["duration"] > t0
            merged = {c: np.concatenate([carry[c][tail], window[c]]) for c in cols}
        key = merged["satellite"].astype(np.int64) * self.payload.channels + merged["channel"]
        acc = self.scenario.access
        ok_all = access.resolve_many(
            key,
            merged["start"],
            merged["duration"],
            merged["rssi"],
            mode=access.AccessMode(acc.mode),
            slot_s=acc.slot_s,
            capture_db=acc.capture_db,
        )
        ok = ok_all[-n:]
        airtime = np.bincount(
            window["satellite"].astype(np.int64),
            weights=window["duration"],
            minlength=len(self.tles),
        )
        for s, stat in enumerate(self.stats):
            stat.airtime_s += float(airtime[s])
            load = float(airtime[s]) / (length * self.payload.channels)
            stat.peak_window_load = max(stat.peak_window_load, load)
        # A message collided when every satellite that heard it lost it to a collision.
        msgs = window["message"].astype(np.int64)
        heard = np.unique(msgs)
        got = np.unique(msgs[ok])
        report.collided += len(heard) - len(got)
        report.received += len(got)
        self._received.update(got.tolist())
        return ok

    def _store_and_dump(
        self,
        window: dict[str, Any],
        ok: Any,
        w0: int,
        steps: int,
        r: Array,
        sink: Sink | None,
        report: TwinReport,
    ) -> None:
        dt = self.scenario.step_s
        order = np.argsort(window["start"], kind="stable")
        good = order[ok[order]] if len(ok) else order[:0]
        step_of = ((window["start"][good] - w0 * dt) // dt).astype(np.int64)
        cursor = 0
        base_freq = self.payload.uplink_frequency_hz
        spacing = self.payload.channel_spacing_hz
        for k in range(steps):
            t = (w0 + k) * dt
            while cursor < len(good) and step_of[cursor] <= k:
                i = int(good[cursor])
                mid = int(window["message"][i])
                s = int(window["satellite"][i])
                item = _Stored(
                    message=mid,
                    transmitted_s=float(window["start"][i]),
                    frequency_hz=int(base_freq + spacing * int(window["channel"][i])),
                    rssi_dbm=float(window["rssi"][i]),
                    snr_db=float(window["snr"][i]),
                    doppler_hz=float(window["doppler"][i]),
                    frame=self._frames[mid],
                    emergency=self._emergency[mid - self._base],
                )
                self.stats[s].received += 1
                self.stores[s].store(item, item.size, at=t, priority=item.emergency)
                cursor += 1
            self._dump(t + dt, r[:, k + 1], sink, report)

    def _dump(self, t: float, sat_r: Array, sink: Sink | None, report: TwinReport) -> None:
        el = elevation_deg(sat_r[None, :, :], self.gs_ecef[:, None, :], self.gs_up[:, None, :])
        el = np.nan_to_num(el, nan=-90.0)
        in_view = el >= self.gs_mask[:, None]
        if not in_view.any():
            return
        capacity = int(self.payload.downlink_rate_bps * self.scenario.step_s / 8)
        served: set[int] = set()
        when = self.scenario.start + timedelta(seconds=t)
        for g, station in enumerate(self.scenario.ground_stations):
            sats = [int(s) for s in np.argsort(-el[g]) if in_view[g, s] and int(s) not in served]
            out: list[Reception] = []
            sent: list[float] = []
            for s in sats[: self.gs_antennas[g]]:
                served.add(s)
                if not len(self.stores[s]):
                    continue
                for item in self.stores[s].dump(max_bytes=capacity, at=t):
                    self.stats[s].dumped += 1
                    out.append(
                        Reception(
                            satellite=self.tles[s].name,
                            received_at=when,
                            frequency_hz=item.frequency_hz,
                            rssi_dbm=item.rssi_dbm,
                            snr_db=item.snr_db,
                            doppler_hz=item.doppler_hz,
                            phy_payload=item.frame,
                        )
                    )
                    sent.append(item.transmitted_s)
                    self._record_receipt(item, t, report)
            if out:
                report.per_station[station.name] = report.per_station.get(station.name, 0) + len(
                    out
                )
                if sink is not None:
                    self.sink_transmitted_s = sent
                    sink(station.name, out)

    def _record_receipt(self, item: _Stored, t: float, report: TwinReport) -> None:
        if item.message in self._first_receipt:
            report.duplicates += 1
            return
        self._first_receipt[item.message] = t
        report.delivered += 1
        report.latencies_s.append(t - item.transmitted_s)
        report.wait_s.append(item.transmitted_s - self._gen_time[item.message - self._base])

    def _finish(self, report: TwinReport, pending: _Pending) -> None:
        report.pending_at_end = len(pending.terminal)
        duration = self.hours * 3600.0
        loads = []
        for s, store in enumerate(self.stores):
            stat = self.stats[s]
            stat.high_water_bytes = store.high_water_bytes
            stat.high_water_frames = store.high_water_items
            stat.dropped = store.dropped
            report.dropped_frames += store.dropped
            report.stored_at_end += len(store)
            loads.append(stat.airtime_s / (duration * self.payload.channels))
        held = {item.message for store in self.stores for item in store}
        undelivered = self._received - self._first_receipt.keys()
        report.undelivered_on_satellites = len(undelivered & held)
        report.lost_to_drops = len(undelivered - held)
        report.per_satellite = self.stats
        report.channel_load_mean = float(np.mean(loads)) if loads else 0.0
        report.channel_load_peak = max((s.peak_window_load for s in self.stats), default=0.0)


def run_scenario(
    path: Path,
    hours: float,
    *,
    terminals: int | None = None,
    sink: Sink | None = None,
    progress: Callable[[float, float], None] | None = None,
) -> TwinReport:
    """Load a scenario file, optionally resize its fleet, and run it."""
    scenario, folder = load_scenario(path)
    if terminals is not None:
        scenario = scenario.scaled(terminals)
    tles = constellation(scenario, folder)
    return TwinRun(scenario, tles, hours).run(sink, progress)
