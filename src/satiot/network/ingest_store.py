"""The statements of one ingest batch: a fixed handful, whatever the batch holds.

Each function is one SQL statement over the whole batch (a read by an IN list or a list of pairs
joined to an index, an INSERT … ON CONFLICT DO NOTHING [RETURNING] over all rows, or an
executemany UPDATE), issued on the session's connection so that no ORM unit of work runs per
row. The reads go through SQLAlchemy Core; the writes are driver SQL with values already in
stored form (:mod:`satiot.core.bulk`), since SQLAlchemy's per-value processing cost more than
the database. ON CONFLICT is what makes concurrent posters safe on PostgreSQL: two transactions
inserting the same uplink both reach the unique index, one wins, the other's row is skipped and
it re-reads the winner (:func:`load_uplinks`) instead of relying on a read made before the race.
SQLite serialises writers (``BEGIN IMMEDIATE``), so there the loser case never arises.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

import orjson
from sqlalchemy import (
    BigInteger,
    Connection,
    Table,
    Uuid,
    any_,
    bindparam,
    select,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from satiot.core import bulk
from satiot.core.bulk import StoredId, stores_hex
from satiot.network.models import Device

_DEVICES = cast(Table, Device.__table__)


@dataclass(slots=True)
class KnownUplink:
    """An uplink already stored: enough to tell a duplicate from a replay."""

    id: uuid.UUID
    key: StoredId  # its id as stored
    device_key: StoredId  # its device's id as stored
    f_cnt: int
    mic: int


def _connection(session: Session) -> Connection:
    return session.connection()


def _json(value: Any) -> str:
    """A JSON array parameter for SQLite's ``json_each`` (ids as hex text and integers only;
    ``orjson`` writes one in a fraction of ``json.dumps``'s time)."""
    return orjson.dumps(value).decode()


#: The columns :class:`ingest_frames.Candidate` reads, in its order; :func:`load_devices` adds
#: the device's and its tenant's ids as stored.
_DEVICE_COLUMNS = (
    "id", "tenant_id", "dev_eui", "dev_addr", "status", "nwk_s_key_sealed", "app_s_key_sealed",
    "kek_id", "f_cnt_up", "throttle_gap_s", "throttle_next_at",
)  # fmt: skip
_SQLITE_DEVICES = (
    f"SELECT {', '.join(_DEVICE_COLUMNS)} FROM devices "  # noqa: S608 - constant text
    "WHERE dev_addr IN (SELECT value FROM json_each(?))"
)
_PG_DEVICES = select(*(_DEVICES.c[name] for name in _DEVICE_COLUMNS)).where(
    _DEVICES.c.dev_addr == any_(bindparam("addrs", type_=postgresql.ARRAY(BigInteger)))
)


def _sqlite_device(row: tuple[Any, ...], tenants: dict[str, uuid.UUID]) -> tuple[Any, ...]:
    (id_, tenant, eui, addr, status, nwk, app, kek_id, f_cnt, gap_s, next_at) = row
    tenant_id = tenants.get(tenant)
    if tenant_id is None:
        tenant_id = tenants[tenant] = bulk.sqlite_uuid(tenant)
    return (
        None,  # the device's UUID, made from its stored id only if asked for (rarely)
        tenant_id,
        eui,
        addr,
        status,
        nwk,
        app,
        kek_id,
        f_cnt,
        gap_s,
        bulk.sqlite_datetime(next_at),
        id_,
        tenant,
    )


def load_devices(session: Session, dev_addrs: Iterable[int]) -> Sequence[Any]:
    """Every device holding one of these DevAddrs, whatever its status (one query), as
    tuples of :data:`_DEVICE_COLUMNS` with their Python types, then the device's and its
    tenant's ids as stored (:data:`StoredId`).

    The addresses travel as one parameter (a JSON array on SQLite, an array on PostgreSQL):
    an IN list of hundreds of placeholders costs more to render and parse than the lookups.
    On SQLite the driver's rows are converted here, column by column, for a fraction of what
    SQLAlchemy's result processing costs on hundreds of rows per batch; a tenant's UUID is made
    once, and the device's is left out (None): ingest works with ids as stored.
    """
    addrs = sorted(set(dev_addrs))
    if not addrs:
        return []
    conn = _connection(session)
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql(_SQLITE_DEVICES, (_json(addrs),)).cursor.fetchall()
        tenants: dict[str, uuid.UUID] = {}
        return [_sqlite_device(r, tenants) for r in rows]
    return [(*r, r[0], r[1]) for r in conn.execute(_PG_DEVICES, {"addrs": addrs})]


