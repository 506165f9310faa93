"""MQTT ingest against the real Mosquitto on 127.0.0.1:1883: publish a batch, read the answer;
a listener that fails after commit but before its ack gets the message again, and
de-duplication absorbs the repeat."""

from __future__ import annotations

import json
import queue
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from satiot.network import ingest_mqtt
from satiot.network.ingest_mqtt import Listener, ingest_service, parse_broker_url
from tests.network.ingest_helpers import add_device, add_station, counts, rec

BROKER = "mqtt://127.0.0.1:1883"


@pytest.fixture
def mqtt_ctx(ctx):
    ctx.settings = ctx.settings.model_copy(update={"mqtt_url": BROKER})
    return ctx


@pytest.fixture
def root():
    """A topic root of this test's own, so parallel runs on the shared broker never meet."""
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def listener(mqtt_ctx, root):
    client_id = f"satiot-ingest-test-{uuid.uuid4().hex[:8]}"
    lst = Listener(mqtt_ctx, root=root, client_id=client_id)
    stop = threading.Event()
    thread = threading.Thread(target=lst.run, args=(stop,), kwargs={"retry_wait_s": 0.2})
    thread.start()
    assert lst.subscribed.wait(10), "the listener did not subscribe"
    yield lst
    stop.set()
    thread.join(10)
    # drop the persistent session the listener left on the broker
    cleaner = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    cleaner.connect("127.0.0.1", 1883)
    cleaner.disconnect()


class Station:
    """A ground station's MQTT client: publishes batches, collects answers."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.answers: queue.Queue[tuple[str, dict]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gs-{uuid.uuid4().hex}")
        ready = threading.Event()
        self.client.on_connect = lambda c, *_: (
            c.subscribe(f"{root}/gs/+/up/result", qos=1),
            ready.set(),
        )
        self.client.on_message = lambda _c, _u, m: self.answers.put(
            (m.topic, json.loads(m.payload))
        )
        self.client.connect("127.0.0.1", 1883)
        self.client.loop_start()
        assert ready.wait(10)

    def publish(self, station: str, body: object) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.client.publish(f"{self.root}/gs/{station}/up", payload, qos=1).wait_for_publish(10)

    def answer(self, timeout: float = 15) -> tuple[str, dict]:
        return self.answers.get(timeout=timeout)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def station_client(root):
    client = Station(root)
    yield client
    client.close()


def test_a_batch_published_by_a_station_is_ingested_and_answered(
    mqtt_ctx, world, listener, station_client, root
):
    station, _ = add_station(mqtt_ctx, world)
    dev = add_device(mqtt_ctx, world, world.tenant().id)
    body = {
        "receptions": [rec(dev.frame(1)), rec(dev.frame(1), satellite="SAT-2"), {"bad": 1}],
        "batch_id": "pass-0042",
    }
    station_client.publish(str(station), body)
    topic, got = station_client.answer()
    assert topic == f"{root}/gs/{station}/up/result"
    assert got == {
        "accepted": 1,
        "duplicates": 1,
        "rejected": [
            {"index": 2, "reason": "invalid-reception", "detail": "frequency_hz: field required"}
        ],
        "batch_id": "pass-0042",
    }
    assert counts(mqtt_ctx) == (1, 2, 1)
    # the same batch again (a station's retry): all duplicates, nothing new
    station_client.publish(str(station), body)
    _, again = station_client.answer()
    assert (again["accepted"], again["duplicates"]) == (0, 2)
    assert counts(mqtt_ctx) == (1, 2, 1)


def test_unknown_stations_and_malformed_messages_get_an_error_answer(
    mqtt_ctx, world, listener, station_client, root
):
    station, _ = add_station(mqtt_ctx, world)
    nobody = str(uuid.uuid4())
    station_client.publish(nobody, {"receptions": [], "batch_id": "b1"})
    topic, got = station_client.answer()
    assert topic == f"{root}/gs/{nobody}/up/result"
    assert got["error"] == "unknown-station" and got["batch_id"] == "b1"
    station_client.publish("not-a-uuid", {"receptions": []})
    assert station_client.answer()[1]["error"] == "unknown-station"
    station_client.publish(str(station), b"{not json")
    assert station_client.answer()[1]["error"] == "malformed-json"
    station_client.publish(str(station), {"receptions": "nope", "batch_id": "b2"})
    assert station_client.answer()[1] == {
        "error": "invalid-input",
        "detail": "receptions: must be a list",
        "batch_id": "b2",
    }
    station_client.publish(str(station), {"receptions": [0] * 5001})
    assert station_client.answer()[1]["error"] == "payload-too-large"


def test_a_listener_failing_before_its_ack_gets_the_message_again(
    mqtt_ctx, world, listener, station_client, monkeypatch
):
    """The batch commits, then the listener fails before acknowledging: the broker sends the
    message again after the reconnect, and the repeat is answered as duplicates."""
    station, _ = add_station(mqtt_ctx, world)
    dev = add_device(mqtt_ctx, world, world.tenant().id)
    real = ingest_mqtt.answer
    calls = []

    def crash_once(ctx, station_text, payload):
        result = real(ctx, station_text, payload)
        calls.append(result)
        if len(calls) == 1:
            raise RuntimeError("killed after commit, before the ack")
        return result

    monkeypatch.setattr(ingest_mqtt, "answer", crash_once)
    station_client.publish(str(station), {"receptions": [rec(dev.frame(5))], "batch_id": "x"})
    _, got = station_client.answer(timeout=30)
    assert (got["accepted"], got["duplicates"], got["batch_id"]) == (0, 1, "x")
    assert calls[0]["accepted"] == 1
    assert counts(mqtt_ctx) == (1, 1, 1)


def test_the_service_runs_only_with_a_broker_configured(ctx, mqtt_ctx):
    assert ingest_service(mqtt_ctx) is not None
    ctx.settings = ctx.settings.model_copy(update={"mqtt_url": None})
    assert ingest_service(ctx) is None


def test_broker_urls():
    plain = parse_broker_url("mqtt://127.0.0.1")
    assert (plain.host, plain.port, plain.tls) == ("127.0.0.1", 1883, False)
    secure = parse_broker_url("mqtts://gs:secret@broker.example:8884")
    assert (secure.port, secure.tls, secure.username, secure.password) == (
        8884,
        True,
        "gs",
        "secret",
    )
    escaped = parse_broker_url("mqtts://gs%40site:p%40ss%3Aw%2Frd@broker.example")
    assert (escaped.username, escaped.password) == ("gs@site", "p@ss:w/rd")
    with pytest.raises(ValueError):
        parse_broker_url("http://broker")
