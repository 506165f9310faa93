"""A satellite's on-board frame store: what it keeps between hearing a terminal and a downlink.

Without inter-satellite links every received frame waits in the satellite's memory until a
ground station comes into view, and that memory is finite. The store decides what to lose
when it is full and counts every loss by reason, so that capacity planning and SLA reports
can say where messages went; nothing is dropped silently.

Two lanes, both FIFO: emergency frames (the MIIT notice requires emergency reserves) are
dumped before routine ones, and when the store is full an emergency frame may push out
routine frames (oldest first) to make room. Every operation is O(1) per frame moved.

Invariants, at every moment:
``offered == dumped + sum(dropped.values()) + held_items`` and
``accepted == dumped + dropped["evicted-oldest"] + dropped["preempted"] + held_items``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, Literal, Protocol, TypeVar

Policy = Literal["drop-newest", "drop-oldest"]
DropReason = Literal["full-newest", "evicted-oldest", "preempted", "too-large"]
DROP_REASONS: tuple[DropReason, ...] = ("full-newest", "evicted-oldest", "preempted", "too-large")


class Storable(Protocol):
    """Anything the store can hold: it only needs a size and whether it is an emergency."""

    @property
    def size(self) -> int: ...

    @property
    def emergency(self) -> bool: ...


T = TypeVar("T", bound=Storable)


@dataclass(frozen=True)
class StoredFrame:
    """A received frame with the metadata a ground station reports with it."""

    frame: bytes
    terminal_id: str
    transmit_time: float  # seconds on the twin's clock
    emergency: bool = False
    received_at: float | None = None

    @property
    def size(self) -> int:
        return len(self.frame)


@dataclass
class StoreCounters:
    """Running totals; frames and bytes separately so both capacity views are available."""

    offered: int = 0
    accepted: int = 0
    dumped: int = 0
    dumped_bytes: int = 0
    dropped: dict[DropReason, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    dropped_bytes: dict[DropReason, int] = field(
        default_factory=lambda: dict.fromkeys(DROP_REASONS, 0)
    )
    high_water_bytes: int = 0
    high_water_items: int = 0


class SatelliteStore(Generic[T]):
    """FIFO frame memory of one satellite with a fixed byte capacity.

    Items are any :class:`Storable` (for example :class:`StoredFrame`); the store returns the
    same objects from :meth:`dump`, so callers can carry whatever reception metadata they need.

    ``drop-newest``: a routine frame that does not fit is refused (tail drop), which keeps
    the oldest data, the usual choice for telemetry logs. ``drop-oldest``: the oldest routine
    frames are evicted to make room, which keeps the freshest state of each device. Either way
    an emergency frame that does not fit pre-empts routine frames (oldest first); under
    ``drop-oldest`` it then evicts the oldest emergency frames, under ``drop-newest`` it is
    refused when the emergency frames already held leave no room. A frame is never evicted
    unless the newcomer will then fit.
    """

    def __init__(self, capacity_bytes: int, policy: Policy = "drop-newest") -> None:
        if capacity_bytes <= 0:
            raise ValueError("capacity_bytes must be positive")
        if policy not in ("drop-newest", "drop-oldest"):
            raise ValueError(f"unknown policy {policy!r}")
        self.capacity_bytes = capacity_bytes
        self.policy: Policy = policy
        self.counters = StoreCounters()
        self._routine: deque[tuple[T, int]] = deque()
        self._emergency: deque[tuple[T, int]] = deque()
        self._bytes = 0
        self._routine_bytes = 0
        self._now = float("-inf")

    def __len__(self) -> int:
        return self.held_items

    def __iter__(self) -> Iterator[T]:
        """The frames held now, in dump order (emergency lane first, each oldest first)."""
        for item, _ in self._emergency:
            yield item
        for item, _ in self._routine:
            yield item

    @property
    def high_water_bytes(self) -> int:
        return self.counters.high_water_bytes

    @property
    def high_water_items(self) -> int:
        return self.counters.high_water_items

    @property
    def dropped(self) -> int:
        """Frames lost for any reason (``counters.dropped`` has them by reason)."""
        return sum(self.counters.dropped.values())

    @property
    def held_bytes(self) -> int:
        return self._bytes

    @property
    def held_items(self) -> int:
        return len(self._routine) + len(self._emergency)

    @property
    def free_bytes(self) -> int:
        return self.capacity_bytes - self._bytes

    def store(
        self, item: T, size: int | None = None, *, at: float, priority: bool | None = None
    ) -> bool:
        """Offer a frame received at ``at``; True if it is now held, False if it was dropped.

        ``size`` (bytes) and ``priority`` (emergency lane) default to the item's own.
        """
        self._tick(at)
        self.counters.offered += 1
        size = item.size if size is None else size
        emergency = item.emergency if priority is None else priority
        if size < 0:
            raise ValueError("size must be ≥ 0")
        if size > self.capacity_bytes:
            self._drop("too-large", size)
            return False
        if size > self.free_bytes:
            # Only what this frame may displace counts; nothing is evicted in vain.
            oldest = self.policy == "drop-oldest"
            reclaim = self._routine_bytes if (emergency or oldest) else 0
            if emergency and oldest:
                reclaim += self._bytes - self._routine_bytes
            if size > self.free_bytes + reclaim:
                self._drop("full-newest", size)
                return False
            self._free(self._routine, size, "preempted" if emergency else "evicted-oldest")
            self._free(self._emergency, size, "evicted-oldest")
        if emergency:
            self._emergency.append((item, size))
        else:
            self._routine.append((item, size))
            self._routine_bytes += size
        self._bytes += size
        self.counters.accepted += 1
        c = self.counters
        c.high_water_bytes = max(c.high_water_bytes, self._bytes)
        c.high_water_items = max(c.high_water_items, self.held_items)
        return True

    def dump(
        self, at: float, *, max_bytes: int | None = None, max_items: int | None = None
    ) -> list[T]:
        """Hand frames to a ground station contact that can take ``max_bytes``/``max_items``.

        Emergency frames go first, then routine frames, each in arrival order. The dump stops
        at the first frame that does not fit in what is left of ``max_bytes`` rather than
        skipping ahead, so that order is preserved (a later contact continues where this one
        stopped).
        """
        self._tick(at)
        out: list[T] = []
        budget = max_bytes if max_bytes is not None else self._bytes
        limit = max_items if max_items is not None else self.held_items
        start_bytes = self._bytes
        for lane in (self._emergency, self._routine):
            while lane and len(out) < limit and lane[0][1] <= budget:
                item, size = lane.popleft()
                budget -= size
                self._bytes -= size
                if lane is self._routine:
                    self._routine_bytes -= size
                out.append(item)
            if lane:
                break
        self.counters.dumped += len(out)
        self.counters.dumped_bytes += start_bytes - self._bytes
        return out

    def _tick(self, at: float) -> None:
        if at < self._now:
            raise ValueError(f"time went backwards: {at} < {self._now}")
        self._now = at

    def _drop(self, reason: DropReason, size: int) -> None:
        self.counters.dropped[reason] += 1
        self.counters.dropped_bytes[reason] += size

    def _free(self, lane: deque[tuple[T, int]], size: int, reason: DropReason) -> None:
        """Remove frames from the head of ``lane`` until ``size`` bytes are free."""
        while lane and self.free_bytes < size:
            _, victim = lane.popleft()
            self._bytes -= victim
            if lane is self._routine:
                self._routine_bytes -= victim
            self._drop(reason, victim)
