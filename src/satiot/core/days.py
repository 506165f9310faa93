"""The calendar day in China, where the regulator dates licences and contracts.

An instant is stored in UTC, but a day that a person reads (a birth date, a licence's issue
date, a contract's year) is China's: by UTC, anything done before 08:00 in Beijing would fall
on the day before. China keeps UTC+8 all year, so a fixed offset is exact.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Final

CHINA: Final = timezone(timedelta(hours=8), "UTC+8")


def business_day(at: datetime) -> date:
    """The calendar day in China at ``at``."""
    return at.astimezone(CHINA).date()


def china_time_text(at: datetime | None) -> str:
    """An instant as a file people read gives it: China's time with its offset, to the
    second (empty for none)."""
    return at.astimezone(CHINA).isoformat(timespec="seconds") if at else ""
