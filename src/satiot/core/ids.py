"""Identifiers: time-ordered UUIDs (version 7, RFC 9562).

Time-ordered ids keep B-tree inserts local and let a list be paginated by id alone, so a cursor
needs no second sort key. For that, ids made one after the other must also sort one after the
other when they share a millisecond: the 12 bits after the milliseconds carry the time's
sub-millisecond fraction (RFC 9562 §6.2, method 3), and where the clock has not moved on (or
stepped back) the process continues from its last id by a random step instead (method 2), so
ids stay unguessable and two processes that forked from one seldom meet. Ids from different
processes in the same instant are ordered only by chance, as any clock-based id is.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_RAND_B = (1 << 62) - 1
_STEP = (1 << 32) - 1  # the random step within one instant: at most this, at least 1
_lock = threading.Lock()
_last = (0, 0, 0)  # (unix ms, sub-millisecond fraction, random bits) of the last id handed out


def _reserve(count: int) -> int:
    """The first of ``count`` consecutive time-ordered ids (as an int), all later than every
    id this process made before; the next id made comes after the last of them."""
    global _last
    ms, ns = divmod(time.time_ns(), 1_000_000)
    now = (ms & ((1 << 48) - 1), ns * 4096 // 1_000_000)
    rand = int.from_bytes(os.urandom(8), "big")
    with _lock:
        if now > _last[:2]:
            ms, frac = now
            first = rand & _RAND_B
        else:  # the clock has not moved on: continue after the last id, by a random step
            ms, frac, prev = _last
            first = prev + 1 + (rand & _STEP)
        if first + count - 1 > _RAND_B:  # no room left in this instant: take the next one
            frac, first = frac + 1, 0
            if frac > 0xFFF:
                ms, frac = ms + 1, 0
        _last = (ms, frac, first + count - 1)
    return (ms << 80) | (0x7 << 76) | (frac << 64) | (0b10 << 62) | first


def new_id() -> uuid.UUID:
    """A fresh UUIDv7: 48-bit Unix milliseconds, 12 bits of the millisecond's fraction, then
    62 random bits; later than every id this process made before."""
    return uuid_from_int(_reserve(1))


_new = object.__new__
_set = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown  # an enum member costs a descriptor call at each lookup


def id_text(stored: str) -> str:
    """An id read as text, written as ``str(uuid)`` writes it: SQLite keeps 32 hex digits,
    PostgreSQL gives this form already. Code that reads ids by the thousand to write them out
    again reads them as text: making a ``uuid.UUID`` of each costs more than the rest."""
    if len(stored) == 32:
        return f"{stored[:8]}-{stored[8:12]}-{stored[12:16]}-{stored[16:20]}-{stored[20:]}"
    return stored


def uuid_from_int(value: int) -> uuid.UUID:
    """``uuid.UUID(int=value)`` for a value known to be a valid 128-bit id (one of
    :func:`new_id_block`'s), without the constructor's argument checks: ingest makes two per
    reception, and the checks cost more than the object."""
    made = _new(uuid.UUID)
    _set(made, "int", value)
    _set(made, "is_safe", _UNKNOWN)
    return made


def new_id_block(count: int) -> int:
    """The first of ``count`` UUIDv7 values that follow one another (``first + i``), for a
    batch that numbers its rows itself; no later :func:`new_id` falls among them."""
    if count < 1:
        raise ValueError("a block holds at least one id")
    return _reserve(count)
