"""Random access on a satellite's uplink channels: which ALOHA transmissions get through.

Terminals in a satellite's footprint transmit without coordination, so two frames on the same
channel that overlap in time destroy each other unless one is much stronger (capture). The
twin resolves millions of transmissions per simulated hour, so the resolution is done with
sorts and cumulative sums, O(n log n), with no Python loop over pairs.

Rules
-----
* Pure ALOHA: a frame occupies ``[start, start + duration)``. Two frames collide when their
  intervals overlap; touching end-to-start is not an overlap.
* Slotted ALOHA: a terminal that wants to send at ``t`` waits for the next slot boundary,
  ``ceil(t / slot) · slot`` (a start exactly on a boundary keeps it). Every frame must fit in
  one slot, so frames collide exactly when they pick the same slot.
* Capture (optional): a frame survives a collision when its received power exceeds the *sum*
  of the powers of every frame that overlaps it (at any moment of its duration) by
  ``capture_db``. Summing is the conservative choice (interferers add as noise); with
  ``capture_db ≥ 0`` at most one frame of any overlapping pair survives.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


class AccessMode(StrEnum):
    PURE = "pure"
    SLOTTED = "slotted"


def resolve(
    starts_s: ArrayLike,
    durations_s: ArrayLike,
    rx_power_dbm: ArrayLike | None = None,
    *,
    mode: AccessMode | str = AccessMode.PURE,
    slot_s: float | None = None,
    capture_db: float | None = None,
) -> BoolArray:
    """Which transmissions on ONE channel are received (True), in input order."""
    starts = np.asarray(starts_s, dtype=np.float64)
    return resolve_many(
        np.zeros(starts.shape, dtype=np.int64),
        starts,
        durations_s,
        rx_power_dbm,
        mode=mode,
        slot_s=slot_s,
        capture_db=capture_db,
    )


def resolve_many(
    channel_keys: ArrayLike,
    starts_s: ArrayLike,
    durations_s: ArrayLike,
    rx_power_dbm: ArrayLike | None = None,
    *,
    mode: AccessMode | str = AccessMode.PURE,
    slot_s: float | None = None,
    capture_db: float | None = None,
) -> BoolArray:
    """Resolve many independent channels at once; frames interact only within equal keys.

    ``channel_keys`` is one key per frame: an integer, or a row of integers such as
    (satellite, channel) given as an (n, k) array. Frames on different keys never collide.
    """
    starts = np.asarray(starts_s, dtype=np.float64).ravel()
    durations = np.broadcast_to(np.asarray(durations_s, dtype=np.float64), starts.shape)
    n = starts.size
    if np.any(durations <= 0) or not np.all(np.isfinite(starts)):
        raise ValueError("durations must be positive and start times finite")
    keys = np.asarray(channel_keys)
    if keys.shape[:1] != (n,):
        raise ValueError(f"need one channel key per transmission ({n}), got shape {keys.shape}")
    if n == 0:
        return np.zeros(0, dtype=np.bool_)
    group = _group_ids(keys.reshape(n, -1))
    power = _linear_power(rx_power_dbm, n) if capture_db is not None else np.ones(n)

    access = AccessMode(mode)
    if access is AccessMode.SLOTTED:
        if slot_s is None or slot_s <= 0:
            raise ValueError("slotted access needs a positive slot_s")
        if np.any(durations > slot_s):
            raise ValueError("in slotted access every frame must fit in one slot")
        slot = np.ceil(starts / slot_s).astype(np.int64)
        cell = _group_ids(np.stack([group, slot], axis=1))
        overlaps = np.bincount(cell)[cell] - 1
        interference = np.bincount(cell, weights=power)[cell] - power
    else:
        overlaps, interference = _overlaps_pure(group, starts, starts + durations, power)

    clean = overlaps == 0
    if capture_db is None:
        return np.asarray(clean)
    if capture_db < 0:
        raise ValueError("capture_db must be ≥ 0")
    # The 1e-9 guard settles rounding in the cumulative sums in favour of a collision, so two
    # equal frames at capture_db = 0 never both survive.
    ratio = 10.0 ** (capture_db / 10.0) * (1.0 + 1e-9)
    interference = np.where(clean, 0.0, np.maximum(interference, 0.0))
    return np.asarray(clean | (power > ratio * interference))


def _group_ids(rows: NDArray[np.generic]) -> IntArray:
    """Dense integer id per distinct row."""
    if rows.shape[1] == 1:
        _, inverse = np.unique(rows[:, 0], return_inverse=True)
    else:
        _, inverse = np.unique(rows, axis=0, return_inverse=True)
    return np.asarray(inverse.ravel(), dtype=np.int64)


def _linear_power(rx_power_dbm: ArrayLike | None, n: int) -> FloatArray:
    if rx_power_dbm is None:
        raise ValueError("capture needs rx_power_dbm")
    dbm = np.broadcast_to(np.asarray(rx_power_dbm, dtype=np.float64), (n,))
    # Normalise to the strongest frame so that cumulative sums keep their precision.
    return np.asarray(10.0 ** ((dbm - dbm.max()) / 10.0))


def _overlaps_pure(
    group: IntArray, starts: FloatArray, ends: FloatArray, power: FloatArray
) -> tuple[IntArray, FloatArray]:
    """Count and summed power of the frames overlapping each frame, by one sorted sweep.

    Frame j overlaps frame i when s_j < e_i and e_j > s_i. Since every frame ends after it
    starts, the set of j with s_j < e_i splits into the overlapping ones and those with
    e_j ≤ s_i, so "overlapping" = #(starts before e_i) − #(ends at or before s_i) − 1 (self).
    Both counts come from one sweep over all 2n events sorted by (group, time, kind), with
    ends ordered before starts at equal times so that touching frames do not count.
    """
    n = starts.size
    times = np.concatenate([starts, ends])
    groups = np.concatenate([group, group])
    is_start = np.concatenate([np.ones(n, dtype=np.bool_), np.zeros(n, dtype=np.bool_)])
    order = np.lexsort((is_start, times, groups))  # last key is primary
    w = np.concatenate([power, power])[order]
    s_sorted = is_start[order]
    # Exclusive cumulative counts/powers of starts and of ends, over the global sweep.
    starts_before = np.cumsum(s_sorted) - s_sorted
    ends_before = np.cumsum(~s_sorted) - ~s_sorted
    p_starts_before = np.cumsum(w * s_sorted) - w * s_sorted
    p_ends_before = np.cumsum(w * ~s_sorted) - w * ~s_sorted
    # Subtract what earlier groups contributed: the value at each group's first event.
    g_sorted = groups[order]
    first = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    first_of = first[np.searchsorted(first, np.arange(2 * n), side="right") - 1]
    starts_before = starts_before - starts_before[first_of]
    ends_before = ends_before - ends_before[first_of]
    p_starts_before = p_starts_before - p_starts_before[first_of]
    p_ends_before = p_ends_before - p_ends_before[first_of]
    # Position of each frame's start event and end event in the sweep.
    pos = np.empty(2 * n, dtype=np.int64)
    pos[order] = np.arange(2 * n)
    at_start, at_end = pos[:n], pos[n:]
    count = starts_before[at_end] - ends_before[at_start] - 1
    summed = p_starts_before[at_end] - p_ends_before[at_start] - power
    return np.asarray(count, dtype=np.int64), np.asarray(summed, dtype=np.float64)
