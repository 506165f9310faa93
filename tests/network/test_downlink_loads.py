"""Load windows hold only so many commands, and a share of each is held for priority devices:
the counting itself, planning on it, and the queue and planner honouring it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from satiot.network.downlink_loads import SAME_WINDOW, LoadRules, Loads, reserved_slots
from satiot.network.downlink_plan import Inventory, NoPlan, Plan, Request, plan_batch
from tests.network.downlink_setup import TIBET, scenario_inventory

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
GS = uuid.UUID(int=1)


@pytest.mark.parametrize(
    ("per_pass", "reserve", "held"),
    [(1000, 0.1, 100), (10, 0.25, 3), (2, 0.5, 1), (1, 0.5, 0), (5, 0.0, 0), (3, 0.99, 2)],
)
def test_the_reserve_is_rounded_up_but_never_takes_the_whole_window(per_pass, reserve, held):
    assert reserved_slots(per_pass, reserve) == held


@pytest.mark.parametrize(("per_pass", "reserve"), [(0, 0.1), (10, -0.1), (10, 1.0)])
def test_impossible_rules_are_refused(per_pass, reserve):
    with pytest.raises(ValueError):
        LoadRules(per_pass, reserve)


@given(st.integers(1, 50), st.floats(0, 0.95), st.lists(st.integers(0, 1), max_size=80))
def test_a_window_never_holds_more_than_its_room_nor_ordinary_traffic_its_reserve(
    per_pass, reserve, priorities
):
    loads = Loads(LoadRules(per_pass, reserve))
    ordinary = 0
    for priority in priorities:
        if loads.has_room("SAT-1", GS, T0, priority):
            loads.take("SAT-1", GS, T0)
            ordinary += priority == 0
    assert loads.used("SAT-1", GS, T0) <= per_pass
    assert ordinary <= per_pass - reserved_slots(per_pass, reserve)


def test_a_window_is_known_by_satellite_station_and_set_time_give_or_take():
    loads = Loads(LoadRules(per_pass=2, reserve=0))
    loads.take("SAT-1", GS, T0)
    loads.take("SAT-1", GS, T0 + SAME_WINDOW)  # recomputed pass times move a little
    assert not loads.has_room("SAT-1", GS, T0 - timedelta(seconds=5))
    assert loads.has_room("SAT-1", GS, T0 + timedelta(hours=1))  # the next pass
    assert loads.has_room("SAT-2", GS, T0) and loads.has_room("SAT-1", uuid.UUID(int=2), T0)
    copy = loads.copy()
    copy.take("SAT-9", GS, T0)
    assert loads.used("SAT-9", GS, T0) == 0  # a copy is a trial, not the real count


# ---- planning on the room -------------------------------------------------------------------


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return scenario_inventory()


def _window(plan: Plan) -> tuple[str, uuid.UUID, datetime]:
    return plan.satellite, plan.station_id, plan.load_until


def test_a_full_window_sends_the_next_command_to_the_next_window_with_room(inv):
    lat, lon = TIBET
    [[free]] = plan_batch(inv, [Request(lat, lon)], T0)
    loads = Loads(LoadRules(per_pass=1, reserve=0))
    [[first], [second]] = plan_batch(inv, [Request(lat, lon), Request(lat, lon)], T0, loads=loads)
    assert isinstance(first, Plan) and isinstance(second, Plan)
    assert first == free  # the first takes the best window, as without limits
    assert _window(second) != _window(first)
    assert second.estimated_delivery_at >= first.estimated_delivery_at
    assert loads.used(*_window(first)) == loads.used(*_window(second)) == 1


def test_ordinary_traffic_leaves_the_reserve_to_a_priority_device(inv):
    lat, lon = TIBET
    loads = Loads(LoadRules(per_pass=2, reserve=0.5))  # one slot each window is held
    answers = plan_batch(
        inv,
        [Request(lat, lon), Request(lat, lon), Request(lat, lon, priority=1)],
        T0,
        loads=loads,
    )
    (a,), (b,), (urgent,) = answers
    assert isinstance(a, Plan) and isinstance(b, Plan) and isinstance(urgent, Plan)
    assert _window(b) != _window(a)  # the second ordinary one waits for another window
    assert _window(urgent) == _window(a)  # the reserve of the best window is still there
    assert urgent.estimated_delivery_at == a.estimated_delivery_at


def test_a_device_whose_every_window_is_full_is_told_so(inv):
    """Over a short horizon there are few windows: keep asking until none has room."""
    loads = Loads(LoadRules(per_pass=1, reserve=0))
    answers = plan_batch(inv, [Request(*TIBET)] * 300, T0, horizon_h=2.0, loads=loads)
    plans = [a for (a,) in answers if isinstance(a, Plan)]
    assert plans and len(plans) < 300
    assert len({_window(p) for p in plans}) == len(plans)  # one command per window
    (last,) = answers[-1]
    assert isinstance(last, NoPlan)
    assert last.reason == "every load window that could reach the device within 2 h is full"
    [[far]] = plan_batch(inv, [Request(-89.0, 0.0)], T0, horizon_h=0.5, loads=Loads())
    assert "no satellite can be loaded" in far.reason  # not a matter of room
