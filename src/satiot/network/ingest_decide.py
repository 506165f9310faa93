"""Deciding a batch: which records are new uplinks, which are copies, which are refused and why.

Everything here works in memory on what two queries loaded (the candidate devices, the stored
uplinks among the batch's counters); ``ingest`` writes the outcome. Records are decided in
batch order, so a batch decides exactly as its records posted one by one would, only without
a transaction each.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from satiot.core.bulk import StoredId, stored_form, stores_hex
from satiot.core.ids import new_id_block, uuid_from_int
from satiot.network.frames import DataFrame, MType
from satiot.network.ground_stations import PostingStation
from satiot.network.ingest_frames import Candidate, match_frame, parse_frame
from satiot.network.ingest_store import (
    KnownUplink,
    ReceptionRow,
    UplinkRow,
    load_devices,
    load_uplinks,
    lock_throttled,
)
from satiot.network.ingest_validate import ReceptionIn, Rejection, validate_item
from satiot.network.keys import Kek
from satiot.network.messages import AcceptedUplink, reception_json, uplink_message
from satiot.network.states import DEVICE_TRAFFIC_STATES


@dataclass
class IngestResult:
    """The answer to a station: counts and, per refused record, its index and reason."""

    accepted: int
    duplicates: int
    rejected: list[Rejection]
    uplink_ids: list[uuid.UUID] = field(default_factory=list)  # new uplinks, for callers

    def to_json(self, batch_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [r.to_json() for r in self.rejected],
        }
        if batch_id is not None:
            body["batch_id"] = batch_id
        return body


class _Ids:
    """Ids for one batch's rows: a block of consecutive UUIDv7 values (RFC 9562 §6.2, method
    2), reserved so that no other id falls among them, and a batch's uplinks sort in the order
    they were accepted. ``hex_ids``: the database stores ids as hex text (SQLite)."""

    def __init__(self, needed: int, hex_ids: bool) -> None:
        self._next = new_id_block(needed)
        self._hex = hex_ids

    def __call__(self) -> uuid.UUID:
        value = self._next
        self._next += 1
        return uuid_from_int(value)

    def pair(self) -> tuple[uuid.UUID, StoredId]:
        """An id and its stored form."""
        value = self._next
        self._next += 1
        made = uuid_from_int(value)
        return made, f"{value:032x}" if self._hex else made

    def stored(self) -> StoredId:
        """An id only ever written, never read back here: in its stored form alone."""
        value = self._next
        self._next += 1
        return f"{value:032x}" if self._hex else uuid_from_int(value)


class _Uplink:
    """One frame of the batch: new (to insert) or already stored (gaining copies)."""

    __slots__ = (
        "_first", "copies", "device", "f_cnt", "frame", "id", "items", "key", "mic", "payload",
    )  # fmt: skip

    def __init__(
        self,
        ids: tuple[uuid.UUID, StoredId],
        device: Candidate,
        f_cnt: int,
        mic: int,
        frame: DataFrame | None,
    ) -> None:
        self.id, self.key = ids  # the id, and as stored
        self.device = device
        self.f_cnt = f_cnt
        self.mic = mic
        self.frame = frame  # set for a new uplink: its first copy's content
        self.payload = b""
        self.items: list[int] = []  # batch indices of the records that are copies of it
        self.copies: dict[tuple[str, datetime], ReceptionIn] = {}
        self._first: datetime | None = None

    def add(self, index: int, rec: ReceptionIn) -> None:
        self.items.append(index)
        self.copies.setdefault((rec.satellite, rec.received_at), rec)
        if self._first is None or rec.received_at < self._first:
            self._first = rec.received_at

    @property
    def received_at(self) -> datetime:
        """The earliest copy's reception time."""
        if self._first is None:
            self._first = min(when for _, when in self.copies)
        return self._first


_Matched = tuple[int, ReceptionIn, DataFrame, Candidate, int]


