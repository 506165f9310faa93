"""Live traffic: ``satiot up`` runs the digital twin and its ground stations post what they
download to the network server over HTTP, exactly as real stations do.

The twin runs the configured scenario (default: the packaged ``tianqi-like``) starting at the
moment the service starts, window by window, ahead of the wall clock; its receptions wait in
a queue until the clock, times ``twin_speed``, reaches them, and are then posted to
``POST /api/v1/ground-stations/{id}/receptions`` with each station's own key, in batches,
retried until taken. Nothing here writes an uplink itself: what the console shows has come in
through the same API, authentication and ingest a real ground station uses. The stations also
play their part for commands (:mod:`satiot.network.live_downlinks`).

The setup (inventory, the ``demo`` customer, 10,000 devices, station keys) is in
:mod:`satiot.network.live_setup` and is safe to repeat on every start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import httpx
import numpy as np

from satiot.core.clock import Clock
from satiot.core.config import Settings
from satiot.core.db import Database
from satiot.core.services import BackgroundService
from satiot.network.keys import Kek
from satiot.network.live_downlinks import DownlinkSide
from satiot.network.live_feed import (
    Due,
    FeedStats,
    Pacer,
    ReceptionQueue,
    StationClient,
    by_station,
)
from satiot.network.live_setup import Interrupted, Prepared, prepare, renew_key
from satiot.network.orbits import Tle
from satiot.network.population import Population
from satiot.network.receptions import Reception
from satiot.network.scenario import Scenario, constellation, load_scenario
from satiot.network.twin import WINDOW_STEPS, TwinRun

if TYPE_CHECKING:
    from satiot.api.context import AppContext

log = logging.getLogger(__name__)

#: The scenario ``satiot up`` runs unless ``SATIOT_TWIN_SCENARIO`` names another; shipped in
#: the package so that an installed wheel has it (``scenarios/`` at the repository root holds
#: the same file for ``satiot twin run``).
PACKAGED_SCENARIO = Path(__file__).parent / "scenarios" / "tianqi-like.toml"
#: The live run has no end; this only bounds :meth:`TwinRun.run`, which the feed never calls.
HORIZON_HOURS = 24.0 * 365 * 100
#: Receptions simulated but not yet due, beyond which the twin waits for the clock.
MAX_QUEUED = 50_000
#: Real seconds between two fetches of the stations' planned downlinks.
DOWNLINK_POLL_S = 5.0
#: Real seconds between two progress lines in the log.
REPORT_EVERY_S = 60.0


class LiveContext(Protocol):
    """What the live twin needs from the running application (an ``AppContext``)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def db(self) -> Database: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def kek(self) -> Kek: ...


def default_scenario(settings: Settings) -> Path:
    return settings.twin_scenario or PACKAGED_SCENARIO


def load(path: Path) -> tuple[Scenario, list[Tle]]:
    """The scenario and its satellites. The element sets keep the file's own epoch, so the
    inventory's satellites stay the same from one start to the next; only the run's start
    moves to now."""
    scenario, folder = load_scenario(path)
    return scenario, constellation(scenario, folder)


def start_twin(scenario: Scenario, tles: Sequence[Tle], start: datetime) -> TwinRun:
    """The scenario run from ``start``: the terminals (sessions, routes, first messages) come
    from the scenario's seed, so they are the same devices on every start; the traffic after
    that is drawn afresh for each start."""
    twin = TwinRun(scenario.model_copy(update={"start": start}), tles, HORIZON_HOURS)
    twin.rng = np.random.default_rng([scenario.seed, int(start.timestamp())])
    return twin


def terminals(scenario: Scenario) -> Population:
    """The scenario's terminals exactly as :class:`TwinRun` builds them (same seed, same
    draws), for the setup to provision before the run starts."""
    return Population(scenario.fleets, np.random.default_rng(scenario.seed))


@dataclass
class _Clocked:
    last_poll: float = 0.0
    last_report: float = 0.0


