"""The embedded database's writers are served in the order they came."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from satiot.core.db import Database
from satiot.core.write_queue import WriteQueue, WriteQueueTimeout


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.001)


def test_waiters_get_the_lock_in_the_order_they_asked() -> None:
    queue = WriteQueue(timeout_s=10)
    served: list[int] = []
    queue.acquire()
    threads = []
    for n in range(6):

        def write(n: int = n) -> None:
            with queue:
                served.append(n)

        thread = threading.Thread(target=write)
        thread.start()
        _until(lambda n=n: queue.waiting == n + 1, f"writer {n} queued")
        threads.append(thread)
    queue.release()
    for thread in threads:
        thread.join(10)
    assert served == [0, 1, 2, 3, 4, 5]
    assert queue.waiting == 0


def test_a_writer_that_waits_too_long_gives_up_and_the_queue_goes_on() -> None:
    queue = WriteQueue(timeout_s=0.2)
    queue.acquire()
    failed: list[BaseException] = []

    def late() -> None:
        try:
            queue.acquire()
        except WriteQueueTimeout as exc:
            failed.append(exc)

    thread = threading.Thread(target=late)
    thread.start()
    thread.join(10)
    assert failed and "waited 0.2 s" in str(failed[0])
    assert queue.waiting == 0  # the one that gave up left the line
    queue.release()
    with queue:  # free again, at once
        assert queue.waiting == 0


def test_an_exception_inside_releases_the_lock() -> None:
    queue = WriteQueue(timeout_s=1)
    with pytest.raises(RuntimeError), queue:
        raise RuntimeError("rolled back")
    with queue:
        pass


def test_a_lone_write_is_not_starved_by_a_busy_writer(tmp_path: Path) -> None:
    """One writer commits in a tight loop (as the twin's stations do); another asks once. It is
    served after at most the transaction running when it asked, not when the loop happens to
    leave a gap as SQLite's busy handler would have it."""
    db = Database.connect(f"sqlite:///{tmp_path / 'queue.db'}")
    with db.write() as s:
        s.execute(text("CREATE TABLE t (n INTEGER)"))
    done = threading.Event()
    commits = 0

    def busy() -> None:
        nonlocal commits
        while not done.is_set():
            with db.write() as s:
                s.execute(text("INSERT INTO t VALUES (1)"))
                time.sleep(0.002)  # some work while holding the lock
            commits += 1

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        _until(lambda: commits >= 5, "the busy writer got going")
        before = commits
        with db.write() as s:
            s.execute(text("INSERT INTO t VALUES (2)"))
            in_between = commits - before
    finally:
        done.set()
        thread.join(10)
        db.dispose()
    assert in_between <= 2, f"{in_between} transactions of the busy writer went first"


def test_a_writer_that_waits_too_long_fails_as_a_locked_database(tmp_path: Path) -> None:
    """The same error SQLite gives when its busy timeout runs out: ingest and order fulfilment
    retry it, and nothing of the failed unit of work is written."""
    db = Database.connect(f"sqlite:///{tmp_path / 'locked.db'}", busy_timeout_s=0.2)
    with db.write() as s:
        s.execute(text("CREATE TABLE t (n INTEGER)"))
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with db.write() as s:
            s.execute(text("INSERT INTO t VALUES (1)"))
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(10)
        with pytest.raises(OperationalError) as caught, db.write() as s:
            s.execute(text("INSERT INTO t VALUES (2)"))
        assert "database is locked" in str(caught.value.orig)
    finally:
        release.set()
        thread.join(10)
    with db.read() as s:
        assert s.execute(text("SELECT n FROM t")).scalars().all() == [1]
    db.dispose()
