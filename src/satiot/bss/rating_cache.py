"""What a rater keeps between batches: pool sizes and the counters it wrote.

Both are read again when the database says they may have changed; both are bounded, and
cleared when full (a rater that sees more than that many pools or counters reads them as if
it had kept none, as it did before it kept any).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence

from sqlalchemy import Connection

from satiot.bss import rating_sql
from satiot.bss.rating_pass import Bucket


class PoolSizes:
    """Devices per pool and month, kept across batches while no device joins or leaves a pool.

    Counting a pool reads an index entry per device: 0.1 s per batch for a pool of 200,000
    devices, the cost of the batch's whole rating again. Devices join and leave pools only by
    activation, termination or a change of offering, each of which writes an event
    (``rating_sql.MEMBERSHIP_EVENTS``) in its transaction; the counts are kept while the last
    such event is the one seen when they were made, and the pools of a batch are counted
    again otherwise. Rating itself moves no device between pools, so a batch that rolls back
    leaves the counts true.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._mark: int | None = None
        self._counts: dict[rating_sql.PoolMonth, int] = {}
        self._limit = limit

    def counts(self, conn: Connection, pools: Sequence[rating_sql.PoolMonth]) -> list[int]:
        mark = rating_sql.membership_mark(conn)
        if mark != self._mark or len(self._counts) > self._limit:
            self._counts.clear()
            self._mark = mark
        missing = [p for p in pools if p not in self._counts]
        if missing:
            self._counts.update(zip(missing, rating_sql.member_counts(conn, missing), strict=True))
        return [self._counts[p] for p in pools]


class Counters:
    """The usage counters this rater last wrote, kept while no one else has written any.

    In a batch of 5,000 messages from different devices, reading their 5,000 counters took a
    tenth of the batch, and they are the very values the rater wrote in its earlier batches.
    Every batch that writes counters also writes a new random mark (``rating_sql.write_mark``)
    in its transaction, and reads the mark first (locking it on PostgreSQL, so raters take
    turns). The buckets kept (``rating_pass.Bucket``, as the batch left them) are used only
    while the mark read is the one this rater wrote last: another rater's batch, or this
    rater's own batch that rolled back, leaves a different mark, and every counter is read
    again. A batch changes the kept buckets as it goes, so from :meth:`begin` until
    :meth:`wrote` they count as unknown: a batch that fails in between has them read again.
    Only rating writes counters.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._mark: int | None = None
        self._kept: dict[tuple[str, str], Bucket] = {}
        self._limit = limit

    def begin(self, conn: Connection) -> Mapping[tuple[str, str], Bucket]:
        """Read (and on PostgreSQL lock) the mark; the buckets that still hold what is stored
        (none if the mark moved)."""
        if rating_sql.read_mark(conn) != self._mark or len(self._kept) > self._limit:
            self._kept.clear()
        self._mark = None  # until :meth:`wrote`: the batch is changing the kept buckets
        return self._kept

    def wrote(self, conn: Connection, buckets: Mapping[tuple[str, str], Bucket]) -> None:
        """Keep the buckets the batch wrote and write a new mark with them."""
        mark = secrets.randbits(63)
        rating_sql.write_mark(conn, mark)
        self._kept.update(buckets)
        self._mark = mark
