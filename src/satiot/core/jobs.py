"""Background jobs: work a person asks for that outlasts a web request.

A month's bill run over 100,000 accounts, or validating and sending all of its bills, takes a
minute or more: a browser waiting on one request for that shows nothing, and gives up. So the
console and the API (with ``Prefer: respond-async``) queue such work as a :class:`Job` row and
answer at once; the runner that ``satiot up`` starts (:func:`job_runner`) takes queued jobs in
the order they were asked for, runs them as the person who asked, and records their progress
and outcome on the row, which the pages and ``GET /api/v1/jobs/{id}`` show.

- **Kinds** are registered by the layer that owns the work (:func:`register`; the bill-run
  kinds live in :mod:`satiot.bss.billing_jobs`). A kind's ``run`` receives a :class:`JobRun`:
  its parameters, the asker, a clock reading, the database's ``write``/``read`` units of work
  and ``progress(done, total)``.
- **Exactly once**: a kind whose work is one transaction records its outcome in that same
  transaction (:meth:`JobRun.finish_in`), so a runner that dies after the commit leaves a
  finished job, never one that is run again. Work in many transactions (releasing a run
  chunk by chunk) must be safe to resume: a job whose runner went silent past its lease is
  taken again, up to :data:`MAX_ATTEMPTS` times.
- **One at a time per subject**: a job names what it acts on (``key``, e.g. the month it
  bills); a second one for the same key is refused while the first waits or runs.
- Several runners (several ``satiot up`` on one PostgreSQL) each take a different job: the
  claim skips rows another runner holds locked.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import Role
from satiot.core.auth.tenancy import scope_session
from satiot.core.clock import Clock
from satiot.core.config import Settings
from satiot.core.db import Database
from satiot.core.errors import Conflict, DomainError, InvalidInput
from satiot.core.ids import new_id
from satiot.core.models import Job
from satiot.core.services import BackgroundService, periodic
from satiot.core.states import JOB

log = logging.getLogger(__name__)

#: States in which a job is still to be done (a second job for its key is refused).
ACTIVE: Final = ("queued", "running")
#: How long a runner may go without a word (progress or outcome) before its job is taken
#: again: longer than the longest single transaction a kind runs (a bill run).
LEASE: Final = timedelta(minutes=15)
#: Attempts before a job whose runners keep dying is given up as failed.
MAX_ATTEMPTS: Final = 3
#: Progress is written at most this often (each write is a transaction of its own).
PROGRESS_EVERY: Final = timedelta(seconds=1)

Write = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class JobKind:
    """A kind of job: its name, how to run it, how people read it (what it does, from its
    parameters; what it did, from its result) and who may see it."""

    name: str
    run: Callable[[JobRun], dict[str, Any]]
    describe: Callable[[dict[str, Any]], str]
    summarize: Callable[[dict[str, Any]], str]
    read_scope: str


_KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    """Make ``kind`` known to :func:`submit` and the runner (once per name)."""
    known = _KINDS.get(kind.name)
    if known is not None and known is not kind:
        raise ValueError(f"job kind {kind.name!r} is registered already")
    _KINDS[kind.name] = kind
    return kind


def kind_of(job: Job) -> JobKind | None:
    return _KINDS.get(job.kind)


def describe(job: Job) -> str:
    """What the job does, in words ("Bill 2026-11")."""
    kind = kind_of(job)
    return job.kind if kind is None else kind.describe(job.params)


def outcome(job: Job) -> str:
    """How the job ended, in words: what it did, or why it failed ("" while it runs)."""
    if job.state == "failed":
        return job.error or "failed"
    kind = kind_of(job)
    if job.state != "succeeded" or kind is None or job.result is None:
        return ""
    return kind.summarize(job.result)


def visible_kinds(principal: Principal) -> list[str]:
    """The kinds of job ``principal`` may read (by their read scopes)."""
    return [k.name for k in _KINDS.values() if k.read_scope in principal.scopes]


def may_see(principal: Principal, job: Job) -> bool:
    """Whether ``principal`` may read ``job``: its kind's read scope, in its tenant."""
    kind = kind_of(job)
    if kind is None or kind.read_scope not in principal.scopes:
        return False
    return principal.all_tenants or job.tenant_id == principal.tenant_id


