"""ALOHA resolution: textbook throughput curves, capture, and order-independence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from satiot.network.access import AccessMode, resolve, resolve_many

FRAME_S = 0.272  # a 272-bit frame at 1 kbps (REFERENCE §8)
LOADS = [0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]


def _measured_throughput(
    load: float, mode: AccessMode, rng: np.random.Generator, *, capture_db: float | None = None
) -> float:
    """Delivered frames per frame time with Poisson arrivals of ``load`` frames per frame time."""
    frames = 200_000  # frame times simulated
    horizon = frames * FRAME_S
    n = rng.poisson(load * frames)
    starts = np.sort(rng.uniform(0.0, horizon, n))
    # Terminals scattered in the footprint: received powers spread over ~10 dB.
    power = rng.uniform(-140.0, -130.0, n)
    ok = resolve(starts, FRAME_S, power, mode=mode, slot_s=FRAME_S, capture_db=capture_db)
    return float(ok.sum()) / frames


@pytest.mark.parametrize("load", LOADS)
def test_pure_aloha_matches_g_exp_minus_2g(load: float) -> None:
    s = _measured_throughput(load, AccessMode.PURE, np.random.default_rng(7))
    assert s == pytest.approx(load * np.exp(-2 * load), rel=0.04)


@pytest.mark.parametrize("load", LOADS)
def test_slotted_aloha_matches_g_exp_minus_g(load: float) -> None:
    s = _measured_throughput(load, AccessMode.SLOTTED, np.random.default_rng(11))
    assert s == pytest.approx(load * np.exp(-load), rel=0.04)


def test_peaks_are_18_and_37_percent() -> None:
    rng = np.random.default_rng(3)
    assert _measured_throughput(0.5, AccessMode.PURE, rng) == pytest.approx(0.184, abs=0.005)
    assert _measured_throughput(1.0, AccessMode.SLOTTED, rng) == pytest.approx(0.368, abs=0.005)


@pytest.mark.parametrize("mode", list(AccessMode))
def test_capture_raises_throughput_at_high_load(mode: AccessMode) -> None:
    without = _measured_throughput(1.5, mode, np.random.default_rng(5))
    with_capture = _measured_throughput(1.5, mode, np.random.default_rng(5), capture_db=3.0)
    assert with_capture > 1.2 * without


def test_slotted_waits_for_the_next_boundary() -> None:
    # 0.9 goes to slot 1 (t=1.0) and collides with 1.0; 1.05 goes to slot 2 and is alone.
    ok = resolve([0.9, 1.0, 1.05], 0.5, mode="slotted", slot_s=1.0)
    assert ok.tolist() == [False, False, True]
    # In pure ALOHA the same three overlap each other.
    assert resolve([0.9, 1.0, 1.05], 0.5, mode="pure").tolist() == [False, False, False]


def test_touching_frames_do_not_collide() -> None:
    assert resolve([0.0, 1.0, 2.0], 1.0).all()


def test_capture_needs_margin_over_the_sum_of_interferers() -> None:
    starts, dur = [0.0, 0.1, 0.2], 1.0
    # -100 dBm vs two -106 dBm interferers: sum is -103 dBm, 3 dB below
    ok = resolve(starts, dur, [-100.0, -106.0, -106.0], capture_db=2.9)
    assert ok.tolist() == [True, False, False]
    ok = resolve(starts, dur, [-100.0, -106.0, -106.0], capture_db=3.1)
    assert ok.tolist() == [False, False, False]


def test_chain_overlap_counts_only_frames_that_touch_me() -> None:
    # A overlaps B, B overlaps C, A and C are apart; A and C are each 4 dB above B.
    ok = resolve([0.0, 0.8, 1.6], 1.0, [-100.0, -104.0, -100.0], capture_db=3.0)
    assert ok.tolist() == [True, False, True]


def test_resolve_many_keeps_channels_apart() -> None:
    keys = np.array([[1, 0], [1, 1], [2, 0], [1, 0]])  # (satellite, channel)
    ok = resolve_many(keys, [0.0, 0.0, 0.0, 0.5], 1.0)
    assert ok.tolist() == [False, True, True, False]


def test_resolve_many_equals_resolving_each_channel() -> None:
    rng = np.random.default_rng(1)
    n = 5_000
    keys = rng.integers(0, 40, n)
    starts = rng.uniform(0, 400, n)
    dur = rng.uniform(0.1, 0.5, n)
    power = rng.uniform(-140, -120, n)
    together = resolve_many(keys, starts, dur, power, capture_db=3.0)
    for k in range(40):
        sel = keys == k
        np.testing.assert_array_equal(
            together[sel], resolve(starts[sel], dur[sel], power[sel], capture_db=3.0)
        )


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="slot"):
        resolve([0.0], 1.0, mode="slotted")
    with pytest.raises(ValueError, match="fit in one slot"):
        resolve([0.0], 2.0, mode="slotted", slot_s=1.0)
    with pytest.raises(ValueError, match="rx_power"):
        resolve([0.0], 1.0, capture_db=3.0)
    with pytest.raises(ValueError, match="positive"):
        resolve([0.0], 0.0)
    assert resolve([], 1.0).shape == (0,)


frames = st.lists(
    st.tuples(
        st.floats(0, 100, allow_nan=False),
        st.floats(0.01, 5),
        st.floats(-140, -100),
    ),
    min_size=1,
    max_size=40,
)


def _overlap_matrix(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    m = (starts[:, None] < ends[None, :]) & (starts[None, :] < ends[:, None])
    np.fill_diagonal(m, False)
    return m


@given(frames)
def test_pure_success_is_exactly_no_overlap(data: list[tuple[float, float, float]]) -> None:
    starts, dur, _ = (np.array(c) for c in zip(*data, strict=True))
    ok = resolve(starts, dur)
    expected = ~_overlap_matrix(starts, starts + dur).any(axis=1)
    np.testing.assert_array_equal(ok, expected)


@given(frames, st.floats(0, 10))
def test_capture_matches_brute_force(data: list[tuple[float, float, float]], cap: float) -> None:
    starts, dur, dbm = (np.array(c) for c in zip(*data, strict=True))
    ok = resolve(starts, dur, dbm, capture_db=cap)
    m = _overlap_matrix(starts, starts + dur)
    lin = 10 ** ((dbm - dbm.max()) / 10)
    interference = (m * lin[None, :]).sum(axis=1)
    expected = ~m.any(axis=1) | (lin > 10 ** (cap / 10) * interference)
    # Away from the exact threshold the sweep and the brute force must agree.
    near = np.abs(10 * np.log10(lin / np.maximum(interference, 1e-300)) - cap) < 1e-6
    np.testing.assert_array_equal(ok[~near], expected[~near])
    # Two overlapping frames never both survive.
    assert not (m & ok[:, None] & ok[None, :]).any()


@given(frames, st.sampled_from(list(AccessMode)))
def test_result_does_not_depend_on_input_order(
    data: list[tuple[float, float, float]], mode: AccessMode
) -> None:
    starts, dur, dbm = (np.array(c) for c in zip(*data, strict=True))
    dur = np.minimum(dur, 1.0)
    perm = np.random.default_rng(len(data)).permutation(len(data))
    kw = {"mode": mode, "slot_s": 1.0, "capture_db": 3.0}
    ok = resolve(starts, dur, dbm, **kw)
    ok_perm = resolve(starts[perm], dur[perm], dbm[perm], **kw)
    np.testing.assert_array_equal(ok[perm], ok_perm)
