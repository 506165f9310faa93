"""The statements of rating, for SQLite and PostgreSQL: a batch is read once and written in bulk.

A batch is a range of the event log. One query reads its usage events already joined with
their subscriptions and contracts (SQL reads the payload's device, for the join, and the raw
texts of its payload and time; ``rating_pass.stage`` works out sizes and times); one reads the
member counts of the pools it uses; the counters it touches that the rater has not kept from
earlier batches (``rating_cache.Counters``, which also reads and writes the counters' mark) are
read (locked on PostgreSQL), the missing ones created first; the usage records and the
counters' new totals go back in one bulk write each. Whatever the batch's size, the number of
statements is the same: the rules themselves run in Python, once per message, in log order
(:mod:`satiot.bss.rating_pass`).

Values travel in the driver's own form: on SQLite ids are 32 hex digits and instants naive UTC
text (what SQLAlchemy stores), on PostgreSQL instants are ``timestamptz`` and ids are read as
their canonical text (``CAST(id AS text)``), which the server parses back where they are
written; rating passes them from the read to the write untouched. (A ``uuid`` read as
``uuid.UUID`` and written back costs the client two Python conversions per id, five ids a
message: half of what reading a batch cost the rater.)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, NamedTuple, Protocol

from sqlalchemy import Connection

from satiot.bss.rating_store import ENDED
from satiot.core import bulk
from satiot.core.ids import new_id_block

UPLINK: Final = "uplink.accepted"
DOWNLINK: Final = "downlink.sent"


@dataclass(frozen=True)
class Dialect:
    name: str

    @property
    def pg(self) -> bool:
        return self.name == "postgresql"

    def json_text(self, key: str) -> str:
        if self.pg:
            return f"(payload->>'{key}')"
        return f"json_extract(payload, '$.{key}')"

    def json_is_text(self, key: str) -> str:
        if self.pg:
            return f"json_typeof(payload->'{key}') = 'string'"
        return f"json_type(payload, '$.{key}') = 'text'"

    def param(self, name: str) -> str:
        return f"%({name})s" if self.pg else f":{name}"

    def ident(self, column: str) -> str:
        """An id column as rating carries it: as stored on SQLite, as text on PostgreSQL."""
        return f"CAST({column} AS text)" if self.pg else column


@dataclass(frozen=True)
class Statements:
    fetch: str
    members: str
    create_counters: str
    read_counters: str
    write_counters: str
    insert_usage: str
    prepaid: str
    membership_mark: str
    read_mark: str
    write_mark: str


#: The events that add a device to a pool or take one out: the only changes to a
#: subscription's account, offering, activation or termination time (``record_change`` names
#: each event after its action, in the transaction that makes the change).
MEMBERSHIP_EVENTS: Final = (
    "subscription.activated",
    "subscription.terminated",
    "subscription.offering-changed",
)

#: The row of ``usage_counter_marks`` that rating rewrites with every write to the counters.
COUNTER_MARK: Final = "usage"

#: The columns of a fetched usage event, in order (``rating_pass.stage`` unpacks them).
FETCHED: Final = (
    "seq", "event_id", "tenant_id", "dev_eui", "type", "payload", "time", "occurred_at",
    "sub_id", "sub_tenant_id", "account_id", "offering_id", "addons", "throttled",
    "activated_at", "qm", "qb", "action", "rated",
)  # fmt: skip
USAGE_COLUMNS: Final = (
    "id", "event_id", "tenant_id", "dev_eui", "subscription_id", "billing_account_id",
    "offering_id", "kind", "bytes", "billable_bytes", "period", "occurred_at", "charge_micros",
    "state", "reason",
)  # fmt: skip


@cache
def statements(name: str) -> Statements:
    d = Dialect(name)
    p = d.param
    ended = ", ".join(f"'{s}'" for s in ENDED)
    addons = "CAST(s.add_on_ids AS text)" if d.pg else "s.add_on_ids"
    ident = d.ident
    # The payload's JSON is parsed by each function that reads it: only what the join needs
    # (the device) and the raw texts (payload, time) are read here; sizes, times and reasons
    # are worked out in Python (``rating_pass.stage``). On SQLite the range is walked by
    # ``seq`` (``+type`` keeps the planner off the type index), so the rows come out in log
    # order without a sort: a quarter of the read's time in a batch of 5,000.
    fetch = (
        f"SELECT e.seq, {ident('e.id')}, {ident('e.tenant_id')}, e.dev_eui, e.type, "
        f"{d.json_text('payload')}, CASE e.type WHEN '{UPLINK}' THEN {d.json_text('received_at')} "
        f"ELSE {d.json_text('sent_at')} END, e.occurred_at, {ident('s.id')}, "
        f"{ident('s.tenant_id')}, {ident('s.billing_account_id')}, {ident('s.offering_id')}, "
        f"{addons}, s.throttled, s.activated_at, "
        "coalesce(c.monthly_messages_per_device, 0), coalesce(c.monthly_bytes_per_device, 0), "
        "c.quota_action, e.rated "
        f"FROM (SELECT seq, id, tenant_id, type, payload, occurred_at, "
        f"upper({d.json_text('dev_eui')}) AS dev_eui, "
        "EXISTS (SELECT 1 FROM usage_records u WHERE u.id = events.id) AS rated "
        f"FROM events WHERE seq > {p('after')} AND seq <= {p('last')} "
        f"AND {'' if d.pg else '+'}type IN ('{UPLINK}', '{DOWNLINK}') "
        f"AND tenant_id IS NOT NULL AND {d.json_is_text('dev_eui')}) e "
        f"LEFT JOIN subscriptions s ON s.dev_eui = e.dev_eui AND s.status NOT IN ({ended}) "
        "LEFT JOIN contracts c ON c.id = s.contract_id ORDER BY e.seq"
    )
    # A pool's allowance is its per-device share times the devices on that offering in the
    # account during the month (at least one): one count per (pool, month) of the batch, from
    # the pool index alone (a non-null column of it is counted, not the row's id).
    member = (
        "m.billing_account_id = w.account AND m.offering_id = w.offering "
        "AND m.activated_at IS NOT NULL AND m.activated_at < w.ends "
        "AND (m.terminated_at IS NULL OR m.terminated_at >= w.starts)"
    )
    counter_columns = (
        "INSERT INTO usage_counters (id, tenant_id, bucket, period, messages, bytes, "
        "allowance_messages, allowance_bytes, notified_pct, quota_notified_pct) "
    )
    if d.pg:
        members = (
            "SELECT w.i, count(m.billing_account_id) FROM unnest(CAST(%(accounts)s AS uuid[]), "
            "CAST(%(offerings)s AS uuid[]), CAST(%(starts)s AS timestamptz[]), "
            "CAST(%(ends)s AS timestamptz[])) WITH ORDINALITY "
            "AS w(account, offering, starts, ends, i) "
            f"LEFT JOIN subscriptions m ON {member} GROUP BY w.i"
        )
        create_counters = (
            counter_columns + "SELECT gen_random_uuid(), w.tenant, w.bucket, w.period, 0, 0, "
            "w.am, w.ab, 0, 0 FROM unnest(CAST(%(tenants)s AS uuid[]), "
            "CAST(%(buckets)s AS text[]), CAST(%(periods)s AS text[]), "
            "CAST(%(ams)s AS bigint[]), CAST(%(abs)s AS bigint[])) "
            "AS w(tenant, bucket, period, am, ab) ORDER BY w.bucket, w.period "
            "ON CONFLICT (bucket, period) DO NOTHING"
        )
        # Competing raters serialise per counter, locking in one order (the consumer's
        # cursor already serialises the consumer's own workers).
        read_counters = (
            "SELECT c.bucket, c.period, CAST(c.id AS text), c.messages, c.bytes, c.notified_pct, "
            "c.quota_notified_pct FROM unnest(CAST(%(buckets)s AS text[]), "
            "CAST(%(periods)s AS text[])) AS w(bucket, period) JOIN usage_counters c "
            "ON c.bucket = w.bucket AND c.period = w.period ORDER BY c.id FOR UPDATE OF c"
        )
        write_counters = (
            "UPDATE usage_counters SET messages = w.n, bytes = w.b, allowance_messages = w.am, "
            "allowance_bytes = w.ab, notified_pct = w.notified, quota_notified_pct = w.qnotified "
            "FROM unnest(CAST(%(ids)s AS uuid[]), CAST(%(n)s AS bigint[]), "
            "CAST(%(b)s AS bigint[]), CAST(%(am)s AS bigint[]), CAST(%(ab)s AS bigint[]), "
            "CAST(%(notified)s AS int[]), CAST(%(qnotified)s AS int[])) "
            "AS w(id, n, b, am, ab, notified, qnotified) WHERE usage_counters.id = w.id"
        )
        prepaid = (
            "SELECT CAST(id AS text) FROM billing_accounts WHERE payment_mode = 'prepaid' "
            "AND id = ANY(CAST(%(ids)s AS uuid[]))"
        )
        insert_usage = ""  # COPY (bulk.insert_rows)
    else:
        members = (
            "SELECT w.key, count(m.billing_account_id) FROM (SELECT key, value ->> 0 AS account, "
            "value ->> 1 AS offering, value ->> 2 AS starts, value ->> 3 AS ends "
            f"FROM json_each(:pools)) w LEFT JOIN subscriptions m ON {member} GROUP BY w.key"
        )
        create_counters = (
            counter_columns + "SELECT value ->> 5, value ->> 0, value ->> 1, "
            "value ->> 2, 0, 0, value ->> 3, value ->> 4, 0, 0 FROM json_each(:buckets) "
            "WHERE true ON CONFLICT (bucket, period) DO NOTHING"
        )
        read_counters = (
            "SELECT c.bucket, c.period, c.id, c.messages, c.bytes, c.notified_pct, "
            "c.quota_notified_pct FROM usage_counters c WHERE c.period = :period "
            "AND c.bucket IN (SELECT value FROM json_each(:buckets))"
        )
        write_counters = (
            "UPDATE usage_counters SET messages = ?, bytes = ?, allowance_messages = ?, "
            "allowance_bytes = ?, notified_pct = ?, quota_notified_pct = ? WHERE id = ?"
        )
        prepaid = (
            "SELECT id FROM billing_accounts WHERE payment_mode = 'prepaid' "
            "AND id IN (SELECT value FROM json_each(:ids))"
        )
        insert_usage = (
            f"INSERT INTO usage_records ({', '.join(USAGE_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(USAGE_COLUMNS))})"
        )
    # The last event that changed any pool's devices: each a seek to the end of its type's
    # range in the (type, seq) index, whatever the log's length.
    latest = ", ".join(
        f"coalesce((SELECT max(seq) FROM events WHERE type = '{t}'), 0)" for t in MEMBERSHIP_EVENTS
    )
    membership_mark = f"SELECT {'greatest' if d.pg else 'max'}({latest})"
    read_mark = f"SELECT mark FROM usage_counter_marks WHERE name = '{COUNTER_MARK}'" + (
        " FOR UPDATE" if d.pg else ""
    )
    write_mark = (
        f"INSERT INTO usage_counter_marks (name, mark) VALUES ('{COUNTER_MARK}', {p('mark')}) "
        "ON CONFLICT (name) DO UPDATE SET mark = excluded.mark"
    )
    return Statements(
        fetch,
        members,
        create_counters,
        read_counters,
        write_counters,
        insert_usage,
        prepaid,
        membership_mark,
        read_mark,
        write_mark,
    )


# -- running them ---------------------------------------------------------------------------


def fetch(conn: Connection, after: int, last: int) -> Sequence[Any]:
    """The usage events with ``after < seq <= last``, in log order (columns :data:`FETCHED`)."""
    result = conn.exec_driver_sql(
        statements(conn.dialect.name).fetch, {"after": after, "last": last}
    )
    # The driver's own tuples: no value here needs SQLAlchemy's processing, and thousands of
    # Row objects per batch cost more than the loop that reads them.
    return result.cursor.fetchall()


class PoolMonth(NamedTuple):
    """A pool in one month: whose devices count, between which stored instants.

    A tuple rather than a frozen dataclass: a batch makes one for each pool it meets (about
    one a message when accounts are many and small) and looks each up twice among the pool
    sizes kept; a dataclass's Python-level ``__init__``, ``__hash__`` and ``__eq__`` made that
    a tenth of such a batch."""

    account_id: Any
    offering_id: Any
    starts: Any
    ends: Any


def membership_mark(conn: Connection) -> int:
    """The log position of the last change to any pool's devices (0 before the first)."""
    return int(conn.exec_driver_sql(statements(conn.dialect.name).membership_mark).scalar_one())