def lock_throttled(
    session: Session, device_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[int | None, datetime | None]] | None:
    """Lock the rows of throttled devices with new frames in the batch, in id order, and
    return their throttling as it is now: ``{id: (throttle_gap_s, throttle_next_at)}``.

    Admission of a throttled device's message is a read-decide-write of ``throttle_next_at``;
    two stations posting the device's different frames at once would otherwise both decide on
    the value read before either wrote. On PostgreSQL the ``FOR UPDATE`` makes the later batch
    wait for the earlier one's commit and read what it wrote (the stored uplinks are read after
    this, so a copy of the frame the earlier batch took is a duplicate, not throttled). On
    SQLite the batch already holds the write lock (``BEGIN IMMEDIATE``) and read the devices
    under it: no statement, ``None``.
    """
    ids = sorted(set(device_ids))
    conn = _connection(session)
    if not ids or conn.dialect.name != "postgresql":
        return None
    c = _DEVICES.c
    stmt = (
        select(c.id, c.throttle_gap_s, c.throttle_next_at)
        .where(c.id == any_(bindparam("ids", type_=postgresql.ARRAY(Uuid()))))
        .order_by(c.id)
        .with_for_update()
    )
    rows = conn.execute(stmt, {"ids": ids}).all()
    return {r.id: (r.throttle_gap_s, r.throttle_next_at) for r in rows}


#: The stored uplinks among a list of (device, FCnt) pairs, one index probe per pair. The SQL
#: text is the same for any number of pairs (a JSON document on SQLite, two arrays on
#: PostgreSQL), so it is compiled once, not per batch; a row-value IN list would make SQLite
#: scan the whole table.
_KNOWN_UPLINKS_SQLITE = (
    "SELECT u.id, u.device_id, u.f_cnt, u.mic FROM json_each(?) AS w "
    "CROSS JOIN uplinks AS u ON u.device_id = w.value ->> 0 AND u.f_cnt = w.value ->> 1"
)
_KNOWN_UPLINKS_PG = text(
    "SELECT u.id, u.device_id, u.f_cnt, u.mic "
    "FROM unnest(CAST(:devices AS uuid[]), CAST(:f_cnts AS bigint[])) AS w(device_id, f_cnt) "
    "JOIN uplinks AS u ON u.device_id = w.device_id AND u.f_cnt = w.f_cnt"
)
_KNOWN_COLUMNS: dict[str, TypeEngine[Any]] = {
    "id": Uuid(),
    "device_id": Uuid(),
    "f_cnt": BigInteger(),
    "mic": BigInteger(),
}


def load_uplinks(session: Session, keys: Iterable[tuple[StoredId, int]]) -> list[KnownUplink]:
    """The stored uplinks among these (device as stored, full FCnt) pairs (one query)."""
    pairs = list(set(keys))  # a read: no lock order to keep
    if not pairs:
        return []
    conn = _connection(session)
    if conn.dialect.name == "sqlite":
        params = (_json(pairs),)
        found = conn.exec_driver_sql(_KNOWN_UPLINKS_SQLITE, params).cursor.fetchall()
        as_uuid = bulk.sqlite_uuid
        return [KnownUplink(as_uuid(i), i, d, f, m) for i, d, f, m in found]
    stmt = _KNOWN_UPLINKS_PG.columns(**_KNOWN_COLUMNS)
    rows = conn.execute(stmt, {"devices": [d for d, _ in pairs], "f_cnts": [f for _, f in pairs]})
    return [KnownUplink(r.id, r.id, r.device_id, r.f_cnt, r.mic) for r in rows.all()]


