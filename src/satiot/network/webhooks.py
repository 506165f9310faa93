"""Signed webhooks and the dispatcher that sends every integration's due deliveries.

Each webhook is an HTTP POST of the message body (compact JSON) with these headers:

- ``X-Satiot-Id``: the message id to de-duplicate on (the same on every retry and replay);
- ``X-Satiot-Event``: the event type (``uplink.accepted``, ``downlink.sent``, …);
- ``X-Satiot-Timestamp``: unix seconds when this attempt was signed;
- ``X-Satiot-Signature``: ``v1=`` + hex HMAC-SHA256 under the integration's secret of
  ``f"{timestamp}.{body}"``; signing the timestamp lets a receiver refuse stale replays.

Only a 2xx counts as delivered. The dispatcher serves each integration as its own task, so
an endpoint that hangs or fails holds up only its own deliveries: requests have a hard
deadline, each integration has a bound on requests in flight, and the loop never waits for
one integration before serving another. :meth:`Dispatcher.run_once` is one deterministic
round over every due integration (what the tests drive with a ManualClock);
:meth:`Dispatcher.run` is the loop that ``satiot up`` runs via :func:`dispatcher_service`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol

import httpx

from satiot import __version__
from satiot.core.clock import Clock
from satiot.core.config import Settings
from satiot.core.db import Database
from satiot.core.services import BackgroundService
from satiot.network import delivery_queue
from satiot.network.delivery_queue import Claimed, Outcome, Result, RetryPolicy, Target
from satiot.network.destinations import Refused, Resolver, delivering_for, resolve_all
from satiot.network.integration_targets import target_address
from satiot.network.integrations import open_secret
from satiot.network.keys import Kek, KekError
from satiot.network.mqtt_publish import MqttPublisher, MqttSender, encode
from satiot.network.mqtt_tls import read_ca_file
from satiot.network.target_guard import guarded_transport

log = logging.getLogger(__name__)

HEADER_ID = "X-Satiot-Id"
HEADER_EVENT = "X-Satiot-Event"
HEADER_TIMESTAMP = "X-Satiot-Timestamp"
HEADER_SIGNATURE = "X-Satiot-Signature"
SIGNATURE_VERSION = "v1"
DISPATCHER_NAME = "network.delivery-dispatcher"


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Satiot-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={mac}"


def headers_for(item: Claimed, secret: bytes, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        HEADER_ID: item.message_id,
        HEADER_EVENT: item.event_type,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign(secret, timestamp, body),
    }


class Sender(Protocol):
    async def send(self, target: Target, item: Claimed, *, at: datetime) -> Outcome: ...


class WebhookSender:
    """POSTs one signed body with a hard deadline; never raises, always an :class:`Outcome`."""

    def __init__(self, client: httpx.AsyncClient, kek: Kek, timeout_s: float) -> None:
        self.client = client
        self.kek = kek
        self.timeout_s = timeout_s

    async def send(self, target: Target, item: Claimed, *, at: datetime) -> Outcome:
        if not target.url or target.secret_sealed is None:
            return Outcome(False, error="the webhook has no url or secret")
        try:
            secret = open_secret(self.kek, target.id, target.secret_sealed)
        except KekError:
            return Outcome(False, error="the webhook secret does not open under this KEK")
        body = encode(item.body)
        headers = headers_for(item, secret, int(at.timestamp()), body)
        started = time.perf_counter()
        checking = delivering_for.set(target.allowed)  # the connection checks its addresses
        try:
            async with (
                asyncio.timeout(self.timeout_s),
                self.client.stream("POST", target.url, content=body, headers=headers) as r,
            ):
                code = r.status_code
                if 200 <= code < 300:
                    return Outcome(True, code, duration_ms=_ms(started))
                # The answer's body is not kept: the delivery log would otherwise let a
                # customer read what an internal address answers (server-side request forgery).
                return Outcome(False, code, f"HTTP {code}", _ms(started))
        except TimeoutError:
            error = f"no answer within {self.timeout_s:g}s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        finally:
            delivering_for.reset(checking)
        return Outcome(False, error=error[:500], duration_ms=_ms(started))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


@dataclass
class DispatchStats:
    integrations: int = 0
    claimed: int = 0
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    dead_ids: list[uuid.UUID] = field(default_factory=list)

    def __iadd__(self, other: DispatchStats) -> DispatchStats:
        self.integrations += other.integrations
        self.claimed += other.claimed
        self.attempted += other.attempted
        self.delivered += other.delivered
        self.retrying += other.retrying
        self.dead += other.dead
        self.dead_ids += other.dead_ids
        return self


class Dispatcher:
    """Sends due deliveries, one independent task per integration (use ``async with``)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        kek: Kek,
        *,
        timeout_s: float = 10.0,
        platform_mqtt_url: str | None = None,
        platform_mqtt_ca_pem: str | None = None,
        allow_private: bool = False,
        concurrency: int = 8,
        batch: int = 500,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        resolve: Resolver = resolve_all,
    ) -> None:
        self.db = db
        self.clock = clock
        self.kek = kek
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        self.batch = batch
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()
        self.resolve = resolve
        self.platform_mqtt_url = platform_mqtt_url
        self.platform_mqtt_ca_pem = platform_mqtt_ca_pem
        self.allow_private = allow_private
        self.senders: dict[str, Sender] = {}
        self._client: httpx.AsyncClient | None = None
        self._mqtt: MqttSender | None = None

    @classmethod
    def from_settings(
        cls, db: Database, clock: Clock, kek: Kek, settings: Settings, *, concurrency: int = 8
    ) -> Dispatcher:
        return cls(
            db,
            clock,
            kek,
            timeout_s=settings.webhook_timeout_s,
            platform_mqtt_url=settings.mqtt_url,
            platform_mqtt_ca_pem=read_ca_file(settings.mqtt_ca_file),
            allow_private=settings.delivery_allow_private,
            concurrency=concurrency,
        )

    async def __aenter__(self) -> Dispatcher:
        # No pool limit (each integration bounds its own requests in flight, so one slow
        # endpoint cannot take every connection) and no proxies from the environment.
        # Customers' targets must be public addresses, checked on the address connected to
        # (target_guard); redirects are not followed, so a 3xx cannot lead anywhere else.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=200)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_s),
            limits=limits,
            transport=None if self.allow_private else guarded_transport(limits),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": f"satiot-webhooks/{__version__}"},
        )
        publisher = MqttPublisher(
            timeout_s=self.timeout_s,
            platform_url=self.platform_mqtt_url,
            platform_ca_pem=self.platform_mqtt_ca_pem,
            allow_private=self.allow_private,
        )
        self._mqtt = MqttSender(publisher, self.kek)
        self.senders = {
            "webhook": WebhookSender(self._client, self.kek, self.timeout_s),
            "mqtt": self._mqtt,
        }
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._mqtt is not None:
            await self._mqtt.aclose()

    async def run_once(self, now: datetime | None = None) -> DispatchStats:
        """One round: every due integration served once, concurrently; wait for all."""
        now = now or self.clock.now()
        ids = await asyncio.to_thread(delivery_queue.due_integrations, self.db, now)
        total = DispatchStats()
        for stats in await asyncio.gather(*(self.serve(i, now) for i in ids)):
            total += stats
        return total

    async def serve(self, integration_id: uuid.UUID, now: datetime) -> DispatchStats:
        """Claim one integration's sendable deliveries, send them lane by lane, settle."""
        target, items = await asyncio.to_thread(
            delivery_queue.claim,
            self.db,
            integration_id,
            now,
            limit=self.batch,
            timeout_s=self.timeout_s,
            concurrency=self.concurrency,
        )
        stats = DispatchStats(integrations=1, claimed=len(items))
        if target is None or not items:
            return stats
        sender = self.senders.get(target.kind)
        slots = asyncio.Semaphore(self.concurrency)
        results: list[Result] = []
        unsent: list[Claimed] = []
        refused = await self.refusal(target)

        async def run_lane(lane: list[Claimed]) -> None:
            if refused is not None:  # nothing leaves; each lane's first message records why
                at = self.clock.now()
                results.append(Result(lane[0], Outcome(False, error=refused, refused=True), at, at))
                unsent.extend(lane[1:])
                return
            for index, item in enumerate(lane):
                async with slots:
                    at = self.clock.now()
                    outcome = await _attempt(sender, target, item, at)
                results.append(Result(item, outcome, at, _later(at, self.clock.now())))
                if not outcome.ok:
                    unsent.extend(lane[index + 1 :])  # the device's later messages wait
                    return

        await asyncio.gather(*(run_lane(lane) for lane in delivery_queue.lanes(items)))
        settled = await asyncio.to_thread(
            delivery_queue.settle,
            self.db,
            target,
            results,
            unsent,
            policy=self.policy,
            rng=self.rng,
        )
        stats.attempted = len(results)
        stats.delivered, stats.retrying, stats.dead = (
            settled.delivered,
            settled.retrying,
            settled.dead,
        )
        stats.dead_ids = settled.dead_ids
        return stats

    async def refusal(self, target: Target) -> str | None:
        """Why this round may not deliver to ``target`` (its tenant's destination allow-list,
        as it stands now), or None. A host name only network entries can allow is resolved
        here, off the event loop."""
        policy = target.allowed
        address = target_address(target.kind, target.url)
        if policy is None or address is None:
            return None
        try:
            if policy.needs_addresses(*address):  # a DNS lookup: not on the event loop
                await asyncio.to_thread(policy.check, *address, self.resolve)
            else:
                policy.check(*address)
        except Refused as exc:
            log.warning("delivery refused for integration %s: %s", target.id, exc)
            return str(exc)
        return None

    async def run(self, stop: threading.Event, *, poll_s: float = 0.5, idle_s: float = 5.0) -> None:
        """Serve until ``stop``: start a task for each due integration that has none running,
        never waiting for a busy one. An integration whose due deliveries are all held behind
        backed-off ones is not polled again until the first of those falls due (or ``idle_s``).
        """
        tasks: dict[uuid.UUID, asyncio.Task[DispatchStats]] = {}
        resting: dict[uuid.UUID, datetime] = {}
        while not stop.is_set():
            now = self.clock.now()
            resting = {i: t for i, t in resting.items() if t > now}
            try:
                ids = await asyncio.to_thread(
                    delivery_queue.due_integrations, self.db, now, exclude={*tasks, *resting}
                )
            except Exception:
                log.exception("delivery dispatcher: cannot read due integrations")
                ids = []
            for iid in ids:
                tasks[iid] = asyncio.create_task(self.serve(iid, now), name=f"deliver-{iid}")
            if tasks:
                await asyncio.wait(
                    tasks.values(), timeout=poll_s, return_when=asyncio.FIRST_COMPLETED
                )
            else:
                await asyncio.sleep(poll_s)
            for iid, task in list(tasks.items()):
                if not task.done():
                    continue
                del tasks[iid]
                if task.exception() is not None:
                    log.error("delivery to integration %s failed", iid, exc_info=task.exception())
                elif task.result().claimed == 0:
                    resting[iid] = await self._rest_until(iid, now, idle_s)
        await self._finish(tasks)

    async def _rest_until(self, iid: uuid.UUID, now: datetime, idle_s: float) -> datetime:
        limit = now + timedelta(seconds=idle_s)
        try:
            due = await asyncio.to_thread(delivery_queue.next_due, self.db, iid, now)
        except Exception:
            log.exception("delivery dispatcher: cannot read when integration %s is due", iid)
            return limit
        return min(due, limit) if due else limit

    async def _finish(self, tasks: dict[uuid.UUID, asyncio.Task[DispatchStats]]) -> None:
        """Let rounds in flight settle for a moment; cancel the rest (their leases lapse and
        the deliveries are sent again later)."""
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks.values(), timeout=self.timeout_s + 1)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


