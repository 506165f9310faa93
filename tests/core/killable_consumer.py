"""A consumer process for the kill test (``python -m tests.core.killable_consumer URL FILE``).

Each event it handles records a database effect (an audit entry, committed with the batch) and
an external one (a line appended to FILE, at-least-once), then dawdles so that a batch takes a
while and a SIGKILL can land in the middle of one. SIGTERM stops it cleanly.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

from sqlalchemy.orm import Session

from satiot.core import audit
from satiot.core.clock import SystemClock
from satiot.core.db import Database
from satiot.core.events import Consumer, run_consumer
from satiot.core.models import Event

CONSUMER = "kill-test"
EVENT_TYPE = "test.killable"
BATCH_SIZE = 50


def main(url: str, path: str) -> None:
    clock = SystemClock()
    stop = threading.Event()

    def on_term(_signum: int, _frame: Any) -> None:
        # Not stop.set() here: the handler runs in the main thread, which may be inside
        # stop.wait() holding the event's (non-reentrant) lock, and set() would wait for it
        # forever. Another thread can wait for that lock.
        threading.Thread(target=stop.set, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    out = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process

    def handler(session: Session, event: Event) -> None:
        audit.record(
            session,
            at=clock.now(),
            actor="consumer:test",
            action="test.applied",
            target_type="event",
            target_id=event.id,
        )
        out.write(f"{event.id}\n")
        out.flush()
        os.fsync(out.fileno())
        time.sleep(0.004)

    db = Database.connect(url)
    consumer = Consumer(CONSUMER, handler, types=frozenset({EVENT_TYPE}), batch_size=BATCH_SIZE)
    print("ready", flush=True)
    run_consumer(db, consumer, clock, stop, idle_wait_s=0.05, error_wait_s=0.1)
    db.dispose()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
