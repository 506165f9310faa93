"""Property: however copies of frames are interleaved, repeated and split into batches by
whichever stations, ingest stores exactly one uplink per distinct frame, one reception per
distinct copy, and one ``uplink.accepted`` event per uplink."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from satiot.core.models import Event
from satiot.network.models import Uplink, UplinkReception
from tests.network.ingest_helpers import T0, add_device, add_station, post, rec

# A copy: (frame index, station index, satellite, minutes after T0 the station received it).
copies = st.tuples(
    st.integers(0, 5), st.integers(0, 1), st.sampled_from(["S1", "S2", "S3"]), st.integers(0, 3000)
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    counters=st.lists(st.integers(0, 300), min_size=1, max_size=6, unique=True),
    posted=st.lists(copies, min_size=1, max_size=40),
    data=st.data(),
)
def test_uplinks_are_the_distinct_frames_whatever_the_interleaving(
    ctx, world, counters, posted, data
):
    tenant = world.tenant()
    devs = [add_device(ctx, world, tenant.id) for _ in range(2)]
    stations = [add_station(ctx, world)[0] for _ in range(2)]
    frames = [devs[i % 2].frame(f_cnt, bytes([i])) for i, f_cnt in enumerate(counters)]
    posted = [c for c in posted if c[0] < len(frames)] or [(0, 0, "S1", 0)]
    # Split the sequence into posts: a run of one station's copies, cut at random sizes.
    order = data.draw(st.permutations(posted))
    answers = []
    i = 0
    while i < len(order):
        station = order[i][1]
        size = data.draw(st.integers(1, 8))
        batch = []
        while i < len(order) and order[i][1] == station and len(batch) < size:
            f, _, sat, minutes = order[i]
            batch.append(rec(frames[f], satellite=sat, at=T0 + timedelta(minutes=minutes)))
            i += 1
        answers.append((post(ctx, stations[station], batch), len(batch)))

    distinct_frames = {c[0] for c in posted}
    distinct_copies = Counter({(c[0], c[1], c[2], c[3]) for c in posted})
    for result, size in answers:
        assert result.rejected == []
        assert result.accepted + result.duplicates == size
    assert sum(r.accepted for r, _ in answers) == len(distinct_frames)
    dev_ids = [d.id for d in devs]
    with ctx.db.read() as s:
        stored = s.execute(
            select(Uplink.dev_eui, Uplink.f_cnt, Uplink.reception_count, Uplink.id).where(
                Uplink.device_id.in_(dev_ids)
            )
        ).all()
        receptions = s.scalar(
            select(func.count())
            .select_from(UplinkReception)
            .join(Uplink, Uplink.id == UplinkReception.uplink_id)
            .where(Uplink.device_id.in_(dev_ids))
        )
        events = s.scalars(
            select(Event.payload["id"].as_string()).where(
                Event.type == "uplink.accepted", Event.tenant_id == tenant.id
            )
        ).all()
    expected = {(devs[f % 2].dev_eui, counters[f]) for f in distinct_frames}
    assert {(eui, f_cnt) for eui, f_cnt, _, _ in stored} == expected
    assert len(stored) == len(expected)
    per_frame = Counter(c[0] for c in distinct_copies)
    by_key = {(eui, f_cnt): n for eui, f_cnt, n, _ in stored}
    for f, n in per_frame.items():
        assert by_key[(devs[f % 2].dev_eui, counters[f])] == n
    assert receptions == len(distinct_copies)
    assert sorted(events) == sorted(str(row.id) for row in stored)
