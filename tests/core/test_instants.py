"""The texts of an instant, made once and remembered: always what formatting would give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from satiot.core import instants
from satiot.core.instants import iso_z, parse_utc, sqlite_text, texts

ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]
)
AWARE = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES
)


def formatted(when: datetime) -> tuple[str, str]:
    """The texts as formatting gives them, with no memory of earlier calls."""
    utc = when.astimezone(UTC)
    return (
        utc.isoformat().replace("+00:00", "Z"),
        utc.replace(tzinfo=None).isoformat(" ", "microseconds"),
    )


@pytest.fixture(autouse=True)
def _forget():
    instants._TEXTS.clear()
    yield
    instants._TEXTS.clear()


def test_the_delivered_text_has_a_z_and_a_fraction_only_when_there_is_one():
    assert iso_z(datetime(2026, 11, 3, 12, tzinfo=timezone(timedelta(hours=8)))) == (
        "2026-11-03T04:00:00Z"
    )
    assert iso_z(datetime(2026, 11, 3, 4, 0, 0, 5, tzinfo=UTC)) == "2026-11-03T04:00:00.000005Z"
    assert sqlite_text(datetime(2026, 11, 3, 4, tzinfo=UTC)) == "2026-11-03 04:00:00.000000"


def test_a_naive_datetime_has_no_stored_text():
    with pytest.raises(ValueError, match="naive"):
        texts(datetime(2026, 1, 1))


@given(AWARE)
def test_remembered_texts_are_the_formatted_ones(when: datetime):
    assert texts(when) == formatted(when)
    assert texts(when.astimezone(UTC)) == formatted(when)  # the same instant, remembered


@given(AWARE, st.sampled_from(["Z", "+00:00", "+08:00", "-05:30"]), st.booleans())
def test_a_parsed_text_yields_the_instant_and_its_formatted_texts(when, zone, fraction):
    """Whatever form a station posts, canonical or not, what the instant later formats to is
    what formatting gives: a text is taken as it is only when it is exactly that."""
    spec = "microseconds" if fraction else "seconds"
    posted = when.replace(tzinfo=None).isoformat("T", spec) + zone
    parsed = parse_utc(posted)
    expected = datetime.fromisoformat(posted).astimezone(UTC)
    assert parsed == expected and parsed.tzinfo is UTC
    assert texts(parsed) == formatted(expected)


@given(st.text(alphabet="0123456789-T:.Z+ W,", min_size=10, max_size=30))
def test_any_text_that_parses_leaves_only_true_texts_behind(posted: str):
    try:
        parsed = parse_utc(posted)
    except ValueError:
        return
    if parsed is not None:
        assert texts(parsed) == formatted(parsed)


def test_a_text_without_a_zone_is_none_and_a_bad_one_raises():
    assert parse_utc("2026-11-03T04:00:00") is None
    with pytest.raises(ValueError):
        parse_utc("yesterday")


def test_the_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(instants, "_MAX_REMEMBERED", 10)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(25):
        iso_z(start + timedelta(seconds=i))
        assert len(instants._TEXTS) <= 10
    assert iso_z(start) == "2026-01-01T00:00:00Z"