def read_mark(conn: Connection) -> int | None:
    """The counters' mark (locked on PostgreSQL until the transaction ends); None before the
    first."""
    found = conn.exec_driver_sql(statements(conn.dialect.name).read_mark).first()
    return None if found is None else int(found[0])


def write_mark(conn: Connection, mark: int) -> None:
    """A new mark, in the transaction that writes counters (``rating_cache.Counters``)."""
    conn.exec_driver_sql(statements(conn.dialect.name).write_mark, {"mark": mark})


def member_counts(conn: Connection, pools: Sequence[PoolMonth]) -> list[int]:
    """Devices on each pool's offering in its account during its month, in ``pools`` order."""
    if not pools:
        return []
    sql = statements(conn.dialect.name).members
    if conn.dialect.name == "postgresql":
        params: dict[str, Any] = {
            "accounts": [p.account_id for p in pools],
            "offerings": [p.offering_id for p in pools],
            "starts": [p.starts for p in pools],
            "ends": [p.ends for p in pools],
        }
        base = 1  # WITH ORDINALITY counts from 1
    else:
        rows = [[p.account_id, p.offering_id, p.starts, p.ends] for p in pools]
        params, base = {"pools": json.dumps(rows)}, 0
    counts = [0] * len(pools)
    for index, n in conn.exec_driver_sql(sql, params):
        counts[int(index) - base] = int(n)
    return counts


