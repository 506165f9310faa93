"""Test support for delivery: a real HTTP receiver, event emitters and a dispatcher driver.

The receiver is a threaded ``http.server`` on 127.0.0.1:<ephemeral>: it records every request
(headers, raw body, the status it answered) and can be told to fail (all, or by a predicate on
the body) or to hang for a while, so the dispatcher is tested against real sockets, timeouts
and connection errors rather than mocks.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import select

from satiot.core import events
from satiot.core.events import consume_batch
from satiot.network import delivery
from satiot.network.delivery_queue import RetryPolicy
from satiot.network.integrations import create_integration
from satiot.network.messages import uplink_message
from satiot.network.models import Delivery
from satiot.network.webhooks import Dispatcher, DispatchStats

SECRET = "s3cret-for-tests-0123456789"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook endpoint. ``status`` answers every request; ``fail_if(body)`` fails chosen
    ones with 500; ``delay_s`` holds each answer back (until ``release`` is set)."""

    status: int = 200
    delay_s: float = 0.0
    fail_if: Callable[[dict[str, Any]], bool] | None = None
    requests: list[Received] = field(default_factory=list)
    in_flight: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.in_flight += 1
                try:
                    if receiver.delay_s:
                        receiver.release.wait(receiver.delay_s)
                    status = receiver.status
                    if receiver.fail_if is not None and receiver.fail_if(json.loads(raw)):
                        status = 500
                    with receiver._lock:
                        receiver.requests.append(
                            Received(self.path, dict(self.headers), raw, status, time.monotonic())
                        )
                    answer = b'{"ok": true}' if status < 300 else b"endpoint down for maintenance"
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the dispatcher gave up waiting: that is what the test wanted
                finally:
                    with receiver._lock:
                        receiver.in_flight -= 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def delivered(self) -> list[Received]:
        """Requests answered with a 2xx, in arrival order."""
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- events -------------------------------------------------------------------------------------


def emit_uplink(ctx: Any, tenant_id: uuid.UUID, dev_eui: str, f_cnt: int) -> str:
    """Emit an ``uplink.accepted`` shaped as ingest emits it; return the message id."""
    uplink_id = uuid.uuid4()
    now = ctx.clock.now()
    payload = uplink_message(
        id=uplink_id,
        tenant_id=tenant_id,
        dev_eui=dev_eui,
        f_cnt=f_cnt,
        f_port=1,
        payload=f"fcnt={f_cnt}".encode(),
        confirmed=False,
        ack=False,
        received_at=now,
        accepted_at=now,
        receptions=[],
    )
    with ctx.db.write() as s:
        events.emit(s, "uplink.accepted", at=now, payload=payload, tenant_id=tenant_id)
    return str(uplink_id)


def emit_downlink(ctx: Any, tenant_id: uuid.UUID, dev_eui: str, status: str) -> uuid.UUID:
    """Emit a ``downlink.<status>`` event; return the event id (its message id)."""
    with ctx.db.write() as s:
        return events.emit(
            s,
            f"downlink.{status}",
            at=ctx.clock.now(),
            payload={"id": str(uuid.uuid4()), "dev_eui": dev_eui, "status": status},
            tenant_id=tenant_id,
        )


def fan_out(ctx: Any) -> int:
    """Run the fan-out consumer until it has read the whole log; return events read."""
    consumer = delivery.consumer()
    total = 0
    while n := consume_batch(ctx.db, consumer, ctx.clock):
        total += n
    return total


def webhook(ctx: Any, world: Any, tenant_id: uuid.UUID, url: str, **options: Any) -> uuid.UUID:
    return integration(ctx, world, tenant_id, "webhook", url=url, secret=SECRET, **options)


def integration(ctx: Any, world: Any, tenant_id: uuid.UUID, kind: str, **options: Any) -> uuid.UUID:
    options.setdefault("max_attempts", 12)
    options.setdefault("allow_private", True)  # the receivers listen on 127.0.0.1
    with ctx.db.write() as s:
        return create_integration(
            s, world.system, ctx.kek, tenant_id=tenant_id, kind=kind, at=ctx.clock.now(), **options
        ).id


def deliveries(ctx: Any, integration_id: uuid.UUID | None = None) -> list[Delivery]:
    stmt = select(Delivery).order_by(Delivery.event_seq)
    if integration_id is not None:
        stmt = stmt.where(Delivery.integration_id == integration_id)
    with ctx.db.read() as s:
        return list(s.scalars(stmt))


# -- the dispatcher -----------------------------------------------------------------------------


def dispatcher(ctx: Any, *, seed: int = 7, timeout_s: float = 2.0, **options: Any) -> Dispatcher:
    options.setdefault("policy", RetryPolicy())
    options.setdefault("allow_private", True)
    return Dispatcher(
        ctx.db, ctx.clock, ctx.kek, timeout_s=timeout_s, rng=random.Random(seed), **options
    )


def dispatch(ctx: Any, now: datetime | None = None, **options: Any) -> DispatchStats:
    """One round of a fresh dispatcher (what a test step does)."""

    async def once() -> DispatchStats:
        async with dispatcher(ctx, **options) as d:
            return await d.run_once(now)

    return asyncio.run(once())


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def drive(ctx: Any, steps: Callable[[Dispatcher], Any], **options: Any) -> Any:
    """Run ``await steps(dispatcher)`` with one dispatcher (one seeded RNG) for every round."""

    async def main() -> Any:
        async with dispatcher(ctx, **options) as d:
            return await steps(d)

    return asyncio.run(main())
