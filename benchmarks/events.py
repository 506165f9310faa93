"""Event log throughput: batched appends and consumption, against a commit-per-event anchor.

Runs on the embedded SQLite by default, or on the database in SATIOT_DATABASE_URL (use a
scratch database: the benchmark migrates it and adds rows). Prints events/s for
- append, batched: 500 events per transaction (how ingest writes them);
- append, anchor: one transaction per event (the naive way), same process, same database;
- consume: a consumer applying every event with its cursor and processed marks;
- fan-out: the ``network.delivery`` consumer owing accepted uplinks to two webhook
  integrations per tenant, set-based over each batch's log range, beside the same consumer
  taking one event at a time with processed marks (how the message-bus workers apply it);
and the ratios, which survive a noisy machine better than absolute figures.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import _args
from satiot.core import events, migrate
from satiot.core.clock import SystemClock
from satiot.core.db import Database
from satiot.core.ids import new_id
from satiot.core.models import Tenant
from satiot.network import delivery
from satiot.network.messages import UPLINK_ACCEPTED
from satiot.network.models import Integration


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


def _fan_out_world(db: Database, tenants: int) -> list[uuid.UUID]:
    now = datetime.now(UTC)
    ids = [new_id() for _ in range(tenants)]
    with db.write() as s:
        for tid in ids:
            s.add(
                Tenant(
                    id=tid,
                    slug=f"fan-{tid.hex[-10:]}",
                    name="Fan-out bench",
                    kind="customer",
                    status="active",
                    created_at=now,
                )
            )
        s.flush()
        for tid in ids:
            for n in range(2):
                s.add(
                    Integration(
                        tenant_id=tid,
                        kind="webhook",
                        name=f"hook {n}",
                        url=f"https://{n}.example.com/hook",
                        status="active",
                        max_attempts=12,
                        from_seq=0,
                        created_at=now,
                        updated_at=now,
                    )
                )
    return ids


def _uplinks(db: Database, tenants: list[uuid.UUID], n: int) -> tuple[int, int]:
    """Write ``n`` uplink events shaped like ingest's; return the log range they fill."""
    with db.read() as s:
        first = events.head(s)
    clock = SystemClock()
    for chunk in range(0, n, 500):
        with db.write() as s:
            for i in range(chunk, min(n, chunk + 500)):
                at = clock.now()
                stamp = at.isoformat().replace("+00:00", "Z")
                events.emit(
                    s,
                    UPLINK_ACCEPTED,
                    at=at,
                    tenant_id=tenants[i % len(tenants)],
                    payload={
                        "type": UPLINK_ACCEPTED,
                        "id": str(new_id()),
                        "dev_eui": f"70B3D57ED{i:07X}",
                        "f_cnt": i,
                        "f_port": 1,
                        "payload": "AAECAwQFBgcICQ==",
                        "received_at": stamp,
                        "receptions": [
                            {"ground_station": "gs-1", "satellite": "SAT-1", "received_at": stamp}
                        ],
                    },
                )
    with db.read() as s:
        return first, events.head(s)


def _fan_out(db: Database, consumer: events.Consumer, span: tuple[int, int]) -> float:
    with db.write() as s:
        events.rewind(s, consumer.name, span[0], forget=False, at=datetime.now(UTC))
    position = span[0]
    started = time.perf_counter()
    while position < span[1] and events.consume_batch(db, consumer, SystemClock()):
        with db.read() as s:
            position = next(c.position for c in events.status(s) if c.name == consumer.name)
    return (span[1] - span[0]) / (time.perf_counter() - started)


def main() -> None:
    parser = _args.parser(__doc__)
    parser.add_argument(
        "--events", type=_args.at_least(1), default=20_000, help="events in the batched run"
    )
    parser.add_argument(
        "--anchor-events",
        type=_args.at_least(1),
        default=2_000,
        help="events in the commit-per-event run",
    )
    args = parser.parse_args()
    print(_args.tune_runtime())
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
    tenants = _fan_out_world(db, 4)
    one_by_one = _uplinks(db, tenants, args.anchor_events)
    ranged = _uplinks(db, tenants, args.events)
    per_event = events.Consumer(
        "bench-fan-out-per-event", delivery.fan_out, delivery.DELIVERED_TYPES, batch_size=500
    )
    fan_slow = _fan_out(db, per_event, one_by_one)
    fan_fast = _fan_out(db, delivery.consumer(), ranged)
    print(f"backend               {db.engine.dialect.name}")
    print(f"append, 500 per tx    {batched:12,.0f} events/s")
    print(f"append, 1 per tx      {anchor:12,.0f} events/s   (anchor)")
    print(f"consume, batch 500    {consumed:12,.0f} events/s")
    print(f"ratio batched/anchor  {batched / anchor:12.1f}x")
    print(f"fan-out, by range     {fan_fast:12,.0f} events/s   (2 integrations each)")
    print(f"fan-out, per event    {fan_slow:12,.0f} events/s   (with processed marks)")
    print(f"ratio range/per event {fan_fast / fan_slow:12.1f}x")
    db.dispose()
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
