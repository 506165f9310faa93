"""Values in SQLite's storage form, as the batch paths hand them to the driver."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from satiot.core.bulk import sqlite_datetime, sqlite_timestamp, sqlite_uuid

BEIJING = timezone(timedelta(hours=8))


def test_an_instant_is_naive_utc_text_with_microseconds():
    assert sqlite_timestamp(datetime(2026, 11, 3, 4, 5, 6, tzinfo=UTC)) == (
        "2026-11-03 04:05:06.000000"
    )
    assert sqlite_timestamp(datetime(2026, 11, 3, 12, 5, 6, 7, tzinfo=BEIJING)) == (
        "2026-11-03 04:05:06.000007"
    )


def test_equal_instants_in_other_zones_give_the_same_text_in_either_order():
    utc = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    local = utc.astimezone(BEIJING)
    assert sqlite_timestamp(local) == sqlite_timestamp(utc) == "2026-01-01 00:00:00.000000"


def test_a_naive_datetime_is_refused_every_time():
    for _ in range(2):
        with pytest.raises(ValueError, match="naive"):
            sqlite_timestamp(datetime(2026, 1, 1))


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, BEIJING, timezone(timedelta(hours=-5, minutes=-30))]),
    )
)
def test_the_text_reads_back_as_the_same_instant(when: datetime):
    text = sqlite_timestamp(when)
    assert datetime.fromisoformat(text).replace(tzinfo=UTC) == when
    back = sqlite_datetime(text)
    assert back == when and back.tzinfo is UTC  # as UTCDateTime returns it
    assert sqlite_datetime(None) is None


@given(st.uuids())
def test_a_stored_uuid_reads_back_as_the_same_uuid(value: uuid.UUID):
    back = sqlite_uuid(value.hex)
    assert back == value and hash(back) == hash(value) and str(back) == str(value)
    assert back.version == value.version