class NewBucket(Protocol):
    """A counter as rating needs it: bucket name and month, and for creating it, its tenant
    and allowance (messages, bytes)."""

    key: str
    period: str
    tenant_id: Any
    lm: int
    lb: int


def counters(
    conn: Connection, buckets: Sequence[NewBucket]
) -> dict[tuple[str, str], tuple[Any, int, int, int, int]]:
    """The counters of ``buckets``, those missing created first (locked on PostgreSQL):
    ``{(bucket, period): (id, messages, bytes, notified_pct, quota_notified_pct)}``.

    They are read first and only the missing ones are created: after a device's first
    message of the month its counter exists, so most batches need one read. PostgreSQL reads
    the new ones again (another rater may have made one first, and each is locked); SQLite
    need not: its one writer at a time means that a counter missing from this transaction's
    read is made by this transaction's insert, zero and unannounced with the id given it.
    """
    if not buckets:
        return {}
    found = _read_counters(conn, buckets)
    missing = [b for b in buckets if (b.key, b.period) not in found]
    if not missing:
        return found
    sql = statements(conn.dialect.name)
    if conn.dialect.name == "postgresql":
        params = {
            "buckets": [b.key for b in missing],
            "periods": [b.period for b in missing],
            "tenants": [b.tenant_id for b in missing],
            "ams": [b.lm for b in missing],
            "abs": [b.lb for b in missing],
        }
        conn.exec_driver_sql(sql.create_counters, params)
        found.update(_read_counters(conn, missing))
        return found
    # Ids that follow one another (UUIDv7): the new rows go to the end of the primary key's
    # index instead of a random page each (random ids cost twice the time).
    first = new_id_block(len(missing))
    rows = [
        [b.tenant_id, b.key, b.period, b.lm, b.lb, f"{first + i:032x}"]
        for i, b in enumerate(missing)
    ]
    conn.exec_driver_sql(sql.create_counters, {"buckets": json.dumps(rows)})
    found.update(((r[1], r[2]), (r[5], 0, 0, 0, 0)) for r in rows)
    return found


