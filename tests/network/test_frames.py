"""LoRaWAN 1.0.x data frames: published vectors, round-trip properties, tamper and fuzz tests."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from satiot.network import frames
from satiot.network.frames import DataFrame, FrameError, MType

NWK = bytes.fromhex("44024241ED4CE9A68C6A8BC055233FD3")
APP = bytes.fromhex("EC925802AE430CA77FD3DD73CB2CC588")
ADDR = 0x49BE7DF1
VECTOR = bytes.fromhex("40F17DBE4900020001954378762B11FF0D")


# --- published vectors --------------------------------------------------------------------
# The first is REFERENCE §9 (lora-packet's README). The others come from the public test suite
# of the `lora-packet` project (github.com/anthonykirby/lora-packet, __tests__/mic_test.ts,
# decrypt_test.ts and fopts_test.ts); the FOpts downlink there was itself taken from the
# documentation of the Go `brocaar/lorawan` package.


def test_published_vector_decodes():
    frame = frames.parse(VECTOR)
    assert frame.mtype is MType.UNCONFIRMED_UP
    assert frame.major == 0
    assert frame.dev_addr == ADDR
    assert frame.f_cnt16 == 2
    assert frame.f_port == 1
    assert frame.f_opts == b""
    assert not (frame.adr or frame.adr_ack_req or frame.ack or frame.f_pending)
    assert frame.frm_payload == bytes.fromhex("95437876")
    assert frame.mic == bytes.fromhex("2B11FF0D")
    assert frame.raw == VECTOR[:-4]
    assert frame.uplink
    assert frames.compute_mic(frame, NWK, 2) == bytes.fromhex("2B11FF0D")
    assert frames.verify_mic(frame, NWK, 2)
    assert frames.decrypt(frame, NWK, APP, 2) == b"test"


def test_published_vector_encodes():
    phy = frames.encode(
        mtype=MType.UNCONFIRMED_UP,
        dev_addr=ADDR,
        f_cnt32=2,
        f_port=1,
        payload=b"test",
        nwk_s_key=NWK,
        app_s_key=APP,
    )
    assert phy == VECTOR


LORA_PACKET_VECTORS = [
    # (PHYPayload hex, FCnt, plaintext)
    (
        "40f17dbe490004000155332de41a11adc072553544429ce7787707d1c316e027e7e5e334"
        "263376affb8aa17ad30075293f28dea8a20af3c5e7",
        4,
        b"The quick brown fox jumps over the lazy dog.",
    ),
    ("40F17DBE49000300012A3518AF", 3, b""),  # FPort 1, empty payload
    ("60f17dbe4920020001f9d65d27", 2, b""),  # unconfirmed downlink carrying ACK
]


@pytest.mark.parametrize(("phy_hex", "f_cnt", "plain"), LORA_PACKET_VECTORS)
def test_lora_packet_vectors(phy_hex: str, f_cnt: int, plain: bytes):
    phy = bytes.fromhex(phy_hex)
    frame = frames.parse(phy)
    assert frame.dev_addr == ADDR and frame.f_cnt16 == f_cnt and frame.f_port == 1
    assert frames.verify_mic(frame, NWK, f_cnt)
    assert frames.decrypt(frame, NWK, APP, f_cnt) == plain
    rebuilt = frames.encode(
        mtype=frame.mtype,
        dev_addr=ADDR,
        f_cnt32=f_cnt,
        f_port=1,
        payload=plain,
        nwk_s_key=NWK,
        app_s_key=APP,
        ack=frame.ack,
    )
    assert rebuilt == phy


def test_lora_packet_bad_mic_vector():
    frame = frames.parse(bytes.fromhex("40F17DBE49000300012A3518AA"))
    assert frames.compute_mic(frame, NWK, 3) == bytes.fromhex("2a3518af")
    assert not frames.verify_mic(frame, NWK, 3)


def test_lora_packet_wrong_key_and_bit_flip_vectors():
    frame = frames.parse(VECTOR)
    wrong = bytes.fromhex("ec925802ae430ca77fd3dd73cb2cc580")
    assert frames.decrypt(frame, NWK, wrong, 2) == bytes.fromhex("5999fc3f")
    flipped = frames.parse(bytes.fromhex("40F17DBE4900020001954478762B11FF0D"))
    assert frames.decrypt(flipped, NWK, APP, 2) == b"tbst"
    assert not frames.verify_mic(flipped, NWK, 2)


def test_downlink_with_fopts_vector():
    s_nwk = bytes([1] * 15 + [0])
    app = bytes(range(16, 0, -1))
    phy = bytes.fromhex("600403020103000022ac0a01f0b468ddaa5ed13a")
    frame = frames.parse(phy)
    assert frame.mtype is MType.UNCONFIRMED_DOWN and not frame.uplink
    assert frame.dev_addr == 0x01020304
    assert frame.f_opts == bytes.fromhex("22ac0a")
    assert frames.verify_mic(frame, s_nwk, 0)
    assert frames.decrypt(frame, s_nwk, app, 0) == bytes.fromhex("01020304")
    rebuilt = frames.encode(
        mtype=MType.UNCONFIRMED_DOWN,
        dev_addr=0x01020304,
        f_cnt32=0,
        f_port=1,
        payload=bytes.fromhex("01020304"),
        nwk_s_key=s_nwk,
        app_s_key=app,
        f_opts=bytes.fromhex("22ac0a"),
    )
    assert rebuilt == phy


def test_fctrl_bits_and_fopts_vector():
    frame = frames.parse(bytes.fromhex("4084412505A3010009110308B33750F504D4B86A"))
    assert frame.dev_addr == 0x05254184
    assert frame.adr and frame.ack and not frame.adr_ack_req and not frame.f_pending
    assert frame.f_cnt16 == 1
    assert frame.f_opts == bytes.fromhex("091103")
    assert frame.f_port == 8
    assert frame.frm_payload == bytes.fromhex("B33750F5")


# --- rejections ---------------------------------------------------------------------------


def _frame(**overrides: object) -> bytes:
    fields: dict[str, object] = {
        "mtype": MType.CONFIRMED_UP,
        "dev_addr": 0x26011234,
        "f_cnt32": 70000,
        "f_port": 10,
        "payload": b"hello",
        "nwk_s_key": NWK,
        "app_s_key": APP,
    }
    fields.update(overrides)
    return frames.encode(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("phy", "message"),
    [
        (b"", "shorter"),
        (VECTOR[:11], "shorter"),
        (bytes([0x00]) + bytes(22), "join_request"),
        (bytes([0x20]) + bytes(16), "join_accept"),
        (bytes([0xC0]) + bytes(16), "RFU"),
        (bytes([0xE0]) + bytes(16), "proprietary"),
        (bytes([0x41]) + VECTOR[1:], "major"),
        (bytes([0x40, 1, 2, 3, 4, 0x05, 0, 0]) + bytes(8), "FOpts length"),
        (bytes([0x40, 1, 2, 3, 4, 0x01, 0, 0, 0xAA, 0x00, 1, 2, 3, 4]), "FPort 0"),
        (bytes(300), "exceeds"),
    ],
)
def test_parse_rejects_with_a_clear_message(phy: bytes, message: str):
    with pytest.raises(FrameError, match=message):
        frames.parse(phy)


def test_parse_rejects_non_bytes_with_frame_error():
    with pytest.raises(FrameError):
        frames.parse(12)  # type: ignore[arg-type]
    with pytest.raises(FrameError):
        frames.parse("40F17DBE")  # type: ignore[arg-type]


def test_parse_accepts_bytearray_and_memoryview():
    assert frames.parse(bytearray(VECTOR)) == frames.parse(memoryview(VECTOR))


@pytest.mark.parametrize(
    "overrides",
    [
        {"mtype": MType.JOIN_REQUEST},
        {"nwk_s_key": b"short"},
        {"app_s_key": bytes(17)},
        {"dev_addr": 1 << 32},
        {"f_cnt32": -1},
        {"f_port": 256},
        {"f_port": None},
        {"f_port": 0, "f_opts": b"\x02"},
        {"f_opts": bytes(16)},
        {"payload": bytes(250)},
    ],
)
def test_encode_validates(overrides: dict[str, object]):
    with pytest.raises(ValueError):
        _frame(**overrides)


def test_counter_must_match_the_frame():
    frame = frames.parse(_frame())
    assert frames.verify_mic(frame, NWK, 70000)
    assert not frames.verify_mic(frame, NWK, 70001)
    assert not frames.verify_mic(frame, NWK, 70000 + 65536)  # right low half, wrong cycle
    with pytest.raises(ValueError, match="does not end"):
        frames.compute_mic(frame, NWK, 70001)
    with pytest.raises(ValueError, match="does not end"):
        frames.decrypt(frame, NWK, APP, 4465)


def test_frame_without_port_has_no_payload():
    phy = _frame(f_port=None, payload=b"", f_opts=b"\x02")
    frame = frames.parse(phy)
    assert frame.f_port is None and frame.frm_payload == b"" and frame.f_opts == b"\x02"
    assert frames.decrypt(frame, NWK, APP, 70000) == b""
    assert frames.verify_mic(frame, NWK, 70000)


def test_port_zero_uses_the_network_key():
    phy = _frame(f_port=0, payload=b"\x02\x03")
    frame = frames.parse(phy)
    assert frames.decrypt(frame, NWK, APP, 70000) == b"\x02\x03"
    assert frames.decrypt(frame, APP, APP, 70000) != b"\x02\x03"


def test_crypt_payload_is_its_own_inverse_and_direction_matters():
    data = bytes(range(50))
    up = frames.crypt_payload(APP, 7, 9, True, data)
    assert frames.crypt_payload(APP, 7, 9, True, up) == data
    assert frames.crypt_payload(APP, 7, 9, False, data) != up
    with pytest.raises(ValueError):
        frames.crypt_payload(b"k", 7, 9, True, data)


def test_is_uplink():
    assert [frames.is_uplink(m) for m in MType] == [True, False, True, False, True, False]


# --- properties ---------------------------------------------------------------------------

keys = st.binary(min_size=16, max_size=16)
data_types = st.sampled_from(
    [MType.UNCONFIRMED_UP, MType.UNCONFIRMED_DOWN, MType.CONFIRMED_UP, MType.CONFIRMED_DOWN]
)


@st.composite
def frame_fields(draw: st.DrawFn) -> dict[str, object]:
    f_port = draw(st.one_of(st.none(), st.integers(0, 255)))
    f_opts = b"" if f_port == 0 else draw(st.binary(max_size=15))
    payload = b"" if f_port is None else draw(st.binary(max_size=222))
    return {
        "mtype": draw(data_types),
        "dev_addr": draw(st.integers(0, 2**32 - 1)),
        "f_cnt32": draw(st.one_of(st.integers(0, 70_000), st.integers(0, 2**32 - 1))),
        "f_port": f_port,
        "payload": payload,
        "nwk_s_key": draw(keys),
        "app_s_key": draw(keys),
        "f_opts": f_opts,
        "adr": draw(st.booleans()),
        "adr_ack_req": draw(st.booleans()),
        "ack": draw(st.booleans()),
        "f_pending": draw(st.booleans()),
    }


@given(frame_fields())
def test_round_trip(fields: dict[str, object]):
    phy = frames.encode(**fields)  # type: ignore[arg-type]
    frame = frames.parse(phy)
    f_cnt32 = fields["f_cnt32"]
    assert isinstance(f_cnt32, int)
    nwk, app = fields["nwk_s_key"], fields["app_s_key"]
    assert isinstance(nwk, bytes) and isinstance(app, bytes)
    assert frame.mtype == fields["mtype"]
    assert frame.dev_addr == fields["dev_addr"]
    assert frame.f_cnt16 == f_cnt32 & 0xFFFF
    assert frame.f_port == fields["f_port"]
    assert frame.f_opts == fields["f_opts"]
    assert (frame.adr, frame.adr_ack_req, frame.ack, frame.f_pending) == tuple(
        fields[k] for k in ("adr", "adr_ack_req", "ack", "f_pending")
    )
    assert frame.raw + frame.mic == phy
    assert frames.verify_mic(frame, nwk, f_cnt32)
    assert frames.decrypt(frame, nwk, app, f_cnt32) == fields["payload"]
    recovered = frames.recover_fcnt32(max(f_cnt32 - 5, 0), frame.f_cnt16)
    assert recovered == f_cnt32


@given(frame_fields(), st.data())
def test_any_single_bit_flip_is_caught(fields: dict[str, object], data: st.DataObject):
    phy = frames.encode(**fields)  # type: ignore[arg-type]
    bit = data.draw(st.integers(0, len(phy) * 8 - 1))
    tampered = bytearray(phy)
    tampered[bit // 8] ^= 1 << (bit % 8)
    f_cnt32 = fields["f_cnt32"]
    nwk = fields["nwk_s_key"]
    assert isinstance(f_cnt32, int) and isinstance(nwk, bytes)
    try:
        frame = frames.parse(bytes(tampered))
    except FrameError:
        return
    assert not frames.verify_mic(frame, nwk, f_cnt32)


def test_every_bit_flip_of_the_published_vector_is_caught():
    for bit in range(len(VECTOR) * 8):
        tampered = bytearray(VECTOR)
        tampered[bit // 8] ^= 1 << (bit % 8)
        try:
            frame = frames.parse(bytes(tampered))
        except FrameError:
            continue
        assert not frames.verify_mic(frame, NWK, 2), bit


@given(st.integers(0, 2**32 - 1 - 16384), st.integers(0, 16384))
def test_recover_counter_ahead_within_the_gap(last: int, gap: int):
    true = last + gap
    assert frames.recover_fcnt32(last, true & 0xFFFF) == true


@given(st.integers(0, 2**32 - 1), st.integers(1, 65535 - 16384))
def test_recover_counter_behind_for_late_copies(true: int, behind: int):
    last = true + behind
    if last >= 2**32:
        return
    assert frames.recover_fcnt32(last, true & 0xFFFF) == true


@given(st.one_of(st.none(), st.integers(0, 2**32 - 2**16)), st.integers(0, 65535))
def test_recovered_counter_has_the_low_half_on_air(last: int | None, f_cnt16: int):
    full = frames.recover_fcnt32(last, f_cnt16)
    assert full & 0xFFFF == f_cnt16
    if last is not None:
        assert last - (65536 - 16384) < full <= last + 16384 or full == f_cnt16


@given(st.integers(0, 0xFFFF_0000 // 65536 - 1), st.integers(1, 16384))
def test_recover_counter_across_rollover(cycle: int, step: int):
    last = cycle * 65536 + 65535
    assert frames.recover_fcnt32(last, (step - 1) & 0xFFFF) == last + step


def test_recover_counter_edges():
    assert frames.recover_fcnt32(None, 7) == 7
    assert frames.recover_fcnt32(65535, 0) == 65536
    assert frames.recover_fcnt32(70000, 70000 & 0xFFFF) == 70000  # a repeated copy
    assert frames.recover_fcnt32(10, 60000) == 60000  # nothing older than 0 exists
    assert frames.recover_fcnt32(100, 100 + 20000, max_gap=32768) == 20100
    with pytest.raises(FrameError, match="exhausted"):
        frames.recover_fcnt32(2**32 - 1, 0)
    with pytest.raises(ValueError):
        frames.recover_fcnt32(5, 70000)
    with pytest.raises(ValueError):
        frames.recover_fcnt32(5, 1, max_gap=65536)


# --- fuzz ---------------------------------------------------------------------------------

FUZZ_CASES = 120_000


@pytest.mark.slow
def test_fuzz_parse_only_raises_frame_error():
    """Random and mutated frames (seeded): parse returns a DataFrame or raises FrameError."""
    rng = np.random.default_rng(20250307)
    seeds = [VECTOR, *(bytes.fromhex(v[0]) for v in LORA_PACKET_VECTORS)]
    seeds += [_frame(f_opts=bytes(n), f_port=None, payload=b"") for n in range(16)]
    seeds += [_frame(payload=bytes(n)) for n in (0, 1, 16, 100, 222)]
    started = time.perf_counter()
    parsed = 0
    for i in range(FUZZ_CASES):
        kind = i % 4
        if kind == 0:
            raw = rng.bytes(int(rng.integers(0, 300)))
        else:
            base = bytearray(seeds[int(rng.integers(len(seeds)))])
            for _ in range(int(rng.integers(1, 6))):
                op = int(rng.integers(4))
                pos = int(rng.integers(len(base) + 1))
                if op == 0 and base:
                    base[min(pos, len(base) - 1)] ^= 1 << int(rng.integers(8))
                elif op == 1 and base:
                    del base[min(pos, len(base) - 1) :][: int(rng.integers(1, 8))]
                elif op == 2:
                    base[pos:pos] = rng.bytes(int(rng.integers(1, 8)))
                elif base:  # a random MHDR: every message type and major version
                    base[0] = int(rng.integers(256))
            raw = bytes(base)
        try:
            result = frames.parse(raw)
        except FrameError:
            continue
        assert isinstance(result, DataFrame)
        assert result.raw + result.mic == raw
        parsed += 1
    elapsed = time.perf_counter() - started
    print(f"fuzz: {FUZZ_CASES} cases, {parsed} parsed, {elapsed:.1f} s")
    assert parsed > 0
