"""Twin scenarios: a constellation, ground stations and a fleet, read from a TOML file.

A scenario is data an operator edits, so every field is validated with a message that names
it (``fleets[2].count: Input should be greater than 0``) before anything runs.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Self

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from satiot.network.mobility import make_fleet
from satiot.network.orbits import Tle, TleError, load_tles, walker
from satiot.network.places import region_named

#: Bytes a LoRaWAN data frame adds to the application payload: MHDR, FHDR, FPort, MIC.
FRAME_OVERHEAD = 13


class ScenarioError(ValueError):
    """The scenario cannot be used; the message says which field and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Shell(_Strict):
    """Part of a constellation: a Walker pattern, or element sets from a TLE file."""

    pattern: Literal["delta", "star"] | None = None
    total: int | None = Field(default=None, gt=0, le=5000)
    planes: int | None = Field(default=None, gt=0)
    phasing: int = Field(default=0, ge=0)
    altitude_km: float | None = Field(default=None, ge=160, le=2000)
    inclination_deg: float | None = Field(default=None, ge=0, le=180)
    name_prefix: str = "SAT"
    tle: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        walker_fields = (
            self.pattern,
            self.total,
            self.planes,
            self.altitude_km,
            self.inclination_deg,
        )
        if self.tle is None and any(v is None for v in walker_fields):
            raise ValueError(
                "give either tle, or pattern, total, planes, altitude_km and inclination_deg"
            )
        if self.tle is not None and any(v is not None for v in walker_fields):
            raise ValueError("give either tle or a Walker pattern, not both")
        return self


class Payload(_Strict):
    """What every satellite carries (the inventory can hold different values per satellite)."""

    channels: int = Field(default=8, gt=0, le=1024)
    uplink_frequency_hz: int = Field(default=400_100_000, gt=0)
    channel_spacing_hz: int = Field(default=25_000, gt=0)
    g_over_t_db_k: float = -27.0
    eirp_dbw: float = 5.0
    storage_bytes: int = Field(default=2_000_000, gt=0)
    downlink_rate_bps: int = Field(default=200_000, gt=0)
    store_policy: Literal["drop-newest", "drop-oldest"] = "drop-oldest"


class Access(_Strict):
    mode: Literal["pure", "slotted"] = "pure"
    slot_s: float | None = Field(default=None, gt=0)
    capture_db: float | None = Field(default=6.0, ge=0)

    @model_validator(mode="after")
    def _slot_given(self) -> Self:
        if self.mode == "slotted" and self.slot_s is None:
            raise ValueError("slotted access needs slot_s (seconds, at least one frame long)")
        return self


class Station(_Strict):
    name: str = Field(min_length=1, max_length=64)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    alt_m: float = 0.0
    min_elevation_deg: float = Field(default=5.0, ge=0, lt=90)
    antennas: int = Field(default=2, gt=0, le=64)


class FleetSpec(_Strict):
    """A group of terminals of one class doing one job in one region."""

    name: str = Field(min_length=1)
    terminal_class: Literal["fixed", "wearable", "handheld", "car", "ship", "aircraft"] = Field(
        alias="class"
    )
    count: int = Field(gt=0, le=10_000_000)
    region: str
    industry: str = Field(pattern=r"^[A-T]$", description="GB/T 4754-2017 section letter")
    province: str | None = Field(default=None, pattern=r"^[0-9]{2}$")
    message_interval_s: float = Field(gt=0, description="Mean time between messages")
    payload_bytes: int = Field(gt=0, le=222)
    emergency_share: float = Field(default=0.0, ge=0, le=1)
    tx_power_w: float = Field(default=0.2, gt=0, le=10)
    antenna_gain_dbi: float = 0.0
    losses_db: float = Field(default=4.0, ge=0)
    bit_rate_bps: float = Field(default=1200.0, gt=0)
    required_eb_n0_db: float = 4.0
    min_elevation_deg: float = Field(default=10.0, ge=0, lt=90)
    policy: Literal["wait-for-pass", "blind"] = "wait-for-pass"

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        region_named(value)  # ValueError listing the known regions
        return value

    @model_validator(mode="after")
    def _class_fits_region(self) -> Self:
        # Build one terminal now, so that a car at sea or a ship without ports is refused
        # when the scenario is read rather than when a run starts.
        make_fleet(self.terminal_class, 1, self.region, np.random.default_rng(0))
        return self

    @property
    def airtime_s(self) -> float:
        """Time on air of one of this fleet's frames."""
        return (self.payload_bytes + FRAME_OVERHEAD) * 8.0 / self.bit_rate_bps


class Scenario(_Strict):
    name: str
    description: str = ""
    start: datetime
    seed: int = 0
    step_s: float = Field(default=10.0, gt=0, le=120)
    shells: list[Shell] = Field(min_length=1)
    payload: Payload = Payload()
    access: Access = Access()
    ground_stations: list[Station] = Field(min_length=1)
    fleets: list[FleetSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _aware_start(self) -> Self:
        if self.start.tzinfo is None:
            raise ValueError("start must carry a time zone, e.g. 2026-11-25T00:00:00Z")
        names = [s.name for s in self.ground_stations]
        if len(set(names)) != len(names):
            raise ValueError("ground station names must be unique")
        slot = self.access.slot_s
        if self.access.mode == "slotted" and slot is not None:
            for i, fleet in enumerate(self.fleets):
                if fleet.airtime_s > slot:
                    raise ValueError(
                        f"access.slot_s {slot:g} s is shorter than a frame of fleets[{i}] "
                        f"({fleet.airtime_s:.3f} s on air)"
                    )
        return self

    @property
    def terminals(self) -> int:
        return sum(f.count for f in self.fleets)

    def scaled(self, terminals: int) -> Scenario:
        """The same scenario with the fleet resized to ``terminals`` in the same proportions."""
        if terminals <= 0:
            raise ScenarioError("terminals must be positive")
        factor = terminals / self.terminals
        fleets = [
            f.model_copy(update={"count": max(1, round(f.count * factor))}) for f in self.fleets
        ]
        return self.model_copy(update={"fleets": fleets})


def _format(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "scenario"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def load_scenario(path: Path) -> tuple[Scenario, Path]:
    """Read and validate a scenario; returns it with its folder (TLE paths are relative)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))  # TOML is UTF-8 by definition
    except OSError as exc:
        raise ScenarioError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path} is not valid TOML: {exc}") from exc
    try:
        return Scenario.model_validate(raw), path.parent
    except ValidationError as exc:
        raise ScenarioError(f"{path.name}: {_format(exc)}") from exc


def constellation(scenario: Scenario, folder: Path) -> list[Tle]:
    """Every satellite of the scenario, shells in order, names unique."""
    tles: list[Tle] = []
    epoch = scenario.start.astimezone(UTC)
    for index, shell in enumerate(scenario.shells):
        try:
            if shell.tle is not None:
                tles.extend(load_tles(folder / shell.tle))
            else:
                assert shell.pattern and shell.total and shell.planes
                assert shell.altitude_km is not None and shell.inclination_deg is not None
                tles.extend(
                    walker(
                        shell.pattern,
                        shell.total,
                        shell.planes,
                        shell.phasing,
                        shell.altitude_km,
                        shell.inclination_deg,
                        epoch,
                        name_prefix=shell.name_prefix,
                        first_norad=90000 + 1000 * index,
                    )
                )
        except (TleError, ValueError) as exc:
            raise ScenarioError(f"shells[{index}]: {exc}") from exc
    names = [t.name for t in tles]
    if len(set(names)) != len(names):
        raise ScenarioError("satellite names repeat across shells: give each a name_prefix")
    return tles
