"""Ingest: a ground station's batch of receptions in, verified and de-duplicated uplinks out.

One batch is one transaction with a constant number of statements (``ingest_store``):

1. validate each record on its own (``ingest_validate``) and parse its frame; identical bytes
   in one batch are parsed and authenticated once;
2. load every device holding one of the batch's DevAddrs (one query); a DevAddr may be shared,
   so each candidate's MIC is tried under the full counter recovered from that device's
   newest one (``frames.recover_fcnt32``): the MIC covers all 32 bits, so the device and
   counter it verifies under are the frame's;
3. on PostgreSQL, when the batch has frames of throttled devices, lock those devices' rows
   and read their throttling again (one query): a throttled device's next admission is then
   decided on what concurrent batches admitted, not on a value they are about to change;
4. load the stored uplinks among the batch's (device, FCnt) pairs (one query);
5. decide each record in batch order: a copy of a known frame (same device, FCnt and MIC) is a
   *duplicate* and adds its reception; the same counter with another MIC is a *replay*; a
   counter further than ``fcnt_window`` below the device's newest that is not a known copy is
   *stale*; a new frame of a throttled device that comes before its next allowed time is
   *throttled*; otherwise the frame is a new uplink, decrypted once;
6. write uplinks and receptions with INSERT … ON CONFLICT DO NOTHING (a concurrent poster that
   stored the same frame first wins; its row is re-read and this copy attached to it), raise
   counters, and emit one ``uplink.accepted`` per new uplink on the same session, so the
   event commits with the rows or not at all.

The de-duplication key (device, full FCnt, MIC) does not depend on when a copy arrives: store
and forward delivers copies of one frame via several satellites and stations hours apart, and
out of order. An uplink's content and ``received_at`` are fixed when it is accepted (the
earliest copy in the accepting batch): the ``uplink.accepted`` event that billing and delivery
consumed says the same as the row, forever. A later copy, even an earlier-received one, only
adds a reception (each carries its own ``received_at``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from satiot.core import events
from satiot.core.auth.principal import Principal
from satiot.core.db import Database
from satiot.network import downlinks
from satiot.network.ground_stations import PostingStation, authorize_poster, posting_station
from satiot.network.ingest_decide import IngestResult, decide
from satiot.network.ingest_store import (
    add_reception_counts,
    advance_devices,
    insert_receptions,
    insert_uplinks,
    load_uplinks,
    touch_station,
)
from satiot.network.keys import Kek
from satiot.network.messages import UPLINK_ACCEPTED

__all__ = ["IngestResult", "ingest", "ingest_batch"]

log = logging.getLogger(__name__)

_RETRIES = 5
#: PostgreSQL's "serialization failure" and "deadlock detected": retry the whole batch.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})


def ingest_batch(
    session: Session,
    station: PostingStation,
    items: Sequence[Any],
    *,
    kek: Kek,
    at: datetime,
    fcnt_window: int,
) -> IngestResult:
    """Ingest ``items`` (posted reception records) from ``station`` in the caller's
    transaction; the caller commits. Nothing is written for rejected items."""
    batch = decide(session, station, items, kek=kek, fcnt_window=fcnt_window)
    if batch.new:
        inserted = insert_uplinks(session, batch.uplink_rows(at, kek))
        lost = [up for up in batch.new if up.key not in inserted]
        if lost:
            # Another transaction stored these frames while this one decided: attach to its
            # uplinks (or reject as replays), as if they had been known from the start.
            batch.lost_race(lost, load_uplinks(session, [(u.device.key, u.f_cnt) for u in lost]))
    # New uplinks were inserted with their count; stored ones gain what was really added.
    add_reception_counts(session, insert_receptions(session, *batch.reception_rows(at)))
    advance_devices(session, batch.device_progress())
    touch_station(session, station.id, at)
    for up in batch.new:
        events.emit(
            session,
            UPLINK_ACCEPTED,
            at=at,
            payload=batch.message(up, at),
            tenant_id=up.device.tenant_id,
            subject=("device", up.device.dev_eui),
            event_id=batch.ids(),
        )
    downlinks.on_acks(session, batch.acknowledgements(), at=at)
    return batch.result()


def _transient(exc: DBAPIError) -> bool:
    state = getattr(exc.orig, "sqlstate", None)
    return state in _TRANSIENT_SQLSTATES or "database is locked" in str(exc.orig)


def ingest(
    db: Database,
    station_id: uuid.UUID,
    items: Sequence[Any],
    *,
    kek: Kek,
    at: datetime,
    fcnt_window: int,
    principal: Principal | None = None,
) -> IngestResult:
    """Ingest one batch for ``station_id`` in its own transaction (the HTTP and MQTT entry).

    ``principal`` is the poster (checked against the station: a station's key posts only for
    that station); ``None`` means a trusted in-process caller. Raises NotFound for an unknown
    station and PermissionDenied for a key of another station. A deadlock or serialisation
    failure on PostgreSQL retries the whole batch: it was rolled back, so nothing is doubled.
    """
    for attempt in range(_RETRIES):
        try:
            with db.write() as session:
                station = posting_station(session, station_id)
                authorize_poster(principal, station)
                return ingest_batch(
                    session, station, items, kek=kek, at=at, fcnt_window=fcnt_window
                )
        except DBAPIError as exc:
            if attempt == _RETRIES - 1 or not _transient(exc):
                raise
            log.info("ingest batch for station %s retried after %s", station_id, exc.orig)
            time.sleep(0.01 * 2**attempt)
    raise AssertionError("unreachable")