def _read_counters(
    conn: Connection, buckets: Sequence[NewBucket]
) -> dict[tuple[str, str], tuple[Any, int, int, int, int]]:
    sql = statements(conn.dialect.name).read_counters
    if conn.dialect.name == "postgresql":
        calls: list[dict[str, Any]] = [
            {"buckets": [b.key for b in buckets], "periods": [b.period for b in buckets]}
        ]
    else:  # one statement per month (a batch rarely spans two)
        months: dict[str, list[str]] = {}
        for b in buckets:
            months.setdefault(b.period, []).append(b.key)
        calls = [{"period": p, "buckets": _json_texts(keys)} for p, keys in months.items()]
    # The driver's tuples, as in :func:`fetch`: a batch reads thousands of counters.
    return {
        (r[0], r[1]): r[2:]
        for params in calls
        for r in conn.exec_driver_sql(sql, params).cursor.fetchall()
    }


def _json_texts(values: Sequence[str]) -> str:
    """A JSON array of strings. Bucket names are made of ids, letters and colons, which JSON
    writes as they are, so joining them costs a tenth of ``json.dumps``; any other text (a
    quote, a backslash, a control or non-ASCII character) goes through ``json.dumps``."""
    body = '","'.join(values)
    plain = body.isascii() and body.isprintable() and "\\" not in body
    if plain and body.count('"') == 2 * (len(values) - 1):
        return f'["{body}"]'
    return json.dumps(list(values))


def write_counters(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """New totals: ``(messages, bytes, allowance_messages, allowance_bytes, notified_pct,
    quota_notified_pct, id)`` per counter."""
    if not rows:
        return
    sql = statements(conn.dialect.name).write_counters
    if conn.dialect.name == "postgresql":
        n, b, am, ab, notified, qnotified, ids = (list(c) for c in zip(*rows, strict=True))
        conn.exec_driver_sql(
            sql,
            {
                "ids": ids,
                "n": n,
                "b": b,
                "am": am,
                "ab": ab,
                "notified": notified,
                "qnotified": qnotified,
            },
        )
    else:
        conn.exec_driver_sql(sql, list(rows))


def insert_usage(session: Any, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """The batch's usage records (values in :data:`USAGE_COLUMNS` order)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        bulk.insert_rows(session, "usage_records", USAGE_COLUMNS, rows)
    else:
        conn.exec_driver_sql(statements(conn.dialect.name).insert_usage, list(rows))


def prepaid(conn: Connection, account_ids: Sequence[Any]) -> set[Any]:
    """Which of these billing accounts are prepaid."""
    if not account_ids:
        return set()
    sql = statements(conn.dialect.name).prepaid
    if conn.dialect.name == "postgresql":
        found = conn.exec_driver_sql(sql, {"ids": list(account_ids)})
    else:
        found = conn.exec_driver_sql(sql, {"ids": json.dumps(list(account_ids))})
    return {r[0] for r in found}
