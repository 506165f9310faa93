"""Ingest under SIGKILL: the real server (``satiot.server.serve``, uvicorn on a real socket) is
killed again and again while two ground stations post a burst of batches and retry every batch
whose answer they did not get, as real stations do. Afterwards every reception that was
answered is stored exactly once, and every distinct frame is exactly one uplink with exactly
one ``uplink.accepted`` event: nothing lost, nothing doubled.

The server runs in a forked child of this process (the same code ``satiot up`` serves, without
the background services), so a restart costs no re-import; the child is killed with SIGKILL,
which no handler can soften.
"""

from __future__ import annotations

import multiprocessing
import random
import socket
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from satiot.core.models import Event
from satiot.network.models import Uplink, UplinkReception
from tests.network.ingest_helpers import T0, add_device, add_station, rec

pytestmark = pytest.mark.slow

KILLS = 8  # then the burst finishes on a server left running


def _serve(url: str, data_dir: str, port: int) -> None:
    from satiot.core.config import Settings
    from satiot.server import bind_sockets, build_context, serve

    settings = Settings(data_dir=Path(data_dir), database_url=url, twin=False, mqtt_url=None)
    ctx = build_context(settings)
    serve(ctx, bind_sockets("127.0.0.1", None, port))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, url: str, data_dir: Path) -> None:
        self.args = (url, str(data_dir), _free_port())
        self.base = f"http://127.0.0.1:{self.args[2]}"
        self.proc: multiprocessing.process.BaseProcess | None = None

    def start(self) -> None:
        self.proc = multiprocessing.get_context("fork").Process(target=_serve, args=self.args)
        self.proc.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.is_alive(), "the server died while starting"
            time.sleep(0.05)
        raise AssertionError("the server did not come up")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL
        self.proc.join(10)


def _key(station_id, record) -> tuple:
    return (str(station_id), record["satellite"], record["received_at"], record["phy_payload"])


def _copies(devs, frames_per_device: int, stations):
    """Every frame once or several times, via different satellites and stations, shuffled."""
    rng = random.Random(7)
    copies = []
    for dev in devs:
        for f_cnt in range(frames_per_device):
            phy = dev.frame(f_cnt, bytes([f_cnt % 256]) * 8)
            for k in range(rng.choice((1, 1, 2, 3))):
                at = T0 + timedelta(minutes=rng.randint(0, 600))
                copies.append(
                    (rng.choice(stations), (dev.id, f_cnt), rec(phy, satellite=f"SAT-{k}", at=at))
                )
    rng.shuffle(copies)
    return copies


def test_every_answered_reception_is_stored_exactly_once_across_sigkills(ctx, world, db_url):
    tenant = world.tenant()
    devs = [add_device(ctx, world, tenant.id) for _ in range(20)]
    stations = [add_station(ctx, world, name) for name in ("Kashgar", "Sanya")]
    # Long enough that the KILLS land while stations post, on a fast machine too (30 frames a
    # device gave 5 kills in 3.9 s, 4 under load on a fast day).
    copies = _copies(devs, 75, [s for s, _ in stations])
    frames = {frame for _, frame, _ in copies}
    assert ctx.kek  # the KEK file exists (in the data dir) before the server reads it
    server = Server(db_url, ctx.settings.data_dir)
    server.start()

    answered: set[tuple] = set()  # (station, satellite, received_at, frame) of answered copies
    posts = {"sent": 0, "failed": 0}
    done = threading.Event()
    lock = threading.Lock()

    def station_loop(station_id, key) -> None:
        mine = [c for c in copies if c[0] == station_id]
        batches = [mine[i : i + 15] for i in range(0, len(mine), 15)]
        with httpx.Client(base_url=server.base, timeout=10) as client:
            for batch in batches:
                body = {"receptions": [r for _, _, r in batch]}
                while True:
                    with lock:
                        posts["sent"] += 1
                    try:
                        r = client.post(
                            f"/api/v1/ground-stations/{station_id}/receptions",
                            json=body,
                            headers={"Authorization": f"Bearer {key}"},
                        )
                    except httpx.HTTPError:
                        with lock:
                            posts["failed"] += 1
                        time.sleep(0.05)
                        continue
                    assert r.status_code == 200, r.text
                    assert r.json()["rejected"] == []
                    with lock:
                        answered.update(_key(station_id, r) for _, _, r in batch)
                    break

    posters = [threading.Thread(target=station_loop, args=s) for s in stations]
    for p in posters:
        p.start()
    watcher = threading.Thread(target=lambda: (posters[0].join(), posters[1].join(), done.set()))
    watcher.start()
    kills = 0
    rng = random.Random(11)
    started = time.monotonic()
    while kills < KILLS and not done.wait(rng.uniform(0.05, 0.5)):
        server.kill()
        kills += 1
        server.start()
    done.wait(120)
    watcher.join()
    server.kill()
    elapsed = time.monotonic() - started

    assert kills >= 5, f"only {kills} kills happened during the burst; make it longer"
    assert posts["failed"] > 0, "no post was cut by a kill"
    with ctx.db.read() as s:
        uplinks = s.execute(
            select(Uplink.id, Uplink.device_id, Uplink.f_cnt, Uplink.reception_count)
        ).all()
        stored = s.execute(
            select(
                UplinkReception.uplink_id,
                UplinkReception.ground_station_id,
                UplinkReception.satellite,
                UplinkReception.received_at,
            )
        ).all()
        per_uplink = dict(
            s.execute(
                select(UplinkReception.uplink_id, func.count()).group_by(UplinkReception.uplink_id)
            ).all()
        )
        events = s.scalars(
            select(Event.payload["id"].as_string()).where(Event.type == "uplink.accepted")
        ).all()
    # every distinct frame: one uplink, one event
    assert sorted((u.device_id, u.f_cnt) for u in uplinks) == sorted(frames)
    assert sorted(events) == sorted(str(u.id) for u in uplinks)
    # every answered reception: stored, exactly once
    rows = Counter(
        (u, str(gs), sat, when.isoformat().replace("+00:00", "Z")) for u, gs, sat, when in stored
    )
    by_frame = {(u.device_id, u.f_cnt): u.id for u in uplinks}
    expected = Counter(
        (by_frame[frame], str(station_id), r["satellite"], r["received_at"])
        for station_id, frame, r in copies
        if _key(station_id, r) in answered
    )
    assert len(answered) == len(copies)
    assert rows == expected
    # the counts on the uplinks agree with their reception rows
    assert {u.id: u.reception_count for u in uplinks} == per_uplink
    print(
        f"\n{kills} kills, {posts['sent']} posts ({posts['failed']} cut), {len(copies)} "
        f"receptions, {len(frames)} frames, {elapsed:.1f}s"
    )