class UplinkRow(NamedTuple):
    """A new uplink as the batch writes it (a tuple in column order: building a dict per row,
    then picking its values out again, cost more than the insert's own Python work), its ids
    as stored."""

    id: StoredId
    tenant_id: StoredId
    device_id: StoredId
    dev_eui: str
    f_cnt: int
    f_port: int | None
    mic: int
    confirmed: bool
    ack: bool
    adr: bool
    f_opts: bytes
    payload: bytes
    received_at: datetime
    accepted_at: datetime
    reception_count: int


class ReceptionRow(NamedTuple):
    """One copy of a frame as the batch writes it, in column order, its ids as stored."""

    id: StoredId
    tenant_id: StoredId
    uplink_id: StoredId
    ground_station_id: StoredId
    satellite: str
    received_at: datetime
    frequency_hz: int
    rssi_dbm: float
    snr_db: float
    doppler_hz: float | None
    ingested_at: datetime


#: PostgreSQL's type of each written column (for the unnest arrays).
_PG_TYPES = {
    "id": "uuid",
    "tenant_id": "uuid",
    "device_id": "uuid",
    "uplink_id": "uuid",
    "ground_station_id": "uuid",
    "dev_eui": "varchar",
    "satellite": "varchar",
    "f_cnt": "bigint",
    "f_port": "integer",
    "mic": "bigint",
    "frequency_hz": "bigint",
    "reception_count": "integer",
    "confirmed": "boolean",
    "ack": "boolean",
    "adr": "boolean",
    "f_opts": "bytea",
    "payload": "bytea",
    "received_at": "timestamptz",
    "accepted_at": "timestamptz",
    "ingested_at": "timestamptz",
    "rssi_dbm": "float8",
    "snr_db": "float8",
    "doppler_hz": "float8",
}
_UPLINK_COLUMNS = tuple((name, _PG_TYPES[name]) for name in UplinkRow._fields)
_RECEPTION_COLUMNS = tuple((name, _PG_TYPES[name]) for name in ReceptionRow._fields)
_UPLINK_KEY = ("device_id", "f_cnt")
_RECEPTION_KEY = ("uplink_id", "ground_station_id", "satellite", "received_at")


def _names(columns: Sequence[tuple[str, str]]) -> str:
    return ", ".join(name for name, _ in columns)


#: The write statements as driver SQL: the values go to the driver as they are (see
#: :mod:`satiot.core.bulk`), not through SQLAlchemy's per-value processing, which cost more
#: than the database itself. PostgreSQL gets one statement over column arrays, whose rows it
#: writes in key order, so that concurrent batches wait on each other's rows in one order;
#: SQLite gets an executemany (a multi-row VALUES where RETURNING is needed).
_PG_INSERT_UPLINKS = bulk.unnest_insert(
    "uplinks", _UPLINK_COLUMNS, order_by=_UPLINK_KEY, conflict=_UPLINK_KEY, returning="id"
)
_PG_INSERT_RECEPTIONS = bulk.unnest_insert(
    "uplink_receptions",
    _RECEPTION_COLUMNS,
    order_by=("uplink_id", "satellite", "received_at"),
    conflict=_RECEPTION_KEY,
)
_PG_INSERT_MORE_RECEPTIONS = _PG_INSERT_RECEPTIONS + " RETURNING uplink_id"
_SQLITE_INSERT_UPLINKS = (
    f"INSERT INTO uplinks ({_names(_UPLINK_COLUMNS)}) "  # noqa: S608 - names are ours
    f"VALUES ({', '.join('?' * len(_UPLINK_COLUMNS))}) "
    f"ON CONFLICT ({', '.join(_UPLINK_KEY)}) DO NOTHING"
)
_SQLITE_UPLINKS_AMONG = "SELECT id FROM uplinks WHERE id IN (SELECT value FROM json_each(?))"
_SQLITE_INSERT_RECEPTIONS = f"INSERT INTO uplink_receptions ({_names(_RECEPTION_COLUMNS)}) "
_SQLITE_ON_RECEPTION_CONFLICT = f" ON CONFLICT ({', '.join(_RECEPTION_KEY)}) DO NOTHING"
_ADD_RECEPTION_COUNTS = bulk.driver_sql(
    "UPDATE uplinks SET reception_count = reception_count + ? WHERE id = ?"
)
_ADVANCE_DEVICES = {
    "sqlite": (
        "UPDATE devices SET "
        "f_cnt_up = CASE WHEN f_cnt_up IS NULL OR f_cnt_up < ?1 THEN ?1 ELSE f_cnt_up END, "
        "last_seen_at = CASE WHEN last_seen_at IS NULL OR last_seen_at < ?2 THEN ?2 "
        "ELSE last_seen_at END, "
        "throttle_next_at = CASE WHEN ?4 IS NULL THEN throttle_next_at "
        "WHEN throttle_next_at IS NULL OR throttle_next_at < ?4 THEN ?4 "
        "ELSE throttle_next_at END WHERE id = ?3"
    ),
    "postgresql": (
        "UPDATE devices SET "
        "f_cnt_up = CASE WHEN f_cnt_up IS NULL OR f_cnt_up < %(n)s THEN %(n)s "
        "ELSE f_cnt_up END, "
        "last_seen_at = CASE WHEN last_seen_at IS NULL OR last_seen_at < %(at)s THEN %(at)s "
        "ELSE last_seen_at END, "
        "throttle_next_at = CASE WHEN %(next)s::timestamptz IS NULL THEN throttle_next_at "
        "WHEN throttle_next_at IS NULL OR throttle_next_at < %(next)s THEN %(next)s "
        "ELSE throttle_next_at END WHERE id = %(id)s"
    ),
}


