"""The business calendar: billing months in the operator's time zone (Asia/Shanghai).

A period is a month named ``YYYY-MM`` and runs from local midnight of its first day to local
midnight of the next month's first day. Usage belongs to the period of its time of use, and a
bill covers one period, so a message sent at 23:30 UTC on 31 October is November's usage in
Beijing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from satiot.core.errors import InvalidInput

DEFAULT_TZ = "Asia/Shanghai"
#: A business month as text (ASCII digits only: ``\d`` would take other scripts' digits too);
#: the API's query and body patterns use it as it is.
PERIOD_PATTERN = r"^([0-9]{4})-(0[1-9]|1[0-2])$"
_PERIOD = re.compile(PERIOD_PATTERN)


@lru_cache(maxsize=8)
def zone(name: str = DEFAULT_TZ) -> ZoneInfo:
    return ZoneInfo(name)


#: Years a period may name: its bounds, and the next month's, must be real dates in every zone.
MIN_YEAR, MAX_YEAR = 1970, 9998


def check_period(period: str) -> str:
    """``period`` if it is a well-formed ``YYYY-MM``; a clear 422 otherwise."""
    if not _PERIOD.match(period):
        raise InvalidInput("period must look like YYYY-MM, e.g. 2026-11", field="period")
    if not MIN_YEAR <= int(period[:4]) <= MAX_YEAR:
        raise InvalidInput(f"period must be in the years {MIN_YEAR}-{MAX_YEAR}", field="period")
    return period


@dataclass(frozen=True)
class Period:
    """One billing month and its bounds (aware UTC instants and local dates)."""

    name: str
    start: datetime  # first instant, UTC
    end: datetime  # first instant of the next period, UTC
    first_day: date
    days: int
    tz: str = DEFAULT_TZ

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=self.days - 1)

    def day_starts(self) -> list[datetime]:
        """UTC instant at which each local day of the period begins (``days + 1`` values)."""
        local = zone(self.tz)
        return [
            datetime.combine(
                self.first_day + timedelta(days=i), datetime.min.time(), local
            ).astimezone(UTC)
            for i in range(self.days + 1)
        ]


@lru_cache(maxsize=256)
def period_bounds(period: str, tz: str = DEFAULT_TZ) -> Period:
    """The bounds of ``period`` in the business time zone ``tz``."""
    check_period(period)
    year, month = int(period[:4]), int(period[5:])
    first = date(year, month, 1)
    nxt = date(year + month // 12, month % 12 + 1, 1)
    local = zone(tz)
    start = datetime.combine(first, datetime.min.time(), local).astimezone(UTC)
    end = datetime.combine(nxt, datetime.min.time(), local).astimezone(UTC)
    return Period(period, start, end, first, (nxt - first).days, tz)


def period_of(when: datetime, tz: str = DEFAULT_TZ) -> str:
    """The period ``when`` falls in."""
    return when.astimezone(zone(tz)).strftime("%Y-%m")


def local_date(when: datetime, tz: str = DEFAULT_TZ) -> date:
    return when.astimezone(zone(tz)).date()


def next_period(period: str) -> str:
    year, month = int(period[:4]), int(period[5:])
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


class PeriodFinder:
    """``period_of`` for a stream of times that mostly fall in one month (no zone maths)."""

    def __init__(self, tz: str = DEFAULT_TZ) -> None:
        self.tz = tz
        self._current: Period | None = None

    def __call__(self, when: datetime) -> str:
        cur = self._current
        if cur is not None and cur.start <= when < cur.end:
            return cur.name
        name = period_of(when, self.tz)
        self._current = period_bounds(name, self.tz)
        return name
