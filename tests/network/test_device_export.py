"""The devices export and the Silent filter: a line per device with how long it has been
silent, in chunks whose statements do not grow with the file, only what the reader may see."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from satiot.api.context import AppContext
from satiot.core.auth.tenancy import scope_session
from satiot.core.ids import new_id
from satiot.network.device_export import COLUMNS, export_devices, file_name, silent
from satiot.network.models import Device
from tests.factories import World
from tests.performance.test_query_counts import count_queries

NOW = datetime(2026, 11, 28, 4, tzinfo=UTC)  # 12:00 in China


def devices(ctx: AppContext, tenant_id: uuid.UUID, seen: list[datetime | None], **kw) -> list[str]:  # type: ignore[no-untyped-def]
    """Devices of the tenant last seen at ``seen`` (None: never); their DevEUIs."""
    base = uuid.uuid4().int & 0xFFFFFF
    rows = [
        {
            "id": new_id(),
            "tenant_id": tenant_id,
            "dev_eui": f"70B3D5{base:06X}{n:04X}",
            "dev_addr": 0x26000000 + n,
            "name": kw.get("name", f"meter {n}"),
            "status": kw.get("status", "active"),
            "nwk_s_key_sealed": bytes(48),
            "app_s_key_sealed": bytes(48),
            "kek_id": "k1",
            "f_cnt_up": None if at is None else 40 + n,
            "f_cnt_down": 2,
            "lat": 39.9042 if n == 0 else None,
            "lon": 116.4074 if n == 0 else None,
            "last_seen_at": at,
            "priority": 0,
            "created_at": kw.get("created_at", NOW - timedelta(days=60)),
            "active_since": kw.get("active_since"),
            "updated_at": NOW,
        }
        for n, at in enumerate(seen)
    ]
    with ctx.db.write() as s:
        s.execute(insert(Device), rows)
    return [r["dev_eui"] for r in rows]


def _read(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "Excel reads UTF-8 by its byte-order mark"
    return list(csv.DictReader(io.StringIO(data[3:].decode(), newline="")))


def _export(ctx: AppContext, tenant=None, **kw) -> bytes:  # type: ignore[no-untyped-def]
    with ctx.db.read() as s:
        if tenant is not None:
            scope_session(s, tenant)
        return b"".join(export_devices(s, now=NOW, **kw))


def test_each_line_says_how_long_the_device_has_been_silent(ctx: AppContext, world: World):
    tenant = world.tenant()
    seen = [NOW - timedelta(hours=3), NOW - timedelta(days=8, hours=1), None]
    recent, quiet, never = devices(ctx, tenant.id, seen)
    data = _export(ctx)
    assert data.splitlines()[0] == b"\xef\xbb\xbf" + ",".join(COLUMNS).encode()
    lines = {r["dev_eui"]: r for r in _read(data)}
    assert (lines[recent]["silent_days"], lines[quiet]["silent_days"]) == ("0", "8")
    assert lines[never]["silent_days"] == "never" and lines[never]["last_seen_at"] == ""
    assert lines[recent]["last_seen_at"] == "2026-11-28T09:00:00+08:00"
    assert lines[recent]["tenant"] == tenant.slug and lines[recent]["dev_addr"] == "26000000"
    assert (lines[recent]["lat"], lines[recent]["lon"]) == ("39.9042", "116.4074")
    assert (lines[never]["f_cnt_up"], lines[never]["lat"]) == ("", "")
    assert lines[recent]["priority"] == "normal" and lines[recent]["status"] == "active"
    assert file_name(NOW) == "satiot-devices-20261128.csv"


def test_silent_keeps_active_devices_not_heard_for_the_days(ctx: AppContext, world: World):
    tenant = world.tenant()
    seen = [NOW - timedelta(hours=23), NOW - timedelta(days=1, minutes=1), None]
    _recent, quiet, never = devices(ctx, tenant.id, seen)
    devices(ctx, tenant.id, [None], created_at=NOW - timedelta(hours=2))  # not had the time
    devices(ctx, tenant.id, [None, NOW - timedelta(days=9)], status="inventory")
    devices(ctx, tenant.id, [NOW - timedelta(days=9)], status="suspended")
    kept = _read(_export(ctx, where=[silent(1, NOW)]))
    assert {r["dev_eui"] for r in kept} == {quiet, never}
    assert {r["dev_eui"] for r in _read(_export(ctx, where=[silent(7, NOW)]))} == {never}


def test_silence_counts_from_the_last_activation(ctx: AppContext, world: World):
    tenant = world.tenant()
    yesterday, long_ago = NOW - timedelta(days=1, hours=1), NOW - timedelta(days=40)
    # Provisioned 60 days ago, activated yesterday: one day to report, not sixty.
    (fresh,) = devices(ctx, tenant.id, [None], active_since=yesterday)
    # Heard 9 days ago, then suspended, and restored yesterday.
    (restored,) = devices(ctx, tenant.id, [NOW - timedelta(days=9)], active_since=yesterday)
    quiet = devices(ctx, tenant.id, [None, NOW - timedelta(days=9)], active_since=long_ago)
    assert {r["dev_eui"] for r in _read(_export(ctx, where=[silent(7, NOW)]))} == set(quiet)
    lines = {r["dev_eui"]: r for r in _read(_export(ctx, where=[silent(1, NOW)]))}
    assert lines.keys() == {fresh, restored, *quiet}
    assert lines[fresh]["active_since"] == "2026-11-27T11:00:00+08:00"
    assert lines[fresh]["silent_days"] == "never"


def test_a_name_a_spreadsheet_would_run_is_quoted(ctx: AppContext, world: World):
    tenant = world.tenant()
    devices(ctx, tenant.id, [NOW], name='=HYPERLINK("http://evil.example","x")')
    (line,) = _read(_export(ctx))
    assert line["name"].startswith("'=HYPERLINK(")


def test_a_tenant_sees_its_own_devices_in_chunks_of_fixed_cost(ctx: AppContext, world: World):
    ours, theirs = world.tenant(), world.tenant()
    mine = devices(ctx, ours.id, [NOW] * 25)
    devices(ctx, theirs.id, [NOW] * 3)
    counts, told = [], []
    for chunk in (5, 10):
        with count_queries(ctx.db.engine) as seen:
            lines = _read(_export(ctx, ours.id, chunk=chunk, progress=told.append))
        assert sorted(r["dev_eui"] for r in lines) == sorted(mine)
        counts.append(len(seen))
    # a statement per chunk (and one for the empty chunk after 25 = 5 x 5), the tenant once
    assert counts == [6 + 1, 3 + 1], counts
    assert told == [5, 5, 5, 5, 5, 10, 10, 5]
