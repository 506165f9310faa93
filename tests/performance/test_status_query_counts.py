"""Statements of a suspend/resume file, pinned: the same for two devices as for four, because
the file reads what its devices bind a thousand at a time and its moves are written together."""

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


def test_a_file_costs_the_same_statements_whatever_its_length(ctx, world):
    """Per file: the look-up (and lock) of every line's subscription; the devices, the numbers
    (locked), the handles and their values read; one write each of the devices, numbers,
    handles, handle values and subscriptions moved; and at the commit the log's and the audit
    trail's heads and one bulk write of each. Before the file read the rows its moves carry
    along, each device cost nine statements of its own (16 before the moves were handed the
    rows they had read, 10 before the file's locked subscriptions were)."""
    s = shop(ctx, world)
    subs = [activate_one(s, terminal()) for _ in range(6)]
    for action in ("suspend", "resume"):
        two, four = _statements(ctx, s, subs[:2], action), _statements(ctx, s, subs[2:], action)
        assert (two, four) == (15, 15), action
