"""Delivery over MQTT: the same body as a webhook, on a per-device topic, at QoS 1.

An integration of kind ``mqtt`` publishes to the platform broker (``SATIOT_MQTT_URL``) or, when
it names one, to the customer's own broker (``mqtt://host:port``):

- ``satiot/tenants/{tenant_id}/devices/{dev_eui}/up`` — accepted uplinks;
- ``satiot/tenants/{tenant_id}/devices/{dev_eui}/downlinks`` — downlink status changes;
- ``satiot/tenants/{tenant_id}/events`` — anything that names no device.

A delivery counts as done only when the broker's PUBACK arrives; anything else (no broker,
refused connection, no PUBACK within the timeout) is a failed attempt and takes the same
retry and dead-letter path as a webhook. A broker connection that failed once is closed and
opened afresh on the next attempt, so paho's own queue never re-sends behind the dispatcher's
back beyond the at-least-once the id already covers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from satiot.core.errors import InvalidInput
from satiot.network.delivery_queue import Claimed, Outcome, Target
from satiot.network.integrations import BrokerAddress, parse_mqtt_url
from satiot.network.messages import DOWNLINK_EVENT_PREFIX, UPLINK_ACCEPTED
from satiot.network.target_guard import resolve_public

log = logging.getLogger(__name__)

KEEPALIVE_S = 30


def topic(tenant_id: uuid.UUID, dev_eui: str | None, event_type: str) -> str:
    """Where a message of ``event_type`` about ``dev_eui`` is published."""
    base = f"satiot/tenants/{tenant_id}"
    if not dev_eui:
        return f"{base}/events"
    if event_type == UPLINK_ACCEPTED:
        return f"{base}/devices/{dev_eui}/up"
    if event_type.startswith(DOWNLINK_EVENT_PREFIX):
        return f"{base}/devices/{dev_eui}/downlinks"
    return f"{base}/devices/{dev_eui}/events"


def encode(body: dict[str, Any]) -> bytes:
    """The bytes every channel sends for a body: compact JSON, in the body's own key order."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class _Connection:
    """One connected paho client with its network thread."""

    def __init__(self, broker: BrokerAddress, timeout_s: float, *, guarded: bool) -> None:
        self.broker = broker
        self.broken = False
        self._connected = threading.Event()
        self._refusal: str | None = None
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"satiot-delivery-{secrets.token_hex(6)}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.connect_timeout = timeout_s
        # A customer's broker is connected to on the public address that was checked (see
        # target_guard); the platform's own broker, named by the operator, is not guarded.
        host = resolve_public(broker.host, broker.port)[0] if guarded else broker.host
        self.client.connect(host, broker.port, keepalive=KEEPALIVE_S)
        self.client.loop_start()
        if not self._connected.wait(timeout_s) or self._refusal:
            self.close()
            raise ConnectionError(self._refusal or f"no CONNACK within {timeout_s:g}s")

    def _on_connect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self._refusal = f"broker refused the connection: {reason}"
        self._connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.broken = True

    def close(self) -> None:
        self.broken = True
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()


def _address(url: str | None) -> BrokerAddress | None:
    try:
        return parse_mqtt_url(url) if url else None
    except InvalidInput:
        return None  # reported when a publish names it


class MqttPublisher:
    """Publishes bodies with QoS 1 and waits for the PUBACK; blocking and thread-safe.

    One connection per broker is shared by every integration publishing there; each broker has
    its own lock, so a customer's broker that hangs on connect holds up only itself.
    """

    def __init__(
        self, *, timeout_s: float, platform_url: str | None, allow_private: bool = False
    ) -> None:
        self.timeout_s = timeout_s
        self.platform_url = platform_url
        self.allow_private = allow_private
        self._platform = _address(platform_url)
        self._connections: dict[BrokerAddress, _Connection] = {}
        self._locks: dict[BrokerAddress, threading.Lock] = {}
        self._guard = threading.Lock()

    def _broker(self, url: str | None) -> BrokerAddress:
        chosen = url or self.platform_url
        if not chosen:
            raise ConnectionError("no MQTT broker: the platform runs none and none is named")
        try:
            return parse_mqtt_url(chosen)
        except InvalidInput as exc:
            raise ConnectionError(exc.detail) from exc

    def _connection(self, broker: BrokerAddress) -> _Connection:
        with self._guard:
            lock = self._locks.setdefault(broker, threading.Lock())
        with lock:
            conn = self._connections.get(broker)
            if conn is None or conn.broken:
                if conn is not None:
                    conn.close()
                guarded = not self.allow_private and broker != self._platform
                conn = _Connection(broker, self.timeout_s, guarded=guarded)
                self._connections[broker] = conn
            return conn

    def _drop(self, broker: BrokerAddress, conn: _Connection) -> None:
        with self._guard:
            lock = self._locks.setdefault(broker, threading.Lock())
        with lock:
            if self._connections.get(broker) is conn:
                del self._connections[broker]
        conn.close()

    def publish(self, url: str | None, topic: str, payload: bytes) -> Outcome:
        """Publish once; the outcome says whether the broker acknowledged it."""
        started = time.perf_counter()

        def took() -> float:
            return (time.perf_counter() - started) * 1000

        try:
            broker = self._broker(url)
            conn = self._connection(broker)
        except (OSError, ConnectionError) as exc:
            return Outcome(False, error=f"connect: {exc}"[:500], duration_ms=took())
        try:
            info = conn.client.publish(topic, payload, qos=1)
            info.wait_for_publish(self.timeout_s)
            if info.is_published():
                return Outcome(True, duration_ms=took())
            error = f"no PUBACK within {self.timeout_s:g}s"
        except (RuntimeError, ValueError, OSError) as exc:
            error = f"publish: {exc}"
        self._drop(broker, conn)
        return Outcome(False, error=error[:500], duration_ms=took())

    def close(self) -> None:
        with self._guard:
            conns = list(self._connections.values())
            self._connections.clear()
        for conn in conns:
            try:
                conn.close()
            except Exception:  # closing is best effort; the process may be going away
                log.debug("closing MQTT connection to %s failed", conn.broker, exc_info=True)


class MqttSender:
    """The dispatcher's sender for ``mqtt`` integrations.

    paho blocks, so publishes run in threads: one small pool per broker, never the default
    executor the dispatcher's database calls use. A customer's broker that hangs therefore
    ties up only its own threads, not other brokers' publishes nor anyone's bookkeeping.
    """

    def __init__(self, publisher: MqttPublisher, *, threads_per_broker: int = 16) -> None:
        self.publisher = publisher
        self.threads_per_broker = threads_per_broker
        self._pools: dict[str, ThreadPoolExecutor] = {}

    def _pool(self, url: str | None) -> ThreadPoolExecutor:
        key = url or ""
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = ThreadPoolExecutor(
                self.threads_per_broker, thread_name_prefix="mqtt-delivery"
            )
        return pool

    async def send(self, target: Target, item: Claimed, *, at: datetime) -> Outcome:
        where = topic(item.tenant_id, item.dev_eui, item.event_type)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool(target.url), self.publisher.publish, target.url, where, encode(item.body)
        )

    async def aclose(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        self._pools.clear()
        await asyncio.to_thread(self.publisher.close)