def _sqlite_uplink(row: UplinkRow) -> tuple[Any, ...]:
    (id_, tenant, device, eui, f_cnt, port, mic, confirmed, ack, adr, opts, payload, rx, acc,
     n) = row  # fmt: skip
    ts = bulk.sqlite_timestamp
    return (
        id_,
        tenant,
        device,
        eui,
        f_cnt,
        port,
        mic,
        int(confirmed),
        int(ack),
        int(adr),
        opts,
        payload,
        ts(rx),
        ts(acc),
        n,
    )


def _sqlite_reception(row: ReceptionRow) -> tuple[Any, ...]:
    (id_, tenant, uplink, station, satellite, rx, freq, rssi, snr, doppler, at) = row
    ts = bulk.sqlite_timestamp
    return (
        id_,
        tenant,
        uplink,
        station,
        satellite,
        ts(rx),
        freq,
        rssi,
        snr,
        doppler,
        ts(at),
    )


def insert_uplinks(session: Session, rows: Sequence[UplinkRow]) -> set[StoredId]:
    """Insert new uplinks, skipping any (device, FCnt) another transaction stored first;
    return the ids (as stored) actually inserted.

    PostgreSQL says which rows it wrote with RETURNING. On SQLite, where RETURNING costs as
    much again per row, a plain executemany counts the rows written: all of them, since
    writers there are serialised and the batch read the stored uplinks under the write lock;
    should the count ever fall short, one query finds which ids made it.
    """
    if not rows:
        return set()
    conn = _connection(session)
    if conn.dialect.name == "postgresql":
        columns = bulk.pg_columns(rows)
        return {r[0] for r in bulk.execute(session, _PG_INSERT_UPLINKS, columns)}
    values = [_sqlite_uplink(r) for r in rows]
    written = bulk.execute(session, _SQLITE_INSERT_UPLINKS, values).rowcount
    ids = [row.id for row in rows]
    if written == len(rows):
        return set(ids)
    found = conn.exec_driver_sql(_SQLITE_UPLINKS_AMONG, (_json(ids),)).cursor.fetchall()
    return {r[0] for r in found}


