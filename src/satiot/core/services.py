"""Long-running background services: the shape every worker takes.

It sits in the kernel so that any layer can offer a service (the network's ingest listener,
delivery dispatcher and downlink planner) without importing the server that runs them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from satiot.api.context import AppContext


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackgroundService:
    """Something that runs beside the web server until ``stop`` is set."""

    name: str
    run: Callable[[AppContext, threading.Event], None]


def periodic(
    name: str,
    interval_s: float,
    step: Callable[[AppContext], object],
    start: Callable[[AppContext], None] | None = None,
) -> BackgroundService:
    """A service that runs ``step`` every ``interval_s`` (after ``start``, once) until stopped.

    A failing step is logged and the next one runs on time: a periodic worker outlives one bad
    round (a database restart, a node that is down)."""

    def run(ctx: AppContext, stop: threading.Event) -> None:
        if start is not None:
            try:
                start(ctx)
            except Exception:
                log.exception("%s failed to start; stepping anyway", name)
        while not stop.is_set():
            try:
                step(ctx)
            except Exception:
                log.exception("%s step failed", name)
            stop.wait(interval_s)

    return BackgroundService(name, run)
