"""The one clock: a manual clock for tests and the twin, and UTC timestamps in storage."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from satiot.core.clock import ManualClock, SystemClock, as_utc
from satiot.core.models import Tenant

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BEIJING = timezone(timedelta(hours=8))


def test_manual_clock_stands_still_until_moved():
    c = ManualClock(T)
    assert c.now() == T and c.now() == T
    assert c.advance(timedelta(minutes=5)) == T + timedelta(minutes=5)
    assert c.advance(1.5) == T + timedelta(minutes=5, seconds=1.5)
    assert c.advance(0) == c.now()
    c.set(datetime(2027, 1, 1, 8, 0, tzinfo=BEIJING))
    assert c.now() == datetime(2027, 1, 1, 0, 0, tzinfo=UTC)
    assert c.now().utcoffset() == timedelta(0)


def test_manual_clock_default_start_is_aware_utc():
    now = ManualClock().now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)


def test_manual_clock_normalises_start_to_utc():
    assert ManualClock(T.astimezone(BEIJING)).now().tzinfo == UTC


def test_manual_clock_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="aware"):
        ManualClock(datetime(2026, 1, 1))
    c = ManualClock(T)
    with pytest.raises(ValueError, match="aware"):
        c.set(datetime(2026, 1, 1))
    assert c.now() == T


@pytest.mark.parametrize("step", [-1, -0.001, timedelta(microseconds=-1)])
def test_manual_clock_does_not_run_backwards(step):
    c = ManualClock(T)
    with pytest.raises(ValueError, match="backwards"):
        c.advance(step)
    assert c.now() == T


def test_manual_clock_is_thread_safe():
    c = ManualClock(T)

    def tick():
        for _ in range(1000):
            c.advance(timedelta(microseconds=1))

    threads = [threading.Thread(target=tick) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.now() == T + timedelta(microseconds=8000)


def test_system_clock_is_aware_utc_and_current():
    before = datetime.now(UTC)
    now = SystemClock().now()
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= datetime.now(UTC)


def test_as_utc():
    assert as_utc(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=UTC)
    assert as_utc(datetime(2026, 1, 1, 8, tzinfo=BEIJING)) == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 6, 30, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 1, 1, 8, 0, 0, 123456, tzinfo=BEIJING),
        datetime(1999, 12, 31, 16, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    ],
)
def test_utc_datetime_round_trips_aware_utc(db, when):
    with db.write() as s:
        s.add(Tenant(slug="t", name="t", kind="customer", status="active", created_at=when))
    with db.read() as s:
        got = s.scalar(select(Tenant.created_at))
        # Comparisons in SQL agree with Python's.
        assert s.scalar(select(Tenant.slug).where(Tenant.created_at == when)) == "t"
        assert (
            s.scalar(
                select(Tenant.slug).where(Tenant.created_at > when - timedelta(microseconds=1))
            )
            == "t"
        )
    assert got == when
    assert got.tzinfo is not None and got.utcoffset() == timedelta(0)
    assert got.replace(tzinfo=None) == when.astimezone(UTC).replace(tzinfo=None)


def test_utc_datetime_refuses_naive(db):
    with pytest.raises(Exception, match="naive"), db.write() as s:
        s.add(
            Tenant(
                slug="t",
                name="t",
                kind="customer",
                status="active",
                created_at=datetime(2026, 1, 1),
            )
        )
    with db.read() as s:
        assert s.scalar(select(Tenant)) is None
