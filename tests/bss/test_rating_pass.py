"""The pure parts of a rating pass: how a fetched event's size, time and reason are read, and
where the next threshold falls."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from satiot.bss.rating_pass import NEVER, _needed, pg_instant, sqlite_instant, stage
from satiot.bss.rating_rules import THRESHOLDS, share
from satiot.bss.rating_sql import _json_texts
from satiot.core.bulk import sqlite_timestamp

OCCURRED = "2026-11-01 00:00:00.000000"
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-3))])
INSTANTS = st.datetimes(
    min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30), timezones=ZONES
)


def _row(payload: object, when: object = None, **sub: object) -> tuple:
    """A fetched uplink (rating_sql.FETCHED) of tenant "t" with the given subscription."""
    return (
        1, "e", "t", "DEV", "uplink.accepted", payload, when, OCCURRED,
        sub.get("sub_id", "s"), sub.get("sub_tenant", "t"), "a", "o", None, 0,
        sub.get("activated_at", "2026-01-01 00:00:00.000000"), 0, 0, None, 0,
    )  # fmt: skip


@given(st.binary(max_size=300))
def test_the_size_is_the_decoded_length_of_the_base64_payload(data: bytes):
    [row] = stage([_row(base64.b64encode(data).decode())], sqlite_instant)
    assert row[5] == len(data)


@given(INSTANTS)
def test_a_time_with_any_zone_is_read_as_its_instant(when: datetime):
    for text in (when.isoformat(), when.isoformat().replace("+00:00", "Z")):
        assert sqlite_instant(text, OCCURRED) == sqlite_timestamp(when)
        assert pg_instant(text, datetime(2026, 1, 1, tzinfo=UTC)) == when


def test_a_time_that_is_not_an_instant_falls_back_to_the_event_time():
    fallback = datetime(2026, 1, 1, tzinfo=UTC)
    for text in (None, 7, "", "bad", "2026-11-03T04:05:06", "2026-13-03T04:05:06Z"):
        assert sqlite_instant(text, OCCURRED) == OCCURRED
        assert pg_instant(text, fallback) == fallback


def test_reasons_a_message_cannot_be_rated():
    rows = stage(
        [
            _row("AA==", sub_id=None),
            _row("AA==", sub_tenant="other"),
            _row("AA==", "2026-11-03T00:00:00Z", activated_at="2026-11-04 00:00:00.000000"),
            _row("AA==", "2026-11-05T00:00:00Z", activated_at="2026-11-04 00:00:00.000000"),
        ],
        sqlite_instant,
    )
    assert [r[15] for r in rows] == ["no-subscription", "tenant-mismatch", "not-active", None]
    assert rows[1][7:10] == (None, None, None)  # another tenant's subscription is not named


@given(
    st.integers(min_value=1, max_value=10**6),
    st.integers(min_value=0, max_value=10**7),
    st.sampled_from([0, *THRESHOLDS]),
)
def test_the_next_threshold_falls_where_the_share_reaches_it(limit: int, count: int, notified):
    need = _needed(notified, limit)
    following = [t for t in THRESHOLDS if t > notified]
    if not following:
        assert need == NEVER
        return
    assert (count >= need) == (share(count, 0, limit, 0) >= following[0])


def test_impossible_days_and_clock_times_are_not_instants():
    for text in ("2026-02-30T00:00:00Z", "2026-11-03T24:00:00Z", "2026-11-03T23:60:00Z"):
        assert sqlite_instant(text, OCCURRED) == OCCURRED
        assert pg_instant(text, datetime(2026, 1, 1, tzinfo=UTC)) == datetime(
            2026, 1, 1, tzinfo=UTC
        )


@given(st.lists(st.text()))
def test_bucket_names_reach_sqlite_as_the_same_json_strings(names: list[str]):
    """Counters are looked up by a JSON array of bucket names, written by hand when the names
    are plain; any text must come back as itself."""
    assert json.loads(_json_texts(names)) == names
    assert json.loads(_json_texts([f"sub:{n}" for n in names if n.isalnum()])) == [
        f"sub:{n}" for n in names if n.isalnum()
    ]
