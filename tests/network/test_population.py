"""The twin's terminals: real ABP sessions, real frames, Poisson traffic."""

from __future__ import annotations

import numpy as np
import pytest

from satiot.network import frames
from satiot.network.population import APP_PORT, DEV_ADDR_BASE, Population
from satiot.network.scenario import FleetSpec


def _spec(name: str, count: int, interval: float, **over: object) -> FleetSpec:
    fields: dict[str, object] = {
        "name": name,
        "class": "fixed",
        "count": count,
        "region": "china",
        "industry": "D",
        "message_interval_s": interval,
        "payload_bytes": 20,
    }
    fields.update(over)
    return FleetSpec.model_validate(fields)


def _population(seed: int = 1) -> Population:
    specs = [
        _spec("a", 30, 600.0),
        _spec("b", 20, 60.0, region="east-china-sea", **{"class": "ship"}),
    ]
    return Population(specs, np.random.default_rng(seed))


def test_frames_parse_verify_and_decrypt_with_the_terminals_session() -> None:
    pop = _population()
    for index in (0, 29, 30, 49):
        session = pop.session(index)
        assert session.dev_addr == DEV_ADDR_BASE + index
        assert session.fleet == ("a" if index < 30 else "b")
        for f_cnt in range(3):
            payload = bytes([index, f_cnt]) * 5
            frame = frames.parse(pop.build_frame(index, payload))
            assert frame.mtype is frames.MType.UNCONFIRMED_UP
            assert frame.dev_addr == session.dev_addr
            assert frame.f_port == APP_PORT
            assert frame.f_cnt16 == f_cnt
            assert frames.verify_mic(frame, session.nwk_s_key, f_cnt)
            assert frames.decrypt(frame, session.nwk_s_key, session.app_s_key, f_cnt) == payload
            # Another terminal's keys do not authenticate it.
            other = pop.session((index + 1) % pop.size)
            assert not frames.verify_mic(frame, other.nwk_s_key, f_cnt)


def test_frame_counters_are_per_terminal() -> None:
    pop = _population()
    for _ in range(4):
        pop.build_frame(3, b"x")
    first_of_other = frames.parse(pop.build_frame(4, b"y"))
    fifth = frames.parse(pop.build_frame(3, b"z"))
    assert first_of_other.f_cnt16 == 0
    assert fifth.f_cnt16 == 4
    assert int(pop.f_cnt[3]) == 5 and int(pop.f_cnt[4]) == 1


def test_sessions_are_deterministic_by_seed_and_distinct() -> None:
    a, b, c = _population(5), _population(5), _population(6)
    assert [a.session(i) for i in range(a.size)] == [b.session(i) for i in range(b.size)]
    assert a.session(0).nwk_s_key != c.session(0).nwk_s_key
    keys = {a.session(i).nwk_s_key for i in range(a.size)}
    assert len(keys) == a.size
    assert all(a.session(i).nwk_s_key != a.session(i).app_s_key for i in range(a.size))
    eui = {a.session(i).dev_eui for i in range(a.size)}
    assert len(eui) == a.size and all(len(e) == 16 for e in eui)


def test_due_is_poisson_with_the_fleets_mean_interval() -> None:
    pop = _population()
    rng = np.random.default_rng(11)
    horizon = 5 * 86_400.0
    terms, times = pop.due(horizon, rng)
    assert np.all(np.diff(times) >= 0) and times[0] >= 0 and times[-1] < horizon
    # Expected count per fleet: count × horizon / interval.
    for fleet, count, interval in (("a", 30, 600.0), ("b", 20, 60.0)):
        members = pop.fleet_of[terms] == ("a", "b").index(fleet)
        expected = count * horizon / interval
        assert members.sum() == pytest.approx(expected, rel=0.03)
    # Exponential gaps: coefficient of variation ~1 (a periodic source would give ~0).
    gaps = np.diff(times[terms == 40])
    assert gaps.mean() == pytest.approx(60.0, rel=0.05)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.08)


def test_due_continues_where_it_stopped() -> None:
    pop = _population()
    rng = np.random.default_rng(3)
    first, t1 = pop.due(3_600.0, rng)
    second, t2 = pop.due(7_200.0, rng)
    assert len(first) and len(second)
    assert t1.max() < 3_600.0 <= t2.min() and t2.max() < 7_200.0
    empty, _ = pop.due(7_200.0, rng)
    assert len(empty) == 0


def test_positions_are_inside_each_fleets_region() -> None:
    pop = _population()
    which = np.arange(pop.size, dtype=np.int64)
    r = pop.positions_ecef(0.0, which)
    radius = np.linalg.norm(r, axis=1)
    assert np.all((radius > 6_350) & (radius < 6_400))
    lat = np.degrees(np.arcsin(r[:, 2] / radius))
    lon = np.degrees(np.arctan2(r[:, 1], r[:, 0]))
    assert np.all((lat > 17) & (lat < 55) & (lon > 72) & (lon < 136))
    assert pop.positions_ecef(0.0, which[:0]).shape == (0, 3)
