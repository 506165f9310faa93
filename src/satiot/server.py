"""Composes the HTTP application (API + console) and serves it on IPv4 and IPv6 loopback.

The composition lives here, above both ``api`` and ``web``, so neither imports the other's
wiring. Long-running background services (event consumers, the network's and the business
side's workers, the platform's own in :data:`BACKGROUND_SERVICES`) are started by
:func:`serve` beside the web server, and stopped with it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import uvicorn
from fastapi import FastAPI

from satiot.api.app import add_middleware, create_api
from satiot.api.context import AppContext
from satiot.core import bus, consumers, events
from satiot.core.audit_watch import audit_verifier
from satiot.core.bus import BusConfig
from satiot.core.clock import Clock, SystemClock
from satiot.core.config import Settings
from satiot.core.db import Database
from satiot.core.db_statistics import statistics_refresher
from satiot.core.runtime import freeze_startup
from satiot.core.services import BackgroundService
from satiot.web import console

log = logging.getLogger(__name__)


def build_context(settings: Settings, clock: Clock | None = None) -> AppContext:
    return AppContext(
        settings=settings,
        db=Database.connect(settings.resolved_database_url()),
        clock=clock or SystemClock(),
    )


def build_app(ctx: AppContext) -> FastAPI:
    app = create_api(ctx)
    console.mount(app, ctx)
    add_middleware(app)
    return app


#: Services started by ``satiot up`` besides the event consumers, the network's own
#: (:func:`network_services`) and the business side's (:func:`business_services`): the
#: platform's walk of the audit chain and, on SQLite, the planner's statistics; extensions
#: may register theirs here.
BACKGROUND_SERVICES: list[BackgroundService] = [audit_verifier(), statistics_refresher()]


def network_services(
    ctx: AppContext, *, port: int, twin: bool | None = None
) -> list[BackgroundService]:
    """The network server's workers for ``satiot up``, beside the event consumers:

    - ``network.delivery-dispatcher``: delivers customers' messages by signed webhook and
      MQTT, with retries, dead letters and replay (:mod:`satiot.network.webhooks`);
    - ``downlink-planner`` and ``downlink-expirer``: plan queued downlinks on the contact plan,
      expire what was not delivered in time (:mod:`satiot.network.downlink_workers`);
    - ``mqtt-ingest``: ground stations publishing receptions on ``satiot/gs/{id}/up`` (only
      when ``SATIOT_MQTT_URL`` is set; :mod:`satiot.network.ingest_mqtt`);
    - ``live-twin``: the digital twin's ground stations posting live traffic to this server on
      ``port`` (only when ``twin``, by default ``settings.twin``; :mod:`satiot.network.live`).
    """
    from satiot.network.downlink_workers import downlink_expirer, downlink_planner
    from satiot.network.ingest_mqtt import ingest_service
    from satiot.network.live import live_service
    from satiot.network.webhooks import dispatcher_service

    services = [dispatcher_service(), downlink_planner(), downlink_expirer()]
    mqtt = ingest_service(ctx)
    if mqtt is not None:
        services.append(mqtt)
    if ctx.settings.twin if twin is None else twin:
        services.append(live_service(port))
    return services


def business_services(*, twin: bool = False) -> list[BackgroundService]:
    """The BSS's periodic work for ``satiot up``: quota suspensions lifted when their month is
    over, due orders fulfilled, stale handles sent to the identification node
    (:mod:`satiot.bss.housekeeping`), and the job runner that does the work people queue (month
    end, long suspend/resume files: :mod:`satiot.bss.job_kinds`). Rating runs as an event
    consumer. With the live ``twin``, also ``twin-demo-business``: the twin's demo tenant
    onboarded as a customer and its terminals activated (:mod:`satiot.bss.demo_business`)."""
    import satiot.bss.job_kinds  # noqa: F401 - registers the business's job kinds
    from satiot.bss.demo_business import demo_business_service
    from satiot.bss.housekeeping import housekeeping_service
    from satiot.core.jobs import job_runner

    services = [housekeeping_service(), job_runner()]
    if twin:
        services.append(demo_business_service())
    return services


def _bus_config(settings: Settings) -> BusConfig | None:
    if not settings.bus_url:
        return None
    return BusConfig(url=settings.bus_url, stream=settings.bus_stream)


def _run_async(
    make: Callable[[asyncio.Event], Coroutine[Any, Any, object]],
) -> Callable[[AppContext, threading.Event], None]:
    """Adapt an asyncio service to a thread stopped by a threading.Event."""

    def run(_ctx: AppContext, stop: threading.Event) -> None:
        async def main() -> None:
            astop = asyncio.Event()
            task = asyncio.create_task(make(astop))
            while not stop.is_set() and not task.done():
                await asyncio.sleep(0.2)
            astop.set()
            await task

        asyncio.run(main())

    return run


def _db_consumer(consumer: events.Consumer) -> BackgroundService:
    def run(ctx: AppContext, stop: threading.Event) -> None:
        events.run_consumer(ctx.db, consumer, ctx.clock, stop)

    return BackgroundService(consumer.name, run)


def _bus_worker(ctx: AppContext, cfg: BusConfig, consumer: events.Consumer) -> BackgroundService:
    async def work(stop: asyncio.Event) -> None:
        await bus.work(ctx.db, cfg, consumer, ctx.clock, stop)

    return BackgroundService(consumer.name, _run_async(work))


def _relay(ctx: AppContext, cfg: BusConfig) -> BackgroundService:
    async def relay(stop: asyncio.Event) -> None:
        await bus.run_relay(ctx.db, cfg, ctx.clock, stop)

    return BackgroundService("bus-relay", _run_async(relay))


def consumer_services(ctx: AppContext) -> list[BackgroundService]:
    """The event-log machinery: every registered consumer, plus the NATS relay when
    ``SATIOT_BUS_URL`` is set (consumers then read from JetStream instead of the table)."""
    cfg = _bus_config(ctx.settings)
    found = consumers.registered().values()
    if cfg is None:
        return [_db_consumer(c) for c in found]
    return [_relay(ctx, cfg), *(_bus_worker(ctx, cfg, c) for c in found)]


def bind_sockets(host_v4: str, host_v6: str | None, port: int) -> list[socket.socket]:
    """Listening sockets on the IPv4 and (where the host has it) the IPv6 loopback."""
    sockets = []
    v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    v4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    v4.bind((host_v4, port))
    sockets.append(v4)
    if host_v6 and socket.has_ipv6:
        v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        v6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        v6.bind((host_v6, port, 0, 0))
        sockets.append(v6)
    for s in sockets:
        s.listen(2048)
        s.set_inheritable(True)
    return sockets


def serve(
    ctx: AppContext,
    sockets: Sequence[socket.socket],
    services: Sequence[BackgroundService] = (),
) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM), then stop background services cleanly."""
    app = build_app(ctx)
    freeze_startup()  # what is loaded now lives as long as the process
    stop = threading.Event()
    threads = [
        threading.Thread(target=svc.run, args=(ctx, stop), name=svc.name, daemon=True)
        for svc in services
    ]
    for t in threads:
        t.start()
    config = uvicorn.Config(app, log_level="info", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=list(sockets))
    except KeyboardInterrupt:
        pass  # uvicorn re-raises Ctrl-C after its graceful shutdown; stopping is the intent
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        ctx.db.dispose()
