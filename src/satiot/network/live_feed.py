"""How the live twin's ground stations talk to the network server: pacing and posting.

The twin simulates far faster than real time, so its output is held back until the wall clock
(times the configured speed) reaches it: :class:`Pacer` maps simulated seconds to real
instants and back, :class:`ReceptionQueue` holds what has been simulated but is not due yet.
:class:`StationClient` then posts like a real ground station does — over HTTP, with the
station's own API key, in batches, retrying until the server has taken each batch. Retrying is
safe because ingest de-duplicates: a batch that reached the server before a timeout only comes
back as duplicates.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import httpx

from satiot.network.receptions import Reception

log = logging.getLogger(__name__)

#: Largest batch a station posts in one request (the ingest API's limit is higher).
BATCH_SIZE = 500
#: Longest pause between two retries of one request.
MAX_BACKOFF_S = 30.0


@dataclass(frozen=True)
class Pacer:
    """Simulated time against real time: simulated second 0 is the real instant ``start`` and
    ``speed`` simulated seconds pass per real second.

    Records are stamped with the real instant that corresponds to their simulated time, so at
    speed 1 a reception's ``received_at`` is the moment it is posted, and at higher speeds the
    timestamps stay real ones (near now) while the physics runs compressed.
    """

    start: datetime
    speed: float

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"twin speed must be positive, not {self.speed}")
        if self.start.tzinfo is None:
            raise ValueError("the pacer's start must carry a time zone")

    def simulated_at(self, now: datetime) -> float:
        """Simulated seconds due by the real instant ``now`` (never negative)."""
        return max(0.0, (now - self.start).total_seconds() * self.speed)

    def instant(self, simulated_s: float) -> datetime:
        """The real instant at which simulated second ``simulated_s`` is due."""
        return self.start + timedelta(seconds=simulated_s / self.speed)

    def seconds_until(self, simulated_s: float, now: datetime) -> float:
        """Real seconds to wait from ``now`` until ``simulated_s`` is due (0 if it is)."""
        return max(0.0, (self.instant(simulated_s) - now).total_seconds())

    def restamp(self, reception: Reception, simulated_start: datetime) -> tuple[float, Reception]:
        """A twin reception (stamped in simulated time from ``simulated_start``) as
        (its simulated second, the record stamped with its real instant)."""
        t = (reception.received_at - simulated_start).total_seconds()
        return t, replace(reception, received_at=self.instant(t))


@dataclass(frozen=True)
class Due:
    """One reception waiting for its time: which station downloaded it, when, and when the
    terminal transmitted the frame (real instants, like ``reception.received_at``)."""

    simulated_s: float
    station: str
    reception: Reception
    transmitted: datetime


class ReceptionQueue:
    """Receptions simulated ahead of time, released in time order once due.

    The twin hands over a window's receptions in time order and windows come in order, so a
    deque keeps the order without sorting.
    """

    def __init__(self) -> None:
        self._items: deque[Due] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: Due) -> None:
        self._items.append(item)

    def next_due_s(self) -> float | None:
        return self._items[0].simulated_s if self._items else None

    def pop_due(self, simulated_s: float) -> list[Due]:
        """Everything due by ``simulated_s``, oldest first."""
        out: list[Due] = []
        while self._items and self._items[0].simulated_s <= simulated_s:
            out.append(self._items.popleft())
        return out


def by_station(items: Sequence[Due]) -> dict[str, list[Due]]:
    """Due receptions grouped per station, each group in time order."""
    groups: dict[str, list[Due]] = {}
    for item in items:
        groups.setdefault(item.station, []).append(item)
    return groups


def batches(records: Sequence[Reception], size: int = BATCH_SIZE) -> Iterator[Sequence[Reception]]:
    for i in range(0, len(records), size):
        yield records[i : i + size]


def backoff_s(attempt: int, *, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: ~0.5 s, 1 s, 2 s, … capped at :data:`MAX_BACKOFF_S`."""
    base = min(MAX_BACKOFF_S, 0.5 * 2.0 ** max(0, attempt - 1))
    return base * (0.75 + 0.5 * (rng or random).random())


