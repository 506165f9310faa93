"""Relay of the event log to NATS JetStream, for when one process is no longer enough.

The database stays the source of truth. The *relay* reads the log in sequence order and
publishes each event to ``<prefix>.<type>`` with the header ``Nats-Msg-Id: <event id>``, then
moves its cursor. A relay that dies after publishing but before moving its cursor publishes the
same events again on restart, and JetStream's duplicate window drops them, so the stream holds
each event once. *Workers* in any number of processes share a durable pull consumer; each
message is applied in one database transaction together with the consumer's processed mark,
and acknowledged only after that commit. A worker killed before its ack gets the message
redelivered (to itself or another worker), and the processed mark makes the repeat a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from nats.js.errors import NotFoundError
from sqlalchemy import select

from satiot.core.clock import Clock
from satiot.core.db import Database
from satiot.core.events import Consumer
from satiot.core.models import ConsumerCursor, Event, ProcessedEvent

log = logging.getLogger(__name__)

RELAY_CURSOR = "bus-relay"


@dataclass(frozen=True)
class BusConfig:
    url: str
    stream: str = "satiot-events"
    prefix: str = "satiot.events"
    duplicate_window_s: float = 24 * 3600

    @property
    def subjects(self) -> str:
        return f"{self.prefix}.>"


def event_to_json(ev: Event) -> bytes:
    return json.dumps(
        {
            "id": str(ev.id),
            "seq": ev.seq,
            "type": ev.type,
            "tenant_id": str(ev.tenant_id) if ev.tenant_id else None,
            "subject_type": ev.subject_type,
            "subject_id": ev.subject_id,
            "payload": ev.payload,
            "occurred_at": ev.occurred_at.isoformat(),
        }
    ).encode()


def event_from_json(data: bytes) -> Event:
    """A detached Event rebuilt from a bus message (never added to a session)."""
    raw: dict[str, Any] = json.loads(data)
    return Event(
        id=uuid.UUID(raw["id"]),
        seq=int(raw["seq"]),
        type=raw["type"],
        tenant_id=uuid.UUID(raw["tenant_id"]) if raw["tenant_id"] else None,
        subject_type=raw["subject_type"],
        subject_id=raw["subject_id"],
        payload=raw["payload"],
        occurred_at=datetime.fromisoformat(raw["occurred_at"]),
    )


async def connect(config: BusConfig) -> tuple[NatsClient, JetStreamContext]:
    """Connect and make sure the stream exists with a duplicate window."""
    nc = await nats.connect(config.url, connect_timeout=5, max_reconnect_attempts=3)
    js = nc.jetstream()
    try:
        await js.stream_info(config.stream)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=config.stream,
                subjects=[config.subjects],
                duplicate_window=config.duplicate_window_s,
            )
        )
    return nc, js


def _read_after_cursor(db: Database, limit: int) -> tuple[int, list[Event]]:
    with db.read() as session:
        position = (
            session.scalar(
                select(ConsumerCursor.position).where(ConsumerCursor.name == RELAY_CURSOR)
            )
            or 0
        )
        batch = list(
            session.scalars(
                select(Event).where(Event.seq > position).order_by(Event.seq).limit(limit)
            )
        )
    return position, batch


def _move_cursor(db: Database, position: int, at: datetime) -> None:
    with db.write() as session:
        cursor = session.get(ConsumerCursor, RELAY_CURSOR, with_for_update=True)
        if cursor is None:
            session.add(ConsumerCursor(name=RELAY_CURSOR, position=position, updated_at=at))
        elif position > cursor.position:
            cursor.position = position
            cursor.updated_at = at


async def relay_once(
    db: Database, js: JetStreamContext, config: BusConfig, clock: Clock, *, batch_size: int = 500
) -> int:
    """Publish the next batch of the log; return how many events were published."""
    _, batch = await asyncio.to_thread(_read_after_cursor, db, batch_size)
    if not batch:
        return 0
    acks = [
        js.publish(
            f"{config.prefix}.{ev.type}",
            event_to_json(ev),
            stream=config.stream,
            headers={"Nats-Msg-Id": str(ev.id)},
        )
        for ev in batch
    ]
    await asyncio.gather(*acks)
    await asyncio.to_thread(_move_cursor, db, batch[-1].seq, clock.now())
    return len(batch)


async def run_relay(
    db: Database, config: BusConfig, clock: Clock, stop: asyncio.Event, *, idle_wait_s: float = 0.5
) -> None:
    nc, js = await connect(config)
    try:
        while not stop.is_set():
            if await relay_once(db, js, config, clock) == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle_wait_s)
    finally:
        await nc.close()


def apply_message(db: Database, consumer: Consumer, ev: Event, clock: Clock) -> bool:
    """Apply one bus event once: handler effects and processed mark commit together.

    Returns False when the event had already been applied (a redelivery) or is filtered out.
    """
    if consumer.types is not None and ev.type not in consumer.types:
        return False
    with db.write() as session:
        seen = session.scalar(
            select(ProcessedEvent.event_id).where(
                ProcessedEvent.consumer == consumer.name, ProcessedEvent.event_id == ev.id
            )
        )
        if seen is not None:
            return False
        consumer.handler(session, ev)
        session.add(
            ProcessedEvent(
                consumer=consumer.name, event_id=ev.id, event_seq=ev.seq, processed_at=clock.now()
            )
        )
    return True


async def work(
    db: Database,
    config: BusConfig,
    consumer: Consumer,
    clock: Clock,
    stop: asyncio.Event,
    *,
    fetch: int = 100,
    ack_wait_s: float = 30.0,
) -> int:
    """Pull and apply events until ``stop``; several processes may run this for one consumer.

    Returns how many events this worker applied.
    """
    nc, js = await connect(config)
    applied = 0
    try:
        sub = await js.pull_subscribe(
            config.subjects,
            durable=consumer.name,
            stream=config.stream,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait_s),
        )
        while not stop.is_set():
            try:
                msgs = await sub.fetch(fetch, timeout=0.5)
            except TimeoutError:
                continue
            for msg in msgs:
                ev = event_from_json(msg.data)
                if await asyncio.to_thread(apply_message, db, consumer, ev, clock):
                    applied += 1
                await msg.ack_sync()
    finally:
        await nc.close()
    return applied
