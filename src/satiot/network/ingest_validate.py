"""The reception record's validation, one item at a time, and the reject reasons.

A ground station's batch is validated item by item, never as one model: one bad record (a
missing field, a naive timestamp, bad base64) is rejected with its own index and reason and the
rest of the batch goes on. Only a malformed envelope (not an object, ``receptions`` not a list,
too many items) refuses the whole request.

Reason codes are stable; stations may act on them (``docs/network-server.md`` lists them).
"""

from __future__ import annotations

import binascii
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from satiot.core.errors import DomainError, InvalidInput
from satiot.core.instants import parse_utc

#: The most receptions one post may carry; a station with more sends several batches.
MAX_BATCH = 5000

#: Stable reject reasons: code -> what it means (the docs' table is built from the same text).
REASONS: dict[str, str] = {
    "invalid-reception": "The item is not an object, lacks a field, has an unknown field, or a "
    "field has the wrong type or range (e.g. a timestamp without a zone); detail names it.",
    "bad-base64": "phy_payload is not valid base64.",
    "malformed-frame": "The bytes are not a well-formed LoRaWAN 1.0.x frame (length, FOpts, "
    "major version).",
    "not-data-uplink": "A join, proprietary or downlink frame: only data uplinks are taken.",
    "unknown-dev-addr": "No device has this DevAddr.",
    "mic-failure": "The MIC verifies under no device that has this DevAddr.",
    "session-unavailable": "The device's session keys do not open under this server's KEK.",
    "device-inactive": "The frame is authentic but its device is not active.",
    "replayed-counter": "The device already sent a different frame with this counter.",
    "stale-counter": "The counter is further below the device's newest than the window "
    "(SATIOT_FCNT_WINDOW) and is not a copy of a known frame.",
    "counter-exhausted": "The device's 32-bit frame counter ran out; re-key the device.",
    "throttled": "The device reached its contract's monthly quota with throttling: one new "
    "message per interval is taken until the month ends; this one came too soon.",
}

FIELDS = frozenset(
    {"satellite", "received_at", "frequency_hz", "rssi_dbm", "snr_db", "doppler_hz", "phy_payload"}
)
_REQUIRED = FIELDS - {"doppler_hz"}
_MAX_FREQUENCY_HZ = 10**12


class BatchTooLarge(DomainError):
    slug = "payload-too-large"
    title = "Batch too large"
    status = 413


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    reason: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "reason": self.reason, "detail": self.detail}


class ReceptionIn(NamedTuple):
    """One validated record: a copy of a frame as one station got it from one satellite
    (immutable; a named tuple costs a third of what a frozen dataclass does to make)."""

    satellite: str
    received_at: datetime
    frequency_hz: int
    rssi_dbm: float
    snr_db: float
    doppler_hz: float | None
    phy: bytes


class _Invalid(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _number(item: dict[str, Any], name: str) -> float:
    value = item[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid("invalid-reception", f"{name}: must be a number")
    if not math.isfinite(value):
        raise _Invalid("invalid-reception", f"{name}: must be finite")
    return float(value)


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise _Invalid("invalid-reception", "received_at: must be an ISO-8601 string")
    try:
        when = parse_utc(value)
    except ValueError:
        raise _Invalid("invalid-reception", "received_at: not an ISO-8601 timestamp") from None
    if when is None:
        raise _Invalid("invalid-reception", "received_at: needs a time zone (e.g. 'Z')")
    return when


def _reception(item: Any) -> ReceptionIn:
    if not isinstance(item, dict):
        raise _Invalid("invalid-reception", "a reception must be a JSON object")
    keys = item.keys()
    if keys != FIELDS and keys != _REQUIRED:
        missing = sorted(_REQUIRED - keys)
        if missing:
            raise _Invalid("invalid-reception", f"{missing[0]}: field required")
        extra = sorted(str(k) for k in keys - FIELDS)
        raise _Invalid("invalid-reception", f"{extra[0]}: unknown field")
    satellite = item["satellite"]
    if not isinstance(satellite, str) or not 0 < len(satellite) <= 64:
        raise _Invalid("invalid-reception", "satellite: a name of 1-64 characters")
    if not satellite.isprintable():
        raise _Invalid("invalid-reception", "satellite: must be printable")
    frequency = item["frequency_hz"]
    if isinstance(frequency, bool) or not isinstance(frequency, int):
        raise _Invalid("invalid-reception", "frequency_hz: must be an integer")
    if not 0 < frequency < _MAX_FREQUENCY_HZ:
        raise _Invalid("invalid-reception", "frequency_hz: out of range")
    doppler = item.get("doppler_hz")
    received_at = _timestamp(item["received_at"])
    rssi, snr = _number(item, "rssi_dbm"), _number(item, "snr_db")
    doppler_hz = None if doppler is None else _number(item, "doppler_hz")
    encoded = item["phy_payload"]
    if not isinstance(encoded, str):
        raise _Invalid("invalid-reception", "phy_payload: must be a base64 string")
    try:
        # What base64.b64decode(validate=True) accepts, without its Python-level checks
        # (strict mode refuses characters outside the alphabet and misplaced padding).
        phy = binascii.a2b_base64(encoded, strict_mode=True)
    except (binascii.Error, ValueError):
        raise _Invalid("bad-base64", "phy_payload: not valid base64") from None
    return ReceptionIn(satellite, received_at, frequency, rssi, snr, doppler_hz, phy)


def validate_item(index: int, item: Any) -> ReceptionIn | Rejection:
    """The record, or why item ``index`` is rejected."""
    try:
        return _reception(item)
    except _Invalid as exc:
        return Rejection(index, exc.reason, exc.detail)


def batch_items(body: Any) -> tuple[list[Any], str | None]:
    """The receptions of a posted body and its optional ``batch_id``; refuses a malformed
    envelope as a whole (422), or one with more than :data:`MAX_BATCH` items (413)."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object with a 'receptions' list")
    extra = sorted(str(k) for k in body if k not in ("receptions", "batch_id"))
    if extra:
        raise InvalidInput(f"{extra[0]}: unknown field", field=extra[0])
    items = body.get("receptions")
    if not isinstance(items, list):
        raise InvalidInput("receptions: must be a list", field="receptions")
    if len(items) > MAX_BATCH:
        raise BatchTooLarge(
            f"{len(items)} receptions in one batch; send at most {MAX_BATCH} per post",
            max_items=MAX_BATCH,
        )
    batch_id = body.get("batch_id")
    if batch_id is not None and (not isinstance(batch_id, str) or len(batch_id) > 200):
        raise InvalidInput("batch_id: a string of at most 200 characters", field="batch_id")
    return items, batch_id
