"""The runtime tuning every `satiot` process applies (core.runtime)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from satiot.core.config import Settings
from satiot.core.runtime import DEFAULT_YOUNG, freeze_startup, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)
    gc.unfreeze()


def test_the_young_generation_is_collected_as_configured(restored_gc):
    tune_gc(12_345)
    assert gc.get_threshold() == (12_345, *restored_gc[1:])  # older ratios kept


def test_zero_leaves_cpython_as_it_is(restored_gc):
    tune_gc(0)
    assert gc.get_threshold() == restored_gc


def test_a_negative_threshold_is_refused(restored_gc):
    with pytest.raises(ValueError, match=r"0 .* or more"):
        tune_gc(-1)
    assert gc.get_threshold() == restored_gc


def test_the_default_is_the_tuned_one(monkeypatch):
    monkeypatch.delenv("SATIOT_GC_YOUNG", raising=False)
    assert Settings().gc_young == DEFAULT_YOUNG > 700


def test_freezing_keeps_what_start_up_loaded_out_of_collections(restored_gc):
    class Loaded:
        pass

    kept = Loaded()
    freeze_startup()
    assert gc.get_freeze_count() > 0
    assert not any(obj is kept for obj in gc.get_objects())  # not scanned any more
