"""The live twin's one-time setup, safe to repeat on every start of ``satiot up``.

Before the twin's ground stations can post, the network server must know what they will post
about: the satellites and stations (inventory), a customer that owns the terminals (the
``demo`` tenant), every terminal's ABP session (a device of that tenant), and one API key per
station. Each step looks first and changes only what is missing or different, so a restart
adds nothing twice; the only thing renewed on every start is the stations' keys, which live
in this process's memory only and are never printed (the old one is revoked by the rotation).

A restarted twin begins its terminals' frame counters again, so the setup also moves every
terminal's counter past the highest one the server has accepted from its device: otherwise
its first frames would look like replays of old ones.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.core.auth.principal import Principal, system_principal
from satiot.core.auth.users import create_tenant
from satiot.core.bootstrap import operator_tenant
from satiot.core.db import Database
from satiot.core.errors import Conflict
from satiot.core.models import Tenant
from satiot.network import devices, ground_stations, inventory
from satiot.network.keys import Kek
from satiot.network.models import Device, GroundStation
from satiot.network.orbits import Tle
from satiot.network.population import Population
from satiot.network.scenario import Scenario

log = logging.getLogger(__name__)

DEMO_TENANT_SLUG = "demo"
DEMO_TENANT_NAME = "Demo Fleet Customer"
#: Devices provisioned per transaction: a crash part-way keeps what was committed, and the
#: embedded database's write lock is released often enough for the server's own requests.
PROVISION_CHUNK = 200
#: Pause between two chunks, so that a first start's provisioning leaves the server responsive.
PROVISION_PAUSE_S = 0.05
#: DevEUIs per IN (…) query, well inside SQLite's bound-parameter limit.
LOOKUP_CHUNK = 2000


@dataclass
class Prepared:
    """What the feed needs from the setup."""

    tenant_id: uuid.UUID
    station_ids: list[str]  # the server's ids of the scenario's stations, in scenario order
    keys: dict[str, str]  # station id -> its API key, in memory only
    dev_index: dict[str, int]  # DevEUI -> terminal index in the population
    f_cnt: np.ndarray  # each terminal's next frame counter, past what the server accepted
    created_devices: int
    existing_devices: int


class Interrupted(Exception):
    """The service was asked to stop part-way; what was committed stays, the rest is done on
    the next start."""


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _operator(database: Database, name: str) -> Principal:
    with database.read() as s:
        operator = operator_tenant(s)
        if operator is None:
            raise Conflict("no operator tenant yet: seed the platform first")
        return system_principal(operator.id, name=name)


def demo_tenant(session: Session, actor: Principal, *, at: datetime) -> Tenant:
    """The customer that owns the twin's terminals, created on first use."""
    tenant = session.scalar(select(Tenant).where(Tenant.slug == DEMO_TENANT_SLUG))
    if tenant is None:
        tenant = create_tenant(session, actor, slug=DEMO_TENANT_SLUG, name=DEMO_TENANT_NAME, at=at)
    return tenant


def start_positions(population: Population) -> tuple[np.ndarray, np.ndarray]:
    """Every terminal's latitude and longitude at the scenario's start (the position a
    customer would register it with), longitudes folded into −180…180."""
    lat = np.empty(population.size)
    lon = np.empty(population.size)
    for f, fleet in enumerate(population.fleets):
        a, b = int(population.offsets[f]), int(population.offsets[f + 1])
        la, lo, _alt = fleet.positions(0.0)
        lat[a:b], lon[a:b] = la, (np.asarray(lo) + 180.0) % 360.0 - 180.0
    return lat, lon


def _known_counters(database: Database, euis: list[str]) -> dict[str, int | None]:
    """DevEUI -> highest accepted frame counter, for the twin's devices the server knows."""
    known: dict[str, int | None] = {}
    with database.read() as s:
        for i in range(0, len(euis), LOOKUP_CHUNK):
            rows = s.execute(
                select(Device.dev_eui, Device.f_cnt_up).where(
                    Device.dev_eui.in_(euis[i : i + LOOKUP_CHUNK])
                )
            )
            known.update({eui: f_cnt for eui, f_cnt in rows})
    return known


