"""How many commands a ground station can load onto a satellite in one pass, and who may use
the last of that room.

A pass over a ground station lasts minutes, and the station also has to fetch the satellite's
stored uplinks in it: the commands it can upload are limited (``SATIOT_DOWNLINK_LOADS_PER_PASS``
per satellite and pass). When a window is full, a downlink is planned on the next window that
has room, so its estimate is honest instead of promising a slot that does not exist. A share of
each window (``SATIOT_DOWNLINK_EMERGENCY_RESERVE``) is held for devices with downlink priority
(the emergency-priority add-on): ordinary traffic can fill a window only up to the rest, so an
emergency command still finds room at the next pass however busy the network is. This is the
downlink side of the notice's emergency reserve.

A window is known by its satellite, its station and its set time. Pass times are computed
again whenever the planner's window cache is rebuilt, and may move by a fraction of a second,
so a downlink's stored ``load_until`` counts for the window whose set time lies within
:data:`SAME_WINDOW` of it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from satiot.core.config import Settings
from satiot.network.models import Downlink

#: Two set times this close name the same pass.
SAME_WINDOW = timedelta(seconds=120)
#: Commands loaded onto one satellite in one pass, when configuration does not say.
DEFAULT_PER_PASS = 1000
DEFAULT_RESERVE = 0.1


def reserved_slots(per_pass: int, reserve: float) -> int:
    """Slots of a window held for priority devices: the reserve share, rounded up, but never
    the whole window (ordinary traffic always keeps one)."""
    if per_pass < 1:
        raise ValueError("a pass loads at least one command")
    if not 0 <= reserve < 1:
        raise ValueError("the emergency reserve is a share from 0 up to (not including) 1")
    held = -(-round(per_pass * reserve * 1_000_000) // 1_000_000)  # ceil, without float dust
    return min(held, per_pass - 1)


@dataclass(frozen=True)
class LoadRules:
    """The configured room of a load window and the share held for priority devices."""

    per_pass: int = DEFAULT_PER_PASS
    reserve: float = DEFAULT_RESERVE
    #: Slots of each window held for priority devices (:func:`reserved_slots`).
    held: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "held", reserved_slots(self.per_pass, self.reserve))

    @classmethod
    def from_settings(cls, settings: Settings) -> LoadRules:
        return cls(settings.downlink_loads_per_pass, settings.downlink_emergency_reserve)

    def limit(self, priority: int) -> int:
        """The commands a window may hold when the next one is for a device of this
        priority: the whole window for priority devices, the unreserved part for others."""
        return self.per_pass if priority > 0 else self.per_pass - self.held


@dataclass
class _Window:
    sets: datetime
    count: int = 0


@dataclass
class Loads:
    """Commands already planned on each load window, under ``rules``."""

    rules: LoadRules = field(default_factory=LoadRules)
    planned: dict[tuple[str, uuid.UUID], list[_Window]] = field(default_factory=dict)

    def _window(self, satellite: str, station_id: uuid.UUID, sets: datetime) -> _Window:
        windows = self.planned.setdefault((satellite, station_id), [])
        for window in windows:
            if abs(window.sets - sets) <= SAME_WINDOW:
                return window
        windows.append(_Window(sets))
        return windows[-1]

    def used(self, satellite: str, station_id: uuid.UUID, sets: datetime) -> int:
        return self._window(satellite, station_id, sets).count

    def has_room(
        self, satellite: str, station_id: uuid.UUID, sets: datetime, priority: int = 0
    ) -> bool:
        return self.used(satellite, station_id, sets) < self.rules.limit(priority)

    def take(self, satellite: str, station_id: uuid.UUID, sets: datetime, count: int = 1) -> None:
        self._window(satellite, station_id, sets).count += count

    def copy(self) -> Loads:
        return Loads(
            self.rules,
            {key: [_Window(w.sets, w.count) for w in ws] for key, ws in self.planned.items()},
        )


def current_loads(session: Session, now: datetime, rules: LoadRules | None = None) -> Loads:
    """The scheduled downlinks still to be loaded, counted per window (one grouped query;
    read in the transaction that will schedule more, so two planners cannot both take the
    last slot)."""
    rows = session.execute(
        select(
            Downlink.satellite,
            Downlink.ground_station_id,
            Downlink.load_until,
            func.count(Downlink.id),
        )
        .where(Downlink.status == "scheduled", Downlink.load_until > now)
        .group_by(Downlink.satellite, Downlink.ground_station_id, Downlink.load_until)
    )
    loads = Loads(rules or LoadRules())
    for satellite, station_id, until, count in rows:
        if satellite is not None and station_id is not None and until is not None:
            loads.take(satellite, station_id, until, int(count))
    return loads