async def _attempt(sender: Sender | None, target: Target, item: Claimed, at: datetime) -> Outcome:
    """One send; a sender's unexpected exception is a failed attempt, not a lost round."""
    if sender is None:
        return Outcome(False, error=f"no sender for kind {target.kind!r}")
    try:
        return await sender.send(target, item, at=at)
    except Exception as exc:
        log.exception("sending delivery %s failed unexpectedly", item.id)
        return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:500])


def _later(start: datetime, end: datetime) -> datetime:
    return max(start, end)


class DeliveryContext(Protocol):
    """What the dispatcher service needs from the application context."""

    @property
    def db(self) -> Database: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def kek(self) -> Kek: ...


def dispatcher_service(*, poll_s: float = 0.5, concurrency: int = 8) -> BackgroundService:
    """The delivery dispatcher (webhooks and MQTT) as a background service for ``satiot up``."""

    def run(ctx: DeliveryContext, stop: threading.Event) -> None:
        async def main() -> None:
            dispatcher = Dispatcher.from_settings(
                ctx.db, ctx.clock, ctx.kek, ctx.settings, concurrency=concurrency
            )
            async with dispatcher:
                await dispatcher.run(stop, poll_s=poll_s)

        asyncio.run(main())

    return BackgroundService(DISPATCHER_NAME, run)