def insert_receptions(
    session: Session, fresh: Sequence[ReceptionRow], more: Sequence[ReceptionRow]
) -> dict[StoredId, int]:
    """Insert receptions; return how many were added per uplink (as stored) among ``more``.

    ``fresh`` are copies of uplinks inserted by this transaction, so none can exist yet (no
    RETURNING); ``more`` are copies of stored uplinks, where a station's retried post meets its
    own earlier rows: those are skipped, and RETURNING tells what was added, for the uplinks'
    ``reception_count``.
    """
    added: dict[StoredId, int] = {}
    if _connection(session).dialect.name == "postgresql":
        if fresh:
            columns = bulk.pg_columns(fresh)
            bulk.execute(session, _PG_INSERT_RECEPTIONS, columns)
        if more:
            columns = bulk.pg_columns(more)
            for (uplink_id,) in bulk.execute(session, _PG_INSERT_MORE_RECEPTIONS, columns):
                added[uplink_id] = added.get(uplink_id, 0) + 1
        return added
    width = len(_RECEPTION_COLUMNS)
    if fresh:
        sql = _SQLITE_INSERT_RECEPTIONS + bulk.sqlite_values_sql(1, width)
        bulk.execute(
            session, sql + _SQLITE_ON_RECEPTION_CONFLICT, [_sqlite_reception(r) for r in fresh]
        )
    # RETURNING needs one statement for many rows: a multi-row VALUES (as SQLAlchemy's own
    # "insertmanyvalues" does), in pieces within SQLite's limit on parameters.
    for part in bulk.sqlite_chunks([_sqlite_reception(r) for r in more], width):
        sql = (
            _SQLITE_INSERT_RECEPTIONS
            + bulk.sqlite_values_sql(len(part), width)
            + _SQLITE_ON_RECEPTION_CONFLICT
            + " RETURNING uplink_id"
        )
        for (uplink_hex,) in bulk.execute(session, sql, tuple(v for r in part for v in r)):
            added[uplink_hex] = added.get(uplink_hex, 0) + 1
    return added


def _by_id(item: tuple[StoredId, Any]) -> int | str:
    """Sort key for rows updated in id order: stored hex text sorts as the ids do; a UUID by
    its integer (UUID's own ordering goes through Python-level comparison methods)."""
    key = item[0]
    return key if isinstance(key, str) else key.int


def add_reception_counts(session: Session, added: Mapping[StoredId, int]) -> None:
    """``reception_count += n`` on stored uplinks that gained copies (one executemany, in id
    order)."""
    if not added:
        return
    dialect = _connection(session).dialect.name
    params = [(n, key) for key, n in sorted(added.items(), key=_by_id)]
    bulk.execute(session, _ADD_RECEPTION_COUNTS[dialect], params)


def advance_devices(
    session: Session, progress: Mapping[StoredId, tuple[int, datetime, datetime | None]]
) -> None:
    """Raise each device's ``f_cnt_up``, ``last_seen_at`` and (throttled devices)
    ``throttle_next_at`` to at least the given values (devices keyed by their ids as stored).

    Written as a maximum in SQL, so concurrent batches (in any order) leave the highest; rows
    are updated in id order so two transactions lock them in the same order.
    """
    if not progress:
        return
    dialect = _connection(session).dialect.name
    ordered = sorted(progress.items(), key=_by_id)
    params: list[Any]
    if dialect == "postgresql":
        params = [
            {"n": n, "at": when, "next": nxt, "id": dev_id} for dev_id, (n, when, nxt) in ordered
        ]
    else:
        ts = bulk.sqlite_timestamp
        params = [
            (n, ts(when), dev_id, None if nxt is None else ts(nxt))
            for dev_id, (n, when, nxt) in ordered
        ]
    bulk.execute(session, _ADVANCE_DEVICES[dialect], params)


_TOUCH_STATION = bulk.driver_sql("UPDATE ground_stations SET last_seen_at = ? WHERE id = ?")


def touch_station(session: Session, station_id: uuid.UUID, at: datetime) -> None:
    """Record when the station last posted (its liveness, shown to the NOC)."""
    hex_ids = stores_hex(session)
    when = bulk.sqlite_timestamp(at) if hex_ids else at
    sql = _TOUCH_STATION["sqlite" if hex_ids else "postgresql"]
    bulk.execute(session, sql, (when, bulk.stored_form(station_id, hex_ids)))
