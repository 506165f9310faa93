"""Twin scenarios: the shipped files load, and every bad field is refused by name."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from satiot.network.scenario import ScenarioError, constellation, load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


# -- helpers shared with the other twin tests -------------------------------------------------


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return repr(v)


def to_toml(doc: dict[str, Any]) -> str:
    """Enough TOML for a scenario: scalars, tables and arrays of tables."""
    lines = [f"{k} = {_value(v)}" for k, v in doc.items() if not isinstance(v, dict | list)]
    lines += [f"{k} = {_value(v)}" for k, v in doc.items() if isinstance(v, list) and not v]
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"\n[{k}]")
            lines += [f"{kk} = {_value(vv)}" for kk, vv in v.items()]
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for item in v:
                lines.append(f"\n[[{k}]]")
                lines += [f"{kk} = {_value(vv)}" for kk, vv in item.items()]
    return "\n".join(lines) + "\n"


BEIJING = {"name": "Beijing", "lat": 39.9, "lon": 116.4, "alt_m": 50.0}
SANYA = {"name": "Sanya", "lat": 18.25, "lon": 109.5, "alt_m": 20.0}


def tiny(**over: Any) -> dict[str, Any]:
    """A small scenario as a dict: 12 satellites, two stations in China, 40 fixed terminals."""
    doc: dict[str, Any] = {
        "name": "tiny",
        "start": "2026-11-25T00:00:00Z",
        "seed": 7,
        "step_s": 10,
        "shells": [
            {
                "pattern": "delta",
                "total": 12,
                "planes": 3,
                "phasing": 1,
                "altitude_km": 800.0,
                "inclination_deg": 50.0,
                "name_prefix": "T",
            }
        ],
        "payload": {"channels": 8},
        "access": {"mode": "pure"},
        "ground_stations": [dict(BEIJING), dict(SANYA)],
        "fleets": [
            {
                "name": "sensors",
                "class": "fixed",
                "count": 40,
                "region": "china",
                "industry": "D",
                "message_interval_s": 600.0,
                "payload_bytes": 20,
            }
        ],
    }
    doc.update(copy.deepcopy(over))
    return doc


def write(tmp_path: Path, doc: dict[str, Any], name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(to_toml(doc))
    return path


# -- the shipped scenarios ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "satellites", "prefixes"),
    [("tianqi-like.toml", 38, {"TQ-A": 24, "TQ-B": 14}), ("walker-100.toml", 100, {"W100": 100})],
)
def test_shipped_scenarios_load(file: str, satellites: int, prefixes: dict[str, int]) -> None:
    scenario, folder = load_scenario(SCENARIOS / file)
    tles = constellation(scenario, folder)
    assert len(tles) == satellites
    assert len({t.name for t in tles}) == satellites
    for prefix, count in prefixes.items():
        assert sum(t.name.startswith(prefix + "-") for t in tles) == count
    assert scenario.terminals == 10_000
    assert {g.name for g in scenario.ground_stations} == {"Beijing", "Kashgar", "Sanya", "Jiamusi"}
    assert scenario.start.utcoffset() is not None


def test_tiny_scenario_loads(tmp_path: Path) -> None:
    scenario, folder = load_scenario(write(tmp_path, tiny()))
    assert folder == tmp_path
    assert scenario.terminals == 40
    assert len(constellation(scenario, folder)) == 12


# -- bad fields --------------------------------------------------------------------------------


def _fleet(**over: Any) -> list[dict[str, Any]]:
    fleet = tiny()["fleets"][0]
    fleet.update(over)
    return [tiny()["fleets"][0] | {"name": "ok"}, fleet]


def _shell(**over: Any) -> list[dict[str, Any]]:
    shell = tiny()["shells"][0]
    shell.update(over)
    return [shell]


BAD: dict[str, tuple[dict[str, Any], str]] = {
    "negative count": ({"fleets": _fleet(count=-5)}, "fleets.1.count"),
    "zero count": ({"fleets": _fleet(count=0)}, "fleets.1.count"),
    "unknown class": ({"fleets": _fleet(**{"class": "bicycle"})}, "fleets.1.class"),
    "bad industry letter": ({"fleets": _fleet(industry="Z")}, "fleets.1.industry"),
    "lower-case industry": ({"fleets": _fleet(industry="d")}, "fleets.1.industry"),
    "unknown region": ({"fleets": _fleet(region="atlantis")}, "fleets.1.region"),
    "car at sea": (
        {"fleets": _fleet(**{"class": "car", "region": "south-china-sea"})},
        "fleets.1",
    ),
    "unknown fleet field": ({"fleets": _fleet(colour="red")}, "fleets.1.colour"),
    "start without zone": ({"start": "2026-11-25T00:00:00"}, "start"),
    "shell with tle and pattern": ({"shells": _shell(tle="x.tle")}, "shells.0"),
    "shell with half a pattern": (
        {"shells": [{"pattern": "delta", "total": 12, "name_prefix": "T"}]},
        "shells.0",
    ),
    "altitude too low": ({"shells": _shell(altitude_km=100.0)}, "shells.0.altitude_km"),
    "duplicate station names": (
        {"ground_stations": [dict(BEIJING), dict(SANYA) | {"name": "Beijing"}]},
        "ground station names",
    ),
    "station latitude": (
        {"ground_stations": [dict(BEIJING) | {"lat": 91.0}]},
        "ground_stations.0.lat",
    ),
    "no fleets": ({"fleets": []}, "fleets"),
    "bad store policy": ({"payload": {"store_policy": "drop-random"}}, "payload.store_policy"),
    "slotted without slot": ({"access": {"mode": "slotted"}}, "access"),
    "slot shorter than a frame": (
        {"access": {"mode": "slotted", "slot_s": 0.01}},
        "slot_s",
    ),
    "step too long": ({"step_s": 600}, "step_s"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_every_bad_field_is_named(tmp_path: Path, case: str) -> None:
    over, field = BAD[case]
    path = write(tmp_path, tiny(**over))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith("s.toml: ")
    assert field in message, message


def test_invalid_toml_is_a_scenario_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\nstart = [\n')
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(path)


def test_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"cannot read .*nowhere\.toml"):
        load_scenario(tmp_path / "nowhere.toml")


def test_missing_tle_file_names_the_shell(tmp_path: Path) -> None:
    doc = tiny(shells=[{"tle": "absent.tle"}])
    scenario, folder = load_scenario(write(tmp_path, doc))
    with pytest.raises(ScenarioError, match=r"shells\[0\]"):
        constellation(scenario, folder)


def test_repeated_satellite_names_across_shells(tmp_path: Path) -> None:
    doc = tiny(shells=_shell() + _shell(altitude_km=900.0))
    scenario, folder = load_scenario(write(tmp_path, doc))
    with pytest.raises(ScenarioError, match="name_prefix"):
        constellation(scenario, folder)


# -- scaling -----------------------------------------------------------------------------------


def test_scaled_keeps_proportions() -> None:
    scenario, _ = load_scenario(SCENARIOS / "tianqi-like.toml")
    small = scenario.scaled(1_000)
    assert abs(small.terminals - 1_000) <= len(scenario.fleets)
    for big, little in zip(scenario.fleets, small.fleets, strict=True):
        assert little.name == big.name and little.region == big.region
        assert little.count == round(big.count / 10)
    # Nothing else changes, and the original is untouched.
    assert small.shells == scenario.shells and small.ground_stations == scenario.ground_stations
    assert scenario.terminals == 10_000


def test_scaled_never_empties_a_fleet() -> None:
    scenario, _ = load_scenario(SCENARIOS / "tianqi-like.toml")
    assert all(f.count == 1 for f in scenario.scaled(1).fleets)


@pytest.mark.parametrize("n", [0, -3])
def test_scaled_refuses_non_positive(n: int) -> None:
    scenario, _ = load_scenario(SCENARIOS / "tianqi-like.toml")
    with pytest.raises(ScenarioError, match="positive"):
        scenario.scaled(n)
