"""The live twin's ground stations carrying commands to terminals.

A real ground station fetches the downlinks planned through it, loads each onto its satellite
when that satellite is in view, and reports what happened. The twin's stations do the same
through the same API (``GET /api/v1/ground-stations/{id}/downlinks`` and ``POST …/
downlink-receipts``):

- **loaded**: inside the planned load window (``load_at`` … ``load_until``), once the planned
  satellite is above the station's elevation mask *now* — its real position, where the
  server's planner (which works in real time from the same element sets) expects it; at
  ``twin_speed`` 1 that is also where the twin has it. A window that closes unloaded is left
  to the planner, which plans again;
- **sent**: a LoRaWAN Class A terminal can only be reached in the receive window after one of
  its own uplinks, so the satellite sends a loaded downlink when it next hears that terminal,
  i.e. with the first uplink of that terminal the satellite receives after loading. The
  station learns of it when the satellite dumps that uplink, on this or any station; ``at`` is
  when the terminal transmitted it (the twin knows, a reception record does not say);
- **failed**: the planned satellite is not one the twin flies.

The stations keep which downlinks they loaded in memory only: after a restart, a downlink
already on a satellite is left to the server's expiry.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from satiot.network import frames
from satiot.network.live_feed import Due, Refused, StationClient
from satiot.network.population import DEV_ADDR_BASE
from satiot.network.twin import TwinRun

log = logging.getLogger(__name__)


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Loaded:
    """A downlink this station put on a satellite, waiting for the terminal's next uplink."""

    downlink_id: str
    station_id: str
    satellite: str
    dev_addr: int
    loaded_at: datetime


@dataclass(frozen=True)
class Receipt:
    station_id: str
    downlink_id: str
    satellite: str
    status: str
    at: datetime
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "downlink_id": self.downlink_id,
            "satellite": self.satellite,
            "status": self.status,
            "at": _iso(self.at),
            "reason": self.reason,
        }


def _instant(value: Any) -> datetime | None:
    """An ISO-8601 instant from the API, or None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def _items(answer: Any) -> list[dict[str, Any]]:
    """The downlinks in a ``GET …/downlinks`` answer (a list, or an object holding one)."""
    if isinstance(answer, list):
        return [a for a in answer if isinstance(a, dict)]
    if isinstance(answer, dict):
        for key in ("downlinks", "items", "data"):
            if isinstance(answer.get(key), list):
                return [a for a in answer[key] if isinstance(a, dict)]
    return []


class DownlinkSide:
    """Loads planned downlinks onto satellites in view and reports loaded, sent and failed."""

    def __init__(
        self,
        client: StationClient,
        twin: TwinRun,
        station_ids: Sequence[str],
        dev_index: Mapping[str, int],
    ) -> None:
        """``station_ids`` are the server's ids of the twin's stations, in scenario order;
        ``dev_index`` maps a DevEUI to its terminal in the twin's population."""
        self.client = client
        self.twin = twin
        self.station_ids = list(station_ids)
        self.satellite_index = {t.name: i for i, t in enumerate(twin.tles)}
        self.dev_index = dev_index
        self.handled: set[str] = set()
        self.waiting: dict[tuple[int, str], list[Loaded]] = {}

    # -- fetching and loading -------------------------------------------------------------

    def poll(self, now: datetime) -> list[Receipt]:
        """Fetch every station's planned downlinks; load those whose satellite is in view of
        the station at the real instant ``now``."""
        elapsed = (now - self.twin.scenario.start).total_seconds()
        elevations = self.twin.elevations_deg(elapsed)
        masks = self.twin.gs_mask
        receipts: list[Receipt] = []
        for g, station_id in enumerate(self.station_ids):
            path = f"/api/v1/ground-stations/{station_id}/downlinks"
            try:
                answer = self.client.request("GET", path, station_id)
            except Refused as exc:
                log.warning("station %s: cannot fetch downlinks: %s", station_id, exc)
                continue
            for item in _items(answer):
                receipt = self._consider(item, station_id, elevations[g], masks[g], now)
                if receipt is not None:
                    receipts.append(receipt)
        self.send(receipts)
        return receipts

    def _consider(
        self, item: dict[str, Any], station_id: str, elevation: Any, mask: float, now: datetime
    ) -> Receipt | None:
        downlink_id = str(item.get("downlink_id") or item.get("id") or "")
        satellite = str(item.get("satellite") or "")
        status = item.get("status")
        if not downlink_id or downlink_id in self.handled:
            return None
        if status is not None and status not in ("scheduled", "queued"):
            return None  # already on a satellite (before a restart) or settled
        opens, closes = _instant(item.get("load_at")), _instant(item.get("load_until"))
        if (opens is not None and now < opens) or (closes is not None and now > closes):
            return None  # outside its load window: wait for it, or for the next plan
        sat = self.satellite_index.get(satellite)
        if sat is None:
            self.handled.add(downlink_id)
            reason = f"satellite {satellite or '(none)'} is not in this station's constellation"
            return Receipt(station_id, downlink_id, satellite, "failed", now, reason)
        if float(elevation[sat]) < mask:
            return None  # not in view yet: try again at the next poll
        self.handled.add(downlink_id)
        index = self.dev_index.get(str(item.get("dev_eui") or "").upper())
        if index is not None:
            loaded = Loaded(downlink_id, station_id, satellite, DEV_ADDR_BASE + index, now)
            self.waiting.setdefault((loaded.dev_addr, satellite), []).append(loaded)
        return Receipt(station_id, downlink_id, satellite, "loaded", now)

    # -- hearing the terminal again -------------------------------------------------------

    def observe(self, heard: Sequence[Due]) -> list[Receipt]:
        """Receptions just posted: any of them may carry the uplink a loaded downlink waited
        for. Returns (and sends) the ``sent`` receipts."""
        if not self.waiting:
            return []
        receipts: list[Receipt] = []
        for due in heard:
            r = due.reception
            try:
                frame = frames.parse(r.phy_payload)
            except frames.FrameError:
                continue
            key = (frame.dev_addr, r.satellite)
            queue = self.waiting.get(key)
            if not queue:
                continue
            still: list[Loaded] = []
            for loaded in queue:
                if due.transmitted >= loaded.loaded_at:
                    receipts.append(
                        Receipt(
                            loaded.station_id,
                            loaded.downlink_id,
                            r.satellite,
                            "sent",
                            due.transmitted,
                        )
                    )
                else:
                    still.append(loaded)
            if still:
                self.waiting[key] = still
            else:
                del self.waiting[key]
        self.send(receipts)
        return receipts

    def send(self, receipts: Sequence[Receipt]) -> None:
        by_station: dict[str, list[Receipt]] = {}
        for receipt in receipts:
            by_station.setdefault(receipt.station_id, []).append(receipt)
        stats = self.client.stats.receipts
        for station_id, group in by_station.items():
            path = f"/api/v1/ground-stations/{station_id}/downlink-receipts"
            body = {"receipts": [r.to_json() for r in group]}
            try:
                self.client.request("POST", path, station_id, json=body)
            except Refused as exc:
                log.warning("station %s: receipts refused: %s", station_id, exc)
                continue
            for r in group:
                stats[r.status] = stats.get(r.status, 0) + 1
