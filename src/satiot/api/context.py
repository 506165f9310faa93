"""What the running application holds: settings, database, clock and metrics registry.

It lives on ``app.state.ctx``; handlers reach it through dependencies, never a module global,
so tests can run several apps side by side with their own databases and clocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from prometheus_client import CollectorRegistry

from satiot.api.metrics import Meters
from satiot.core.audit_watch import AuditWatch
from satiot.core.clock import Clock
from satiot.core.config import Settings
from satiot.core.db import Database
from satiot.network.keys import Kek, load_kek


@dataclass
class AppContext:
    settings: Settings
    db: Database
    clock: Clock
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    @cached_property
    def meters(self) -> Meters:
        """What ``/metrics`` shows, in :attr:`registry`: made once, by the first request."""
        return Meters(self.registry, self.db)

    @cached_property
    def kek(self) -> Kek:
        """The key-encryption key, loaded (or, embedded, created) on first use."""
        return load_kek(self.settings)

    @cached_property
    def audit_watch(self) -> AuditWatch:
        """Where the last intact walk of the audit chain ended (for the dashboard)."""
        return AuditWatch()
