"""Reception records are validated one by one; only a malformed envelope refuses a batch."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satiot.core.errors import InvalidInput
from satiot.network.ingest_validate import (
    MAX_BATCH,
    REASONS,
    BatchTooLarge,
    ReceptionIn,
    Rejection,
    batch_items,
    validate_item,
)

GOOD = {
    "satellite": "SAT-1",
    "received_at": "2026-11-25T16:00:00.250+08:00",
    "frequency_hz": 400_100_000,
    "rssi_dbm": -128,
    "snr_db": 2.5,
    "doppler_hz": None,
    "phy_payload": base64.b64encode(b"\x40\x01\x02\x03\x04\x00\x01\x00\x01\x02\x03\x04").decode(),
}


def test_a_good_record_is_read_with_its_time_in_utc():
    got = validate_item(0, GOOD)
    assert isinstance(got, ReceptionIn)
    assert got.received_at == datetime(2026, 11, 25, 8, 0, 0, 250_000, tzinfo=UTC)
    assert got.received_at.tzinfo is UTC
    assert (got.rssi_dbm, got.snr_db, got.doppler_hz) == (-128.0, 2.5, None)
    assert got.phy == base64.b64decode(GOOD["phy_payload"])


def test_doppler_may_be_left_out():
    item = {k: v for k, v in GOOD.items() if k != "doppler_hz"}
    got = validate_item(0, item)
    assert isinstance(got, ReceptionIn) and got.doppler_hz is None


@pytest.mark.parametrize(
    ("change", "reason", "starts"),
    [
        ({"satellite": ""}, "invalid-reception", "satellite"),
        ({"satellite": "x" * 65}, "invalid-reception", "satellite"),
        ({"satellite": "bad\x00name"}, "invalid-reception", "satellite"),
        ({"satellite": 7}, "invalid-reception", "satellite"),
        ({"received_at": "2026-11-25T08:00:00"}, "invalid-reception", "received_at"),
        ({"received_at": "soon"}, "invalid-reception", "received_at"),
        ({"received_at": 1764057600}, "invalid-reception", "received_at"),
        ({"frequency_hz": 400.5}, "invalid-reception", "frequency_hz"),
        ({"frequency_hz": -1}, "invalid-reception", "frequency_hz"),
        ({"frequency_hz": False}, "invalid-reception", "frequency_hz"),
        ({"rssi_dbm": "loud"}, "invalid-reception", "rssi_dbm"),
        ({"snr_db": float("inf")}, "invalid-reception", "snr_db"),
        ({"doppler_hz": "fast"}, "invalid-reception", "doppler_hz"),
        ({"phy_payload": 12}, "invalid-reception", "phy_payload"),
        ({"phy_payload": "not base64!"}, "bad-base64", "phy_payload"),
        ({"phy_payload": "QUJ"}, "bad-base64", "phy_payload"),
        ({"extra": 1}, "invalid-reception", "extra"),
    ],
)
def test_each_bad_field_is_named(change, reason, starts):
    got = validate_item(3, GOOD | change)
    assert isinstance(got, Rejection)
    assert (got.index, got.reason) == (3, reason)
    assert got.detail.startswith(starts), got.detail
    assert got.reason in REASONS


@pytest.mark.parametrize("field", ["satellite", "received_at", "phy_payload", "snr_db"])
def test_a_missing_field_is_named(field):
    got = validate_item(1, {k: v for k, v in GOOD.items() if k != field})
    assert isinstance(got, Rejection) and got.detail == f"{field}: field required"


@pytest.mark.parametrize("item", [None, [], "text", 5])
def test_a_record_that_is_not_an_object_is_rejected(item):
    got = validate_item(0, item)
    assert isinstance(got, Rejection) and got.reason == "invalid-reception"


def test_the_envelope_gives_its_items_and_batch_id():
    assert batch_items({"receptions": [1, 2]}) == ([1, 2], None)
    assert batch_items({"receptions": [], "batch_id": "b-7"}) == ([], "b-7")


@pytest.mark.parametrize(
    "body",
    [
        [],
        "receptions",
        {},
        {"receptions": {"a": 1}},
        {"receptions": [], "other": 1},
        {"receptions": [], "batch_id": 5},
    ],
)
def test_a_malformed_envelope_refuses_the_whole_batch(body):
    with pytest.raises(InvalidInput):
        batch_items(body)


def test_a_batch_over_the_limit_is_too_large():
    with pytest.raises(BatchTooLarge) as caught:
        batch_items({"receptions": [{}] * (MAX_BATCH + 1)})
    assert caught.value.status == 413
    assert len(batch_items({"receptions": [{}] * MAX_BATCH})[0]) == MAX_BATCH


@settings(max_examples=2000)
@given(st.text(alphabet="AQgw+/=\n é\x00-_", max_size=16))
def test_phy_payload_is_read_as_strict_base64(encoded: str):
    """Exactly what the standard library's validating decoder takes is taken, as it decodes it
    (padding, characters outside the alphabet, non-ASCII text)."""
    got = validate_item(0, {**GOOD, "phy_payload": encoded})
    try:
        expected = base64.b64decode(encoded, validate=True)
    except ValueError:  # binascii.Error is one
        assert isinstance(got, Rejection) and got.reason == "bad-base64"
    else:
        assert isinstance(got, ReceptionIn) and got.phy == expected
