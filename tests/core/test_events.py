"""The event log: commit-bound emission, gap-free ordering, consumers and their cursors."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from satiot.core import audit, events
from satiot.core.clock import ManualClock
from satiot.core.db import Database
from satiot.core.events import Consumer, consume_batch
from satiot.core.models import ConsumerCursor, Event, ProcessedEvent


class Boom(Exception):
    pass


def _emit_many(
    db: Database, clock: ManualClock, n: int, type_: str = "test.ping"
) -> list[uuid.UUID]:
    with db.write() as s:
        return [events.emit(s, type_, at=clock.now(), payload={"i": i}) for i in range(n)]


def _all_events(db: Database) -> list[Event]:
    with db.read() as s:
        return list(s.scalars(select(Event).order_by(Event.seq)))


def _recorder(seen: list[uuid.UUID]):
    def handler(session: Session, ev: Event) -> None:
        seen.append(ev.id)

    return handler


def test_rolled_back_event_does_not_exist_and_committed_one_does(db, clock):
    with pytest.raises(Boom), db.write() as s:
        events.emit(s, "test.lost", at=clock.now(), payload={})
        raise Boom
    assert _all_events(db) == []
    with db.read() as s:
        assert events.head(s) == 0

    kept = _emit_many(db, clock, 1, "test.kept")[0]
    rows = _all_events(db)
    assert [(r.seq, r.id, r.type) for r in rows] == [(1, kept, "test.kept")]
    assert rows[0].occurred_at == clock.now()


def test_event_queued_then_explicit_rollback_is_not_written_by_next_commit(db, clock):
    with db.writer() as s:
        events.emit(s, "test.dropped", at=clock.now(), payload={})
        s.rollback()
        events.emit(s, "test.kept", at=clock.now(), payload={})
        s.commit()
    assert [e.type for e in _all_events(db)] == ["test.kept"]


def test_seqs_are_gap_free_and_follow_commit_order(db, clock):
    # Two transactions open at once: the one that commits first gets the lower numbers,
    # whatever order they emitted in.
    early = db.writer()
    late = db.writer()
    try:
        late_ids = [events.emit(late, "test.late", at=clock.now(), payload={}) for _ in range(2)]
        early_ids = [events.emit(early, "test.early", at=clock.now(), payload={}) for _ in range(3)]
        early.commit()
        late.commit()
    finally:
        early.close()
        late.close()
    rows = _all_events(db)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert [r.id for r in rows] == early_ids + late_ids
    with db.read() as s:
        assert events.head(s) == 5


@pytest.mark.parametrize("writers,txs", [(6, 15)])
def test_concurrent_writers_gap_free_and_consumer_misses_none(db, clock, writers, txs):
    emitted: list[uuid.UUID] = []
    emitted_lock = threading.Lock()
    errors: list[BaseException] = []
    seen: list[uuid.UUID] = []
    consumer = Consumer("test-live", _recorder(seen), batch_size=7)
    done_writing = threading.Event()

    def writer(k: int) -> None:
        try:
            for t in range(txs):
                with db.write() as s:
                    ids = [
                        events.emit(s, "test.ping", at=clock.now(), payload={"w": k, "t": t})
                        for _ in range(1 + (k + t) % 3)
                    ]
                with emitted_lock:
                    emitted.extend(ids)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    def reader() -> None:
        try:
            while not done_writing.is_set():
                consume_batch(db, consumer, clock)
            while consume_batch(db, consumer, clock):
                pass
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
    r = threading.Thread(target=reader)
    r.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    done_writing.set()
    r.join(60)
    assert not errors, errors

    rows = _all_events(db)
    assert [row.seq for row in rows] == list(range(1, len(emitted) + 1))
    assert sorted(row.id for row in rows) == sorted(emitted)
    # The live consumer saw every event exactly once, in seq order.
    assert seen == [row.id for row in rows]
    with db.read() as s:
        assert events.head(s) == len(emitted)
        st = {c.name: c for c in events.status(s)}
    assert st["test-live"].position == len(emitted)
    assert st["test-live"].lag == 0


def test_consume_batch_applies_each_event_once_and_moves_cursor(db, clock):
    ids = _emit_many(db, clock, 5)
    seen: list[uuid.UUID] = []
    consumer = Consumer("c", _recorder(seen), batch_size=2)
    assert consume_batch(db, consumer, clock) == 2
    assert seen == ids[:2]
    with db.read() as s:
        assert s.get(ConsumerCursor, "c").position == 2
    assert consume_batch(db, consumer, clock) == 2
    assert consume_batch(db, consumer, clock) == 1
    assert consume_batch(db, consumer, clock) == 0
    assert seen == ids
    with db.read() as s:
        assert s.get(ConsumerCursor, "c").position == 5
        marks = s.scalars(select(ProcessedEvent.event_id).where(ProcessedEvent.consumer == "c"))
        assert sorted(marks) == sorted(ids)


def test_handler_effects_commit_with_the_batch(db, clock):
    ids = _emit_many(db, clock, 3)

    def handler(session: Session, ev: Event) -> None:
        audit.record(
            session,
            at=clock.now(),
            actor="consumer:test",
            action="test.applied",
            target_type="event",
            target_id=ev.id,
        )

    consume_batch(db, Consumer("fx", handler), clock)
    with db.read() as s:
        from satiot.core.models import AuditEntry

        targets = list(s.scalars(select(AuditEntry.target_id).order_by(AuditEntry.seq)))
        assert targets == [str(i) for i in ids]
        assert audit.verify(s).ok


def test_types_filter_skips_other_events_but_advances_past_them(db, clock):
    with db.write() as s:
        a1 = events.emit(s, "a", at=clock.now(), payload={})
        events.emit(s, "b", at=clock.now(), payload={})
        a2 = events.emit(s, "a", at=clock.now(), payload={})
        events.emit(s, "c", at=clock.now(), payload={})
    seen: list[uuid.UUID] = []
    consumer = Consumer("only-a", _recorder(seen), types=frozenset({"a"}))
    assert consume_batch(db, consumer, clock) == 4
    assert seen == [a1, a2]
    with db.read() as s:
        assert s.get(ConsumerCursor, "only-a").position == 4
        assert s.scalar(select(func.count()).select_from(ProcessedEvent)) == 2


def test_failing_handler_rolls_back_whole_batch(db, clock):
    ids = _emit_many(db, clock, 4)
    calls: list[uuid.UUID] = []

    def handler(session: Session, ev: Event) -> None:
        calls.append(ev.id)
        audit.record(
            session,
            at=clock.now(),
            actor="consumer:test",
            action="test.applied",
            target_type="event",
            target_id=ev.id,
        )
        session.add(ConsumerCursor(name=f"side-{ev.seq}", position=0, updated_at=clock.now()))
        if ev.id == ids[2]:
            raise Boom("third event fails")

    consumer = Consumer("fragile", handler)
    # Give the consumer a position first so we can see it does not move.
    assert consume_batch(db, Consumer("fragile", _recorder([]), batch_size=1), clock) == 1
    with pytest.raises(Boom):
        consume_batch(db, consumer, clock)
    assert calls == ids[1:3]
    with db.read() as s:
        assert s.get(ConsumerCursor, "fragile").position == 1
        assert (
            s.scalar(
                select(func.count())
                .select_from(ProcessedEvent)
                .where(ProcessedEvent.consumer == "fragile")
            )
            == 1
        )
        assert (
            s.scalars(select(ConsumerCursor.name).where(ConsumerCursor.name.like("side-%"))).all()
            == []
        )
        assert audit.verify(s).checked == 0
        assert s.get(ConsumerCursor, "fragile") is not None

    # Once the handler is fixed, the batch is applied from where it was left.
    seen: list[uuid.UUID] = []
    assert consume_batch(db, Consumer("fragile", _recorder(seen)), clock) == 3
    assert seen == ids[1:]


def test_rewind_without_forget_rereads_but_skips(db, clock):
    ids = _emit_many(db, clock, 6)
    seen: list[uuid.UUID] = []
    consumer = Consumer("r", _recorder(seen))
    consume_batch(db, consumer, clock)
    assert seen == ids
    with db.write() as s:
        events.rewind(s, "r", 2, forget=False, at=clock.now())
    with db.read() as s:
        assert s.get(ConsumerCursor, "r").position == 2
    assert consume_batch(db, consumer, clock) == 4  # re-read ...
    assert seen == ids  # ... but nothing applied again
    with db.read() as s:
        assert s.get(ConsumerCursor, "r").position == 6


def test_rewind_with_forget_reapplies(db, clock):
    ids = _emit_many(db, clock, 6)
    seen: list[uuid.UUID] = []
    consumer = Consumer("r", _recorder(seen))
    consume_batch(db, consumer, clock)
    with db.write() as s:
        events.rewind(s, "r", 2, forget=True, at=clock.now())
    assert consume_batch(db, consumer, clock) == 4
    assert seen == ids + ids[2:]


def test_rewind_unknown_consumer_creates_its_cursor(db, clock):
    ids = _emit_many(db, clock, 3)
    with db.write() as s:
        events.rewind(s, "newcomer", 1, forget=False, at=clock.now())
    seen: list[uuid.UUID] = []
    consume_batch(db, Consumer("newcomer", _recorder(seen)), clock)
    assert seen == ids[1:]


def test_status_and_lag(db, clock):
    _emit_many(db, clock, 10)
    consume_batch(db, Consumer("fast", _recorder([])), clock)
    clock.advance(5)
    consume_batch(db, Consumer("slow", _recorder([]), batch_size=3), clock)
    _emit_many(db, clock, 2)
    with db.read() as s:
        st = {c.name: c for c in events.status(s)}
        assert events.head(s) == 12
    assert list(st) == ["fast", "slow"]
    assert (st["fast"].position, st["fast"].head, st["fast"].lag) == (10, 12, 2)
    assert (st["slow"].position, st["slow"].lag) == (3, 9)
    assert st["slow"].updated_at == clock.now()
    assert st["fast"].updated_at == clock.now() - timedelta(seconds=5)


def test_prune_processed_forgets_old_marks_only(db, clock):
    _emit_many(db, clock, 3)
    consume_batch(db, Consumer("p", _recorder([]), batch_size=2), clock)
    clock.advance(3600)
    consume_batch(db, Consumer("p", _recorder([])), clock)
    with db.write() as s:
        assert events.prune_processed(s, clock.now() - timedelta(seconds=60)) == 2
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(ProcessedEvent)) == 1
        # The cursor alone still keeps consumption exactly-once.
        assert s.get(ConsumerCursor, "p").position == 3
    seen: list[uuid.UUID] = []
    assert consume_batch(db, Consumer("p", _recorder(seen)), clock) == 0


def test_run_consumer_drains_then_stops(db, clock):
    ids = _emit_many(db, clock, 25)
    seen: list[uuid.UUID] = []
    stop = threading.Event()
    consumer = Consumer("bg", _recorder(seen), batch_size=10)
    t = threading.Thread(
        target=events.run_consumer, args=(db, consumer, clock, stop), kwargs={"idle_wait_s": 0.01}
    )
    t.start()
    try:
        for _ in range(500):
            if len(seen) == 25:
                break
            threading.Event().wait(0.01)
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
    assert seen == ids


def test_emit_records_tenant_and_subject(db, clock):
    tenant = uuid.uuid4()
    with db.write() as s:
        eid = events.emit(
            s,
            "thing.happened",
            at=clock.now(),
            payload={"x": [1, "two"]},
            tenant_id=tenant,
            subject=("thing", "42"),
        )
    (row,) = _all_events(db)
    assert (row.id, row.tenant_id, row.subject_type, row.subject_id, row.payload) == (
        eid,
        tenant,
        "thing",
        "42",
        {"x": [1, "two"]},
    )


def test_an_event_keeps_the_id_its_batch_gave_it(db, clock):
    given_id = uuid.uuid4()
    with db.write() as s:
        assert events.emit(s, "t.given", at=clock.now(), payload={}, event_id=given_id) == given_id
        made = events.emit(s, "t.made", at=clock.now(), payload={})
    assert [e.id for e in _all_events(db)] == [given_id, made]
    assert made != given_id


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # past 64 bits too: stored by the fallback
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), JSON_VALUES, max_size=6))
def test_a_payload_is_stored_as_json_that_reads_back_equal(payload):
    text = events.payload_text(payload)
    assert json.loads(text) == payload == json.loads(json.dumps(payload))


def test_a_payload_orjson_refuses_is_still_stored_and_a_datetime_is_still_refused():
    assert json.loads(events.payload_text({"n": 2**70, 7: "int key"})) == {
        "n": 2**70,
        "7": "int key",
    }
    with pytest.raises(TypeError):
        events.payload_text({"at": datetime(2026, 1, 1, tzinfo=UTC)})


def test_savepoint_rollback_drops_only_its_own_events(db, clock):
    with db.write() as s:
        events.emit(s, "outer.before", at=clock.now(), payload={})
        with pytest.raises(Boom), s.begin_nested():
            events.emit(s, "inner.lost", at=clock.now(), payload={})
            raise Boom
        with s.begin_nested():
            events.emit(s, "inner.kept", at=clock.now(), payload={})
        events.emit(s, "outer.after", at=clock.now(), payload={})
    assert [(e.seq, e.type) for e in _all_events(db)] == [
        (1, "outer.before"),
        (2, "inner.kept"),
        (3, "outer.after"),
    ]


def test_released_savepoint_events_vanish_when_outer_rolls_back(db, clock):
    with pytest.raises(Boom), db.write() as s:
        with s.begin_nested():
            events.emit(s, "inner", at=clock.now(), payload={})
        raise Boom
    assert _all_events(db) == []
    with db.read() as s:
        assert events.head(s) == 0
    _emit_many(db, clock, 1)
    assert [e.seq for e in _all_events(db)] == [1]


def test_commit_with_open_savepoint_writes_everything(db, clock):
    with db.writer() as s:
        events.emit(s, "outer", at=clock.now(), payload={})
        s.begin_nested()
        events.emit(s, "inner", at=clock.now(), payload={})
        s.commit()
    assert [e.type for e in _all_events(db)] == ["outer", "inner"]
