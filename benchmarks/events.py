"""Event log throughput: batched appends and consumption, against a commit-per-event anchor.

Runs on the embedded SQLite by default, or on the database in SATIOT_DATABASE_URL (use a
scratch database: the benchmark migrates it and adds rows). Prints events/s for
- append, batched: 500 events per transaction (how ingest writes them);
- append, anchor: one transaction per event (the naive way), same process, same database;
- consume: a consumer applying every event with its cursor and processed marks;
and the ratio batched/anchor, which survives a noisy machine better than absolute figures.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from satiot.core import events, migrate
from satiot.core.clock import SystemClock
from satiot.core.db import Database


def _append(db: Database, n: int, per_tx: int) -> float:
    clock = SystemClock()
    started = time.perf_counter()
    done = 0
    while done < n:
        with db.write() as s:
            for i in range(min(per_tx, n - done)):
                events.emit(s, "bench.tick", at=clock.now(), payload={"i": done + i})
        done += min(per_tx, n - done)
    return n / (time.perf_counter() - started)


def _consume(db: Database, expected: int) -> float:
    seen = 0

    def handler(_session: object, _event: object) -> None:
        nonlocal seen
        seen += 1

    consumer = events.Consumer(f"bench-{os.getpid()}-{time.time_ns()}", handler, batch_size=500)
    started = time.perf_counter()
    while events.consume_batch(db, consumer, SystemClock()):
        pass
    elapsed = time.perf_counter() - started
    assert seen >= expected, (seen, expected)
    return seen / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events in the batched run")
    parser.add_argument(
        "--anchor-events", type=int, default=2_000, help="events in the commit-per-event run"
    )
    args = parser.parse_args()
    url = os.environ.get("SATIOT_DATABASE_URL")
    tmp = None
    if not url:
        tmp = tempfile.TemporaryDirectory()
        url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    db = Database.connect(url)
    migrate.upgrade(db.engine)
    batched = _append(db, args.events, per_tx=500)
    anchor = _append(db, args.anchor_events, per_tx=1)
    consumed = _consume(db, args.events + args.anchor_events)
    print(f"backend               {db.engine.dialect.name}")
    print(f"append, 500 per tx    {batched:12,.0f} events/s")
    print(f"append, 1 per tx      {anchor:12,.0f} events/s   (anchor)")
    print(f"consume, batch 500    {consumed:12,.0f} events/s")
    print(f"ratio batched/anchor  {batched / anchor:12.1f}x")
    db.dispose()
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
