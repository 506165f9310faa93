"""The audit chain's state for pages that show it on every view, kept current cheaply.

Walking the whole chain costs time in proportion to its length (tens of thousands of entries
take seconds), too much for a dashboard that every member of staff opens. A watch remembers
where the last intact walk ended (:class:`satiot.core.audit.Checkpoint`): a view verifies only
the entries written since, chained to that checkpoint. The whole chain is walked again when
the last whole walk is older than ``whole_every`` — by the ``audit-verifier`` service of
``satiot up`` (:func:`audit_verifier`), so that no view waits for it, or by the first view
after that when no service runs. A broken chain keeps no checkpoint: every view walks it all
again and stays broken until it is repaired.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from satiot.core import audit
from satiot.core.db import Database
from satiot.core.services import BackgroundService, periodic

if TYPE_CHECKING:
    from satiot.api.context import AppContext

#: How old the last walk of the whole chain may be before a view walks it again.
WHOLE_EVERY = timedelta(minutes=10)
#: How often the service walks the whole chain (well inside ``WHOLE_EVERY``).
SERVICE_INTERVAL_S = 300.0


@dataclass(frozen=True)
class Watched:
    """A verdict, and when the whole chain was last walked (None: only the new entries)."""

    verdict: audit.Verdict
    whole_at: datetime | None


class AuditWatch:
    """Shared by the requests of one application (it lives on the ``AppContext``)."""

    def __init__(self, whole_every: timedelta = WHOLE_EVERY) -> None:
        self.whole_every = whole_every
        self._lock = threading.Lock()
        self._checkpoint: audit.Checkpoint | None = None
        self._whole_at: datetime | None = None

    @property
    def whole_at(self) -> datetime | None:
        """When the whole chain was last walked and found intact."""
        with self._lock:
            return self._whole_at

    def current(self, session: Session, now: datetime) -> Watched:
        """The chain's state as of ``now``: the new entries since the checkpoint, or the whole
        chain when there is none or the last whole walk is too old."""
        with self._lock:
            since, whole_at = self._checkpoint, self._whole_at
        if since is None or whole_at is None or now - whole_at >= self.whole_every:
            return self.walk_whole(session, now)
        verdict = audit.verify(session, since=since)
        self._keep(verdict, None)
        return Watched(verdict, whole_at)

    def walk_whole(self, session: Session, now: datetime) -> Watched:
        verdict = audit.verify(session)
        self._keep(verdict, now)
        return Watched(verdict, now)

    def _keep(self, verdict: audit.Verdict, whole_at: datetime | None) -> None:
        with self._lock:
            if verdict.checkpoint is None:  # broken: walk it all next time
                self._checkpoint = self._whole_at = None
                return
            if self._checkpoint is None or verdict.checkpoint.seq >= self._checkpoint.seq:
                self._checkpoint = verdict.checkpoint
            if whole_at is not None:
                self._whole_at = whole_at


def _walk(ctx: AppContext) -> None:
    db: Database = ctx.db
    with db.read() as session:
        ctx.audit_watch.walk_whole(session, ctx.clock.now())


def audit_verifier() -> BackgroundService:
    """Walk the whole audit chain every few minutes for the pages that show its state."""
    return periodic("audit-verifier", SERVICE_INTERVAL_S, _walk)
