"""On-board store: each drop policy, the emergency lane, counters and conservation of frames."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from satiot.network.storeforward import SatelliteStore, StoredFrame


def frame(n: int, size: int = 10, *, emergency: bool = False) -> StoredFrame:
    return StoredFrame(bytes(size), f"dev-{n}", float(n), emergency=emergency)


def ids(items: list[StoredFrame]) -> list[str]:
    return [i.terminal_id for i in items]


def test_drop_newest_keeps_the_oldest_frames() -> None:
    store = SatelliteStore(30, "drop-newest")
    accepted = [store.store(frame(n), at=n) for n in range(5)]
    assert accepted == [True, True, True, False, False]
    assert store.counters.dropped["full-newest"] == 2
    assert ids(store.dump(at=10)) == ["dev-0", "dev-1", "dev-2"]


def test_drop_oldest_keeps_the_newest_frames() -> None:
    store = SatelliteStore(30, "drop-oldest")
    assert all(store.store(frame(n), at=n) for n in range(5))
    assert store.counters.dropped["evicted-oldest"] == 2
    assert ids(store.dump(at=10)) == ["dev-2", "dev-3", "dev-4"]


def test_drop_oldest_evicts_only_as_much_as_needed() -> None:
    store = SatelliteStore(30, "drop-oldest")
    for n in range(3):
        store.store(frame(n, 10), at=n)
    store.store(frame(3, 15), at=3)  # needs 15 bytes: evicts dev-0 and dev-1
    assert ids(store.dump(at=4)) == ["dev-2", "dev-3"]
    assert store.counters.dropped_bytes["evicted-oldest"] == 20


def test_frame_bigger_than_memory_is_counted_not_stored() -> None:
    store = SatelliteStore(30, "drop-oldest")
    store.store(frame(0), at=0)
    assert not store.store(frame(1, 31), at=1)
    assert store.counters.dropped["too-large"] == 1
    assert store.held_items == 1  # nothing was evicted for a frame that could never fit


def test_dump_respects_contact_capacity_and_order() -> None:
    store = SatelliteStore(1000, "drop-newest")
    for n, size in enumerate([10, 20, 30, 5]):
        store.store(frame(n, size), at=n)
    assert ids(store.dump(at=5, max_bytes=35)) == ["dev-0", "dev-1"]  # 30 does not fit: stop
    assert ids(store.dump(at=6, max_items=1)) == ["dev-2"]
    assert ids(store.dump(at=7)) == ["dev-3"]
    assert store.dump(at=8) == []
    assert store.counters.dumped == 4
    assert store.counters.dumped_bytes == 65


def test_dump_returns_the_stored_objects_with_their_metadata() -> None:
    store: SatelliteStore[StoredFrame] = SatelliteStore(100)
    original = StoredFrame(b"abc", "dev-7", 12.5, received_at=42.0)
    store.store(original, at=42.0)
    (item,) = store.dump(at=100.0)
    assert item is original


def test_caller_may_state_size_and_priority() -> None:
    store: SatelliteStore[StoredFrame] = SatelliteStore(100)
    store.store(frame(0, 10), 60, at=0)  # e.g. frame plus reception metadata on board
    store.store(frame(1, 10), 60, at=1)
    assert store.counters.dropped["full-newest"] == 1
    assert store.store(frame(2, 10), 60, at=2, priority=True)  # pre-empts dev-0
    assert ids(store.dump(at=3)) == ["dev-2"]
    assert len(store) == 0 and store.dropped == 2 and store.high_water_bytes == 60


def test_high_water_marks_survive_dumps() -> None:
    store = SatelliteStore(100)
    for n in range(4):
        store.store(frame(n, 20), at=n)
    store.dump(at=5)
    store.store(frame(9, 20), at=6)
    assert store.counters.high_water_bytes == 80
    assert store.counters.high_water_items == 4
    assert store.held_bytes == 20


def test_emergency_frames_are_dumped_first() -> None:
    store = SatelliteStore(100)
    store.store(frame(0), at=0)
    store.store(frame(1, emergency=True), at=1)
    store.store(frame(2), at=2)
    store.store(frame(3, emergency=True), at=3)
    assert ids(store.dump(at=4, max_items=3)) == ["dev-1", "dev-3", "dev-0"]


@pytest.mark.parametrize("policy", ["drop-newest", "drop-oldest"])
def test_emergency_frame_preempts_routine_frames_in_a_full_store(policy: str) -> None:
    store = SatelliteStore(30, policy)  # type: ignore[arg-type]
    for n in range(3):
        store.store(frame(n), at=n)
    assert store.store(frame(3, emergency=True), at=3)
    assert store.counters.dropped["preempted"] == 1
    assert ids(store.dump(at=4)) == ["dev-3", "dev-1", "dev-2"]


def test_store_full_of_emergencies_refuses_routine_frames_under_both_policies() -> None:
    for policy in ("drop-newest", "drop-oldest"):
        store = SatelliteStore(20, policy)  # type: ignore[arg-type]
        store.store(frame(0, emergency=True), at=0)
        store.store(frame(1, emergency=True), at=1)
        assert not store.store(frame(2), at=2)
        assert store.counters.dropped["full-newest"] == 1


def test_time_must_not_go_backwards_and_bad_setup_is_refused() -> None:
    store = SatelliteStore(100)
    store.store(frame(0), at=10)
    with pytest.raises(ValueError, match="backwards"):
        store.store(frame(1), at=5)
    with pytest.raises(ValueError):
        SatelliteStore(0)
    with pytest.raises(ValueError):
        SatelliteStore(10, "drop-random")  # type: ignore[arg-type]


class StoreMachine(RuleBasedStateMachine):
    """Random stores and dumps against a plain-list model; nothing is ever lost unaccounted."""

    @initialize(
        capacity=st.integers(1, 200), policy=st.sampled_from(["drop-newest", "drop-oldest"])
    )
    def setup(self, capacity: int, policy: str) -> None:
        self.store = SatelliteStore(capacity, policy)  # type: ignore[arg-type]
        self.t = 0.0
        self.n = 0
        self.seen_out: list[str] = []

    @rule(size=st.integers(1, 80), emergency=st.booleans())
    def offer(self, size: int, emergency: bool) -> None:
        self.t += 1
        self.n += 1
        before = (self.store.held_items, self.store.held_bytes)
        ok = self.store.store(frame(self.n, size, emergency=emergency), at=self.t)
        if ok:
            assert self.store.held_bytes >= size
        else:  # a refused frame never costs anyone else their place
            assert (self.store.held_items, self.store.held_bytes) == before
        assert self.store.held_bytes <= self.store.capacity_bytes

    @rule(max_bytes=st.none() | st.integers(0, 150), max_items=st.none() | st.integers(0, 5))
    def dump(self, max_bytes: int | None, max_items: int | None) -> None:
        self.t += 1
        out = self.store.dump(self.t, max_bytes=max_bytes, max_items=max_items)
        if max_bytes is not None:
            assert sum(i.size for i in out) <= max_bytes
        if max_items is not None:
            assert len(out) <= max_items
        # Emergency frames leave before routine ones within one dump.
        flags = [i.emergency for i in out]
        assert flags == sorted(flags, reverse=True)
        self.seen_out += ids(out)

    @invariant()
    def every_frame_is_accounted_for(self) -> None:
        c = self.store.counters
        dropped = sum(c.dropped.values())
        assert c.offered == c.dumped + dropped + self.store.held_items
        evicted = c.dropped["evicted-oldest"] + c.dropped["preempted"]
        assert c.accepted == c.dumped + evicted + self.store.held_items
        assert c.high_water_bytes >= self.store.held_bytes
        assert c.high_water_items >= self.store.held_items
        assert len(self.seen_out) == len(set(self.seen_out)) == c.dumped


TestStoreMachine = StoreMachine.TestCase
