"""A long suspend/resume file as a job: checked whole when queued, applied by the runner as
its sender (in parts: ``apply_in_parts``, tested with the file itself), taken up again where it
stopped, and failed with nothing changed when the devices changed since so that the file no
longer applies."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from satiot.api.deps import scope_session
from satiot.bss.status_import import StatusImportRejected, read_lines
from satiot.bss.status_jobs import queue_file
from satiot.bss.subscriptions import suspend_subscription, terminate_subscription
from satiot.core import jobs
from satiot.core.models import Job
from tests.bss.order_world import shop, terminal
from tests.bss.test_activation import activate_one, customer_admin
from tests.bss.test_status_import import _file, _statuses


def _queue(ctx, s, text: bytes) -> Job:  # type: ignore[no-untyped-def]
    with ctx.db.write() as session:
        scope_session(session, s.tenant.id)
        job = queue_file(session, customer_admin(s), read_lines(text, encoding="utf-8"),
                         at=ctx.clock.now())  # fmt: skip
        session.expunge(job)
        return job


def _job(ctx, job_id) -> Job:  # type: ignore[no-untyped-def]
    with ctx.db.read() as session:
        found = session.get(Job, job_id)
        assert found is not None
        session.expunge(found)
        return found


def test_a_file_is_checked_when_queued_then_applied_by_the_runner_as_its_sender(ctx, world):
    s = shop(ctx, world)
    subs = [activate_one(s, terminal()) for _ in range(5)]
    with pytest.raises(StatusImportRejected):  # a bad line: nothing queued
        _queue(ctx, s, _file(*(f"{x.dev_eui},suspend,winter" for x in subs), "nobody,stop,x"))
    with ctx.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
    job = _queue(ctx, s, _file(*(f"{x.dev_eui},suspend,winter" for x in subs)))
    # the runner died after the first part: those lines are done already
    with ctx.db.write() as session:
        for x in subs[:2]:
            suspend_subscription(session, customer_admin(s), x.id, "winter", ctx.clock.now())
    assert jobs.run_pending(ctx.db, ctx.clock, ctx.settings) == [job.id]
    done = _job(ctx, job.id)
    assert (done.state, done.done, done.total) == ("succeeded", 5, 5)
    assert done.result == {"lines": 5, "suspended": 3, "resumed": 0, "already": 2}
    assert done.asked_by == customer_admin(s).actor
    assert _statuses(ctx, subs) == [("suspended", "suspended")] * 5


def test_a_file_that_no_longer_applies_fails_its_job_with_nothing_changed(ctx, world):
    s = shop(ctx, world)
    subs = [activate_one(s, terminal()) for _ in range(3)]
    job = _queue(ctx, s, _file(*(f"{x.dev_eui},suspend,winter" for x in subs)))
    with ctx.db.write() as session:  # ended after the file was queued
        terminate_subscription(session, world.system, subs[2].id, "ended", ctx.clock.now())
    jobs.run_pending(ctx.db, ctx.clock, ctx.settings)
    failed = _job(ctx, job.id)
    assert failed.state == "failed"
    assert failed.error is not None and failed.error.startswith("line 4: no live subscription")
    assert "nothing was changed" in failed.error
    assert _statuses(ctx, subs[:2]) == [("active", "active")] * 2
