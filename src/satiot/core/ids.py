"""Identifiers: time-ordered UUIDs (version 7, RFC 9562).

Time-ordered ids keep B-tree inserts local and let a list be paginated by id alone, so a cursor
needs no second sort key. For that, ids made one after the other must also sort one after the
other when they share a millisecond: the 12 bits after the milliseconds carry the time's
sub-millisecond fraction (RFC 9562 §6.2, method 3), and where the clock has not moved on (or
stepped back) the process continues from its last id instead. Ids from different processes in
the same millisecond are ordered only by chance, as any clock-based id is.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_RAND_B = (1 << 62) - 1
_lock = threading.Lock()
_last = (0, 0, 0)  # (unix ms, sub-millisecond fraction, random bits) of the last id


def new_id() -> uuid.UUID:
    """A fresh UUIDv7: 48-bit Unix milliseconds, 12 bits of the millisecond's fraction, then
    62 random bits; later than every id this process made before."""
    global _last
    ms, ns = divmod(time.time_ns(), 1_000_000)
    stamp = (ms & ((1 << 48) - 1), ns * 4096 // 1_000_000, 0)
    rand_b = int.from_bytes(os.urandom(8), "big") & _RAND_B
    with _lock:
        if stamp[:2] <= _last[:2]:
            ms, frac, prev = _last
            # The next slot after the last id: keep counting in its random bits.
            ms, frac, rand_b = (ms, frac, prev + 1) if prev < _RAND_B else (ms, frac + 1, 0)
            if frac > 0xFFF:
                ms, frac = ms + 1, 0
        else:
            ms, frac = stamp[0], stamp[1]
        _last = (ms, frac, rand_b)
    return uuid.UUID(int=(ms << 80) | (0x7 << 76) | (frac << 64) | (0b10 << 62) | rand_b)
