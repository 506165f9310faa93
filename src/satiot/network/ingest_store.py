"""The statements of one ingest batch: a fixed handful, whatever the batch holds.

Each function is one SQL statement over the whole batch (a read by an IN list or a joined
VALUES list, a multi-row INSERT … ON CONFLICT DO NOTHING … RETURNING, or an executemany
UPDATE), issued on the session's connection through SQLAlchemy Core so that no ORM unit of work
runs per row. ON CONFLICT is what makes concurrent posters safe on PostgreSQL: two transactions
inserting the same uplink both reach the unique index, one wins, the other's row is skipped and
it re-reads the winner (:func:`load_uplinks`) instead of relying on a read made before the race.
SQLite serialises writers (``BEGIN IMMEDIATE``), so there the loser case never arises.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Connection,
    Table,
    Uuid,
    and_,
    bindparam,
    case,
    column,
    select,
    update,
)
from sqlalchemy import values as sql_values
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from satiot.network.models import Device, GroundStation, Uplink, UplinkReception

_DEVICES = cast(Table, Device.__table__)
_UPLINKS = cast(Table, Uplink.__table__)
_RECEPTIONS = cast(Table, UplinkReception.__table__)
_STATIONS = cast(Table, GroundStation.__table__)


@dataclass(slots=True)
class KnownUplink:
    """An uplink already stored: enough to tell a duplicate from a replay."""

    id: uuid.UUID
    device_id: uuid.UUID
    f_cnt: int
    mic: int


def _connection(session: Session) -> Connection:
    return session.connection()


def _insert(conn: Connection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def load_devices(session: Session, dev_addrs: Iterable[int]) -> Sequence[Any]:
    """Every device holding one of these DevAddrs, whatever its status (one query)."""
    addrs = sorted(set(dev_addrs))
    if not addrs:
        return []
    c = _DEVICES.c
    stmt = select(
        c.id,
        c.tenant_id,
        c.dev_eui,
        c.dev_addr,
        c.status,
        c.nwk_s_key_sealed,
        c.app_s_key_sealed,
        c.kek_id,
        c.f_cnt_up,
    ).where(c.dev_addr.in_(addrs))
    return _connection(session).execute(stmt).all()


def load_uplinks(session: Session, keys: Iterable[tuple[uuid.UUID, int]]) -> list[KnownUplink]:
    """The stored uplinks among these (device, full FCnt) pairs (one query).

    The pairs are joined as a VALUES list so each is one index probe: a row-value IN list
    makes SQLite scan the whole table.
    """
    pairs = sorted(set(keys))
    if not pairs:
        return []
    wanted = (
        sql_values(column("device_id", Uuid), column("f_cnt", BigInteger), name="wanted")
        .data(pairs)
        .cte("wanted")
    )
    c = _UPLINKS.c
    stmt = select(c.id, c.device_id, c.f_cnt, c.mic).join_from(
        wanted, _UPLINKS, and_(c.device_id == wanted.c.device_id, c.f_cnt == wanted.c.f_cnt)
    )
    rows = _connection(session).execute(stmt).all()
    return [KnownUplink(r.id, r.device_id, r.f_cnt, r.mic) for r in rows]


def insert_uplinks(session: Session, rows: Sequence[Mapping[str, Any]]) -> set[uuid.UUID]:
    """Insert new uplinks, skipping any (device, FCnt) another transaction stored first;
    return the ids actually inserted."""
    if not rows:
        return set()
    conn = _connection(session)
    stmt = (
        _insert(conn, _UPLINKS)
        .on_conflict_do_nothing(index_elements=["device_id", "f_cnt"])
        .returning(_UPLINKS.c.id)
    )
    return {r[0] for r in conn.execute(stmt, list(rows))}


def insert_receptions(session: Session, rows: Sequence[Mapping[str, Any]]) -> list[uuid.UUID]:
    """Insert receptions, skipping copies already stored (a station's retried post); return
    the uplink id of each row actually inserted."""
    if not rows:
        return []
    conn = _connection(session)
    stmt = (
        _insert(conn, _RECEPTIONS)
        .on_conflict_do_nothing(
            index_elements=["uplink_id", "ground_station_id", "satellite", "received_at"]
        )
        .returning(_RECEPTIONS.c.uplink_id)
    )
    return [r[0] for r in conn.execute(stmt, list(rows))]


def add_reception_counts(session: Session, added: Mapping[uuid.UUID, int]) -> None:
    """``reception_count += n`` on stored uplinks that gained copies (one executemany)."""
    if not added:
        return
    c = _UPLINKS.c
    stmt = (
        update(_UPLINKS)
        .where(c.id == bindparam("b_id"))
        .values(reception_count=c.reception_count + bindparam("b_n"))
    )
    params = [{"b_id": uid, "b_n": n} for uid, n in sorted(added.items())]
    _connection(session).execute(stmt, params)


def advance_devices(session: Session, progress: Mapping[uuid.UUID, tuple[int, datetime]]) -> None:
    """Raise each device's ``f_cnt_up`` and ``last_seen_at`` to at least the given values.

    Written as a maximum in SQL, so concurrent batches (in any order) leave the highest; rows
    are updated in id order so two transactions lock them in the same order.
    """
    if not progress:
        return
    c = _DEVICES.c
    f_cnt: BindParameter[int] = bindparam("b_fcnt", type_=BigInteger())
    seen: BindParameter[datetime] = bindparam("b_seen", type_=c.last_seen_at.type)
    stmt = (
        update(_DEVICES)
        .where(c.id == bindparam("b_id"))
        .values(
            f_cnt_up=case(
                (c.f_cnt_up.is_(None), f_cnt), (c.f_cnt_up < f_cnt, f_cnt), else_=c.f_cnt_up
            ),
            last_seen_at=case(
                (c.last_seen_at.is_(None), seen),
                (c.last_seen_at < seen, seen),
                else_=c.last_seen_at,
            ),
        )
    )
    params = [
        {"b_id": dev_id, "b_fcnt": fcnt, "b_seen": when}
        for dev_id, (fcnt, when) in sorted(progress.items())
    ]
    _connection(session).execute(stmt, params)


def touch_station(session: Session, station_id: uuid.UUID, at: datetime) -> None:
    """Record when the station last posted (its liveness, shown to the NOC)."""
    stmt = update(_STATIONS).where(_STATIONS.c.id == station_id).values(last_seen_at=at)
    _connection(session).execute(stmt)
