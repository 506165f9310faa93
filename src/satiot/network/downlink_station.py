"""The ground stations' side of the downlink protocol: fetch frames to load, report receipts.

A station fetches the scheduled downlinks whose plan loads them through it, each as the
LoRaWAN frame to upload (``phy_payload``). A frame's downlink counter is taken from the
device's ``f_cnt_down`` the first time it is encoded and kept on the downlink, so fetching
again returns the same bytes, and a device's counters follow its queue order (LoRaWAN
devices drop a frame whose counter is not above the last one they took).

Receipts report what happened: ``loaded`` (on the satellite: ``on-satellite``), ``sent`` (the
satellite transmitted it in the terminal's receive window) and ``failed``. The station that
loads must be the planned one; ``sent`` and ``failed`` for a downlink already on a satellite
come down through whichever station that satellite passes next, so any station may report
them, naming the satellite that carries it. A receipt that repeats what is already known is
counted as a duplicate and changes nothing; one that cannot apply is rejected with its index and
the reason, and the others still apply.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from satiot.core.auth.principal import Principal
from satiot.network import frames
from satiot.network.devices import open_keys
from satiot.network.downlink_changes import station_names, system_actor, transition
from satiot.network.downlink_plan import delivery_on, load_inventory
from satiot.network.keys import Kek
from satiot.network.models import Device, Downlink, GroundStation

RECEIPT_STATUSES = ("loaded", "sent", "failed")
#: How far ahead of the server's clock a receipt's ``at`` may be (station clock skew).
CLOCK_SKEW = timedelta(minutes=5)
_U32 = 1 << 32


@dataclass(frozen=True)
class StationDownlink:
    """One downlink a station should load, with the frame to upload."""

    downlink: Downlink
    dev_addr: int
    f_cnt_down: int
    phy_payload: bytes


def _assign_counters(session: Session, chosen: Sequence[Downlink], now: datetime) -> None:
    """Give every chosen downlink without one a frame counter, in each device's queue order.

    The devices' rows are locked (in id order, so two stations never deadlock) and read
    afresh; a device's earlier pending downlinks get their counters first, so counters
    follow the queue even when stations fetch out of order.
    """
    upto: dict[uuid.UUID, uuid.UUID] = {}
    for dl in chosen:
        if dl.f_cnt_down is None:
            upto[dl.device_id] = max(upto.get(dl.device_id, dl.id), dl.id)
    if not upto:
        return
    devices = {
        d.id: d
        for d in session.scalars(
            select(Device)
            .where(Device.id.in_(upto))
            .order_by(Device.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    waiting = session.scalars(
        select(Downlink)
        .where(
            Downlink.device_id.in_(upto),
            Downlink.status.in_(("queued", "scheduled")),
            Downlink.f_cnt_down.is_(None),
        )
        .order_by(Downlink.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    for dl in waiting:
        device = devices[dl.device_id]
        if dl.id > upto[dl.device_id]:
            continue
        if device.f_cnt_down >= _U32:
            continue  # exhausted: encoding refuses it below, and the downlink fails
        dl.f_cnt_down = device.f_cnt_down
        device.f_cnt_down += 1
        device.updated_at = now


def station_downlinks(
    session: Session, station: GroundStation, kek: Kek, now: datetime, *, limit: int = 100
) -> list[StationDownlink]:
    """The scheduled, unexpired downlinks planned through ``station`` (at most ``limit``),
    each encoded (counters assigned on first encoding). Run in a writing transaction.

    A station asks for as many as it can load, so the order decides who gets a contact's
    capacity: the contact that closes first comes first (a contact is one satellite's pass,
    which every downlink planned on it shares as ``load_until``), and within a contact the
    priority devices' downlinks (``Device.priority``) come before the others, each group
    soonest load first."""
    chosen = list(
        session.scalars(
            select(Downlink)
            .join(Device, Device.id == Downlink.device_id)
            .where(
                Downlink.ground_station_id == station.id,
                Downlink.status == "scheduled",
                or_(Downlink.expires_at.is_(None), Downlink.expires_at > now),
            )
            .order_by(
                Downlink.load_until,
                Downlink.satellite,
                Device.priority.desc(),
                Downlink.load_at,
                Downlink.id,
            )
            .limit(limit)
        )
    )
    _assign_counters(session, chosen, now)
    devices = {
        d.id: d
        for d in session.scalars(
            select(Device).where(Device.id.in_({dl.device_id for dl in chosen}))
        )
    }
    keys: dict[uuid.UUID, tuple[bytes, bytes]] = {}
    out: list[StationDownlink] = []
    for dl in chosen:
        device = devices[dl.device_id]
        f_cnt = dl.f_cnt_down
        if f_cnt is None:
            transition(
                session,
                system_actor(dl.tenant_id),
                dl,
                "failed",
                at=now,
                reason="the device's downlink frame counter is exhausted; re-key the device",
                station=station.name,
            )
            continue
        if device.id not in keys:
            keys[device.id] = open_keys(kek, device)
        nwk, app = keys[device.id]
        phy = frames.encode(
            mtype=frames.MType.CONFIRMED_DOWN if dl.confirmed else frames.MType.UNCONFIRMED_DOWN,
            dev_addr=device.dev_addr,
            f_cnt32=f_cnt,
            f_port=dl.f_port,
            payload=dl.payload,
            nwk_s_key=nwk,
            app_s_key=app,
        )
        out.append(StationDownlink(dl, device.dev_addr, f_cnt, phy))
    return out


@dataclass(frozen=True)
class Receipt:
    """What a station reports about one downlink."""

    downlink_id: uuid.UUID
    satellite: str
    status: str
    at: datetime
    reason: str | None = None


@dataclass
class ReceiptResult:
    applied: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


class _Reject(Exception):
    """One receipt that cannot apply; the message is the reason the station reads."""


class _Repeat(Exception):
    """One receipt that repeats what is already recorded."""


@dataclass
class _Batch:
    session: Session
    principal: Principal
    station: GroundStation
    now: datetime
    names: dict[uuid.UUID, str]

    def name(self, dl: Downlink) -> str | None:
        return self.names.get(dl.ground_station_id) if dl.ground_station_id else None

    def move(self, dl: Downlink, target: str, reason: str | None) -> None:
        transition(
            self.session,
            self.principal,
            dl,
            target,
            at=self.now,
            reason=reason,
            station=self.name(dl),
        )

    def check_station(self, dl: Downlink) -> None:
        if dl.ground_station_id != self.station.id:
            where = self.names.get(dl.ground_station_id) if dl.ground_station_id else None
            raise _Reject(
                f"downlink {dl.id} is planned through {where or 'no station'}, "
                f"not {self.station.name}"
            )

    def check_satellite(self, dl: Downlink, satellite: str) -> None:
        if dl.satellite != satellite:
            raise _Reject(f"downlink {dl.id} is carried by {dl.satellite}, not {satellite}")

    def loaded(self, dl: Downlink, r: Receipt) -> None:
        if dl.loaded_at is not None or dl.status in ("on-satellite", "sent", "acknowledged"):
            self.check_satellite(dl, r.satellite)
            raise _Repeat
        if dl.status != "scheduled":
            raise _Reject(f"downlink {dl.id} is {dl.status}; it cannot be loaded")
        self.check_station(dl)
        if dl.satellite != r.satellite:
            self._follow(dl, r.satellite)
        dl.loaded_at = r.at
        self.move(dl, "on-satellite", None)

    def sent(self, dl: Downlink, r: Receipt) -> None:
        if dl.sent_at is not None or dl.status in ("sent", "acknowledged"):
            self.check_satellite(dl, r.satellite)
            raise _Repeat
        if dl.status not in ("scheduled", "on-satellite"):
            raise _Reject(f"downlink {dl.id} is {dl.status}; it cannot be sent")
        self.check_satellite(dl, r.satellite)
        if dl.status == "scheduled":
            # The satellite's report came down before the loading station's receipt.
            dl.loaded_at = r.at
            self.move(dl, "on-satellite", "sent reported before the load receipt")
        dl.sent_at = r.at
        self.move(dl, "sent", None)

    def failed(self, dl: Downlink, r: Receipt) -> None:
        if dl.status == "failed":
            raise _Repeat
        if dl.status == "scheduled":
            self.check_station(dl)
        elif dl.status == "on-satellite":
            self.check_satellite(dl, r.satellite)
        else:
            raise _Reject(f"downlink {dl.id} is {dl.status}; it cannot fail now")
        self.move(dl, "failed", r.reason or f"reported failed by {self.station.name}")

    def _follow(self, dl: Downlink, satellite: str) -> None:
        """The station loaded another satellite than planned: estimate with that one."""
        inv = load_inventory(self.session)
        if satellite not in {t.name for t in inv.tles}:
            raise _Reject(f"satellite {satellite} is not an active satellite in the inventory")
        device = self.session.get(Device, dl.device_id)
        estimate = None
        if device is not None and device.lat is not None and device.lon is not None:
            estimate = delivery_on(satellite, inv, device.lat, device.lon, self.now)
        dl.satellite = satellite
        dl.estimated_delivery_at = estimate


def apply_receipts(
    session: Session,
    principal: Principal,
    station: GroundStation,
    receipts: Sequence[Receipt],
    *,
    now: datetime,
) -> ReceiptResult:
    """Apply a station's receipts in order; every item is applied, a duplicate or rejected."""
    ids = {r.downlink_id for r in receipts}
    rows = {
        dl.id: dl
        for dl in session.scalars(
            select(Downlink)
            .where(Downlink.id.in_(ids))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    names = station_names(session, [station.id, *(dl.ground_station_id for dl in rows.values())])
    batch = _Batch(session, principal, station, now, names)
    result = ReceiptResult()
    for index, r in enumerate(receipts):
        dl = rows.get(r.downlink_id)
        try:
            if dl is None:
                raise _Reject(f"no downlink {r.downlink_id}")
            if r.at > now + CLOCK_SKEW:
                raise _Reject(f"at {r.at.isoformat()} is in the future")
            if r.status not in RECEIPT_STATUSES:
                raise _Reject(f"status must be one of: {', '.join(RECEIPT_STATUSES)}")
            getattr(batch, r.status)(dl, r)
            result.applied += 1
        except _Repeat:
            result.duplicates += 1
        except _Reject as exc:
            result.rejected.append((index, str(exc)))
    return result
