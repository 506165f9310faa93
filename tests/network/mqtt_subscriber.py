"""A test's MQTT subscriber: a paho client that collects what a broker delivers."""

from __future__ import annotations

import json
import queue
import ssl
import threading
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class Subscriber:
    """A paho client subscribed (QoS 1) to ``pattern``, collecting (topic, body); over TLS
    trusting ``ca_file`` and logged in with ``login`` when given."""

    def __init__(
        self,
        pattern: str,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        ca_file: Path | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.messages: queue.Queue[tuple[str, dict]] = queue.Queue()
        ready = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"satiot-test-{uuid.uuid4().hex[:8]}",
        )
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file), cert_reqs=ssl.CERT_REQUIRED)
        if login is not None:
            self.client.username_pw_set(*login)
        self.client.on_message = lambda _c, _u, msg: self.messages.put(
            (msg.topic, json.loads(msg.payload))
        )
        self.client.on_subscribe = lambda *_args: ready.set()
        self.client.connect(host, port)
        self.client.loop_start()
        self.client.subscribe(pattern, qos=1)
        assert ready.wait(5), "subscription not acknowledged"

    def take(self, n: int, timeout_s: float = 5) -> list[tuple[str, dict]]:
        return [self.messages.get(timeout=timeout_s) for _ in range(n)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
