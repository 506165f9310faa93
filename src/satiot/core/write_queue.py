"""First come, first served for the embedded database's single writer.

SQLite lets one transaction write at a time; the others wait in its busy handler, which sleeps
and retries (every 100 ms once it has waited a while). A waiter that wakes just after the lock
changed hands finds it taken again, so under steady writing — the live twin's ground stations,
the rating consumer, the demo customer's activations — a request that writes once (a log-in)
could wait ten seconds and more behind writers that came later. Within one process the writers
therefore queue here, in the order they asked, before SQLite's own lock; writers in other
processes (a CLI command beside ``satiot up``) still meet the busy handler.
"""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType


class WriteQueueTimeout(TimeoutError):
    """A writer waited longer than the queue allows (as SQLite's ``database is locked``)."""


class WriteQueue:
    """A lock handed to its waiters in the order they asked for it."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._guard = threading.Lock()
        self._waiters: deque[threading.Event] = deque()
        self._held = False

    @property
    def waiting(self) -> int:
        """Writers queued behind the one that holds it."""
        with self._guard:
            return len(self._waiters)

    def acquire(self) -> None:
        with self._guard:
            if not self._held and not self._waiters:
                self._held = True
                return
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(self._timeout_s):
            return
        with self._guard:
            if turn.is_set():  # handed over just as the wait ran out: it is ours
                return
            self._waiters.remove(turn)
        raise WriteQueueTimeout(
            f"waited {self._timeout_s:g} s for the database's writer; another transaction "
            "holds it too long"
        )

    def release(self) -> None:
        with self._guard:
            if self._waiters:
                self._waiters.popleft().set()  # handed over: stays held
            else:
                self._held = False

    def __enter__(self) -> WriteQueue:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
