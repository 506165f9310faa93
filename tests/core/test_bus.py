"""The NATS JetStream relay and workers, against the real local NATS server."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select

from satiot.core import audit, bus, events
from satiot.core.db import Database
from satiot.core.models import AuditEntry, ConsumerCursor

NATS_URL = "nats://127.0.0.1:4222"


@pytest.fixture
def config():
    tag = uuid.uuid4().hex[:10]
    cfg = bus.BusConfig(url=NATS_URL, stream=f"satiot-test-{tag}", prefix=f"satiot.test{tag}")
    yield cfg

    async def drop() -> None:
        nc, js = await bus.connect(cfg)
        await js.delete_stream(cfg.stream)
        await nc.close()

    asyncio.run(drop())


def _emit(db: Database, clock, n: int) -> list[uuid.UUID]:
    with db.write() as s:
        return [events.emit(s, "test.ping", at=clock.now(), payload={"i": i}) for i in range(n)]


def _recorder(name: str) -> events.Consumer:
    def handler(session, ev) -> None:
        audit.record(
            session,
            at=ev.occurred_at,
            actor=f"consumer:{name}",
            action="test.applied",
            target_type="event",
            target_id=ev.id,
        )

    return events.Consumer(name, handler)


def _applied(db: Database) -> dict[str, int]:
    with db.read() as s:
        rows = s.execute(
            select(AuditEntry.target_id, func.count())
            .where(AuditEntry.action == "test.applied")
            .group_by(AuditEntry.target_id)
        ).all()
    return {target: count for target, count in rows}


async def _relay_all(db: Database, cfg: bus.BusConfig, clock) -> int:
    nc, js = await bus.connect(cfg)
    total = 0
    try:
        while n := await bus.relay_once(db, js, cfg, clock, batch_size=40):
            total += n
        info = await js.stream_info(cfg.stream)
        return int(info.state.messages)
    finally:
        await nc.close()


def test_relay_publishes_each_event_once_even_when_it_repeats_itself(db, clock, config):
    _emit(db, clock, 120)
    assert asyncio.run(_relay_all(db, config, clock)) == 120
    # A relay that died before saving its cursor publishes everything again on restart:
    with db.write() as s:
        s.get(ConsumerCursor, bus.RELAY_CURSOR).position = 0
    assert asyncio.run(_relay_all(db, config, clock)) == 120


def test_two_workers_share_the_load_and_apply_each_event_exactly_once(db, clock, config):
    ids = _emit(db, clock, 150)
    asyncio.run(_relay_all(db, config, clock))
    consumer = _recorder("shared")

    async def run_workers() -> list[int]:
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(bus.work(db, config, consumer, clock, stop, fetch=10))
            for _ in range(2)
        ]
        for _ in range(200):
            if sum(_applied(db).values()) >= len(ids):
                break
            await asyncio.sleep(0.1)
        stop.set()
        return list(await asyncio.gather(*tasks))

    per_worker = asyncio.run(run_workers())
    applied = _applied(db)
    assert sorted(applied) == sorted(str(i) for i in ids)
    assert set(applied.values()) == {1}
    assert sum(per_worker) == len(ids)


def test_a_message_redelivered_after_a_crash_before_ack_is_not_applied_twice(db, clock, config):
    ids = _emit(db, clock, 20)
    asyncio.run(_relay_all(db, config, clock))
    consumer = _recorder("crashy")

    async def crash_then_recover() -> int:
        nc, js = await bus.connect(config)
        sub = await js.pull_subscribe(
            config.subjects,
            durable=consumer.name,
            stream=config.stream,
            config=bus.ConsumerConfig(ack_policy=bus.AckPolicy.EXPLICIT, ack_wait=1.0),
        )
        msgs = await sub.fetch(5, timeout=2)
        for msg in msgs:  # applied and committed, then the "process" dies before acking
            await asyncio.to_thread(
                bus.apply_message, db, consumer, bus.event_from_json(msg.data), clock
            )
        await nc.close()
        await asyncio.sleep(1.5)  # past ack_wait: JetStream redelivers the five
        stop = asyncio.Event()
        task = asyncio.create_task(bus.work(db, config, consumer, clock, stop, ack_wait_s=1.0))
        for _ in range(100):
            if len(_applied(db)) >= len(ids):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        stop.set()
        return await task

    applied_by_recovery = asyncio.run(crash_then_recover())
    applied = _applied(db)
    assert len(applied) == len(ids)
    assert set(applied.values()) == {1}
    assert applied_by_recovery == len(ids) - 5
