"""Composes the HTTP application (API + console) and serves it on IPv4 and IPv6 loopback.

The composition lives here, above both ``api`` and ``web``, so neither imports the other's
wiring. Long-running background services (event consumers today, the digital twin's traffic
generator once it exists) are registered in :data:`BACKGROUND_SERVICES` and started by
:func:`serve` beside the web server, and stopped with it.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from satiot.api.app import add_middleware, create_api
from satiot.api.context import AppContext
from satiot.core.clock import Clock, SystemClock
from satiot.core.config import Settings
from satiot.core.db import Database
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
    add_middleware(app, ctx)
    return app


@dataclass(frozen=True)
class BackgroundService:
    """Something that runs beside the web server until ``stop`` is set."""

    name: str
    run: Callable[[AppContext, threading.Event], None]


#: Services started by ``satiot up``. The digital twin registers itself here.
BACKGROUND_SERVICES: list[BackgroundService] = []


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
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        ctx.db.dispose()
