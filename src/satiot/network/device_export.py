"""The devices as a spreadsheet, and which of them have gone silent.

A terminal that stops reporting (a flat battery, a site out of coverage, a device taken
away) is what an operator's network staff and a customer's field team look for first, and
they work through the list in a spreadsheet, not page by page. :func:`silent` is the filter
(an active device with no uplink for some days) that the list, the console, the dashboard
and the export share; :func:`export_devices` streams every matching device as CSV in chunks
read by key (one statement a chunk, and one for the tenants it is the first to name), inside
one read transaction, so the file is one consistent picture however long the download takes.

The file is UTF-8 with a byte-order mark and CRLF line ends; times are China's; a name a
spreadsheet would run as a formula gets a leading ``'`` (``csv_text.safe_cell``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, Row, and_, func, or_, select
from sqlalchemy.orm import Session

from satiot.core.csv_text import csv_file, safe_cell
from satiot.core.days import business_day, china_time_text
from satiot.core.models import Tenant
from satiot.core.pagination import walk_rows
from satiot.network.devices import dev_addr_hex, priority_name
from satiot.network.models import Device

COLUMNS: Final = (
    "dev_eui",
    "name",
    "tenant",
    "status",
    "priority",
    "dev_addr",
    "last_seen_at",
    "silent_days",
    "f_cnt_up",
    "f_cnt_down",
    "lat",
    "lon",
    "created_at",
    "active_since",
)
#: Devices read per statement.
CHUNK: Final = 1_000
#: The longest silence a filter may ask about (ten years).
MAX_SILENT_DAYS: Final = 3650
_READ: Final = (
    Device.id,
    Device.tenant_id,
    Device.dev_eui,
    Device.name,
    Device.status,
    Device.priority,
    Device.dev_addr,
    Device.last_seen_at,
    Device.f_cnt_up,
    Device.f_cnt_down,
    Device.lat,
    Device.lon,
    Device.created_at,
    Device.active_since,
)


def silent(days: int, now: datetime) -> ColumnElement[bool]:
    """Active devices that have not reported for ``days`` days since they could: no uplink
    since then, and active since before then. A device in inventory or suspended is not
    expected to talk; one activated (or restored) yesterday has had one day to, whenever it
    was registered or last heard. Without a recorded activation the registration counts."""
    cutoff = now - timedelta(days=days)
    return and_(
        Device.status == "active",
        or_(Device.last_seen_at.is_(None), Device.last_seen_at < cutoff),
        func.coalesce(Device.active_since, Device.created_at) < cutoff,
    )


def export_devices(
    session: Session,
    where: Sequence[ColumnElement[bool]] = (),
    *,
    now: datetime,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The CSV file, header first, then a piece per chunk of devices (oldest first) that the
    session sees and ``where`` keeps; ``silent_days`` counts whole days up to ``now``;
    ``progress`` is told each chunk's count."""
    tenants: dict[uuid.UUID, str] = {}

    def named() -> Iterator[Sequence[Row[*tuple[Any, ...]]]]:
        for found in walk_rows(session, select(*_READ).where(*where), Device.id, chunk):
            new = {d.tenant_id for d in found} - tenants.keys()
            if new:
                slugs = select(Tenant.id, Tenant.slug).where(Tenant.id.in_(new))
                tenants.update((i, slug) for i, slug in session.execute(slugs))
            yield found

    return csv_file(COLUMNS, named(), lambda d: _row(d, tenants, now), progress)


def _row(d: Row[*tuple[Any, ...]], tenants: dict[uuid.UUID, str], now: datetime) -> list[str]:
    return [
        d.dev_eui,
        safe_cell(d.name),
        tenants.get(d.tenant_id, ""),
        d.status,
        priority_name(d.priority),
        dev_addr_hex(d.dev_addr),
        china_time_text(d.last_seen_at),
        str((now - d.last_seen_at).days) if d.last_seen_at else "never",
        "" if d.f_cnt_up is None else str(d.f_cnt_up),
        str(d.f_cnt_down),
        "" if d.lat is None else repr(d.lat),
        "" if d.lon is None else repr(d.lon),
        china_time_text(d.created_at),
        china_time_text(d.active_since),
    ]


def file_name(now: datetime) -> str:
    """What a download of the export is saved as: named for China's day."""
    return f"satiot-devices-{business_day(now):%Y%m%d}.csv"
