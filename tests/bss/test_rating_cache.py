"""A rater keeps the counters it wrote between batches, and reads them again whenever they
may have changed without it: another rater's batch, or its own batch that rolled back."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from satiot.bss import rating_sql
from satiot.bss.models import UsageCounter, UsageRecord
from satiot.bss.rating import Rater
from satiot.core import events
from tests.bss.billing_world import offering, price, shop, uplink

T = datetime(2026, 11, 10, 4, 0, tzinfo=UTC)


def _four_free(ctx):
    """Four messages a month included, then ¥0.01 each."""
    return offering(
        ctx,
        "Bundle 4",
        [
            price("recurring", 5_000_000, allowance_messages=4),
            price("per-message", 10_000),
        ],
    )


@pytest.fixture
def device(world):
    return shop(world).device(_four_free(world.ctx), T - timedelta(days=5))


@pytest.fixture
def reads(monkeypatch) -> list[int]:
    """How many counters each batch read from the database (batches that read none are left
    out)."""
    seen: list[int] = []
    real = rating_sql.counters

    def counting(conn, buckets):
        if buckets:
            seen.append(len(buckets))
        return real(conn, buckets)

    monkeypatch.setattr(rating_sql, "counters", counting)
    return seen


def _send(ctx, sub, n: int, minute: int) -> tuple[int, int]:
    """``n`` uplinks from ``sub``; the log range they fill."""
    with ctx.db.read() as r:
        first = events.head(r)
    for i in range(n):
        uplink(ctx, sub, 10, T + timedelta(minutes=minute + i))
    with ctx.db.read() as r:
        return first, events.head(r)


def _rate(ctx, rater: Rater, span: tuple[int, int]) -> None:
    with ctx.db.write() as w:
        rater.rate_range(w, *span)


def _charges(ctx) -> list[int]:
    with ctx.db.read() as r:
        return list(r.scalars(select(UsageRecord.charge_micros).order_by(UsageRecord.occurred_at)))


def _messages(ctx) -> int:
    with ctx.db.read() as r:
        return r.scalars(select(UsageCounter.messages)).one()


def test_a_rater_reads_a_counter_once_and_then_uses_what_it_wrote(world, device, reads):
    ctx, rater = world.ctx, Rater()
    for minute in (0, 10, 20):
        _rate(ctx, rater, _send(ctx, device, 2, minute))
    assert reads == [1]  # the device's counter, in the first batch only
    assert _charges(ctx) == [0, 0, 0, 0, 10_000, 10_000]
    assert _messages(ctx) == 6


def test_another_raters_batch_has_the_counters_read_again(world, device, reads):
    ctx, first, second = world.ctx, Rater(), Rater()
    _rate(ctx, first, _send(ctx, device, 2, 0))
    _rate(ctx, second, _send(ctx, device, 2, 10))  # uses up the allowance
    _rate(ctx, first, _send(ctx, device, 1, 20))  # must see the second rater's two messages
    assert reads == [1, 1, 1]
    assert _charges(ctx) == [0, 0, 0, 0, 10_000]
    assert _messages(ctx) == 5


def test_a_batch_that_rolled_back_is_not_remembered(world, device, reads):
    ctx, rater = world.ctx, Rater()
    span = _send(ctx, device, 3, 0)
    with pytest.raises(RuntimeError), ctx.db.write() as w:
        rater.rate_range(w, *span)
        raise RuntimeError("the transaction fails after rating")
    _rate(ctx, rater, span)  # the same messages again: the allowance was never used
    _rate(ctx, rater, _send(ctx, device, 2, 10))
    assert reads == [1, 1]  # read again after the rollback, then kept
    assert _charges(ctx) == [0, 0, 0, 0, 10_000]
    assert _messages(ctx) == 5


def test_raters_at_the_same_time_take_turns_and_count_every_message(world, device):
    """Two raters in two threads, each with its own transaction, on one device's counter:
    whichever goes second sees the first's counts (on PostgreSQL it waits for the mark's
    lock; SQLite has one writer at a time), so the allowance is used exactly once."""
    ctx = world.ctx
    spans = [_send(ctx, device, 3, 0), _send(ctx, device, 3, 10)]
    failures: list[BaseException] = []
    start = threading.Barrier(2)

    def run(span: tuple[int, int]) -> None:
        try:
            start.wait()
            _rate(ctx, Rater(), span)
        except BaseException as exc:  # reported below: a thread's exception is lost otherwise
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(span,)) for span in spans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures, failures
    assert _messages(ctx) == 6
    assert sorted(_charges(ctx)) == [0, 0, 0, 0, 10_000, 10_000]


def test_a_rater_that_kept_counters_waits_for_another_raters_open_batch(world, device):
    """The mark is read before the kept counters are trusted and, on PostgreSQL, locked: a
    rater cannot rate on kept counters while another rater's batch on them is still open."""
    ctx, kept, other = world.ctx, Rater(), Rater()
    _rate(ctx, kept, _send(ctx, device, 1, 0))  # ``kept`` now keeps the device's counter
    other_span, kept_span = _send(ctx, device, 3, 10), _send(ctx, device, 2, 20)
    rated, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def open_batch() -> None:
        try:
            with ctx.db.write() as w:
                other.rate_range(w, *other_span)
                rated.set()
                release.wait(30)  # commit only when told
        except BaseException as exc:
            failures.append(exc)

    def rate_kept() -> None:
        try:
            _rate(ctx, kept, kept_span)
        except BaseException as exc:
            failures.append(exc)

    holder = threading.Thread(target=open_batch)
    holder.start()
    assert rated.wait(30)
    waiter = threading.Thread(target=rate_kept)
    waiter.start()
    waiter.join(timeout=0.5)
    waiting = waiter.is_alive()
    release.set()
    holder.join(timeout=60)
    waiter.join(timeout=60)
    assert not failures, failures
    assert waiting  # it waited for the open batch instead of rating on what it kept
    assert _messages(ctx) == 6
    assert _charges(ctx) == [0, 0, 0, 0, 10_000, 10_000]


def test_a_batch_that_fails_before_writing_leaves_nothing_kept_that_it_counted(
    world, device, reads, monkeypatch
):
    """The rules change the kept counters as they run: if the batch then fails before its
    counters are written, the next batch reads them again instead of trusting them."""
    ctx, rater = world.ctx, Rater()
    _rate(ctx, rater, _send(ctx, device, 2, 0))
    span = _send(ctx, device, 3, 10)
    real = rating_sql.write_counters

    def fail(conn, rows):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(rating_sql, "write_counters", fail)
    with pytest.raises(RuntimeError):
        _rate(ctx, rater, span)
    monkeypatch.setattr(rating_sql, "write_counters", real)
    _rate(ctx, rater, span)
    assert reads == [1, 1]
    assert _charges(ctx) == [0, 0, 0, 0, 10_000]
    assert _messages(ctx) == 5
