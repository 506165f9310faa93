"""Ingest throughput: batches of receptions against a commit-per-reception anchor.

Each batch holds 500 receptions of which 30 % are copies (store and forward: a frame already
seen in this or the previous batch, via another satellite). Prints, per backend:
- ingest, batched: ``network.ingest.ingest`` called directly (HTTP excluded);
- ingest, anchor: the same pipeline committing one reception per transaction;
- HTTP: the same batches posted to ``/api/v1/ground-stations/{id}/receptions`` through the
  ASGI app in-process (FastAPI's TestClient: JSON, auth, routing included, no sockets);
as receptions/s and accepted uplinks/s, both per wall-clock second and per CPU second of this
process (one core: the benchmark is single-threaded; on PostgreSQL the server's own CPU is
not in that figure), and the ratio batched/anchor, which survives a noisy machine.

    satiot bench ingest                                 # embedded SQLite in a temp dir
    satiot bench ingest --backends sqlite,postgresql    # also a scratch PostgreSQL database
    satiot bench ingest --db-url postgresql+psycopg://…  # one given (scratch!) database
    satiot bench ingest --profile                        # cProfile the batched run
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import os
import pstats
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _args
from _databases import PG_SERVER, scratch_database
from _yardstick import calibrate
from satiot.api.context import AppContext
from satiot.core import migrate
from satiot.core.auth.principal import system_principal
from satiot.core.auth.users import create_tenant
from satiot.core.bootstrap import seed_operator
from satiot.core.clock import SystemClock
from satiot.core.config import Settings
from satiot.core.db import SQLITE_PRAGMAS, Database
from satiot.core.db_statistics import refresh_statistics
from satiot.core.ids import new_id
from satiot.network import devices, frames, ground_stations
from satiot.network.ingest import ingest
from satiot.network.keys import Kek

BATCH = 500
DUPLICATE_SHARE = 0.30
T0 = datetime(2026, 11, 25, tzinfo=UTC)


@dataclass
class Fleet:
    """Devices with their sessions, and the next frame counter of each."""

    sessions: list[tuple[int, bytes, bytes]]  # (dev_addr, nwk, app)
    f_cnt: list[int]
    next_device: int = 0

    def next_frame(self, payload: bytes) -> bytes:
        i = self.next_device
        self.next_device = (i + 1) % len(self.sessions)
        addr, nwk, app = self.sessions[i]
        f_cnt = self.f_cnt[i]
        self.f_cnt[i] += 1
        return frames.encode(
            mtype=frames.MType.UNCONFIRMED_UP,
            dev_addr=addr,
            f_cnt32=f_cnt,
            f_port=1,
            payload=payload,
            nwk_s_key=nwk,
            app_s_key=app,
        )


def _record(phy: bytes, satellite: str, at: datetime) -> dict[str, object]:
    return {
        "satellite": satellite,
        "received_at": at.isoformat().replace("+00:00", "Z"),
        "frequency_hz": 400_100_000,
        "rssi_dbm": -127.5,
        "snr_db": -2.0,
        "doppler_hz": 3150.5,
        "phy_payload": base64.b64encode(phy).decode(),
    }


def make_batches(fleet: Fleet, count: int, size: int = BATCH) -> list[list[dict[str, object]]]:
    """``count`` batches: 70 % new frames, 30 % copies of this or the previous batch's frames
    via another satellite, later. Every reception has its own time, as on air (a batch of
    identical timestamps would let caches of formatted times hit on every row)."""
    batches: list[list[dict[str, object]]] = []
    previous: list[tuple[bytes, datetime]] = []
    dups = round(size * DUPLICATE_SHARE)
    for b in range(count):
        at = T0 + timedelta(minutes=10 * b)
        new = [
            (fleet.next_frame(os.urandom(20)), at + timedelta(microseconds=1_137_013 * k))
            for k in range(size - dups)
        ]
        pool = previous + new
        batch = [_record(phy, "SAT-A", when) for phy, when in new]
        for i in range(dups):
            phy, when = pool[(i * 7919) % len(pool)]
            later = when + timedelta(minutes=3, microseconds=9_173 * (i + 1))
            batch.append(_record(phy, f"SAT-{i % 5}", later))
        batches.append(batch)
        previous = new
    return batches


def provision(db: Database, kek: Kek, n_devices: int, seed: int) -> tuple[uuid.UUID, str, Fleet]:
    """A tenant with ``n_devices`` devices and a station; returns (station id, key, fleet)."""
    at = T0
    sessions = []
    with db.write() as s:
        operator = seed_operator(s, at=at, admin_password=None).operator
        actor = system_principal(operator.id, "bench")
        tenant = create_tenant(s, actor, slug=f"bench-{seed}", name="Bench", at=at)
        for i in range(n_devices):
            addr, nwk, app = 0x27000000 + seed * 100_000 + i, os.urandom(16), os.urandom(16)
            devices.create_device(
                s,
                actor,
                kek=kek,
                tenant_id=tenant.id,
                dev_eui=f"{0x70B3D50000000000 + seed * 100_000 + i:016X}",
                dev_addr=f"{addr:08X}",
                nwk_s_key=nwk.hex(),
                app_s_key=app.hex(),
                at=at,
            )
            sessions.append((addr, nwk, app))
        made = ground_stations.register_station(
            s,
            actor,
            name=f"GS-{seed}",
            lat=40,
            lon=116,
            alt_m=0,
            min_elevation_deg=10,
            antennas=2,
            at=at,
        )
    return made.station.id, made.key.secret, Fleet(sessions, [0] * n_devices)


@dataclass
class Figures:
    receptions: int
    accepted: int
    wall_s: float
    cpu_s: float

    def line(self, label: str) -> str:
        return (
            f"{label:<26}{self.receptions / self.wall_s:12,.0f} rec/s"
            f"{self.accepted / self.wall_s:12,.0f} uplinks/s   per CPU-s:"
            f"{self.receptions / self.cpu_s:10,.0f} rec{self.accepted / self.cpu_s:10,.0f} upl"
        )


@contextmanager
def _timed() -> Iterator[list[float]]:
    out: list[float] = []
    wall, cpu = time.perf_counter(), time.process_time()
    yield out
    out += [time.perf_counter() - wall, time.process_time() - cpu]


def run_direct(db: Database, kek: Kek, station: uuid.UUID, batches: list, per_tx: int) -> Figures:
    clock = SystemClock()
    n = accepted = 0
    with _timed() as t:
        for batch in batches:
            for i in range(0, len(batch), per_tx):
                part = batch[i : i + per_tx]
                result = ingest(db, station, part, kek=kek, at=clock.now(), fcnt_window=16384)
                assert not result.rejected, result.rejected[:3]
                n += len(part)
                accepted += result.accepted
    return Figures(n, accepted, *t)


def run_http(ctx: AppContext, station: uuid.UUID, key: str, batches: list) -> Figures:
    from fastapi.testclient import TestClient

    from satiot.server import build_app

    n = accepted = 0
    with TestClient(build_app(ctx)) as client, _timed() as t:
        headers = {"Authorization": f"Bearer {key}"}
        for batch in batches:
            r = client.post(
                f"/api/v1/ground-stations/{station}/receptions",
                json={"receptions": batch},
                headers=headers,
            )
            assert r.status_code == 200, r.text
            n += len(batch)
            accepted += r.json()["accepted"]
    return Figures(n, accepted, *t)


def storage_floor(batches: int, devices: int = 2000) -> Figures:
    """SQLite alone doing what a batch needs: the same reads and writes as ``ingest`` (350 new
    uplinks, 500 receptions, 350 events of the same size, 350 device updates, the log head),
    from rows prepared in the stored format beforehand, through ``sqlite3`` directly with the
    pragmas ``core.db`` sets but foreign keys (it writes no tenant or station rows for them to
    check), and ids that follow one another in time as the pipeline's do
    (UUIDv7: random ids would scatter every insert across the primary keys' pages). No
    pipeline can go faster on this machine."""
    import json
    import sqlite3

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "floor.db"
        engine_db = Database.connect(f"sqlite:///{path}")
        migrate.upgrade(engine_db.engine)
        engine_db.dispose()
        conn = sqlite3.connect(path, isolation_level=None)
        for pragma in (*SQLITE_PRAGMAS, "foreign_keys=OFF"):
            conn.execute(f"PRAGMA {pragma}")
        tenant = uuid.uuid4().hex
        ts = "2026-11-25 08:00:00.000000"
        dev_ids = [uuid.uuid4().hex for _ in range(devices)]
        conn.executemany(
            "INSERT INTO devices (id, tenant_id, dev_eui, dev_addr, name, status, "
            "nwk_s_key_sealed, app_s_key_sealed, kek_id, f_cnt_down, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, '', 'active', ?, ?, 'k', 0, ?, ?)",
            [
                (d, tenant, f"{i:016X}", i, os.urandom(60), os.urandom(60), ts, ts)
                for i, d in enumerate(dev_ids)
            ],
        )
        new = round(BATCH * (1 - DUPLICATE_SHARE))
        payload = json.dumps({"receptions": [{"x": "y" * 40}] * 2, "pad": "z" * 300})
        work = []
        for b in range(batches):
            ups = [(new_id().hex, dev_ids[(b * new + k) % devices], b, k) for k in range(new)]
            work.append(
                (
                    [
                        (u, d, "EUI", f, 1, 7, 0, 0, 0, b"", b"p" * 20, ts, ts, 1, tenant)
                        for u, d, f, _ in ups
                    ],
                    [
                        (
                            new_id().hex,
                            ups[k % new][0],
                            "gs",
                            f"S{k}",
                            ts,
                            1,
                            -1.0,
                            1.0,
                            None,
                            ts,
                            tenant,
                        )
                        for k in range(BATCH)
                    ],
                    [
                        (
                            b * new + k + 1,
                            new_id().hex,
                            "uplink.accepted",
                            tenant,
                            "device",
                            "EUI",
                            payload,
                            ts,
                        )
                        for k in range(new)
                    ],
                    [(f, ts, d) for _, d, f, _ in ups],
                    json.dumps([[d, f] for _, d, f, _ in ups]),
                    [k for k in range((b * new) % devices, (b * new) % devices + new)],
                )
            )
        with _timed() as t:
            for uplinks, receptions, events_, updates, pairs, addrs in work:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    f"SELECT * FROM devices WHERE dev_addr IN ({','.join('?' * len(addrs))})",
                    addrs,
                ).fetchall()
                conn.execute(
                    "SELECT u.id FROM json_each(?) AS w CROSS JOIN uplinks AS u ON "
                    "u.device_id = w.value ->> 0 AND u.f_cnt = w.value ->> 1",
                    (pairs,),
                ).fetchall()
                conn.executemany(
                    "INSERT INTO uplinks (id, device_id, dev_eui, f_cnt, f_port, mic, confirmed, "
                    "ack, adr, f_opts, payload, received_at, accepted_at, reception_count, "
                    "tenant_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                    uplinks,
                )
                conn.executemany(
                    "INSERT INTO uplink_receptions (id, uplink_id, ground_station_id, satellite, "
                    "received_at, frequency_hz, rssi_dbm, snr_db, doppler_hz, ingested_at, "
                    "tenant_id) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                    receptions,
                )
                conn.executemany(
                    "UPDATE devices SET f_cnt_up = ?, last_seen_at = ? WHERE id = ?", updates
                )
                conn.execute("UPDATE log_heads SET last_seq = last_seq WHERE name = 'events'")
                conn.executemany(
                    "INSERT INTO events (seq, id, type, tenant_id, subject_type, subject_id, "
                    "payload, occurred_at) VALUES (?,?,?,?,?,?,?,?)",
                    events_,
                )
                conn.execute("COMMIT")
        conn.close()
    return Figures(batches * BATCH, batches * new, *t)


def bench(url: str, args: argparse.Namespace) -> None:
    db = Database.connect(url)
    migrate.upgrade(db.engine)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=url, max_body_bytes=16 * 2**20)
        ctx = AppContext(settings=settings, db=db, clock=SystemClock())
        kek = ctx.kek
        station, _, fleet = provision(db, kek, args.devices, seed=1)
        batches = make_batches(fleet, args.batches + 2)
        run_direct(db, kek, station, batches[:2], BATCH)  # warm up: caches, opened sessions
        if args.statistics and refresh_statistics(db):
            print("planner statistics gathered after the warm-up")
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        batched = run_direct(db, kek, station, batches[2:], BATCH)
        if profiler:
            profiler.disable()
        anchor_station, _, anchor_fleet = provision(db, kek, args.devices, seed=2)
        anchor_batches = make_batches(anchor_fleet, max(1, args.anchor_receptions // BATCH))
        anchor = run_direct(db, kek, anchor_station, anchor_batches, 1)
        http_station, http_key, http_fleet = provision(db, kek, args.devices, seed=3)
        http = run_http(ctx, http_station, http_key, make_batches(http_fleet, args.batches))
    floor = storage_floor(args.batches) if db.is_sqlite else None
    ratio = (batched.receptions / batched.wall_s) / (anchor.receptions / anchor.wall_s)
    print(f"backend {db.engine.dialect.name}: batches of {BATCH}, {DUPLICATE_SHARE:.0%} copies")
    print(batched.line("ingest, batched"))
    print(anchor.line("ingest, 1 per tx (anchor)"))
    print(http.line("HTTP, batched"))
    print(f"{'ratio batched/anchor':<26}{ratio:12.1f}x")
    if floor:
        print(floor.line("SQLite alone (floor)"))
    print(f"{'this core now':<26}{calibrate():12.1f} M interpreter steps/s (yardstick)")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    db.dispose()


def main() -> None:
    parser = _args.parser(__doc__)
    parser.add_argument("--backends", default="sqlite", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--db-url", help="benchmark this (scratch) database instead")
    parser.add_argument("--pg-server", default=PG_SERVER, help="server for the scratch database")
    parser.add_argument(
        "--batches",
        type=_args.at_least(1),
        default=200,
        help="batches of 500 in each run (enough for WAL checkpoints)",
    )
    parser.add_argument("--devices", type=_args.at_least(1), default=2000, help="devices per fleet")
    parser.add_argument(
        "--anchor-receptions",
        type=_args.at_least(1),
        default=1000,
        help="receptions in the 1-per-tx run",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the batched run")
    parser.add_argument(
        "--statistics",
        action="store_true",
        help="gather the planner's statistics after the warm-up, as satiot up does",
    )
    args = parser.parse_args()
    if args.db_url:
        _args.database_url(parser, "--db-url", args.db_url)
    backends = ["given"] if args.db_url else _args.backends(parser, args.backends)
    print(_args.tune_runtime())
    for backend in backends:
        with scratch_database(backend, args.db_url, args.pg_server) as url:
            bench(url, args)


if __name__ == "__main__":
    main()
