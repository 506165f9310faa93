"""Which network services ``satiot up`` runs, from the settings."""

from __future__ import annotations

import threading
import time

from satiot.api.context import AppContext
from satiot.server import network_services


def _names(ctx: AppContext, twin: bool | None = None) -> set[str]:
    return {s.name for s in network_services(ctx, port=8000, twin=twin)}


def _with(ctx: AppContext, **settings: object) -> AppContext:
    return AppContext(settings=ctx.settings.model_copy(update=settings), db=ctx.db, clock=ctx.clock)


def test_delivery_always_runs_and_the_twin_by_default(ctx: AppContext):
    names = _names(ctx)
    assert {"network.delivery-dispatcher", "downlink-planner", "downlink-expirer"} <= names
    assert "live-twin" in names
    assert "mqtt-ingest" not in names  # no broker configured


def test_the_twin_can_be_turned_off(ctx: AppContext):
    assert "live-twin" not in _names(_with(ctx, twin=False))
    assert "live-twin" not in _names(ctx, twin=False)  # --no-twin wins over the setting
    assert "live-twin" in _names(_with(ctx, twin=False), twin=True)


def test_mqtt_ingest_runs_when_a_broker_is_configured(ctx: AppContext):
    assert "mqtt-ingest" in _names(_with(ctx, mqtt_url="mqtt://127.0.0.1:1883"))


def test_the_business_side_runs_rating_and_its_housekeeping(ctx: AppContext):
    from satiot.server import business_services, consumer_services

    assert {"bss-housekeeping", "jobs"} <= {s.name for s in business_services()}
    assert "twin-demo-business" not in {s.name for s in business_services()}
    assert "twin-demo-business" in {s.name for s in business_services(twin=True)}
    assert any("bss.rating" in s.name for s in consumer_services(ctx))


def test_the_audit_chain_is_walked_beside_the_server(ctx: AppContext, world):
    from satiot.core.audit_watch import audit_verifier
    from satiot.server import BACKGROUND_SERVICES

    assert "audit-verifier" in {s.name for s in BACKGROUND_SERVICES}
    assert ctx.audit_watch.whole_at is None
    stop = threading.Event()
    worker = threading.Thread(target=audit_verifier().run, args=(ctx, stop))
    worker.start()
    deadline = time.monotonic() + 20
    while ctx.audit_watch.whole_at is None and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    worker.join(timeout=10)
    assert ctx.audit_watch.whole_at == ctx.clock.now()