def submit(
    session: Session,
    principal: Principal,
    kind: JobKind,
    params: dict[str, Any],
    *,
    key: str,
    at: datetime,
) -> Job:
    """Queue a job of ``kind`` as ``principal``; 409 while another job for ``key`` waits or
    runs (the first one's id is in the message)."""
    if _KINDS.get(kind.name) is not kind:
        raise InvalidInput(f"unknown job kind {kind.name!r}", field="kind")
    busy = session.scalars(
        select(Job.id).where(Job.key == key, Job.state.in_(ACTIVE)).limit(1)
    ).first()
    if busy is not None:
        raise Conflict(f"{kind.describe(params)} is already queued or running (job {busy})")
    job = Job(
        id=new_id(),
        tenant_id=principal.tenant_id,
        kind=kind.name,
        key=key,
        params=params,
        principal=_principal_json(principal),
        asked_by=principal.actor,
        state=JOB.initial,
        done=0,
        total=0,
        attempts=0,
        created_at=at,
    )
    session.add(job)
    session.flush()
    return job


def _principal_json(principal: Principal) -> dict[str, Any]:
    data = asdict(principal)
    data["scopes"] = sorted(principal.scopes)
    for name in ("tenant_id", "user_id", "credential_id"):
        data[name] = None if data[name] is None else str(data[name])
    return data


def _principal(data: dict[str, Any]) -> Principal:
    def uid(value: str | None) -> uuid.UUID | None:
        return None if value is None else uuid.UUID(value)

    tenant = uid(data["tenant_id"])
    assert tenant is not None
    return Principal(
        tenant_id=tenant,
        role=Role(data["role"]),
        scopes=frozenset(data["scopes"]),
        user_id=uid(data["user_id"]),
        username=data["username"],
        via=data["via"],
        credential_id=uid(data["credential_id"]),
    )


@dataclass
class JobRun:
    """What a running job's kind is handed."""

    job_id: uuid.UUID
    params: dict[str, Any]
    principal: Principal
    at: datetime
    settings: Settings
    write: Write
    read: Write
    clock: Clock
    finished: bool = False
    _told: datetime | None = field(default=None, repr=False)

    def progress(self, done: int, total: int) -> None:
        """Record how far the job is (at most every :data:`PROGRESS_EVERY`), which also
        renews its lease."""
        now = self.clock.now()
        if self._told is not None and now - self._told < PROGRESS_EVERY and done < total:
            return
        self._told = now
        with self.write() as session:
            job = session.get(Job, self.job_id)
            if job is not None and job.state == "running":
                job.done, job.total = done, total
                job.lease_until = now + LEASE

    def finish_in(self, session: Session, result: dict[str, Any]) -> None:
        """Record success in ``session``: the transaction that did the work."""
        job = session.get(Job, self.job_id)
        assert job is not None
        _finish(job, "succeeded", self.clock.now(), result=result)
        self.finished = True


def _finish(
    job: Job, state: str, at: datetime, *, result: dict[str, Any] | None = None, error: str = ""
) -> None:
    JOB.check(job.state, state)
    job.state, job.finished_at, job.lease_until = state, at, None
    job.result = result
    job.error = error or None
    if state == "succeeded" and job.total:
        job.done = job.total


