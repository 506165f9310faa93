"""Suspending and resuming devices from a CSV file: each line as one suspension or resumption
would do it, every device named by any of its codes, and any bad line refusing the whole file
with every bad line named."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import select

from satiot.api.deps import scope_session
from satiot.bss import status_import
from satiot.bss.models import Subscription
from satiot.bss.status_import import (
    MAX_ROWS,
    StatusFileInterrupted,
    StatusImportRejected,
    apply_in_parts,
    apply_lines,
    check_lines,
    read_lines,
    template,
)
from satiot.bss.subscriptions import suspend_subscription, terminate_subscription
from satiot.core.models import AuditEntry
from satiot.network.models import Device
from satiot.oss.models import Handle, HandleValue, IotNumber
from tests.bss.order_world import shop, terminal
from tests.bss.test_activation import activate_one, customer_admin


def _file(*lines: str) -> bytes:
    return ("device,action,reason\n" + "\n".join(lines) + "\n").encode()


def _statuses(ctx, subs) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with ctx.db.read() as s:
        rows = {r.id: r for r in s.scalars(select(Subscription))}
        devices = {d.id: d.status for d in s.scalars(select(Device))}
    return [(rows[x.id].status, devices[rows[x.id].device_id]) for x in subs]


def _bindings(ctx, subs) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """Each subscription's number, handle and the handle's STATUS value, as they stand."""
    with ctx.db.read() as s:
        numbers = {n.number: n.status for n in s.scalars(select(IotNumber))}
        handles = {h.handle: h for h in s.scalars(select(Handle))}
        shown = {
            v.handle_id: v.value
            for v in s.scalars(select(HandleValue).where(HandleValue.type == "STATUS"))
        }
    return [
        (numbers[x.iot_number], handles[x.handle].status, shown[handles[x.handle].id]) for x in subs
    ]


def test_a_season_of_devices_stops_and_starts_by_any_of_their_codes(ctx, world):
    s = shop(ctx, world)
    subs = [activate_one(s, terminal()) for _ in range(4)]
    by_eui, by_imei, by_number, by_id = subs
    text = _file(
        f"{by_eui.dev_eui.lower()},suspend,winter",
        f"{by_imei.imei},Suspend,winter",
        f" {by_number.iot_number} ,SUSPEND,winter",
        f"{by_id.id},suspend,winter",
    )
    with ctx.db.write() as session:
        scope_session(session, s.tenant.id)
        done = apply_lines(session, customer_admin(s), read_lines(text, encoding="utf-8"),
                           at=ctx.clock.now())  # fmt: skip
    assert (done.suspended, done.resumed, done.already) == (4, 0, 0)
    assert sorted(done.subscription_ids) == sorted(x.id for x in subs)
    assert _statuses(ctx, subs) == [("suspended", "suspended")] * 4
    assert _bindings(ctx, subs) == [("suspended", "suspended", "suspended")] * 4
    with ctx.db.read() as session:
        audited = session.scalars(
            select(AuditEntry.reason).where(AuditEntry.action == "subscription.suspended")
        ).all()
    assert audited == ["winter"] * 4

    # sent again: nothing changes; then spring, one of them suspended by the operator
    with ctx.db.write() as session:
        again = apply_lines(session, customer_admin(s), read_lines(text, encoding="utf-8"),
                            at=ctx.clock.now())  # fmt: skip
    assert (again.suspended, again.already) == (0, 4)
    spring = _file(*(f"{x.dev_eui},resume,spring" for x in subs[:3]))
    with ctx.db.write() as session:
        done = apply_lines(session, customer_admin(s), read_lines(spring, encoding="utf-8"),
                           at=ctx.clock.now())  # fmt: skip
    assert (done.resumed, done.already) == (3, 0)
    assert _statuses(ctx, subs) == [("active", "active")] * 3 + [("suspended", "suspended")]
    assert _bindings(ctx, subs) == [("active", "active", "active")] * 3 + [("suspended",) * 3]


def test_one_bad_line_and_nothing_changes_with_every_bad_line_named(ctx, world):
    s, other = shop(ctx, world), shop(ctx, world)
    mine = [activate_one(s, terminal()) for _ in range(3)]
    theirs = activate_one(other, terminal())
    with ctx.db.write() as session:  # the operator's suspension: not the customer's to lift
        suspend_subscription(session, world.system, mine[2].id, "fraud review", ctx.clock.now())
    text = _file(
        f"{mine[0].dev_eui},suspend,winter",  # fine on its own
        f"{mine[1].dev_eui},pause,winter",
        f"{mine[1].imei},suspend,",
        f"{mine[0].imei},suspend,twice",  # the same device as line 2, by another code
        f"{mine[2].dev_eui},resume,we need it",
        f"{theirs.dev_eui},suspend,not mine",
        "0011223344556677,suspend,unknown",
        ",suspend,nothing",
        "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz,suspend,shaped like an id",
    )
    parsed = read_lines(text, encoding="utf-8")
    # the error leaves the transaction, which rolls back (as the API's does)
    with pytest.raises(StatusImportRejected) as refused, ctx.db.write() as session:
        scope_session(session, s.tenant.id)
        apply_lines(session, customer_admin(s), parsed, at=ctx.clock.now())
    errors = [(e.line, e.column) for e in refused.value.rows]
    assert errors == [
        (3, "action"), (4, "reason"), (5, "device"), (6, "device"), (7, "device"), (8, "device"),
        (9, "device"), (10, "device"),
    ], refused.value.rows  # fmt: skip
    reasons = {e.line: e.reason for e in refused.value.rows}
    assert "by the operator" in reasons[6] and "already on line 2" in reasons[5]
    assert "no live subscription" in reasons[7] and "no live subscription" in reasons[8]
    assert "no live subscription" in reasons[10]
    assert refused.value.lines == 8 and "nothing was changed" in refused.value.detail
    assert _statuses(ctx, mine) == [("active", "active")] * 2 + [("suspended", "suspended")]


def test_files_that_cannot_be_read_at_all(ctx, world):
    assert template() == b"\xef\xbb\xbfdevice,action,reason\r\n"
    for data, needle in (
        (b"device,action\n0011223344556677,suspend\n", "reason"),
        (b"device,action,reason\n", "holds no devices"),
        (b"\xff\xfe\x00garbage", ""),
    ):
        with pytest.raises(StatusImportRejected) as refused:
            read_lines(data, encoding="utf-8")
        assert needle in refused.value.detail, refused.value.detail
    many = _file(*(f"{i:016X},suspend,x" for i in range(MAX_ROWS + 1)))
    (too_many,) = read_lines(many, encoding="utf-8").errors
    assert too_many.line == MAX_ROWS + 2 and f"more than {MAX_ROWS} lines" in too_many.reason


def _parts(ctx, s, text: bytes, **kw):  # type: ignore[no-untyped-def]
    """The file applied in parts of two lines, as the customer's administrator."""

    def scoped(unit):  # type: ignore[no-untyped-def]
        @contextmanager
        def opened():  # type: ignore[no-untyped-def]
            with unit() as session:
                scope_session(session, s.tenant.id)
                yield session

        return opened

    return apply_in_parts(
        scoped(ctx.db.write), scoped(ctx.db.read), customer_admin(s),
        read_lines(text, encoding="utf-8"), at=ctx.clock.now(), part=2, **kw,
    )  # fmt: skip


