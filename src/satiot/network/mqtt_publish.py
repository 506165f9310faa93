"""Delivery over MQTT: the same body as a webhook, on a per-device topic, at QoS 1.

An integration of kind ``mqtt`` publishes to the platform broker (``SATIOT_MQTT_URL``) or, when
it names one, to the customer's own broker (``mqtt://host:port``, or ``mqtts://host:port`` for
TLS, optionally with a username, a password and a CA certificate of its own):

- ``satiot/tenants/{tenant_id}/devices/{dev_eui}/up`` — accepted uplinks;
- ``satiot/tenants/{tenant_id}/devices/{dev_eui}/downlinks`` — downlink status changes;
- ``satiot/tenants/{tenant_id}/events`` — anything that names no device.

A delivery counts as done only when the broker's PUBACK arrives; anything else (no broker,
refused connection, an untrusted certificate, refused credentials, no PUBACK within the
timeout) is a failed attempt with its reason and takes the same retry and dead-letter path as
a webhook. A broker connection that failed once is closed and opened afresh on the next
attempt, so paho's own queue never re-sends behind the dispatcher's back beyond the
at-least-once the id already covers.

TLS always verifies the server's certificate chain (against the integration's CA, else the
system store) and its host name; there is no switch to turn either off. A customer's broker is
reached on the public address :mod:`.target_guard` checked, while the handshake still names
and verifies the host name from the url (:func:`.mqtt_tls.tls_context`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import secrets
import ssl
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from satiot.core.errors import InvalidInput
from satiot.network.delivery_queue import Claimed, Outcome, Target
from satiot.network.destinations import Policy
from satiot.network.ingest_mqtt import parse_broker_url
from satiot.network.integration_targets import parse_mqtt_url
from satiot.network.integrations import open_password
from satiot.network.keys import Kek, KekError
from satiot.network.messages import DOWNLINK_EVENT_PREFIX, UPLINK_ACCEPTED
from satiot.network.mqtt_tls import tls_context
from satiot.network.target_guard import resolve_public

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
#: CONNACK answers that mean "these credentials are not accepted" (MQTT 3.1.1 return codes 4
#: and 5, as paho reports them).
_LOGIN_REFUSED = frozenset({134, 135})


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


@dataclass(frozen=True)
class BrokerLogin:
    """A broker and how to log in to it. Connections are shared only between integrations
    with the very same login, so no tenant ever publishes under another's credentials."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_pem: str | None = field(default=None, repr=False)
    #: Connect only to an address :func:`~.target_guard.resolve_public` checked.
    guarded: bool = False
    #: The tenant's destination allow-list, held to the addresses connected to (guarded only).
    allowed: Policy | None = field(default=None, repr=False)


class _Connection:
    """One connected paho client with its network thread."""

    def __init__(self, login: BrokerLogin, timeout_s: float) -> None:
        self.broker = login
        self.broken = False
        self.last_used = time.monotonic()
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
        if login.username is not None:
            self.client.username_pw_set(login.username, login.password)
        if login.tls:
            self.client.tls_set_context(tls_context(login.host, login.ca_pem))
        # A customer's broker is connected to on a public address that was checked (see
        # target_guard), each in turn until one answers, as a client connecting to the name
        # would; the platform's own broker, named by the operator, is not guarded.
        hosts = resolve_public(login.host, login.port) if login.guarded else [login.host]
        if login.guarded and login.allowed is not None:
            why = login.allowed.refusal_of_connection(login.host, login.port, hosts)
            if why is not None:
                raise ConnectionError(why)
        for n, host in enumerate(hosts, 1):
            try:
                self.client.connect(host, login.port, keepalive=KEEPALIVE_S)
                break
            except ssl.SSLCertVerificationError as exc:
                raise ConnectionError(
                    f"TLS: the broker's certificate is not trusted: {exc.verify_message}"
                ) from exc
            except ssl.SSLError as exc:
                raise ConnectionError(f"TLS handshake failed: {exc.reason or exc}") from exc
            except OSError as exc:
                if n == len(hosts):
                    tried = f" (tried {n} addresses)" if n > 1 else ""
                    raise ConnectionError(f"{exc}{tried}") from exc
        self.client.loop_start()
        if not self._connected.wait(timeout_s) or self._refusal:
            self.close()
            raise ConnectionError(self._refusal or f"no CONNACK within {timeout_s:g}s")

    def _on_connect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            if reason.value in _LOGIN_REFUSED:
                self._refusal = (
                    f"the broker refused the login ({reason}): check the username and password"
                )
            else:
                self._refusal = f"broker refused the connection: {reason}"
        self._connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.broken = True
        if not self._connected.is_set():  # closed before answering CONNECT: say so at once
            self._refusal = f"the broker closed the connection before CONNACK ({reason})"
            self._connected.set()

    def close(self) -> None:
        self.broken = True
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()


def _platform_login(url: str | None, ca_pem: str | None = None) -> BrokerLogin | None:
    """The platform broker as ``SATIOT_MQTT_URL`` names it (with its login, if any, and the
    CA of ``SATIOT_MQTT_CA_FILE``), the way the ingest listener reads the same settings;
    never guarded."""
    if not url:
        return None
    try:
        broker = parse_broker_url(url)
    except ValueError:
        return None  # reported when a publish needs it
    return BrokerLogin(
        broker.host, broker.port, broker.tls, broker.username, broker.password, ca_pem
    )


