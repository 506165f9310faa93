"""The audit log: commit-bound, hash-chained, and verify names the first tampered row."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta, timezone

import pytest
from sqlalchemy import select, text

from satiot.core import audit
from satiot.core.db import Database
from satiot.core.models import AuditEntry, LogHead


class Boom(Exception):
    pass


def _record(db: Database, clock, n: int, **extra) -> None:
    with db.write() as s:
        for i in range(n):
            audit.record(
                s,
                at=clock.now(),
                actor="user:alice",
                action="thing.changed",
                target_type="thing",
                target_id=f"t{i}",
                before={"n": i},
                after={"n": i + 1, "when": clock.now()},
                reason=f"step {i}",
                **extra,
            )
            clock.advance(1)


def _chain(db: Database, n: int, clock) -> None:
    """``n`` entries, committed in several transactions."""
    while n > 0:
        k = min(n, 3)
        _record(db, clock, k)
        n -= k


def _verify(db: Database) -> audit.Verdict:
    with db.read() as s:
        return audit.verify(s)


def _sql(db: Database, sql: str, **params) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(sql), params)


def test_recorded_entries_form_a_verified_chain(db, clock):
    tenant = uuid.uuid4()
    _chain(db, 7, clock)
    with db.write() as s:
        audit.record(
            s,
            at=clock.now().astimezone(timezone(timedelta(hours=8))),
            actor="user:bob",
            action="x.y",
            target_type="thing",
            target_id=uuid.uuid4(),
            tenant_id=tenant,
            after={"nested": {"b": [1, 2.5, None], "a": "中文"}},
        )
    verdict = _verify(db)
    assert verdict.ok and verdict.problem is None
    assert (verdict.checked, verdict.last_seq) == (8, 8)
    with db.read() as s:
        rows = list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
        head = s.get(LogHead, audit.LOG_NAME)
    assert [r.seq for r in rows] == list(range(1, 9))
    assert rows[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert (head.last_seq, head.last_hash) == (8, rows[-1].hash)
    # Stored as given, read back in UTC; datetimes inside JSON are stored as text.
    assert rows[-1].at == clock.now()
    assert rows[-1].tenant_id == tenant
    assert rows[-1].after == {"nested": {"a": "中文", "b": [1, 2.5, None]}}
    assert rows[0].after == {"n": 1, "when": str(rows[0].at)}


def test_rolled_back_entry_leaves_nothing(db, clock):
    _record(db, clock, 2)
    with pytest.raises(Boom), db.write() as s:
        audit.record(
            s, at=clock.now(), actor="user:alice", action="lost", target_type="thing", target_id="x"
        )
        raise Boom
    verdict = _verify(db)
    assert verdict.ok and verdict.checked == 2
    with db.read() as s:
        assert s.scalars(select(AuditEntry.action).where(AuditEntry.action == "lost")).all() == []
    _record(db, clock, 1)
    assert _verify(db).last_seq == 3


def test_empty_log_verifies(db):
    verdict = _verify(db)
    assert verdict.ok and (verdict.checked, verdict.last_seq) == (0, 0)


# --- tampering: each case names the first broken seq ---------------------------------------


def _tamper_reason(db: Database) -> None:
    _sql(db, "UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 4")


def _tamper_after(db: Database) -> None:
    _sql(db, "UPDATE audit_log SET after = :v WHERE seq = 3", v='{"n": 999}')


def _tamper_actor(db: Database) -> None:
    _sql(db, "UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 6")


def _delete_middle(db: Database) -> None:
    _sql(db, "DELETE FROM audit_log WHERE seq = 4")


def _delete_two_middle(db: Database) -> None:
    _sql(db, "DELETE FROM audit_log WHERE seq IN (3, 4)")


def _delete_first(db: Database) -> None:
    _sql(db, "DELETE FROM audit_log WHERE seq = 1")


def _delete_newest(db: Database) -> None:
    _sql(db, "DELETE FROM audit_log WHERE seq >= 6")


def _delete_last(db: Database) -> None:
    _sql(db, "DELETE FROM audit_log WHERE seq = 7")


def _delete_all(db: Database) -> None:
    _sql(db, "DELETE FROM audit_log")


def _swap(db: Database) -> None:
    # Swap rows 3 and 4 through a free number, as the primary key allows.
    _sql(db, "UPDATE audit_log SET seq = -1 WHERE seq = 3")
    _sql(db, "UPDATE audit_log SET seq = 3 WHERE seq = 4")
    _sql(db, "UPDATE audit_log SET seq = 4 WHERE seq = -1")


def _forge(db: Database) -> None:
    # Rewrite row 5 and give it a hash that matches its new content: it verifies by itself,
    # but row 6 was chained to the old hash.
    with db.writer() as s:
        row = s.get(AuditEntry, 5)
        row.reason = "forged"
        row.hash = audit.entry_hash(row)
        s.commit()


def _forge_last(db: Database) -> None:
    with db.writer() as s:
        row = s.get(AuditEntry, 7)
        row.after = {"n": 0}
        row.hash = audit.entry_hash(row)
        s.commit()


@pytest.mark.parametrize(
    "tamper,seq,words",
    [
        (_tamper_reason, 4, "row 4 altered"),
        (_tamper_after, 3, "row 3 altered"),
        (_tamper_actor, 6, "row 6 altered"),
        (_delete_middle, 4, "row(s) 4 deleted"),
        (_delete_two_middle, 3, "row(s) 3..4 deleted"),
        (_delete_first, 1, "row(s) 1 deleted"),
        (_delete_newest, 6, "row(s) 6..7 deleted"),
        (_delete_last, 7, "row(s) 7 deleted"),
        (_delete_all, 1, "row(s) 1..7 deleted"),
        (_swap, 3, "row 3 does not follow row 2"),
        (_forge, 6, "row 6 does not follow row 5"),
        (_forge_last, 7, "log head does not match"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
def test_verify_names_the_first_broken_row(db, clock, tamper, seq, words):
    _chain(db, 7, clock)
    assert _verify(db).ok
    tamper(db)
    verdict = _verify(db)
    assert not verdict.ok
    assert verdict.seq == seq, verdict.problem
    assert words in verdict.problem


def test_verify_reports_only_the_first_of_several_problems(db, clock):
    _chain(db, 7, clock)
    _sql(db, "UPDATE audit_log SET reason = 'x' WHERE seq = 6")
    _sql(db, "UPDATE audit_log SET reason = 'y' WHERE seq = 2")
    verdict = _verify(db)
    assert verdict.seq == 2
    assert verdict.checked == 2


def test_verify_walks_in_chunks(db, clock):
    _chain(db, 12, clock)
    with db.read() as s:
        assert audit.verify(s, chunk=5).checked == 12
    _sql(db, "UPDATE audit_log SET target_id = 'other' WHERE seq = 11")
    with db.read() as s:
        assert audit.verify(s, chunk=5).seq == 11


def test_appending_after_verified_chain_keeps_it_verified(db, clock):
    _chain(db, 4, clock)
    _chain(db, 4, clock)
    assert _verify(db).last_seq == 8
    assert _verify(db).ok


# --- verifying from a checkpoint --------------------------------------------------------------


def test_a_checkpoint_verifies_only_what_came_after(db, clock):
    _chain(db, 5, clock)
    first = _verify(db)
    assert first.checkpoint is not None and first.checkpoint.seq == 5
    _chain(db, 3, clock)
    with db.read() as s:
        later = audit.verify(s, since=first.checkpoint)
    assert later.ok and (later.checked, later.last_seq) == (8, 8)
    assert later.checkpoint == _verify(db).checkpoint
    _sql(db, "UPDATE audit_log SET reason = 'x' WHERE seq = 7")
    with db.read() as s:
        broken = audit.verify(s, since=first.checkpoint)
    assert (broken.seq, broken.checkpoint) == (7, None) and "row 7 altered" in broken.problem


@pytest.mark.parametrize(
    "sql",
    ["UPDATE audit_log SET reason = 'x' WHERE seq = 5", "DELETE FROM audit_log WHERE seq >= 5"],
    ids=["altered", "deleted"],
)
def test_a_checkpoint_whose_entry_changed_is_refused(db, clock, sql):
    _chain(db, 5, clock)
    mark = _verify(db).checkpoint
    _sql(db, sql)
    with db.read() as s:
        verdict = audit.verify(s, since=mark)
    assert not verdict.ok and verdict.seq == 5 and "since it was verified" in verdict.problem


def test_an_older_change_is_found_by_the_next_whole_walk(db, clock):
    from satiot.core.audit_watch import AuditWatch

    watch = AuditWatch(whole_every=timedelta(minutes=10))
    _chain(db, 6, clock)
    with db.read() as s:
        assert watch.current(s, clock.now()).verdict.checked == 6  # a whole walk: no checkpoint
    _chain(db, 2, clock)
    _sql(db, "UPDATE audit_log SET reason = 'x' WHERE seq = 2")
    with db.read() as s:
        seen = watch.current(s, clock.now() + timedelta(minutes=1))
    # only entries 7 and 8 were read: the change before the checkpoint waits for a whole walk
    assert seen.verdict.ok and seen.verdict.checked == 8
    with db.read() as s:
        seen = watch.current(s, clock.now() + timedelta(minutes=11))
    assert not seen.verdict.ok and seen.verdict.seq == 2
    with db.read() as s:  # broken: walked whole again on every view, and still broken
        assert watch.current(s, clock.now() + timedelta(minutes=12)).verdict.seq == 2
