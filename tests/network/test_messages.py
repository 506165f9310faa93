"""The delivered message shape's timestamps and reception order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from satiot.network.messages import iso, reception_json, uplink_message

BEIJING = timezone(timedelta(hours=8))


def test_every_timestamp_is_utc_with_a_z_whatever_zone_it_came_in():
    utc = datetime(2026, 11, 3, 4, 5, 6, 789, tzinfo=UTC)
    assert iso(utc) == "2026-11-03T04:05:06.000789Z"
    assert iso(utc.astimezone(BEIJING)) == iso(utc)  # the same instant, asked second
    assert iso(datetime(2026, 11, 3, 12, tzinfo=BEIJING)) == "2026-11-03T04:00:00Z"
    assert iso(None) is None


def _reception(station: str, at: datetime) -> dict:
    return reception_json(
        ground_station_id=uuid.UUID(int=1),
        ground_station=station,
        satellite="SAT-1",
        received_at=at,
        frequency_hz=400_000_000,
        rssi_dbm=-120.0,
        snr_db=-5.0,
        doppler_hz=None,
    )


def test_receptions_are_listed_in_time_then_station_order():
    t = datetime(2026, 11, 3, tzinfo=UTC)
    copies = [_reception("kashi", t + timedelta(hours=1)), _reception("sanya", t),
              _reception("beijing", t)]  # fmt: skip
    message = uplink_message(
        id=uuid.UUID(int=2),
        tenant_id=uuid.UUID(int=3),
        dev_eui="70b3d57ed0000001",
        f_cnt=7,
        f_port=1,
        payload=b"\x01",
        confirmed=False,
        ack=False,
        received_at=t,
        accepted_at=t + timedelta(hours=2),
        receptions=copies,
    )
    assert [r["ground_station"] for r in message["receptions"]] == ["beijing", "sanya", "kashi"]
    assert message["receptions"][0]["ground_station_id"] == str(uuid.UUID(int=1))
    assert (message["received_at"], message["accepted_at"]) == (
        "2026-11-03T00:00:00Z",
        "2026-11-03T02:00:00Z",
    )