class Batch:
    """The decisions for one batch and the rows and events they turn into."""

    def __init__(self, station: PostingStation, size: int, *, hex_ids: bool) -> None:
        """``hex_ids``: the database stores ids as hex text (SQLite), else as UUIDs."""
        self.station = station
        self.station_text = (str(station.id), station.name)  # as every message names it
        self.station_key = stored_form(station.id, hex_ids)
        self._tenant_texts: dict[StoredId, str] = {}  # a batch's devices share few tenants
        self.rejected: list[Rejection] = []
        self.duplicates = 0
        self.new: list[_Uplink] = []
        self.known: dict[tuple[StoredId, int], _Uplink] = {}  # by (device as stored, FCnt)
        # uplinks, receptions and events: at most one each
        self.ids = _Ids(3 * size + 1, hex_ids)

    def reject(self, index: int, reason: str, detail: str) -> None:
        self.rejected.append(Rejection(index, reason, detail))

    def parse(self, items: Sequence[Any]) -> list[tuple[int, ReceptionIn, DataFrame]]:
        parsed: dict[bytes, DataFrame | tuple[str, str]] = {}
        out = []
        for index, item in enumerate(items):
            rec = validate_item(index, item)
            if isinstance(rec, Rejection):
                self.rejected.append(rec)
                continue
            frame = parsed.get(rec.phy)
            if frame is None:
                frame = parsed[rec.phy] = parse_frame(rec.phy)
            if isinstance(frame, DataFrame):
                out.append((index, rec, frame))
            else:
                self.reject(index, *frame)
        return out

    def match(
        self, parsed: list[tuple[int, ReceptionIn, DataFrame]], rows: Sequence[Any], kek: Kek
    ) -> list[_Matched]:
        by_addr: dict[int, list[Candidate]] = {}
        for row in rows:
            by_addr.setdefault(row[3], []).append(Candidate(row))  # by its dev_addr
        for devs in by_addr.values():  # try active sessions first, then the others
            devs.sort(key=lambda d: d.status not in DEVICE_TRAFFIC_STATES)
        seen: dict[bytes, tuple[Candidate, int] | tuple[str, str]] = {}
        out: list[_Matched] = []
        for index, rec, frame in parsed:
            found = seen.get(rec.phy)
            if found is None:
                candidates = by_addr.get(frame.dev_addr)
                if not candidates:
                    found = ("unknown-dev-addr", f"no device has DevAddr {frame.dev_addr:08X}")
                else:
                    found = match_frame(frame, candidates, kek)
                seen[rec.phy] = found
            if isinstance(found[0], str):
                self.reject(index, found[0], str(found[1]))
            else:
                dev, f_cnt = found
                assert isinstance(dev, Candidate) and isinstance(f_cnt, int)
                out.append((index, rec, frame, dev, f_cnt))
        return out

    def assign(self, matched: list[_Matched], stored: list[KnownUplink], window: int) -> None:
        """Decide each authentic record in batch order: new, duplicate, replay or stale."""
        devices = {m[3].key: m[3] for m in matched}
        state = self.known
        for k in stored:
            state[(k.device_key, k.f_cnt)] = _Uplink(
                (k.id, k.key), devices[k.device_key], k.f_cnt, k.mic, None
            )
        for index, rec, frame, dev, f_cnt in matched:
            if dev.status not in DEVICE_TRAFFIC_STATES:
                self.reject(index, "device-inactive", f"device {dev.dev_eui} is {dev.status}")
                continue
            mic = int.from_bytes(frame.mic, "big")
            up = state.get((dev.key, f_cnt))
            if up is not None:
                if up.mic != mic:
                    self.reject(
                        index,
                        "replayed-counter",
                        f"device {dev.dev_eui} already sent another frame with FCnt {f_cnt}",
                    )
                else:
                    up.add(index, rec)
                    self.duplicates += 1
                continue
            if dev.f_cnt is not None and f_cnt < dev.f_cnt - window:
                self.reject(
                    index,
                    "stale-counter",
                    f"FCnt {f_cnt} is more than {window} below device {dev.dev_eui}'s {dev.f_cnt}",
                )
                continue
            if dev.throttle_gap is not None:
                if dev.throttle_next is not None and rec.received_at < dev.throttle_next:
                    self.reject(
                        index,
                        "throttled",
                        f"device {dev.dev_eui} is throttled at its contract's quota: one message"
                        f" per {int(dev.throttle_gap.total_seconds())} s, the next from"
                        f" {dev.throttle_next.isoformat()}",
                    )
                    continue
                dev.throttle_next = rec.received_at + dev.throttle_gap
            up = state[(dev.key, f_cnt)] = _Uplink(self.ids.pair(), dev, f_cnt, mic, frame)
            up.add(index, rec)
            self.new.append(up)
            dev.f_cnt = f_cnt if dev.f_cnt is None else max(dev.f_cnt, f_cnt)
            if dev.last_seen is None or rec.received_at > dev.last_seen:
                dev.last_seen = rec.received_at

    def lost_race(self, lost: list[_Uplink], winners: list[KnownUplink]) -> None:
        """Turn new uplinks that a concurrent transaction stored first into copies of its
        uplinks (same MIC) or into replays (another MIC)."""
        by_key = {(w.device_key, w.f_cnt): w for w in winners}
        gone = {id(up) for up in lost}
        self.new = [up for up in self.new if id(up) not in gone]
        for up in lost:
            winner = by_key.get((up.device.key, up.f_cnt))
            if winner is None:
                raise RuntimeError("an uplink lost its insert but no winner is visible")
            if winner.mic == up.mic:
                stored = _Uplink((winner.id, winner.key), up.device, up.f_cnt, winner.mic, None)
                stored.items, stored.copies = up.items, up.copies
                self.known[(up.device.key, up.f_cnt)] = stored
                self.duplicates += 1  # its first record was counted as accepted
                continue
            del self.known[(up.device.key, up.f_cnt)]
            self.duplicates -= len(up.items) - 1
            for index in up.items:
                self.reject(
                    index,
                    "replayed-counter",
                    f"device {up.device.dev_eui} already sent another frame with FCnt {up.f_cnt}",
                )

    def uplink_rows(self, at: datetime, kek: Kek) -> list[UplinkRow]:
        """Rows of the new uplinks (their payloads decrypted here, once per frame)."""
        rows = []
        for up in self.new:
            frame, dev = up.frame, up.device
            cipher = dev.cipher(kek)
            assert frame is not None and cipher is not None  # it verified under this cipher
            up.payload = cipher.decrypt(frame, up.f_cnt)
            rows.append(
                UplinkRow(
                    up.key,
                    dev.tenant_key,
                    dev.key,
                    dev.dev_eui,
                    up.f_cnt,
                    frame.f_port,
                    up.mic,
                    frame.mtype is MType.CONFIRMED_UP,
                    frame.ack,
                    frame.adr,
                    frame.f_opts,
                    up.payload,
                    up.received_at,
                    at,
                    len(up.copies),
                )
            )
        return rows

    def reception_rows(self, at: datetime) -> tuple[list[ReceptionRow], list[ReceptionRow]]:
        """One row per distinct copy (station, satellite, time) of every frame in the batch:
        (copies of new uplinks, copies of stored ones)."""
        station_key = self.station_key
        stored_id = self.ids.stored
        fresh: list[ReceptionRow] = []
        more: list[ReceptionRow] = []
        for up in self.known.values():
            if not up.copies:
                continue
            rows = fresh if up.frame is not None else more
            tenant_key, uplink_key = up.device.tenant_key, up.key
            for rec in up.copies.values():
                rows.append(
                    ReceptionRow(
                        stored_id(),
                        tenant_key,
                        uplink_key,
                        station_key,
                        rec.satellite,
                        rec.received_at,
                        rec.frequency_hz,
                        rec.rssi_dbm,
                        rec.snr_db,
                        rec.doppler_hz,
                        at,
                    )
                )
        return fresh, more

    def device_progress(self) -> dict[StoredId, tuple[int, datetime, datetime | None]]:
        """Per device (as stored) with new uplinks: its highest counter, latest reception time
        and, when throttled, when it may send next."""
        out: dict[StoredId, tuple[int, datetime, datetime | None]] = {}
        for up in self.new:
            dev = up.device
            if dev.f_cnt is not None and dev.last_seen is not None:
                nxt = dev.throttle_next if dev.throttle_gap is not None else None
                out[dev.key] = (dev.f_cnt, dev.last_seen, nxt)
        return out

    def message(self, up: _Uplink, at: datetime) -> dict[str, Any]:
        """The ``uplink.accepted`` payload: the one shape every channel delivers."""
        frame, dev = up.frame, up.device
        assert frame is not None
        station_id, station_name = self.station_text
        tenant_text = self._tenant_texts.get(dev.tenant_key)
        if tenant_text is None:
            tenant_text = self._tenant_texts[dev.tenant_key] = str(dev.tenant_id)
        return uplink_message(
            id=up.id,
            tenant_id=tenant_text,
            dev_eui=dev.dev_eui,
            f_cnt=up.f_cnt,
            f_port=frame.f_port,
            payload=up.payload,
            confirmed=frame.mtype is MType.CONFIRMED_UP,
            ack=frame.ack,
            received_at=up.received_at,
            accepted_at=at,
            receptions=[
                reception_json(
                    ground_station_id=station_id,
                    ground_station=station_name,
                    satellite=rec.satellite,
                    received_at=rec.received_at,
                    frequency_hz=rec.frequency_hz,
                    rssi_dbm=rec.rssi_dbm,
                    snr_db=rec.snr_db,
                    doppler_hz=rec.doppler_hz,
                )
                for rec in up.copies.values()
            ],
        )

    def acknowledgements(self) -> list[AcceptedUplink]:
        """The new uplinks that carry the ACK bit (each settles a confirmed downlink)."""
        out = []
        for up in self.new:
            frame = up.frame
            assert frame is not None
            if not frame.ack:
                continue
            out.append(
                AcceptedUplink(
                    uplink_id=up.id,
                    device_id=up.device.id,
                    tenant_id=up.device.tenant_id,
                    dev_eui=up.device.dev_eui,
                    f_cnt=up.f_cnt,
                    ack=frame.ack,
                    confirmed=frame.mtype is MType.CONFIRMED_UP,
                    received_at=up.received_at,
                    satellites=_satellites(up.copies),
                )
            )
        return out

    def result(self) -> IngestResult:
        return IngestResult(
            accepted=len(self.new),
            duplicates=self.duplicates,
            rejected=sorted(self.rejected, key=lambda r: r.index),
            uplink_ids=[up.id for up in self.new],
        )


