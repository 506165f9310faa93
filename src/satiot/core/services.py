"""Long-running background services: the shape every worker takes.

It sits in the kernel so that any layer can offer a service (the network's ingest listener,
delivery dispatcher and downlink planner) without importing the server that runs them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from satiot.api.context import AppContext


@dataclass(frozen=True)
class BackgroundService:
    """Something that runs beside the web server until ``stop`` is set."""

    name: str
    run: Callable[[AppContext, threading.Event], None]
