"""Identifiers are UUIDv7: time-ordered, RFC 9562 layout, unique."""

from __future__ import annotations

import copy
import time
import uuid

import pytest

from satiot.core.ids import new_id, new_id_block, uuid_from_int


def test_new_id_is_version_7_rfc_variant():
    for _ in range(100):
        u = new_id()
        assert isinstance(u, uuid.UUID)
        assert u.version == 7
        assert u.variant == uuid.RFC_4122


def test_new_id_carries_the_current_unix_milliseconds():
    before = time.time_ns() // 1_000_000
    u = new_id()
    after = time.time_ns() // 1_000_000
    assert before <= u.int >> 80 <= after


def test_new_ids_sort_by_creation_time_across_milliseconds():
    ids = []
    for _ in range(5):
        ids.append(new_id())
        time.sleep(0.002)
    assert ids == sorted(ids)
    assert [str(i) for i in ids] == sorted(str(i) for i in ids)  # text order agrees too


def test_new_ids_are_unique_and_strictly_increasing_within_a_millisecond():
    ids = [new_id() for _ in range(10_000)]
    assert len(set(ids)) == 10_000
    assert ids == sorted(ids)  # not only by millisecond: one after the other
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)


def test_ids_keep_increasing_when_the_clock_steps_back(monkeypatch):
    first = new_id()
    monkeypatch.setattr(time, "time_ns", lambda: 1_000_000_000_000)  # the year 1970
    later = [new_id() for _ in range(3)]
    assert [first, *later] == sorted([first, *later]) and len({first, *later}) == 4
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in later)


def test_a_block_of_ids_is_consecutive_and_no_later_id_falls_among_them():
    first = new_id_block(1_000)
    block = [uuid.UUID(int=first + i) for i in range(1_000)]
    later = [new_id() for _ in range(1_000)]  # many in the block's own instant
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in block)
    assert block == sorted(block) and later == sorted(later)
    assert later[0] > block[-1]
    assert not set(later) & set(block)
    with pytest.raises(ValueError):
        new_id_block(0)


def test_an_id_made_from_its_number_is_a_full_uuid():
    value = new_id_block(1)
    fast, checked = uuid_from_int(value), uuid.UUID(int=value)
    assert fast == checked and hash(fast) == hash(checked) and str(fast) == str(checked)
    assert fast.version == 7 and fast.hex == checked.hex and fast < uuid_from_int(value + 1)
    assert copy.deepcopy(fast) == checked
    assert {fast: 1}[checked] == 1