class LiveFeed:
    """Advances the twin ahead of the clock and posts its receptions when they are due."""

    def __init__(
        self,
        twin: TwinRun,
        pacer: Pacer,
        prepared: Prepared,
        client: StationClient,
        downlinks: DownlinkSide | None,
        clock: Clock,
    ) -> None:
        self.twin = twin
        self.pacer = pacer
        self.client = client
        self.downlinks = downlinks
        self.clock = clock
        self.queue = ReceptionQueue()
        self.station_id = dict(
            zip([g.name for g in twin.scenario.ground_stations], prepared.station_ids, strict=True)
        )
        self._timers = _Clocked(last_report=time.monotonic())

    @property
    def stats(self) -> FeedStats:
        return self.client.stats

    def _sink(self, station: str, receptions: Sequence[Reception]) -> None:
        start = self.twin.scenario.start
        sent = self.twin.sink_transmitted_s
        for r, transmitted_s in zip(receptions, sent, strict=True):
            t, real = self.pacer.restamp(r, start)
            self.queue.add(Due(t, station, real, self.pacer.instant(transmitted_s)))

    def simulate(self, simulated_s: float) -> None:
        """Run the twin until it is a window ahead of ``simulated_s`` (or the queue is full)."""
        ahead = WINDOW_STEPS * self.twin.scenario.step_s
        while self.twin.simulated_s <= simulated_s + ahead and len(self.queue) < MAX_QUEUED:
            self.twin.advance(self._sink)
            self.twin.forget_settled()  # the live run never ends: keep its memory flat

    def post_due(self, simulated_s: float) -> int:
        """Post every reception due by ``simulated_s``; returns how many."""
        due = self.queue.pop_due(simulated_s)
        for station, items in by_station(due).items():
            self.client.post_receptions(self.station_id[station], [d.reception for d in items])
            if self.downlinks is not None:
                self.downlinks.observe(items)
        return len(due)

    def step(self) -> float:
        """One turn: simulate, post what is due, load downlinks; returns real seconds to
        sleep before the next turn."""
        now = self.clock.now()
        simulated = self.pacer.simulated_at(now)
        self.simulate(simulated)
        self.post_due(simulated)
        mono = time.monotonic()
        if self.downlinks is not None and mono - self._timers.last_poll >= DOWNLINK_POLL_S:
            self._timers.last_poll = mono
            self.downlinks.poll(now)
        if mono - self._timers.last_report >= REPORT_EVERY_S:
            self._timers.last_report = mono
            self._log_progress(simulated)
        upcoming = self.queue.next_due_s()
        wait = 1.0 if upcoming is None else self.pacer.seconds_until(upcoming, self.clock.now())
        return min(max(wait, 0.05), 1.0)

    def _log_progress(self, simulated: float) -> None:
        s = self.stats
        if not s.posted and simulated < 1.0:
            return
        hours, minutes = divmod(int(simulated // 60), 60)
        log.info(
            "live twin: %d h %02d min simulated; %d receptions posted (%d new messages, "
            "%d duplicates, %d rejected); downlink receipts %s",
            hours,
            minutes,
            s.posted,
            s.accepted,
            s.duplicates,
            s.rejected,
            dict(sorted(s.receipts.items())) or "none",
        )

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                pause = self.step()
            except Exception:  # keep the station alive: log, pause, carry on
                log.exception("live twin: a turn failed; retrying shortly")
                pause = 5.0
            stop.wait(pause)


def _wait_serving(http: httpx.Client, stop: threading.Event, timeout_s: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            if http.get("/healthz").status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        stop.wait(0.2)
    return False


def _serves_downlinks(http: httpx.Client) -> bool:
    """Whether the server has the stations' downlink API yet (it is optional to the feed)."""
    try:
        paths = http.get("/openapi.json").json().get("paths", {})
    except (httpx.HTTPError, ValueError):
        return False
    return any(p.startswith("/api/v1/ground-stations/") and p.endswith("/downlinks") for p in paths)


def run_live(
    ctx: LiveContext, stop: threading.Event, *, base_url: str, http: httpx.Client | None = None
) -> LiveFeed | None:
    """Set up, then feed until ``stop``; returns the feed (for tests) or None if it never
    started (stopped first, scenario or setup failed: logged)."""
    settings = ctx.settings
    client_http = http or httpx.Client(base_url=base_url, timeout=30.0)
    try:
        if not _wait_serving(client_http, stop):
            if not stop.is_set():
                log.error("live twin: %s never answered /healthz; no twin traffic", base_url)
            return None
        path = default_scenario(settings)
        try:
            scenario, tles = load(path)
            prepared = prepare(
                ctx.db, ctx.kek, scenario, tles, terminals(scenario), at=ctx.clock.now(), stop=stop
            )
        except Interrupted:
            return None
        except Exception:
            log.exception("live twin: setup with %s failed; no twin traffic", path)
            return None
        start = ctx.clock.now()
        twin = start_twin(scenario, tles, start)
        twin.population.f_cnt[:] = prepared.f_cnt
        pacer = Pacer(start, settings.twin_speed)

        def renew(station_id: str) -> str:
            prepared.keys[station_id] = renew_key(ctx.db, station_id, at=ctx.clock.now())
            return prepared.keys[station_id]

        client = StationClient(client_http, prepared.keys.__getitem__, renew, stop)
        downlinks = (
            DownlinkSide(client, twin, prepared.station_ids, prepared.dev_index)
            if _serves_downlinks(client_http)
            else None
        )
        feed = LiveFeed(twin, pacer, prepared, client, downlinks, ctx.clock)
        log.info(
            "live twin: %s with %d terminals, %d satellites, %d ground stations at %gx real time",
            scenario.name,
            twin.population.size,
            len(tles),
            len(scenario.ground_stations),
            settings.twin_speed,
        )
        feed.run(stop)
        return feed
    finally:
        if http is None:
            client_http.close()


def live_service(port: int, host: str = "127.0.0.1") -> BackgroundService:
    """The live twin as a background service of ``satiot up``, posting to the server on
    ``host:port`` (the server it runs beside)."""
    host_part = f"[{host}]" if ":" in host else host
    base_url = f"http://{host_part}:{port}"

    def run(ctx: AppContext, stop: threading.Event) -> None:
        run_live(ctx, stop, base_url=base_url)

    return BackgroundService("live-twin", run)
