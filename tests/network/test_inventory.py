"""The satellite and ground-station inventory: import, re-import, update, read back."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from satiot.core import audit
from satiot.core.db import Database
from satiot.core.errors import InvalidInput
from satiot.core.models import AuditEntry, Event
from satiot.network.inventory import (
    ImportResult,
    import_ground_stations,
    import_satellites,
    satellites_as_tles,
)
from satiot.network.models import GroundStation, Satellite
from satiot.network.orbits import Tle, walker
from satiot.network.scenario import Scenario, constellation, load_scenario
from tests.conftest import T0
from tests.factories import World

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "tianqi-like.toml"


def _scenario() -> tuple[Scenario, list[Tle]]:
    scenario, folder = load_scenario(SCENARIO)
    return scenario, constellation(scenario, folder)


def _import(
    db: Database, world: World, scenario: Scenario, tles: list[Tle], at: datetime = T0
) -> tuple[ImportResult, ImportResult]:
    with db.write() as s:
        sats = import_satellites(s, world.system, tles, scenario.payload, at=at)
        gss = import_ground_stations(s, world.system, scenario.ground_stations, at=at)
    return sats, gss


def _audit(db: Database, prefix: str) -> list[AuditEntry]:
    with db.read() as s:
        return list(
            s.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.like(f"{prefix}%"))
                .order_by(AuditEntry.seq)
            )
        )


def _count(db: Database, model: type) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_import_creates_rows_and_audit_entries(db: Database, world: World) -> None:
    scenario, tles = _scenario()
    sats, gss = _import(db, world, scenario, tles)
    assert (sats.created, sats.updated, sats.unchanged) == (38, 0, 0)
    assert (gss.created, gss.updated, gss.unchanged) == (4, 0, 0)
    assert _count(db, Satellite) == 38 and _count(db, GroundStation) == 4
    added = _audit(db, "satellite.")
    assert len(added) == 38 and {a.action for a in added} == {"satellite.added"}
    assert all(a.actor == world.system.actor for a in added)
    assert {a.after["name"] for a in added if a.after} == {t.name for t in tles}
    stations = _audit(db, "ground-station.")
    assert [a.action for a in stations] == ["ground-station.added"] * 4
    with db.read() as s:
        beijing = s.scalar(select(GroundStation).where(GroundStation.name == "Beijing"))
        assert beijing is not None
        assert (beijing.lat, beijing.lon, beijing.antennas) == (39.90, 116.40, 2)
        sat = s.scalar(select(Satellite).where(Satellite.name == tles[0].name))
        assert sat is not None
        assert sat.storage_bytes == 2_000_000 and sat.channels == 8
        assert sat.norad_id == tles[0].norad_id and sat.status == "active"
        events = s.scalar(
            select(func.count()).select_from(Event).where(Event.type == "satellite.added")
        )
        assert events == 38
        assert audit.verify(s).ok


def test_reimporting_the_same_changes_nothing(db: Database, world: World) -> None:
    scenario, tles = _scenario()
    _import(db, world, scenario, tles)
    entries = _count(db, AuditEntry)
    sats, gss = _import(db, world, scenario, tles, at=T0 + timedelta(days=1))
    assert (sats.created, sats.updated, sats.unchanged) == (0, 0, 38)
    assert (gss.created, gss.updated, gss.unchanged) == (0, 0, 4)
    assert _count(db, AuditEntry) == entries
    assert _count(db, Satellite) == 38
    with db.read() as s:
        assert {sat.updated_at for sat in s.scalars(select(Satellite))} == {T0}


def test_a_new_element_set_updates_in_place(db: Database, world: World) -> None:
    scenario, tles = _scenario()
    _import(db, world, scenario, tles)
    with db.read() as s:
        old = s.scalar(select(Satellite).where(Satellite.name == tles[0].name))
        assert old is not None
        old_id = old.id
    # Same satellite, a day-later epoch.
    fresh = walker(
        "delta", 24, 6, 1, 850.0, 45.0, scenario.start + timedelta(days=1), name_prefix="TQ-A",
        first_norad=90000,
    )  # fmt: skip
    assert fresh[0].name == tles[0].name and fresh[0].line1 != tles[0].line1
    later = T0 + timedelta(days=1)
    with db.write() as s:
        result = import_satellites(
            s, world.system, [fresh[0], *tles[1:]], scenario.payload, at=later
        )
    assert (result.created, result.updated, result.unchanged) == (0, 1, 37)
    assert _count(db, Satellite) == 38
    with db.read() as s:
        sat = s.scalar(select(Satellite).where(Satellite.name == tles[0].name))
        assert sat is not None
        assert sat.id == old_id
        assert (sat.tle_line1, sat.tle_line2) == (fresh[0].line1, fresh[0].line2)
        assert sat.updated_at == later and sat.created_at == T0
        assert audit.verify(s).ok
    [change] = _audit(db, "satellite.updated")
    assert change.target_id == str(old_id)
    assert change.before is not None and change.after is not None
    assert change.before["tle_line1"] == tles[0].line1
    assert change.after["tle_line1"] == fresh[0].line1
    assert change.before["storage_bytes"] == change.after["storage_bytes"] == 2_000_000


def test_moving_a_ground_station_is_audited(db: Database, world: World) -> None:
    scenario, tles = _scenario()
    _import(db, world, scenario, tles)
    moved = [
        g.model_copy(update={"antennas": 4}) if g.name == "Sanya" else g
        for g in scenario.ground_stations
    ]
    with db.write() as s:
        result = import_ground_stations(s, world.system, moved, at=T0)
    assert (result.created, result.updated, result.unchanged) == (0, 1, 3)
    [change] = _audit(db, "ground-station.updated")
    assert change.before and change.after
    assert (change.before["antennas"], change.after["antennas"]) == (2, 4)


def test_satellites_as_tles_round_trips(db: Database, world: World) -> None:
    scenario, tles = _scenario()
    _import(db, world, scenario, tles)
    with db.read() as s:
        back = satellites_as_tles(s)
    assert sorted(back, key=lambda t: t.name) == sorted(tles, key=lambda t: t.name)
    assert all(t.satrec().error == 0 for t in back)
    # Retired satellites leave the list.
    with db.write() as s:
        sat = s.scalar(select(Satellite).where(Satellite.name == tles[0].name))
        assert sat is not None
        sat.status = "retired"
    with db.read() as s:
        assert [t.name for t in satellites_as_tles(s)] == sorted(t.name for t in tles[1:])


@pytest.mark.parametrize("bad", ["TQ\x1b[31m-01", "TQ-\u202e10"])
def test_an_imported_name_with_control_or_direction_characters_stores_nothing(
    db: Database, world: World, bad: str
) -> None:
    """A scenario or TLE file is operator data: a broken name line is refused, naming where it
    is, before any row is written (the names are shown in plans, reports and the console)."""
    scenario, tles = _scenario()
    audited = _count(db, AuditEntry)
    sats = [*tles[:2], replace(tles[2], name=bad)]
    with pytest.raises(InvalidInput) as refused, db.write() as s:
        import_satellites(s, world.system, sats, scenario.payload, at=T0)
    assert refused.value.extensions["field"] == "satellites.2.name"
    stations = [*scenario.ground_stations[:1], scenario.ground_stations[1].model_copy(
        update={"name": bad})]  # fmt: skip
    with pytest.raises(InvalidInput) as refused, db.write() as s:
        import_ground_stations(s, world.system, stations, at=T0)
    assert refused.value.extensions["field"] == "ground_stations.1.name"
    assert _count(db, Satellite) == _count(db, GroundStation) == 0
    assert _count(db, AuditEntry) == audited


def test_chinese_names_import_and_match_on_reimport(db: Database, world: World) -> None:
    scenario, tles = _scenario()
    sats = [replace(tles[0], name="天启-01")]
    stations = [scenario.ground_stations[0].model_copy(update={"name": "喀什站"})]
    for at in (T0, T0 + timedelta(days=1)):
        with db.write() as s:
            first = import_satellites(s, world.system, sats, scenario.payload, at=at)
            second = import_ground_stations(s, world.system, stations, at=at)
    assert (first.unchanged, second.unchanged) == (1, 1)
    with db.read() as s:
        assert s.scalars(select(Satellite.name)).all() == ["天启-01"]
        assert s.scalars(select(GroundStation.name)).all() == ["喀什站"]