def claim(session: Session, *, at: datetime) -> Job | None:
    """Take the oldest job that is queued, or running with its lease run out; a job taken
    :data:`MAX_ATTEMPTS` times already is marked failed instead."""
    while True:
        job = session.scalars(
            select(Job)
            .where(
                or_(
                    Job.state == "queued",
                    (Job.state == "running") & (Job.lease_until < at),
                )
            )
            .order_by(Job.created_at, Job.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if job is None:
            return None
        if job.attempts >= MAX_ATTEMPTS:
            _finish(job, "failed", at, error=f"stopped {job.attempts} times without finishing")
            continue
        JOB.check(job.state, "running")
        job.state, job.attempts, job.lease_until = "running", job.attempts + 1, at + LEASE
        job.started_at = job.started_at or at
        return job


def run_next(db: Database, clock: Clock, settings: Settings) -> uuid.UUID | None:
    """Take one job and run it to its end; its id, or None when nothing is waiting.

    A kind that refuses (a domain error: nothing to bill) fails the job with its message; an
    unexpected error fails it with the error's type, and is logged."""
    with db.write() as session:
        job = claim(session, at=clock.now())
        if job is None:
            return None
        job_id, kind_name, params = job.id, job.kind, dict(job.params)
        principal = _principal(job.principal)
    run = JobRun(
        job_id,
        params,
        principal,
        clock.now(),
        settings,
        _scoped(db.write, principal),
        _scoped(db.read, principal),
        clock,
    )
    kind = _KINDS.get(kind_name)
    try:
        if kind is None:
            raise InvalidInput(f"unknown job kind {kind_name!r}", field="kind")
        result = kind.run(run)
    except DomainError as exc:
        _end(db, clock, job_id, "failed", error=exc.detail)
    except Exception as exc:
        log.exception("job %s (%s) failed", job_id, kind_name)
        _end(db, clock, job_id, "failed", error=f"internal error ({type(exc).__name__})")
    else:
        if not run.finished:
            _end(db, clock, job_id, "succeeded", result=result)
    return job_id


def _scoped(units: Write, principal: Principal) -> Write:
    """Units of work scoped to the asker's tenants, as their own requests are."""

    @contextmanager
    def unit() -> Iterator[Session]:
        with units() as session:
            scope_session(session, principal.tenant_scope)
            yield session

    return unit


def _end(
    db: Database,
    clock: Clock,
    job_id: uuid.UUID,
    state: str,
    *,
    result: dict[str, Any] | None = None,
    error: str = "",
) -> None:
    with db.write() as session:
        job = session.get(Job, job_id)
        if job is not None and job.state == "running":
            _finish(job, state, clock.now(), result=result, error=error)


def run_pending(db: Database, clock: Clock, settings: Settings) -> list[uuid.UUID]:
    """Run jobs until none is waiting (the runner's round; tests call it directly)."""
    ran = []
    while (job_id := run_next(db, clock, settings)) is not None:
        ran.append(job_id)
    return ran


def active(session: Session, kinds: tuple[str, ...]) -> list[Job]:
    """Jobs of ``kinds`` waiting or running, oldest first."""
    return list(
        session.scalars(
            select(Job)
            .where(Job.kind.in_(kinds), Job.state.in_(ACTIVE))
            .order_by(Job.created_at, Job.id)
        )
    )


def recent(session: Session, kinds: tuple[str, ...], limit: int = 5) -> list[Job]:
    """The latest jobs of ``kinds``, newest first."""
    return list(
        session.scalars(
            select(Job)
            .where(Job.kind.in_(kinds))
            .order_by(Job.created_at.desc(), Job.id.desc())
            .limit(limit)
        )
    )


#: The runner's name in ``satiot up``'s services.
NAME: Final = "jobs"


def job_runner(*, interval_s: float = 1.0) -> BackgroundService:
    """The ``jobs`` service: every ``interval_s``, run every job waiting, one after another
    (:func:`run_pending`; a failing round is logged and the next one runs on time).

    One job at a time per runner: on SQLite every job writes through the one writer anyway,
    and a bill run wants the database to itself."""
    return periodic(NAME, interval_s, lambda ctx: run_pending(ctx.db, ctx.clock, ctx.settings))
