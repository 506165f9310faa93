"""The shapes customers receive, in one place.

An accepted uplink is described once, at acceptance, by :func:`uplink_message`; that dict is
the ``uplink.accepted`` event's payload, the webhook body, the MQTT message and an item of the
pull API alike, so a message's ``id`` and content are the same on every channel and every
retry. Downlink status changes are described by :func:`downlink_message` the same way.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from satiot.core.instants import iso_z

UPLINK_ACCEPTED = "uplink.accepted"
#: Event type of each downlink status change: ``downlink.<status>``.
DOWNLINK_EVENT_PREFIX = "downlink."
#: Business notices a tenant's integrations receive besides its messages: usage thresholds,
#: its subscriptions suspended, resumed or ended, a bill sent, a prepaid balance running low.
#: The BSS emits them; they are named here so that delivery, which belongs to the network,
#: need not import the BSS.
CUSTOMER_NOTICES = frozenset(
    {
        "usage.threshold",
        "subscription.suspended",
        "subscription.resumed",
        "subscription.terminated",
        "bill.sent",
        "bill.credited",
        "bill.refunded",
        "bill.overdue",
        "billing-account.balance-low",
    }
)


def iso(when: datetime | None) -> str | None:
    """UTC ISO-8601 with a ``Z`` (what every delivered timestamp looks like; see
    :mod:`satiot.core.instants`). A naive datetime is taken as local time, as
    ``datetime.astimezone`` takes it."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.astimezone(UTC)
    return iso_z(when)


def reception_json(
    *,
    ground_station_id: uuid.UUID | str,
    ground_station: str,
    satellite: str,
    received_at: datetime,
    frequency_hz: int,
    rssi_dbm: float,
    snr_db: float,
    doppler_hz: float | None,
) -> dict[str, Any]:
    return {
        "ground_station_id": str(ground_station_id),
        "ground_station": ground_station,
        "satellite": satellite,
        "received_at": iso(received_at),
        "frequency_hz": frequency_hz,
        "rssi_dbm": rssi_dbm,
        "snr_db": snr_db,
        "doppler_hz": doppler_hz,
    }


def uplink_message(
    *,
    id: uuid.UUID,
    tenant_id: uuid.UUID | str,
    dev_eui: str,
    f_cnt: int,
    f_port: int | None,
    payload: bytes,
    confirmed: bool,
    ack: bool,
    received_at: datetime,
    accepted_at: datetime,
    receptions: Iterable[dict[str, Any]],
) -> dict[str, Any]:
    """One accepted uplink as every channel delivers it."""
    return {
        "type": UPLINK_ACCEPTED,
        "id": str(id),
        "tenant_id": str(tenant_id),
        "dev_eui": dev_eui,
        "f_cnt": f_cnt,
        "f_port": f_port,
        "payload": base64.b64encode(payload).decode(),
        "confirmed": confirmed,
        "ack": ack,
        "received_at": iso(received_at),
        "accepted_at": iso(accepted_at),
        "receptions": _in_time_order(list(receptions)),
    }


def _in_time_order(receptions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(receptions) > 1:
        receptions.sort(key=lambda r: (r["received_at"], r["ground_station"]))
    return receptions


@dataclass(frozen=True)
class AcceptedUplink:
    """What the rest of the network server learns when ingest accepts a new uplink (the
    downlink queue uses it: Class A downlinks ride uplinks, and an ACK bit settles one)."""

    uplink_id: uuid.UUID
    device_id: uuid.UUID
    tenant_id: uuid.UUID
    dev_eui: str
    f_cnt: int
    ack: bool
    confirmed: bool
    received_at: datetime
    satellites: tuple[str, ...]