def _satellites(copies: dict[tuple[str, datetime], ReceptionIn]) -> tuple[str, ...]:
    if len(copies) == 1:
        return (next(iter(copies))[0],)
    return tuple(sorted({sat for sat, _ in copies}))


def decide(
    session: Session,
    station: PostingStation,
    items: Sequence[Any],
    *,
    kek: Kek,
    fcnt_window: int,
) -> Batch:
    """Validate, authenticate and classify ``items`` (two queries, and on PostgreSQL a third
    that locks throttled devices when the batch has frames of any); nothing is written."""
    batch = Batch(station, len(items), hex_ids=stores_hex(session))
    parsed = batch.parse(items)
    rows = load_devices(session, {frame.dev_addr for _, _, frame in parsed})
    matched = batch.match(parsed, rows, kek)
    throttled = {
        m[3]
        for m in matched
        if m[3].throttle_gap is not None and m[3].status in DEVICE_TRAFFIC_STATES
    }
    if throttled:
        # Admission under throttling must see what concurrent batches admitted: lock these
        # devices and read their throttling again (one statement, PostgreSQL only), before
        # the stored uplinks are read.
        fresh = lock_throttled(session, (dev.id for dev in throttled))
        if fresh is not None:
            for dev in throttled:
                dev.throttle(*fresh.get(dev.id, (None, None)))
    stored = load_uplinks(session, {(m[3].key, m[4]) for m in matched})
    batch.assign(matched, stored, fcnt_window)
    return batch