#: A broker connection nothing has published on for this long is closed.
IDLE_CLOSE_S = 300.0


class MqttPublisher:
    """Publishes bodies with QoS 1 and waits for the PUBACK; blocking and thread-safe.

    One connection per broker and login is shared by every integration publishing there with
    it; each has its own lock, so a customer's broker that hangs on connect holds up only
    itself.
    """

    def __init__(
        self,
        *,
        timeout_s: float,
        platform_url: str | None,
        platform_ca_pem: str | None = None,
        allow_private: bool = False,
        idle_close_s: float = IDLE_CLOSE_S,
    ) -> None:
        self.timeout_s = timeout_s
        self.platform_url = platform_url
        self.allow_private = allow_private
        self.idle_close_s = idle_close_s
        self._platform = _platform_login(platform_url, platform_ca_pem)
        self._connections: dict[BrokerLogin, _Connection] = {}
        self._locks: dict[BrokerLogin, threading.Lock] = {}
        self._guard = threading.Lock()
        self._swept = time.monotonic()

    def login_for(
        self,
        url: str | None,
        *,
        username: str | None = None,
        password: str | None = None,
        ca_pem: str | None = None,
        allowed: Policy | None = None,
    ) -> BrokerLogin:
        """The broker an integration publishes to: its own ``url`` (guarded unless private
        targets are allowed, its addresses held to ``allowed``) with its login, else the
        platform broker."""
        if not url:
            if self._platform is None:
                if self.platform_url:
                    raise ConnectionError("SATIOT_MQTT_URL is not an MQTT broker url")
                raise ConnectionError("no MQTT broker: the platform runs none and none is named")
            return self._platform
        try:
            broker = parse_mqtt_url(url)
        except InvalidInput as exc:
            raise ConnectionError(exc.detail) from exc
        return BrokerLogin(
            broker.host,
            broker.port,
            broker.tls,
            username,
            password,
            ca_pem,
            guarded=not self.allow_private,
            allowed=allowed,
        )

    def _lock(self, login: BrokerLogin) -> threading.Lock:
        """The lock that serialises connecting, dropping and closing for one broker login."""
        with self._guard:
            return self._locks.setdefault(login, threading.Lock())

    def _connection(self, login: BrokerLogin) -> _Connection:
        with self._lock(login):
            conn = self._connections.get(login)
            if conn is None or conn.broken:
                if conn is not None:
                    conn.close()
                conn = _Connection(login, self.timeout_s)
                self._connections[login] = conn
            conn.last_used = time.monotonic()
        self._close_idle(conn.last_used)
        return conn

    def _close_idle(self, now: float) -> None:
        """Close the connections nothing has published on for ``idle_close_s``: a customer's
        broker whose integration was disabled, re-pointed or given a new password keeps no
        socket open (looked at every so often, on the way to a publish)."""
        if now - self._swept < min(30.0, self.idle_close_s):
            return
        self._swept = now
        for login, conn in list(self._connections.items()):
            if now - conn.last_used <= self.idle_close_s:
                continue
            with self._lock(login):  # a publish that took it meanwhile has moved last_used on
                if self._connections.get(login) is not conn or (
                    time.monotonic() - conn.last_used <= self.idle_close_s
                ):
                    continue
                del self._connections[login]
            conn.close()

    def _drop(self, login: BrokerLogin, conn: _Connection) -> None:
        with self._lock(login):
            if self._connections.get(login) is conn:
                del self._connections[login]
        conn.close()

    def publish(
        self,
        url: str | None,
        topic: str,
        payload: bytes,
        *,
        username: str | None = None,
        password: str | None = None,
        ca_pem: str | None = None,
        allowed: Policy | None = None,
    ) -> Outcome:
        """Publish once; the outcome says whether the broker acknowledged it, and if not, why."""
        started = time.perf_counter()

        def took() -> float:
            return (time.perf_counter() - started) * 1000

        try:
            login = self.login_for(
                url, username=username, password=password, ca_pem=ca_pem, allowed=allowed
            )
            conn = self._connection(login)
        except (OSError, ConnectionError, ValueError) as exc:
            return Outcome(False, error=f"connect: {exc}"[:500], duration_ms=took())
        try:
            info = conn.client.publish(topic, payload, qos=1)
            info.wait_for_publish(self.timeout_s)
            if info.is_published():
                return Outcome(True, duration_ms=took())
            error = f"no PUBACK within {self.timeout_s:g}s"
        except (RuntimeError, ValueError, OSError) as exc:
            error = f"publish: {exc}"
        self._drop(login, conn)
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

    def __init__(self, publisher: MqttPublisher, kek: Kek, *, threads_per_broker: int = 16) -> None:
        self.publisher = publisher
        self.kek = kek
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
        password: str | None = None
        if target.password_sealed is not None:
            try:
                password = open_password(self.kek, target.id, target.password_sealed)
            except KekError:
                return Outcome(False, error="the MQTT password does not open under this KEK")
        publish = functools.partial(
            self.publisher.publish,
            target.url,
            where,
            encode(item.body),
            username=target.username,
            password=password,
            ca_pem=target.ca_pem,
            allowed=target.allowed,
        )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(target.url), publish)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        self._pools.clear()
        await asyncio.to_thread(self.publisher.close)
