"""The kill test: a consumer process SIGKILLed mid-batch, restarted, loses and repeats nothing."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from satiot.core import audit, events
from satiot.core.db import Database
from satiot.core.models import AuditEntry, ConsumerCursor, Event
from tests.core import killable_consumer as kc

ROOT = Path(__file__).resolve().parents[2]
N_EVENTS = 600
#: How many more lines the file must show in each run before that run is killed. Each value
#: leaves the run between two commits (a batch is 50 events).
KILL_AFTER = [23, 71, 140, 12, 88]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _start(db_url: str, path: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SATIOT_")}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.core.killable_consumer", db_url, str(path)], cwd=ROOT, env=env
    )


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def _position(db: Database) -> int:
    with db.read() as s:
        cursor = s.get(ConsumerCursor, kc.CONSUMER)
        return cursor.position if cursor else 0


def test_sigkilled_consumer_loses_nothing_and_applies_nothing_twice(db, clock, db_url, tmp_path):
    with db.write() as s:
        for i in range(N_EVENTS):
            events.emit(s, kc.EVENT_TYPE, at=clock.now(), payload={"i": i})
            if i % 100 == 0:  # other traffic the consumer must step over
                events.emit(s, "test.other", at=clock.now(), payload={})
    with db.read() as s:
        ids = list(s.scalars(select(Event.id).where(Event.type == kc.EVENT_TYPE)))
        head = events.head(s)
    assert len(ids) == N_EVENTS

    out = tmp_path / "applied.txt"
    kills = 0
    for extra in KILL_AFTER:
        before = len(_lines(out))
        if _position(db) >= head:
            break
        proc = _start(db_url, out)
        try:
            target = before + extra
            _wait_for(
                lambda p=proc, t=target: len(_lines(out)) >= t or p.poll() is not None,
                60,
                "consumer progress",
            )
            assert proc.poll() is None, "the consumer exited on its own"
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(30)
        assert proc.returncode == -signal.SIGKILL
        kills += 1
    assert kills >= 3
    assert _position(db) < head, "the kills should leave work for the final run"

    final = _start(db_url, out)
    try:
        _wait_for(lambda: _position(db) >= head, 120, "the consumer to reach the log head")
    finally:
        final.send_signal(signal.SIGTERM)
        final.wait(30)
    assert final.returncode == 0

    with db.read() as s:
        applied = collections.Counter(
            s.scalars(select(AuditEntry.target_id).where(AuditEntry.action == "test.applied"))
        )
        verdict = audit.verify(s)
    # Nothing lost, nothing applied twice in the database.
    assert set(applied) == {str(i) for i in ids}
    assert max(applied.values()) == 1
    assert verdict.ok, verdict.problem
    assert verdict.checked == N_EVENTS

    # The external effect is at-least-once: everything is there, and the killed batches were
    # redone (so a kill really landed mid-batch).
    seen = collections.Counter(_lines(out))
    assert set(seen) == {str(i) for i in ids}
    assert sum(seen.values()) > N_EVENTS
    assert any(n > 1 for n in seen.values())