def test_a_file_in_parts_is_checked_whole_first_then_applied_two_lines_a_part(ctx, world):
    s = shop(ctx, world)
    subs = [activate_one(s, terminal()) for _ in range(5)]
    with ctx.db.write() as session:  # the operator's suspension: not the customer's to lift
        suspend_subscription(session, world.system, subs[4].id, "fraud review", ctx.clock.now())
    winter = _file(*(f"{x.dev_eui},suspend,winter" for x in subs))
    with ctx.db.read() as session:  # what it would do, changing nothing
        scope_session(session, s.tenant.id)
        would = check_lines(session, customer_admin(s), read_lines(winter, encoding="utf-8"))
    assert (would.suspended, would.already) == (4, 1)
    assert _statuses(ctx, subs[:4]) == [("active", "active")] * 4
    told: list[tuple[int, int]] = []
    done = _parts(ctx, s, winter, progress=lambda n, total: told.append((n, total)))
    assert (done.suspended, done.resumed, done.already) == (4, 0, 1)
    assert told == [(2, 5), (4, 5), (5, 5)]
    assert _statuses(ctx, subs) == [("suspended", "suspended")] * 5
    assert _bindings(ctx, subs) == [("suspended",) * 3] * 5

    # a line the customer may not make, in the last part: refused before any part is applied
    spring = _file(*(f"{x.dev_eui},resume,spring" for x in subs))
    with pytest.raises(StatusImportRejected) as err:
        _parts(ctx, s, spring)
    assert [(e.line, e.column) for e in err.value.rows] == [(6, "device")]
    assert "was suspended" in err.value.rows[0].reason
    assert _statuses(ctx, subs) == [("suspended", "suspended")] * 5


def test_a_part_refused_after_the_check_keeps_the_parts_before_it(ctx, world):
    s = shop(ctx, world)
    subs = [activate_one(s, terminal()) for _ in range(5)]
    winter = _file(*(f"{x.dev_eui},suspend,winter" for x in subs))

    def meanwhile(done: int, total: int) -> None:
        if done == 2:  # staff end the last device's service between two parts
            with ctx.db.write() as session:
                terminate_subscription(session, world.system, subs[4].id, "ended", ctx.clock.now())

    with pytest.raises(StatusFileInterrupted) as err:
        _parts(ctx, s, winter, progress=meanwhile)
    assert err.value.detail.startswith(f"line 6: no live subscription for {subs[4].dev_eui!r}")
    assert "the 4 lines before line 6 were applied" in err.value.detail
    statuses = _statuses(ctx, subs)
    assert statuses[:4] == [("suspended", "suspended")] * 4
    assert statuses[4][0] == "terminated"


def test_a_first_part_refused_after_the_check_is_a_file_refused_with_nothing_changed(
    ctx, world, monkeypatch
):
    s = shop(ctx, world)
    subs = [activate_one(s, terminal()) for _ in range(3)]
    with ctx.db.write() as session:  # ended after the (here: skipped) check
        terminate_subscription(session, world.system, subs[0].id, "ended", ctx.clock.now())
    monkeypatch.setattr(status_import, "check_lines", lambda *args: None)
    with pytest.raises(StatusImportRejected) as err:
        _parts(ctx, s, _file(*(f"{x.dev_eui},suspend,winter" for x in subs)))
    assert "nothing was changed" in err.value.detail
    assert _statuses(ctx, subs[1:]) == [("active", "active")] * 2
