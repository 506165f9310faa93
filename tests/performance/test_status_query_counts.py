"""Statements per device of a suspend/resume file, pinned: each line moves its device, number
and handle with one read and one write each and writes the subscription the file locked,
whatever the file's length."""

from __future__ import annotations

from satiot.api.deps import scope_session
from satiot.bss.status_import import apply_lines, read_lines
from tests.bss.order_world import shop, terminal
from tests.bss.test_activation import activate_one, customer_admin
from tests.performance.test_query_counts import count_queries


def _statements(ctx, s, subs, action: str) -> int:  # type: ignore[no-untyped-def]
    text = "device,action,reason\n" + "".join(f"{x.dev_eui},{action},winter\n" for x in subs)
    with count_queries(ctx.db.engine) as seen, ctx.db.write() as session:
        scope_session(session, s.tenant.id)
        apply_lines(session, customer_admin(s), read_lines(text.encode(), encoding="utf-8"),
                    at=ctx.clock.now())  # fmt: skip
    return len(seen)


def test_each_device_of_a_file_costs_nine_statements(ctx, world):
    """Per device: the device, the number and the handle read and written, the handle's
    values read and the changed one written, the subscription written. Per file: the look-up
    (and lock) of every line's subscription, and at the commit the log's and the audit
    trail's heads and one bulk write of each (16 a device before the moves were handed the
    rows they had read, 10 before the file's locked subscriptions were)."""
    s = shop(ctx, world)
    subs = [activate_one(s, terminal()) for _ in range(6)]
    for action in ("suspend", "resume"):
        two, four = _statements(ctx, s, subs[:2], action), _statements(ctx, s, subs[2:], action)
        assert (four - two, two - 2 * 9) == (2 * 9, 6), (action, two, four)
