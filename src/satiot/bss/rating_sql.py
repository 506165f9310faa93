"""The statements of set-based rating, for SQLite and PostgreSQL.

Rating a batch row by row in Python costs far more per event than the database does (each
event becomes Python objects, is priced, and is written back). Here a batch is a range of the
event log and stays in the database: it is staged into a temporary work table joined with
subscriptions and contracts, the allowances and quotas are consumed with running sums (window
functions ordered by the log's sequence, so the outcome is the one a one-by-one pass would
give), and usage records and counters are written with ``INSERT … SELECT`` and ``UPDATE …
FROM``. Python handles only what is small per batch: the month boundaries, one tariff per
distinct offering and add-on set, and the few buckets that cross a threshold.

The two dialects differ in JSON access, timestamp text, UUID text and a few function names;
:class:`Dialect` holds those fragments and :func:`statements` builds the same pipeline from
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Final

from satiot.bss.rating_store import ENDED
from satiot.core.bulk import uuid_text_sql

UPLINK: Final = "uplink.accepted"
DOWNLINK: Final = "downlink.sent"

WORK: Final = "rating_work"
BUCKETS: Final = "rating_buckets"
TARIFFS: Final = "rating_tariffs"
PERIODS: Final = "rating_periods"


@dataclass(frozen=True)
class Dialect:
    name: str
    uuid: str  # column type of an id
    ts: str  # column type of an instant
    big: str
    temp: str  # CREATE TEMP TABLE … suffix
    new_id: str  # SQL expression for a fresh counter id

    def json_text(self, key: str) -> str:
        if self.name == "postgresql":
            return f"(payload->>'{key}')"
        return f"json_extract(payload, '$.{key}')"

    def json_is_text(self, key: str) -> str:
        if self.name == "postgresql":
            return f"json_typeof(payload->'{key}') = 'string'"
        return f"json_type(payload, '$.{key}') = 'text'"

    def tail(self, expr: str, n: int) -> str:
        return f"right({expr}, {n})" if self.name == "postgresql" else f"substr({expr}, -{n})"

    def greatest(self, a: str, b: str) -> str:
        return f"greatest({a}, {b})" if self.name == "postgresql" else f"max({a}, {b})"

    def least(self, a: str, b: str) -> str:
        return f"least({a}, {b})" if self.name == "postgresql" else f"min({a}, {b})"

    def uuid_text(self, col: str) -> str:
        """The id as ``str(uuid)`` writes it (bucket keys are built from it)."""
        return uuid_text_sql(self.name, col)

    def instant(self, key: str) -> str:
        """The ISO-8601 time at ``key`` of the payload as a stored instant; the event's own
        time where it is missing or not a UTC ISO-8601 time."""
        raw = self.json_text(key)
        if self.name == "postgresql":
            pattern = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$"
            return (
                f"CASE WHEN {raw} ~ '{pattern}' THEN CAST({raw} AS timestamptz) "
                "ELSE occurred_at END"
            )
        # SQLite stores naive UTC text with six decimals; the payloads carry what
        # datetime.isoformat writes for UTC (no decimals when they are zero), with a Z.
        d = "[0-9]"
        day = f"{d * 4}-{d * 2}-{d * 2}T{d * 2}:{d * 2}:{d * 2}"
        return (
            f"CASE WHEN {raw} GLOB '{day}Z' OR {raw} GLOB '{day}+00:00' "
            f"THEN substr({raw}, 1, 10) || ' ' || substr({raw}, 12, 8) || '.000000' "
            f"WHEN {raw} GLOB '{day}.{d * 6}Z' OR {raw} GLOB '{day}.{d * 6}+00:00' "
            f"THEN substr({raw}, 1, 10) || ' ' || substr({raw}, 12, 15) "
            "ELSE occurred_at END"
        )


SQLITE: Final = Dialect("sqlite", "CHAR(32)", "TEXT", "INTEGER", "", "lower(hex(randomblob(16)))")
POSTGRESQL: Final = Dialect(
    "postgresql", "uuid", "timestamptz", "bigint", " ON COMMIT DELETE ROWS", "gen_random_uuid()"
)


def dialect(name: str) -> Dialect:
    return POSTGRESQL if name == "postgresql" else SQLITE


@dataclass(frozen=True)
class Statements:
    create: tuple[str, ...]
    clear: tuple[str, ...]
    stage: str
    bounds: str
    set_period: str  # format with the CASE expression
    tariff_keys: str
    insert_tariff: str
    plan: str
    insert_periods: str
    own_buckets: str
    pool_buckets: str
    create_counters: str
    lock_counters: str
    read_counters: str
    own_running: str
    quota_reject: str
    allowance_running: str
    price: str
    insert_usage: str
    bucket_totals: str
    write_counters: str
    mark_refused: str
    mark_crossings: str
    crossing_rows: str
    unthrottle: str
    debits: str
    summary: str
    analyze: tuple[str, ...]


@cache
def statements(name: str) -> Statements:
    d = dialect(name)
    ended = ", ".join(f"'{s}'" for s in ENDED)
    create = (
        f"CREATE TEMP TABLE IF NOT EXISTS {WORK} ("
        f"seq {d.big} PRIMARY KEY, event_id {d.uuid} NOT NULL, tenant_id {d.uuid} NOT NULL, "
        f"dev_eui VARCHAR(64), kind VARCHAR(16), size {d.big}, used_at {d.ts}, period VARCHAR(7), "
        f"sub_id {d.uuid}, account_id {d.uuid}, offering_id {d.uuid}, addons TEXT, "
        f"throttled BOOLEAN, qm {d.big}, qb {d.big}, action VARCHAR(16), reason VARCHAR(32), "
        f"billable {d.big}, msg_price {d.big}, byte_price {d.big}, pooled BOOLEAN, "
        f"own_bucket VARCHAR(120), alw_bucket VARCHAR(120), own_n {d.big}, own_b {d.big}, "
        f"a_n {d.big}, a_b {d.big}, allow_m {d.big}, allow_b {d.big}, charge {d.big})"
        f"{d.temp}",
        f"CREATE TEMP TABLE IF NOT EXISTS {BUCKETS} ("
        f"bucket VARCHAR(120) NOT NULL, period VARCHAR(7) NOT NULL, tenant_id {d.uuid}, "
        f"pool BOOLEAN, allow_m {d.big}, allow_b {d.big}, qm {d.big}, qb {d.big}, "
        f"counter_id {d.uuid}, start_n {d.big}, start_b {d.big}, notified {d.big}, "
        f"qnotified {d.big}, old_allow_m {d.big}, old_allow_b {d.big}, end_n {d.big}, "
        f"end_b {d.big}, refused BOOLEAN, crossing BOOLEAN, PRIMARY KEY (bucket, period))"
        f"{d.temp}",
        f"CREATE TEMP TABLE IF NOT EXISTS {TARIFFS} ("
        f"offering_id {d.uuid}, addons TEXT, msg_up {d.big}, msg_down {d.big}, "
        f"byte_up {d.big}, byte_down {d.big}, min_up {d.big}, min_down {d.big}, "
        f"allow_m {d.big}, allow_b {d.big}, pooled BOOLEAN){d.temp}",
        f"CREATE TEMP TABLE IF NOT EXISTS {PERIODS} ("
        f"period VARCHAR(7) PRIMARY KEY, starts {d.ts}, ends {d.ts}){d.temp}",
    )
    clear = tuple(f"DELETE FROM {t}" for t in (WORK, BUCKETS, TARIFFS, PERIODS))
    # The decoded length of the base64 payload, from its length and padding.
    b64 = f"coalesce({d.json_text('payload')}, '')"
    size = (
        f"length({b64}) * 3 / 4 - CASE WHEN {d.tail(b64, 2)} = '==' THEN 2 "
        f"WHEN {d.tail(b64, 1)} = '=' THEN 1 ELSE 0 END"
    )
    at = (
        f"CASE type WHEN '{UPLINK}' THEN {d.instant('received_at')} ELSE {d.instant('sent_at')} END"
    )
    addons = "CAST(s.add_on_ids AS text)" if d.name == "postgresql" else "s.add_on_ids"
    stage = (
        f"INSERT INTO {WORK} (seq, event_id, tenant_id, dev_eui, kind, size, used_at, sub_id, "
        "account_id, offering_id, addons, throttled, qm, qb, action, reason) "
        "SELECT e.seq, e.id, e.tenant_id, e.dev_eui, e.kind, e.size, e.used_at, "
        "CASE WHEN s.tenant_id = e.tenant_id THEN s.id END, "
        "CASE WHEN s.tenant_id = e.tenant_id THEN s.billing_account_id END, "
        "CASE WHEN s.tenant_id = e.tenant_id THEN s.offering_id END, "
        f"{addons}, s.throttled, coalesce(c.monthly_messages_per_device, 0), "
        "coalesce(c.monthly_bytes_per_device, 0), c.quota_action, "
        "CASE WHEN s.id IS NULL THEN 'no-subscription' "
        "WHEN s.tenant_id <> e.tenant_id THEN 'tenant-mismatch' "
        "WHEN s.activated_at IS NULL OR s.activated_at > e.used_at THEN 'not-active' END "
        f"FROM (SELECT seq, id, tenant_id, upper({d.json_text('dev_eui')}) AS dev_eui, "
        f"CASE type WHEN '{UPLINK}' THEN 'uplink' ELSE 'downlink' END AS kind, "
        f"{size} AS size, {at} AS used_at FROM events "
        f"WHERE seq > :after AND seq <= :last AND type IN ('{UPLINK}', '{DOWNLINK}') "
        f"AND tenant_id IS NOT NULL AND {d.json_is_text('dev_eui')} "
        "AND NOT EXISTS (SELECT 1 FROM usage_records u WHERE u.event_id = events.id)) e "
        f"LEFT JOIN subscriptions s ON s.dev_eui = e.dev_eui AND s.status NOT IN ({ended}) "
        "LEFT JOIN contracts c ON c.id = s.contract_id"
    )
    bounds = f"SELECT min(used_at), max(used_at) FROM {WORK}"
    set_period = f"UPDATE {WORK} SET period = {{case}}"
    tariff_keys = f"SELECT DISTINCT offering_id, addons FROM {WORK} WHERE reason IS NULL"
    insert_tariff = (
        f"INSERT INTO {TARIFFS} (offering_id, addons, msg_up, msg_down, byte_up, byte_down, "
        "min_up, min_down, allow_m, allow_b, pooled) VALUES (:offering_id, :addons, :msg_up, "
        ":msg_down, :byte_up, :byte_down, :min_up, :min_down, :allow_m, :allow_b, :pooled)"
    )
    sub_key = "'sub:' || " + d.uuid_text(f"{WORK}.sub_id")
    pool_key = (
        f"'pool:' || {d.uuid_text(f'{WORK}.account_id')} || ':' || "
        f"{d.uuid_text(f'{WORK}.offering_id')}"
    )
    up = f"{WORK}.kind = 'uplink'"
    plan = (
        f"UPDATE {WORK} SET "
        f"billable = {d.greatest('size', f'CASE WHEN {up} THEN t.min_up ELSE t.min_down END')}, "
        f"msg_price = CASE WHEN {up} THEN t.msg_up ELSE t.msg_down END, "
        f"byte_price = CASE WHEN {up} THEN t.byte_up ELSE t.byte_down END, "
        f"pooled = t.pooled, allow_m = t.allow_m, allow_b = t.allow_b, "
        f"own_bucket = {sub_key}, "
        f"alw_bucket = CASE WHEN t.pooled THEN {pool_key} "
        f"WHEN t.allow_m > 0 OR t.allow_b > 0 THEN {sub_key} END "
        f"FROM {TARIFFS} t WHERE t.offering_id = {WORK}.offering_id "
        f"AND t.addons = {WORK}.addons AND {WORK}.reason IS NULL"
    )
    insert_periods = (
        f"INSERT INTO {PERIODS} (period, starts, ends) VALUES (:period, :starts, :ends)"
    )
    own_buckets = (
        f"INSERT INTO {BUCKETS} (bucket, period, tenant_id, pool, allow_m, allow_b, qm, qb) "
        "SELECT own_bucket, period, min(tenant_id), FALSE, "
        "max(CASE WHEN pooled THEN 0 ELSE allow_m END), "
        "max(CASE WHEN pooled THEN 0 ELSE allow_b END), max(qm), max(qb) "
        f"FROM {WORK} WHERE reason IS NULL GROUP BY own_bucket, period"
    )
    members = (
        "SELECT count(*) FROM subscriptions m WHERE m.billing_account_id = w.account_id "
        "AND m.offering_id = w.offering_id AND m.activated_at IS NOT NULL "
        "AND m.activated_at < p.ends "
        "AND (m.terminated_at IS NULL OR m.terminated_at >= p.starts)"
    )
    pool_buckets = (
        f"INSERT INTO {BUCKETS} (bucket, period, tenant_id, pool, allow_m, allow_b, qm, qb) "
        "SELECT w.bucket, w.period, w.tenant_id, TRUE, w.allow_m * w.n, w.allow_b * w.n, 0, 0 "
        "FROM (SELECT w.bucket, w.period, w.tenant_id, w.allow_m, w.allow_b, "
        f"{d.greatest('1', f'({members})')} AS n "
        "FROM (SELECT alw_bucket AS bucket, period, min(tenant_id) AS tenant_id, "
        "min(account_id) AS account_id, min(offering_id) AS offering_id, "
        "max(allow_m) AS allow_m, max(allow_b) AS allow_b "
        f"FROM {WORK} WHERE reason IS NULL AND pooled GROUP BY alw_bucket, period) w "
        f"JOIN {PERIODS} p ON p.period = w.period) w"
    )
    if d.name == "postgresql":
        # min() of a uuid: PostgreSQL has none; every row of one bucket has the same values.
        for col in ("tenant_id", "account_id", "offering_id"):
            own_buckets = own_buckets.replace(f"min({col})", f"(array_agg({col}))[1]")
            pool_buckets = pool_buckets.replace(f"min({col})", f"(array_agg({col}))[1]")
    create_counters = (
        "INSERT INTO usage_counters (id, tenant_id, bucket, period, messages, bytes, "
        "allowance_messages, allowance_bytes, notified_pct, quota_notified_pct) "
        f"SELECT {d.new_id}, b.tenant_id, b.bucket, b.period, 0, 0, b.allow_m, b.allow_b, 0, 0 "
        f"FROM {BUCKETS} b WHERE NOT EXISTS (SELECT 1 FROM usage_counters c "
        "WHERE c.bucket = b.bucket AND c.period = b.period)"
        + (" ON CONFLICT (bucket, period) DO NOTHING" if d.name == "postgresql" else "")
    )
    # Competing raters serialise per counter (the consumer's cursor already serialises the
    # consumer's own workers); SQLite's writers are serialised anyway.
    lock_counters = (
        f"SELECT c.id FROM usage_counters c JOIN {BUCKETS} b "
        "ON c.bucket = b.bucket AND c.period = b.period ORDER BY c.id FOR UPDATE OF c"
    )
    read_counters = (
        f"UPDATE {BUCKETS} SET counter_id = c.id, start_n = c.messages, start_b = c.bytes, "
        "notified = c.notified_pct, qnotified = c.quota_notified_pct, "
        "old_allow_m = c.allowance_messages, old_allow_b = c.allowance_bytes "
        f"FROM usage_counters c WHERE c.bucket = {BUCKETS}.bucket "
        f"AND c.period = {BUCKETS}.period"
    )
    running = "OVER (PARTITION BY w.{col}, w.period ORDER BY w.seq)"
    own_running = (
        f"UPDATE {WORK} SET own_n = x.n, own_b = x.b FROM (SELECT w.seq, "
        f"b.start_n + row_number() {running.format(col='own_bucket')} AS n, "
        f"b.start_b + sum(w.billable) {running.format(col='own_bucket')} AS b "
        f"FROM {WORK} w JOIN {BUCKETS} b ON b.bucket = w.own_bucket AND b.period = w.period "
        f"WHERE w.reason IS NULL) x WHERE {WORK}.seq = x.seq"
    )
    # The quota counts the device's own messages and billable bytes; once a message would
    # take it over, that one and every later one of the month are refused. The running sums
    # only grow, so the refused messages are a suffix and the sums of the rest are exact.
    quota_reject = (
        f"UPDATE {WORK} SET reason = 'quota-exceeded' FROM {BUCKETS} b "
        f"WHERE b.bucket = {WORK}.own_bucket AND b.period = {WORK}.period "
        f"AND {WORK}.reason IS NULL AND (b.qm > 0 OR b.qb > 0) "
        f"AND {WORK}.action <> 'notify' AND (b.qnotified >= 100 "
        f"OR (b.qm > 0 AND {WORK}.own_n > b.qm) OR (b.qb > 0 AND {WORK}.own_b > b.qb) "
        f"OR (b.qb > 0 AND {WORK}.own_b - {WORK}.billable >= b.qb))"
    )
    allowance_running = (
        f"UPDATE {WORK} SET a_n = x.n, a_b = x.b, allow_m = x.allow_m, allow_b = x.allow_b "
        f"FROM (SELECT w.seq, b.allow_m, b.allow_b, "
        f"b.start_n + row_number() {running.format(col='alw_bucket')} AS n, "
        f"b.start_b + sum(w.billable) {running.format(col='alw_bucket')} AS b "
        f"FROM {WORK} w JOIN {BUCKETS} b ON b.bucket = w.alw_bucket AND b.period = w.period "
        f"WHERE w.reason IS NULL) x WHERE {WORK}.seq = x.seq"
    )
    # While the bucket has messages left a message pays no per-message price, and billable
    # bytes are free up to the bytes left; the overage pays the usage prices.
    left = d.greatest("0", "allow_b - (a_b - billable)")
    price = (
        f"UPDATE {WORK} SET charge = CASE WHEN reason IS NOT NULL THEN 0 "
        "WHEN alw_bucket IS NULL THEN msg_price + byte_price * billable "
        "ELSE CASE WHEN a_n - 1 < allow_m THEN 0 ELSE msg_price END "
        f"+ byte_price * (billable - {d.least('billable', left)}) END"
    )
    keep = "CASE WHEN reason = 'tenant-mismatch' THEN NULL ELSE {} END"
    insert_usage = (
        "INSERT INTO usage_records (id, event_id, tenant_id, dev_eui, subscription_id, "
        "billing_account_id, offering_id, kind, bytes, billable_bytes, period, occurred_at, "
        "charge_micros, state, reason) "
        "SELECT event_id, event_id, tenant_id, dev_eui, "
        f"{keep.format('sub_id')}, {keep.format('account_id')}, {keep.format('offering_id')}, "
        "kind, size, coalesce(billable, size), period, used_at, coalesce(charge, 0), "
        "CASE WHEN reason IS NULL THEN 'rated' ELSE 'rejected' END, reason "
        f"FROM {WORK} ORDER BY seq"
    )
    bucket_totals = (
        f"UPDATE {BUCKETS} SET end_n = x.n, end_b = x.b FROM ("
        f"SELECT own_bucket AS bucket, period, max(own_n) AS n, max(own_b) AS b FROM {WORK} "
        "WHERE reason IS NULL GROUP BY own_bucket, period UNION ALL "
        f"SELECT alw_bucket, period, max(a_n), max(a_b) FROM {WORK} "
        "WHERE reason IS NULL AND pooled GROUP BY alw_bucket, period) x "
        f"WHERE {BUCKETS}.bucket = x.bucket AND {BUCKETS}.period = x.period"
    )
    write_counters = (
        "UPDATE usage_counters SET messages = coalesce(b.end_n, b.start_n), "
        "bytes = coalesce(b.end_b, b.start_b), allowance_messages = b.allow_m, "
        f"allowance_bytes = b.allow_b FROM {BUCKETS} b WHERE usage_counters.id = b.counter_id "
        "AND (b.end_n IS NOT NULL OR b.allow_m <> b.old_allow_m OR b.allow_b <> b.old_allow_b)"
    )

    def pct(n: str, b: str, lm: str, lb: str) -> str:
        share_m = f"CASE WHEN {lm} > 0 THEN {n} * 100 / {lm} ELSE 0 END"
        share_b = f"CASE WHEN {lb} > 0 THEN {b} * 100 / {lb} ELSE 0 END"
        return d.greatest(share_m, share_b)

    def next_after(notified: str) -> str:
        return f"CASE WHEN {notified} < 50 THEN 50 WHEN {notified} < 80 THEN 80 ELSE 100 END"

    n, b = "coalesce(end_n, start_n)", "coalesce(end_b, start_b)"
    allowance_crossed = (
        "(allow_m > 0 OR allow_b > 0) AND notified < 100 "
        f"AND {pct(n, b, 'allow_m', 'allow_b')} >= {next_after('notified')}"
    )
    quota_crossed = (
        "NOT pool AND (qm > 0 OR qb > 0) AND qnotified < 100 AND ("
        f"{pct(n, b, 'qm', 'qb')} >= {next_after('qnotified')} OR refused)"
    )
    mark_refused = (
        f"UPDATE {BUCKETS} SET refused = TRUE WHERE (bucket, period) IN "
        f"(SELECT own_bucket, period FROM {WORK} WHERE reason = 'quota-exceeded')"
    )
    mark_crossings = (
        f"UPDATE {BUCKETS} SET crossing = TRUE WHERE ({quota_crossed}) OR ({allowance_crossed})"
    )
    # The rows of the few buckets that cross a threshold in this batch, with their bucket's
    # state before it; Python replays them to announce each crossing at its message.
    crossing_rows = (
        "SELECT w.seq, w.used_at, w.reason, w.billable, w.sub_id, w.account_id, w.dev_eui, "
        "w.tenant_id, w.period, w.action, w.own_bucket, w.own_n, w.own_b, w.alw_bucket, "
        "w.a_n, w.a_b, o.counter_id, o.qm, o.qb, o.qnotified, o.notified, "
        "a.counter_id, a.notified, a.allow_m, a.allow_b "
        f"FROM {WORK} w JOIN {BUCKETS} o ON o.bucket = w.own_bucket AND o.period = w.period "
        f"LEFT JOIN {BUCKETS} a ON a.bucket = w.alw_bucket AND a.period = w.period "
        "WHERE (w.reason IS NULL OR w.reason = 'quota-exceeded') "
        "AND (o.crossing OR a.crossing) ORDER BY w.seq"
    )
    # A throttled device's first usage in a month whose quota is not yet reached ends the
    # throttle (the month of the cap is over).
    unthrottle = (
        f"SELECT DISTINCT w.sub_id FROM {WORK} w JOIN {BUCKETS} b "
        "ON b.bucket = w.own_bucket AND b.period = w.period "
        "WHERE w.throttled AND (w.reason IS NULL OR w.reason = 'quota-exceeded') "
        "AND NOT ((b.qm > 0 OR b.qb > 0) AND b.qnotified >= 100)"
    )
    debits = (
        f"SELECT w.account_id, sum(w.charge) FROM {WORK} w JOIN billing_accounts a "
        "ON a.id = w.account_id WHERE a.payment_mode = 'prepaid' AND w.charge > 0 "
        "GROUP BY w.account_id"
    )
    summary = (
        "SELECT sum(CASE WHEN reason IS NULL THEN 1 ELSE 0 END), "
        "sum(CASE WHEN reason IS NULL THEN 0 ELSE 1 END), coalesce(sum(charge), 0), "
        f"(SELECT used_at FROM {WORK} ORDER BY seq DESC LIMIT 1), "
        "(SELECT count(*) FROM events e JOIN usage_records u ON u.event_id = e.id "
        f"WHERE e.seq > :after AND e.seq <= :last) FROM {WORK}"
    )
    analyze = (f"ANALYZE {WORK}", f"ANALYZE {BUCKETS}") if d.name == "postgresql" else ()
    return Statements(
        create,
        clear,
        stage,
        bounds,
        set_period,
        tariff_keys,
        insert_tariff,
        plan,
        insert_periods,
        own_buckets,
        pool_buckets,
        create_counters,
        lock_counters,
        read_counters,
        own_running,
        quota_reject,
        allowance_running,
        price,
        insert_usage,
        bucket_totals,
        write_counters,
        mark_refused,
        mark_crossings,
        crossing_rows,
        unthrottle,
        debits,
        summary,
        analyze,
    )
