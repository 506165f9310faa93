"""The statements of one ingest batch: a fixed handful, whatever the batch holds.

Each function is one SQL statement over the whole batch (a read by an IN list or a list of pairs
joined to an index, a multi-row INSERT … ON CONFLICT DO NOTHING … RETURNING, or an executemany
UPDATE), issued on the session's connection through SQLAlchemy Core so that no ORM unit of work
runs per row. ON CONFLICT is what makes concurrent posters safe on PostgreSQL: two transactions
inserting the same uplink both reach the unique index, one wins, the other's row is skipped and
it re-reads the winner (:func:`load_uplinks`) instead of relying on a read made before the race.
SQLite serialises writers (``BEGIN IMMEDIATE``), so there the loser case never arises.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Connection,
    Select,
    Table,
    Uuid,
    any_,
    bindparam,
    case,
    func,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

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
    """Every device holding one of these DevAddrs, whatever its status (one query).

    The addresses travel as one parameter (a JSON array on SQLite, an array on PostgreSQL):
    an IN list of hundreds of placeholders costs more to render and parse than the lookups.
    """
    addrs = sorted(set(dev_addrs))
    if not addrs:
        return []
    conn = _connection(session)
    c = _DEVICES.c
    if conn.dialect.name == "postgresql":
        wanted = c.dev_addr == any_(bindparam("addrs", type_=postgresql.ARRAY(BigInteger)))
        params: dict[str, Any] = {"addrs": addrs}
    else:
        listed: Select[Any] = select(literal_column("value")).select_from(
            func.json_each(bindparam("addrs"))
        )
        wanted = c.dev_addr.in_(listed.scalar_subquery())
        params = {"addrs": json.dumps(addrs)}
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
    ).where(wanted)
    return conn.execute(stmt, params).all()


#: The stored uplinks among a list of (device, FCnt) pairs, one index probe per pair. The SQL
#: text is the same for any number of pairs (a JSON document on SQLite, two arrays on
#: PostgreSQL), so it is compiled once, not per batch; a row-value IN list would make SQLite
#: scan the whole table.
_KNOWN_UPLINKS = {
    "sqlite": text(
        "SELECT u.id, u.device_id, u.f_cnt, u.mic FROM json_each(:pairs) AS w "
        "CROSS JOIN uplinks AS u ON u.device_id = w.value ->> 0 AND u.f_cnt = w.value ->> 1"
    ),
    "postgresql": text(
        "SELECT u.id, u.device_id, u.f_cnt, u.mic "
        "FROM unnest(CAST(:devices AS uuid[]), CAST(:f_cnts AS bigint[])) AS w(device_id, f_cnt) "
        "JOIN uplinks AS u ON u.device_id = w.device_id AND u.f_cnt = w.f_cnt"
    ),
}
_KNOWN_COLUMNS: dict[str, TypeEngine[Any]] = {
    "id": Uuid(),
    "device_id": Uuid(),
    "f_cnt": BigInteger(),
    "mic": BigInteger(),
}


def load_uplinks(session: Session, keys: Iterable[tuple[uuid.UUID, int]]) -> list[KnownUplink]:
    """The stored uplinks among these (device, full FCnt) pairs (one query)."""
    pairs = sorted(set(keys))
    if not pairs:
        return []
    conn = _connection(session)
    stmt = _KNOWN_UPLINKS[conn.dialect.name].columns(**_KNOWN_COLUMNS)
    if conn.dialect.name == "sqlite":
        params: dict[str, Any] = {"pairs": json.dumps([[d.hex, f] for d, f in pairs])}
    else:
        params = {"devices": [d for d, _ in pairs], "f_cnts": [f for _, f in pairs]}
    rows = conn.execute(stmt, params).all()
    return [KnownUplink(r.id, r.device_id, r.f_cnt, r.mic) for r in rows]


def insert_uplinks(session: Session, rows: Sequence[Mapping[str, Any]]) -> set[uuid.UUID]:
    """Insert new uplinks, skipping any (device, FCnt) another transaction stored first;
    return the ids actually inserted.

    PostgreSQL says which rows it wrote with RETURNING (its batched multi-row INSERT reports
    no row count). On SQLite, where RETURNING costs as much again per row, a plain executemany
    counts the rows written: all of them, since writers there are serialised and the batch
    read the stored uplinks under the write lock; should the count ever fall short, one query
    finds which ids made it.
    """
    if not rows:
        return set()
    conn = _connection(session)
    stmt = _insert(conn, _UPLINKS).on_conflict_do_nothing(index_elements=["device_id", "f_cnt"])
    if conn.dialect.name == "postgresql":
        # In key order, so that concurrent batches wait on each other's rows in one order.
        ordered = sorted(rows, key=lambda r: (r["device_id"], r["f_cnt"]))
        return {r[0] for r in conn.execute(stmt.returning(_UPLINKS.c.id), ordered)}
    written = conn.execute(stmt, list(rows)).rowcount
    ids = [row["id"] for row in rows]
    if written == len(rows):
        return set(ids)
    found = conn.execute(select(_UPLINKS.c.id).where(_UPLINKS.c.id.in_(ids)))
    return {r[0] for r in found}


_RECEPTION_KEY = ["uplink_id", "ground_station_id", "satellite", "received_at"]


def insert_receptions(
    session: Session, fresh: Sequence[Mapping[str, Any]], more: Sequence[Mapping[str, Any]]
) -> dict[uuid.UUID, int]:
    """Insert receptions; return how many were added per uplink among ``more``.

    ``fresh`` are copies of uplinks inserted by this transaction, so none can exist yet (a
    plain executemany); ``more`` are copies of stored uplinks, where a station's retried post
    meets its own earlier rows: those are skipped, and RETURNING tells what was added, for the
    uplinks' ``reception_count``.
    """
    conn = _connection(session)
    stmt = _insert(conn, _RECEPTIONS).on_conflict_do_nothing(index_elements=_RECEPTION_KEY)
    if conn.dialect.name == "postgresql":  # key order: no deadlock between concurrent batches
        more = sorted(more, key=lambda r: (r["uplink_id"], r["satellite"], r["received_at"]))
    if fresh:
        conn.execute(stmt, list(fresh))
    added: dict[uuid.UUID, int] = {}
    if more:
        for (uplink_id,) in conn.execute(stmt.returning(_RECEPTIONS.c.uplink_id), list(more)):
            added[uplink_id] = added.get(uplink_id, 0) + 1
    return added


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