@dataclass
class FeedStats:
    """What the feed has done, for the periodic log line and the tests."""

    posted: int = 0
    batches: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    dropped_batches: int = 0
    retries: int = 0
    receipts: dict[str, int] = field(default_factory=dict)


class Refused(Exception):
    """The server refused a request for good (a 4xx other than 401/403/408/429): resending
    the same body cannot help, so the station logs it and moves on."""


class TooLarge(Refused):
    """413: the body is over the server's limit; a smaller batch will go through."""


class StationClient:
    """The HTTP side of the twin's ground stations, one shared connection pool.

    ``key_of(station_id)`` gives a station's current API key; ``renew_key(station_id)`` is
    called when the server no longer accepts it (someone rotated it), and returns a new one.
    """

    def __init__(
        self,
        http: httpx.Client,
        key_of: Callable[[str], str],
        renew_key: Callable[[str], str],
        stop: threading.Event,
        stats: FeedStats | None = None,
    ) -> None:
        self.http = http
        self.key_of = key_of
        self.renew_key = renew_key
        self.stop = stop
        self.stats = stats or FeedStats()

    def request(self, method: str, path: str, station_id: str, **kwargs: Any) -> Any:
        """Send until answered with success, retrying transport errors, 5xx, 408 and 429 with
        backoff and renewing the key once per 401/403. Returns the JSON body, or None if
        ``stop`` was set first; raises :class:`Refused` for other 4xx answers."""
        attempt = 0
        renewed = False
        while not self.stop.is_set():
            attempt += 1
            headers = {"Authorization": f"Bearer {self.key_of(station_id)}"}
            try:
                response = self.http.request(method, path, headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                log.debug("%s %s: %s; retrying", method, path, exc)
            else:
                code = response.status_code
                if code < 300:
                    return response.json() if response.content else {}
                if code in (401, 403) and not renewed:
                    renewed = True
                    log.info("station %s: key refused (%s); issuing a new one", station_id, code)
                    self.renew_key(station_id)
                    continue
                if code < 500 and code not in (408, 429):
                    refused = TooLarge if code == 413 else Refused
                    raise refused(f"{method} {path}: {code} {response.text[:300]}")
                log.debug("%s %s: %s; retrying", method, path, code)
            self.stats.retries += 1
            self.stop.wait(backoff_s(attempt))
        return None

    def post_receptions(self, station_id: str, receptions: Sequence[Reception]) -> None:
        """Post ``receptions`` for one station in batches of at most :data:`BATCH_SIZE`."""
        for batch in batches(receptions):
            if not self._post(station_id, batch):
                return

    def _post(self, station_id: str, batch: Sequence[Reception]) -> bool:
        """One batch, halved while the server finds it too large; False once stopping."""
        path = f"/api/v1/ground-stations/{station_id}/receptions"
        body = {"receptions": [r.to_json() for r in batch]}
        try:
            answer = self.request("POST", path, station_id, json=body)
        except TooLarge:
            if len(batch) > 1:
                half = len(batch) // 2
                return self._post(station_id, batch[:half]) and self._post(station_id, batch[half:])
            self.stats.dropped_batches += 1
            log.warning("station %s: one reception is over the server's body limit", station_id)
            return True
        except Refused as exc:
            self.stats.dropped_batches += 1
            log.warning("station %s dropped a batch of %d: %s", station_id, len(batch), exc)
            return True
        if answer is None:  # stopping
            return False
        self.stats.posted += len(batch)
        self.stats.batches += 1
        self.stats.accepted += int(answer.get("accepted", 0))
        self.stats.duplicates += int(answer.get("duplicates", 0))
        rejected = answer.get("rejected") or []
        self.stats.rejected += len(rejected)
        if rejected:
            log.debug("station %s: %d rejected, first %s", station_id, len(rejected), rejected[0])
        return True
