"""Ground stations over MQTT: the same receptions, the same ingest, the same answer.

A station publishes the body it would POST to ``satiot/gs/{station_id}/up`` (QoS 1) and reads
the answer ``{"accepted", "duplicates", "rejected", "batch_id"}`` on
``satiot/gs/{station_id}/up/result``; an envelope that cannot be taken at all is answered with
``{"error": <problem slug or code>, "detail": …}`` there instead.

Delivery is at least once, end to end. The listener keeps a persistent session (fixed client
id, ``clean_session`` off) and acknowledges a message only after its batch has committed and
the answer is published (paho's manual ack). A listener that dies before the ack gets the
message again from the broker when it reconnects, and de-duplication turns the repeat into
duplicates, so nothing is lost and nothing is stored twice.

MQTT authentication is the broker's job: the listener trusts the station id in the topic, so
the broker's ACL must let each station's credentials publish only to its own
``satiot/gs/{id}/up`` and read only its own ``…/up/result``.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from satiot.core.clock import Clock
from satiot.core.config import Settings
from satiot.core.db import Database
from satiot.core.errors import DomainError, NotFound
from satiot.core.services import BackgroundService
from satiot.network.ingest import ingest
from satiot.network.ingest_validate import batch_items
from satiot.network.keys import Kek
from satiot.network.mqtt_tls import read_ca_file, tls_context

log = logging.getLogger(__name__)

ROOT = "satiot"
CLIENT_ID = "satiot-ingest"


class IngestContext(Protocol):
    """What the listener needs of the application context (``api.context.AppContext``)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def db(self) -> Database: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def kek(self) -> Kek: ...


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://[user:password@]host[:port]`` (or ``mqtts://`` for TLS). The user and password
    are percent-decoded, as in any URL, so a password may hold ``@``, ``:`` or ``/``
    (written ``%40``, ``%3A``, ``%2F``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
        raise ValueError(f"not an MQTT broker URL: {url!r} (use mqtt://host:port)")
    tls = parts.scheme in ("mqtts", "ssl")
    user = None if parts.username is None else unquote(parts.username)
    password = None if parts.password is None else unquote(parts.password)
    return BrokerAddress(parts.hostname, parts.port or (8883 if tls else 1883), tls, user, password)


def answer(ctx: IngestContext, station: str, payload: bytes | bytearray) -> dict[str, Any]:
    """Ingest one published batch for ``station`` and return the answer to publish.

    Errors that no retry can fix (unknown station, malformed envelope) are answers too; any
    other exception propagates, and the message is then not acknowledged.
    """
    try:
        station_id = uuid.UUID(station)
    except ValueError:
        return {"error": "unknown-station", "detail": f"{station!r} is not a station id"}
    try:
        body = json.loads(payload)
    except ValueError:
        return {"error": "malformed-json", "detail": "the message is not valid JSON"}
    batch_id = body.get("batch_id") if isinstance(body, dict) else None
    echo = {"batch_id": batch_id} if isinstance(batch_id, str) else {}
    try:
        items, batch_id = batch_items(body)
        result = ingest(
            ctx.db,
            station_id,
            items,
            kek=ctx.kek,
            at=ctx.clock.now(),
            fcnt_window=ctx.settings.fcnt_window,
        )
    except NotFound:
        return {"error": "unknown-station", "detail": f"no ground station {station}"} | echo
    except DomainError as exc:
        return {"error": exc.slug, "detail": exc.detail} | echo
    return result.to_json(batch_id)


class Listener:
    """The MQTT side of ingest: subscribe, hand messages to one worker, answer, then ack.

    paho's network thread only queues messages; the worker (:meth:`run`) runs the database
    work, so keep-alives never wait for a batch.
    """

    def __init__(self, ctx: IngestContext, *, root: str = ROOT, client_id: str = CLIENT_ID) -> None:
        url = ctx.settings.mqtt_url
        if not url:
            raise ValueError("SATIOT_MQTT_URL is not set")
        self.ctx = ctx
        self.root = root
        self.broker = parse_broker_url(url)
        ca_pem = read_ca_file(ctx.settings.mqtt_ca_file)
        self.subscribed = threading.Event()
        self._inbox: queue.Queue[tuple[int, mqtt.MQTTMessage]] = queue.Queue()
        self._session = 0  # bumped on every (re)connection: older messages' mids are void
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if self.broker.username:
            self.client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            self.client.tls_set_context(tls_context(self.broker.host, ca_pem))
        elif ca_pem:
            raise ValueError("SATIOT_MQTT_CA_FILE is for TLS: name the broker as mqtts://")
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    @property
    def topic(self) -> str:
        return f"{self.root}/gs/+/up"

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT ingest: broker refused the connection: %s", reason)
            return
        self._drop_inbox()  # the broker redelivers whatever was not acknowledged
        self._session += 1
        client.subscribe(self.topic, qos=1)
        self.subscribed.set()
        log.info("MQTT ingest listening on %s", self.topic)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.subscribed.clear()
        if reason.is_failure:
            log.warning("MQTT ingest: disconnected (%s); reconnecting", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._inbox.put((self._session, message))

    def _drop_inbox(self) -> None:
        while True:
            try:
                self._inbox.get_nowait()
            except queue.Empty:
                return

    def handle(self, session: int, message: mqtt.MQTTMessage) -> None:
        """Ingest one message, publish its answer, then acknowledge it (unless the connection
        it came on is gone: the broker then sends it again, and the repeat is acknowledged)."""
        parts = message.topic.split("/")
        station = parts[-2] if len(parts) >= 2 else ""
        result = answer(self.ctx, station, message.payload)
        self.client.publish(f"{self.root}/gs/{station}/up/result", json.dumps(result), qos=1)
        if session == self._session:
            self.client.ack(message.mid, message.qos)

    def run(self, stop: threading.Event, *, retry_wait_s: float = 5.0) -> None:
        """Serve until ``stop`` is set. A message whose batch fails unexpectedly (the database
        is down) stays unacknowledged; the listener reconnects so the broker sends it again."""
        b = self.broker
        self.client.connect_async(b.host, b.port, keepalive=30)
        self.client.loop_start()
        try:
            while not stop.is_set():
                try:
                    session, message = self._inbox.get(timeout=0.2)
                except queue.Empty:
                    continue
                try:
                    self.handle(session, message)
                except Exception:
                    log.exception("MQTT ingest: batch on %s failed; redelivery", message.topic)
                    stop.wait(retry_wait_s)
                    self.client.reconnect()
        finally:
            self.client.disconnect()
            self.client.loop_stop()


def ingest_service(ctx: IngestContext) -> BackgroundService | None:
    """The MQTT ingest listener as a ``satiot up`` service, or None when MQTT is off
    (``SATIOT_MQTT_URL`` unset)."""
    if not ctx.settings.mqtt_url:
        return None

    def run(app_ctx: IngestContext, stop: threading.Event) -> None:
        Listener(app_ctx).run(stop)

    return BackgroundService("mqtt-ingest", run)
