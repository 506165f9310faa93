"""The audit log: append-only and hash-chained.

Each entry's hash covers its own fields and the previous entry's hash, and the log head keeps
the last sequence number and hash. Changing a row breaks its hash; deleting or reordering rows
breaks the chain or leaves a gap; deleting the newest rows leaves the head pointing past the
end. :func:`verify` walks the chain and names the first row where any of that happened.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.core.clock import as_utc
from satiot.core.logs import queue, register_log
from satiot.core.models import AuditEntry, LogHead

LOG_NAME = "audit"
GENESIS = "0" * 64


def jsonable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Store exactly what is hashed: round-trip through JSON so types cannot drift."""
    if value is None:
        return None
    result: dict[str, Any] = json.loads(json.dumps(value, default=str, sort_keys=True))
    return result


def entry_hash(entry: AuditEntry) -> str:
    """The hash of an entry's content chained to its predecessor."""
    body = [
        entry.seq,
        entry.at.isoformat(timespec="microseconds"),
        entry.actor,
        str(entry.tenant_id) if entry.tenant_id else None,
        entry.action,
        entry.target_type,
        entry.target_id,
        entry.before,
        entry.after,
        entry.reason,
        entry.prev_hash,
    ]
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _write_audit(session: Session, entries: Sequence[Any], first: int, prev_hash: str) -> str:
    for offset, entry in enumerate(entries):
        entry.seq = first + offset
        entry.prev_hash = prev_hash
        entry.hash = prev_hash = entry_hash(entry)
    session.add_all(entries)
    return prev_hash


register_log(LOG_NAME, _write_audit)


def record(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | uuid.UUID,
    tenant_id: uuid.UUID | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Queue an audit entry; it commits with (and only with) the change it describes."""
    queue(
        session,
        LOG_NAME,
        AuditEntry(
            at=as_utc(at),
            actor=actor,
            tenant_id=tenant_id,
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            before=jsonable(before),
            after=jsonable(after),
            reason=reason,
        ),
    )


@dataclass(frozen=True)
class Checkpoint:
    """The last entry of a chain found intact: a later verification may start after it."""

    seq: int
    hash: str


@dataclass(frozen=True)
class Verdict:
    """The outcome of a verification: ``problem`` is None when the chain is intact.

    ``checked`` counts the entries known intact, those before a ``since`` checkpoint
    included; ``checkpoint`` is where the next verification may start (intact chains only)."""

    checked: int
    last_seq: int
    problem: str | None = None
    seq: int | None = None
    checkpoint: Checkpoint | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(session: Session, *, chunk: int = 5000, since: Checkpoint | None = None) -> Verdict:
    """Walk the chain in sequence order and report the first inconsistency.

    From the start, or after ``since`` (an earlier verdict's checkpoint): then only the newer
    entries are read, chained to the checkpoint's entry, which must still be there unchanged.
    An alteration of an entry before the checkpoint is found only by a walk from the start.
    """
    expected_seq, prev, checked = 1, GENESIS, 0
    rows_after = select(AuditEntry)
    if since is not None and since.seq > 0:
        anchor = session.get(AuditEntry, since.seq)
        if anchor is None or anchor.hash != since.hash or entry_hash(anchor) != anchor.hash:
            problem = f"row {since.seq} changed or deleted since it was verified"
            return Verdict(since.seq - 1, since.seq, problem, since.seq)
        expected_seq, prev, checked = since.seq + 1, since.hash, since.seq
        rows_after = rows_after.where(AuditEntry.seq > since.seq)
    rows = session.execute(
        rows_after.order_by(AuditEntry.seq).execution_options(yield_per=chunk)
    ).scalars()
    for entry in rows:
        checked += 1
        if entry.seq != expected_seq:
            missing = (
                f"{expected_seq}"
                if entry.seq == expected_seq + 1
                else (f"{expected_seq}..{entry.seq - 1}")
            )
            return Verdict(checked, entry.seq, f"row(s) {missing} deleted", expected_seq)
        # The link first: a moved row still carries its old predecessor's hash, so a reordering
        # is reported as one rather than as an alteration (its own hash covers its seq too).
        if entry.prev_hash != prev:
            return Verdict(
                checked,
                entry.seq,
                f"row {entry.seq} does not follow row {entry.seq - 1} "
                "(rows reordered or rewritten)",
                entry.seq,
            )
        if entry_hash(entry) != entry.hash:
            return Verdict(
                checked, entry.seq, f"row {entry.seq} altered (hash mismatch)", entry.seq
            )
        prev = entry.hash
        expected_seq += 1
    head = session.get(LogHead, LOG_NAME)
    last = expected_seq - 1
    if head is not None and (head.last_seq != last or (last and head.last_hash != prev)):
        if head.last_seq > last:
            gone = f"{last + 1}" if head.last_seq == last + 1 else f"{last + 1}..{head.last_seq}"
            return Verdict(checked, last, f"row(s) {gone} deleted", last + 1)
        return Verdict(checked, last, "log head does not match the last row", last)
    return Verdict(checked, last, checkpoint=Checkpoint(last, prev))
