"""The reception record: what a ground station reports for every frame it downloads.

It is the unit of the ground-station protocol (``POST /api/v1/ground-stations/{id}/receptions``
and MQTT ``satiot/gs/{id}/up``). The digital twin emits exactly these records, so a real
ground station and the twin are indistinguishable to the network server.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Reception:
    satellite: str
    received_at: datetime  # when the ground station received the frame from the satellite
    frequency_hz: int  # uplink carrier the satellite heard the terminal on
    rssi_dbm: float
    snr_db: float
    doppler_hz: float | None
    phy_payload: bytes

    def to_json(self) -> dict[str, Any]:
        """The record as a ground station posts it."""
        return {
            "satellite": self.satellite,
            "received_at": _utc_z(self.received_at),
            "frequency_hz": self.frequency_hz,
            "rssi_dbm": round(self.rssi_dbm, 1),
            "snr_db": round(self.snr_db, 1),
            "doppler_hz": None if self.doppler_hz is None else round(self.doppler_hz, 1),
            "phy_payload": base64.b64encode(self.phy_payload).decode(),
        }


def _utc_z(when: datetime) -> str:
    """ISO-8601 in UTC with a ``Z``, whatever zone the instant was given in."""
    if when.tzinfo is None:
        raise ValueError("received_at must carry a time zone")
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
