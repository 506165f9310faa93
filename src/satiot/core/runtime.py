"""Process-wide settings of the Python runtime that the platform's throughput depends on.

CPython collects its youngest generation after every 700 net container allocations. One ingest
batch or rating batch allocates tens of thousands of short-lived dicts and tuples, almost none
of them in reference cycles, so at 700 the collector runs dozens of times per batch and scans
the same survivors again and again: about a sixth of ingest's and rating's CPU time on SQLite
(``benchmarks/ingest.py``, ``benchmarks/rating.py``). Collecting every few thousand
allocations instead keeps that work small while cycles are still freed within a batch or two.

Everything alive once the process has loaded its modules and built its app (classes, the
schema's metadata, compiled statements) lives as long as the process: :func:`freeze_startup`
moves it out of the collector's view, so the full collections that still happen do not walk it.
"""

from __future__ import annotations

import gc

#: The young-generation threshold ``SATIOT_GC_YOUNG`` defaults to (CPython's own is 700).
DEFAULT_YOUNG = 10_000


def tune_gc(young: int) -> None:
    """Collect the youngest generation every ``young`` net allocations; 0 leaves CPython's
    default. The older generations keep their ratios to it."""
    if young < 0:
        raise ValueError("the young-generation threshold is 0 (CPython's default) or more")
    if young:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(young, middle, old)


def freeze_startup() -> None:
    """Move every object alive now into the permanent generation, after one full collection
    (so that garbage made while starting is not kept for good)."""
    gc.collect()
    gc.freeze()
