"""A batch's frames against the devices that may have sent them: parsing and authentication.

A record's frame is parsed once per distinct bytes, then tried against every device holding
its DevAddr: the full counter is recovered from that device's newest one and the MIC checked
under it. The MIC covers all 32 counter bits, so the device and counter it verifies under are
the frame's.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from satiot.core.bulk import StoredId, sqlite_uuid
from satiot.network import frames
from satiot.network.devices import APP_S_KEY, NWK_S_KEY, key_aad
from satiot.network.frames import DataFrame, FrameError, MType
from satiot.network.ingest_keys import SessionCipher, session_cipher
from satiot.network.keys import Kek, KekError

_UPLINK_TYPES = frozenset({MType.UNCONFIRMED_UP, MType.CONFIRMED_UP})


class Candidate:
    """A device that may have sent a batch's frames, as loaded, with its counter moving as
    the batch is decided."""

    __slots__ = (
        "_cipher",
        "_id",
        "app_sealed",
        "dev_eui",
        "f_cnt",
        "f_cnt_stored",
        "kek_id",
        "key",
        "last_seen",
        "nwk_sealed",
        "status",
        "tenant_id",
        "tenant_key",
        "throttle_gap",
        "throttle_next",
    )
    _id: uuid.UUID | None
    tenant_id: uuid.UUID
    dev_eui: str
    status: str
    nwk_sealed: bytes
    app_sealed: bytes
    kek_id: str
    key: StoredId  # the id as the database stores it
    tenant_key: StoredId

    def __init__(self, row: Any) -> None:
        """``row``: the columns of ``ingest_store.load_devices``, in its order (unpacked as a
        tuple: reading a row's fields by name costs more than the rest of this together)."""
        (self._id, self.tenant_id, self.dev_eui, _addr, self.status, self.nwk_sealed,
         self.app_sealed, self.kek_id, f_cnt, gap_s, next_at, self.key,
         self.tenant_key) = row  # fmt: skip
        self.f_cnt_stored: int | None = f_cnt
        self.f_cnt: int | None = f_cnt  # highest counter, moving as the batch is decided
        self.last_seen: datetime | None = None
        self.throttle_gap: timedelta | None = None
        self.throttle_next: datetime | None = None  # moves with the batch
        self.throttle(gap_s, next_at)
        self._cipher: SessionCipher | None = None

    @property
    def id(self) -> uuid.UUID:
        """The device's id (SQLite rows leave it to be made from the stored id, on demand)."""
        if self._id is None:
            self._id = sqlite_uuid(str(self.key))
        return self._id

    def throttle(self, gap_s: int | None, next_at: datetime | None) -> None:
        """Set the device's throttling as stored (gap in seconds, or none)."""
        self.throttle_gap = timedelta(seconds=gap_s) if gap_s else None
        self.throttle_next = next_at

    def cipher(self, kek: Kek) -> SessionCipher | None:
        """The session's cipher, or None when its keys do not open under ``kek``."""
        if self._cipher is None:
            if self.kek_id != kek.id:
                return None

            def open_keys() -> tuple[bytes, bytes]:
                return (
                    kek.open(self.nwk_sealed, key_aad(self.dev_eui, NWK_S_KEY)),
                    kek.open(self.app_sealed, key_aad(self.dev_eui, APP_S_KEY)),
                )

            key = (kek.id, self.key, self.nwk_sealed, self.app_sealed)
            try:
                self._cipher = session_cipher(key, open_keys)
            except KekError:
                return None
        return self._cipher


def parse_frame(phy: bytes) -> DataFrame | tuple[str, str]:
    if not phy:
        return ("malformed-frame", "phy_payload is empty")
    mtype = phy[0] >> 5
    if mtype not in _UPLINK_TYPES:
        name = MType(mtype).name.lower() if mtype < 6 else "proprietary or RFU"
        return ("not-data-uplink", f"message type {mtype} ({name}) is not a data uplink")
    try:
        return frames.parse(phy)
    except FrameError as exc:
        return ("malformed-frame", str(exc))


def match_frame(
    frame: DataFrame, candidates: list[Candidate], kek: Kek
) -> tuple[Candidate, int] | tuple[str, str]:
    """The device and full counter this frame authenticates under, or why none does."""
    exhausted = unavailable = False
    for dev in candidates:
        try:
            f_cnt = frames.recover_fcnt32(dev.f_cnt_stored, frame.f_cnt16)
        except FrameError:
            exhausted = True
            continue
        cipher = dev.cipher(kek)
        if cipher is None:
            unavailable = True
            continue
        if cipher.verify(frame, f_cnt):
            return dev, f_cnt
    addr = f"{frame.dev_addr:08X}"
    if exhausted:
        return ("counter-exhausted", f"the frame counter of DevAddr {addr} is exhausted")
    if unavailable:
        return ("session-unavailable", f"a session of DevAddr {addr} cannot be opened")
    return ("mic-failure", f"the MIC verifies under no session of DevAddr {addr}")
