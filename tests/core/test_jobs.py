"""The job runner: queued work runs once, as its asker, and says how it went."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from satiot.api.context import AppContext
from satiot.core import jobs
from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import ROLES, Role
from satiot.core.auth.tenancy import ALL_TENANTS
from satiot.core.clock import ManualClock
from satiot.core.errors import Conflict, InvalidInput
from satiot.core.models import Job, Tenant
from tests.factories import World

CALLS: list[dict[str, Any]] = []


def _count(run: jobs.JobRun) -> dict[str, Any]:
    """Counts to ``n`` in steps, reporting progress; sees only its asker's tenants."""
    n = run.params["n"]
    for i in range(1, n + 1):
        run.progress(i, n)
    with run.read() as session:
        tenants = len(session.scalars(select(Tenant.id)).all())
    CALLS.append({"actor": run.principal.actor, "tenants": tenants})
    return {"counted": n}


def _refuse(run: jobs.JobRun) -> dict[str, Any]:
    raise InvalidInput("nothing to count", field="n")


def _crash(run: jobs.JobRun) -> dict[str, Any]:
    raise ValueError("a bug")


def _commit_then_crash(run: jobs.JobRun) -> dict[str, Any]:
    """Records its success with its work, then fails after the commit (as a runner killed
    between the two would)."""
    with run.write() as session:
        run.finish_in(session, {"done": True})
    raise RuntimeError("after the commit")


KINDS = {
    name: jobs.register(
        jobs.JobKind(
            name=f"test-{name}",
            run=fn,
            describe=lambda p, name=name: f"Test {name}",
            summarize=lambda r: f"counted {r.get('counted')}",
            read_scope="bills:read",
        )
    )
    for name, fn in (
        ("count", _count),
        ("refuse", _refuse),
        ("crash", _crash),
        ("commit-then-crash", _commit_then_crash),
    )
}


def _principal(tenant_id: Any, role: Role, username: str) -> Principal:
    return Principal(tenant_id, role, ROLES[role].scopes, uuid.uuid4(), username, "session")


def _submit(ctx: AppContext, principal: Principal, kind: str, key: str, **params: Any) -> Job:
    with ctx.db.write() as s:
        job = jobs.submit(s, principal, KINDS[kind], params, key=key, at=ctx.clock.now())
        s.expunge(job)
    return job


def _job(ctx: AppContext, job_id: Any) -> Job:
    with ctx.db.read() as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job


def _run(ctx: AppContext) -> list[Any]:
    return jobs.run_pending(ctx.db, ctx.clock, ctx.settings)


def test_a_job_runs_once_as_its_asker_with_progress(ctx: AppContext, world: World) -> None:
    CALLS.clear()
    customer = world.tenant("acme")
    world.tenant("other")
    asker = _principal(customer.id, Role.CUSTOMER_ADMIN, "ann")
    job = _submit(ctx, asker, "count", "count:acme", n=3)
    assert (job.state, job.done, job.asked_by) == ("queued", 0, "user:ann")
    with pytest.raises(Conflict, match="Test count is already queued or running"):
        _submit(ctx, asker, "count", "count:acme", n=5)

    assert _run(ctx) == [job.id]
    done = _job(ctx, job.id)
    assert (done.state, done.done, done.total, done.attempts) == ("succeeded", 3, 3, 1)
    assert done.result == {"counted": 3} and done.error is None
    assert jobs.outcome(done) == "counted 3" and jobs.describe(done) == "Test count"
    # as ann, in her tenant only: one tenant seen, however many there are
    assert CALLS == [{"actor": "user:ann", "tenants": 1}]
    assert _run(ctx) == []  # done is done
    # the key is free again once the job is over
    assert _submit(ctx, asker, "count", "count:acme", n=1).state == "queued"


def test_jobs_run_in_the_order_they_were_asked(ctx: AppContext, world: World) -> None:
    clock = ctx.clock
    assert isinstance(clock, ManualClock)
    first = _submit(ctx, world.system, "count", "a", n=1)
    clock.advance(1)
    second = _submit(ctx, world.system, "count", "b", n=1)
    assert _run(ctx) == [first.id, second.id]


def test_refusals_and_errors_fail_the_job_with_a_reason(ctx: AppContext, world: World) -> None:
    refused = _submit(ctx, world.system, "refuse", "r")
    crashed = _submit(ctx, world.system, "crash", "c")
    _run(ctx)
    assert (_job(ctx, refused.id).state, _job(ctx, refused.id).error) == (
        "failed",
        "nothing to count",
    )
    assert jobs.outcome(_job(ctx, crashed.id)) == "internal error (ValueError)"


def test_work_that_recorded_its_success_is_never_run_again(ctx: AppContext, world: World) -> None:
    job = _submit(ctx, world.system, "commit-then-crash", "k")
    _run(ctx)
    done = _job(ctx, job.id)
    assert done.state == "succeeded" and done.result == {"done": True}
    assert _run(ctx) == []


def test_a_job_whose_runner_died_is_taken_again_then_given_up(
    ctx: AppContext, world: World
) -> None:
    clock = ctx.clock
    assert isinstance(clock, ManualClock)
    job = _submit(ctx, world.system, "count", "k", n=1)
    for attempt in range(1, jobs.MAX_ATTEMPTS + 1):
        with ctx.db.write() as s:  # a runner takes it, then dies
            taken = jobs.claim(s, at=clock.now())
            assert taken is not None and taken.id == job.id and taken.attempts == attempt
        with ctx.db.write() as s:  # its lease still runs: nobody else takes it
            assert jobs.claim(s, at=clock.now()) is None
        clock.advance(jobs.LEASE + timedelta(seconds=1))
    assert _run(ctx) == []
    gone = _job(ctx, job.id)
    assert gone.state == "failed" and gone.error == "stopped 3 times without finishing"


def test_only_known_kinds_are_queued_and_seen(ctx: AppContext, world: World) -> None:
    stranger = jobs.JobKind("test-unregistered", _count, str, str, "bills:read")
    with ctx.db.write() as s, pytest.raises(InvalidInput, match="unknown job kind"):
        jobs.submit(s, world.system, stranger, {}, key="x", at=ctx.clock.now())
    job = _submit(ctx, world.system, "count", "x", n=1)
    customer = world.tenant("acme")
    staff = _principal(world.operator.id, Role.BILLING, "bo")
    assert staff.tenant_scope is ALL_TENANTS
    outsider = _principal(customer.id, Role.CUSTOMER_ADMIN, "ann")
    auditor_without_scope = Principal(
        world.operator.id, staff.role, frozenset(), None, "x", "session"
    )
    assert jobs.may_see(staff, job) and not jobs.may_see(outsider, job)
    assert not jobs.may_see(auditor_without_scope, job)


def test_the_runner_service_takes_queued_jobs_on_its_own(ctx: AppContext, world: World) -> None:
    """What ``satiot up`` starts: a thread that runs what is queued until it is stopped."""
    job = _submit(ctx, world.system, "count", "svc", n=2)
    stop = threading.Event()
    worker = threading.Thread(target=jobs.job_runner(interval_s=0.05).run, args=(ctx, stop))
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while _job(ctx, job.id).state != "succeeded" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert _job(ctx, job.id).result == {"counted": 2}