def provision_devices(
    database: Database,
    actor: Principal,
    kek: Kek,
    population: Population,
    tenant_id: uuid.UUID,
    *,
    at: datetime,
    stop: threading.Event | None = None,
) -> tuple[dict[str, int], int, int]:
    """Create the population's missing devices and move counters past accepted frames.

    Returns (DevEUI -> terminal index, created, already there). Goes through
    :func:`satiot.network.devices.create_device`, so each device is validated, sealed and
    audited exactly as one posted to the API.
    """
    sessions = [population.session(i) for i in range(population.size)]
    index = {s.dev_eui: s.index for s in sessions}
    known = _known_counters(database, list(index))
    for eui, f_cnt_up in known.items():
        if f_cnt_up is not None:
            i = index[eui]
            population.f_cnt[i] = max(int(population.f_cnt[i]), f_cnt_up + 1)
    missing = [s.index for s in sessions if s.dev_eui not in known]
    if missing:
        lat, lon = start_positions(population)
        for chunk in _chunks(missing, PROVISION_CHUNK):
            if stop is not None and stop.wait(PROVISION_PAUSE_S):
                raise Interrupted
            with database.write() as s:
                # Held for the whole chunk: the session's identity map is weak, and without a
                # reference every create_device would load the tenant row again.
                tenant = s.get(Tenant, tenant_id)
                for i in chunk:
                    sess = sessions[i]
                    devices.create_device(
                        s,
                        actor,
                        kek=kek,
                        tenant_id=tenant_id,
                        dev_eui=sess.dev_eui,
                        dev_addr=f"{sess.dev_addr:08X}",
                        nwk_s_key=sess.nwk_s_key.hex(),
                        app_s_key=sess.app_s_key.hex(),
                        name=f"{sess.fleet} {i:05d}",
                        lat=round(float(lat[i]), 5),
                        lon=round(float(lon[i]), 5),
                        at=at,
                    )
                del tenant
    return index, len(missing), len(known)


def issue_keys(
    database: Database, actor: Principal, station_names: Sequence[str], *, at: datetime
) -> tuple[list[str], dict[str, str]]:
    """Rotate every twin station's key; returns the stations' ids and their new keys."""
    with database.write() as s:
        rows = {
            g.name: g
            for g in s.scalars(
                select(GroundStation).where(GroundStation.name.in_(list(station_names)))
            )
        }
        ids: list[str] = []
        keys: dict[str, str] = {}
        for name in station_names:
            station = rows[name]
            issued = ground_stations.issue_station_key(s, actor, station.id, at=at)
            ids.append(str(station.id))
            keys[str(station.id)] = issued.secret
    return ids, keys


def renew_key(database: Database, station_id: str, *, at: datetime) -> str:
    """A fresh key for one station (its key was refused: someone rotated it meanwhile)."""
    actor = _operator(database, "live-twin")
    with database.write() as s:
        return ground_stations.issue_station_key(s, actor, uuid.UUID(station_id), at=at).secret


def prepare(
    database: Database,
    kek: Kek,
    scenario: Scenario,
    tles: Sequence[Tle],
    population: Population,
    *,
    at: datetime,
    stop: threading.Event | None = None,
) -> Prepared:
    """Everything the twin's stations need, created or brought up to date; idempotent.

    ``population`` is the scenario's terminals; their frame counters are moved past what the
    server already accepted (the returned ``f_cnt``).
    """
    actor = _operator(database, "live-twin")
    with database.write() as s:
        sats = inventory.import_satellites(s, actor, tles, scenario.payload, at=at)
        gs = inventory.import_ground_stations(s, actor, scenario.ground_stations, at=at)
        tenant_id = demo_tenant(s, actor, at=at).id
    log.info(
        "live twin: inventory %d satellites (%d new), %d ground stations (%d new)",
        len(tles),
        sats.created,
        len(scenario.ground_stations),
        gs.created,
    )
    index, created, existing = provision_devices(
        database, actor, kek, population, tenant_id, at=at, stop=stop
    )
    log.info("live twin: %d devices provisioned, %d already there", created, existing)
    station_ids, keys = issue_keys(
        database, actor, [g.name for g in scenario.ground_stations], at=at
    )
    return Prepared(tenant_id, station_ids, keys, index, population.f_cnt.copy(), created, existing)
