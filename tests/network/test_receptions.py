"""The reception record a ground station posts, exactly."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from satiot.network.receptions import Reception

KEYS = {
    "satellite",
    "received_at",
    "frequency_hz",
    "rssi_dbm",
    "snr_db",
    "doppler_hz",
    "phy_payload",
}
FRAME = bytes.fromhex("40F17DBE4900020001954378762B11FF0D")


def _rec(**over: object) -> Reception:
    fields: dict[str, object] = {
        "satellite": "TQ-A-01-01",
        "received_at": datetime(2026, 11, 25, 3, 4, 5, 250_000, tzinfo=UTC),
        "frequency_hz": 400_125_000,
        "rssi_dbm": -131.26,
        "snr_db": -8.04,
        "doppler_hz": 4321.06,
        "phy_payload": FRAME,
    }
    fields.update(over)
    return Reception(**fields)  # type: ignore[arg-type]


def test_record_has_exactly_the_documented_keys_and_types() -> None:
    record = _rec().to_json()
    assert set(record) == KEYS
    assert record == {
        "satellite": "TQ-A-01-01",
        "received_at": "2026-11-25T03:04:05.250000Z",
        "frequency_hz": 400_125_000,
        "rssi_dbm": -131.3,
        "snr_db": -8.0,
        "doppler_hz": 4321.1,
        "phy_payload": "QPF9vkkAAgABlUN4disR/w0=",
    }
    assert type(record["frequency_hz"]) is int
    assert all(type(record[k]) is float for k in ("rssi_dbm", "snr_db", "doppler_hz"))
    assert json.loads(json.dumps(record)) == record


def test_unknown_doppler_is_null() -> None:
    assert _rec(doppler_hz=None).to_json()["doppler_hz"] is None


def test_received_at_is_always_utc_with_z() -> None:
    beijing = timezone(timedelta(hours=8))
    when = datetime(2026, 11, 25, 11, 4, 5, tzinfo=beijing)
    assert _rec(received_at=when).to_json()["received_at"] == "2026-11-25T03:04:05Z"


def test_naive_received_at_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        _rec(received_at=datetime(2026, 11, 25, 3, 4, 5)).to_json()


@given(st.binary(min_size=0, max_size=255))
def test_phy_payload_base64_round_trip(payload: bytes) -> None:
    encoded = _rec(phy_payload=payload).to_json()["phy_payload"]
    assert base64.b64decode(encoded, validate=True) == payload
