"""The ingest cipher computes exactly what the frame codec computes, and is cached by session."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from satiot.network import frames
from satiot.network.frames import MType
from satiot.network.ingest_keys import SessionCipher, clear_cache, session_cipher

keys = st.binary(min_size=16, max_size=16)


@given(
    nwk=keys,
    app=keys,
    dev_addr=st.integers(0, 2**32 - 1),
    f_cnt=st.integers(0, 2**32 - 1),
    f_port=st.one_of(st.none(), st.integers(0, 255)),
    payload=st.binary(max_size=200),
    confirmed=st.booleans(),
)
def test_mic_and_decryption_match_the_codec(nwk, app, dev_addr, f_cnt, f_port, payload, confirmed):
    if f_port is None:
        payload = b""
    phy = frames.encode(
        mtype=MType.CONFIRMED_UP if confirmed else MType.UNCONFIRMED_UP,
        dev_addr=dev_addr,
        f_cnt32=f_cnt,
        f_port=f_port,
        payload=payload,
        nwk_s_key=nwk,
        app_s_key=app,
    )
    frame = frames.parse(phy)
    cipher = SessionCipher(nwk, app)
    assert cipher.mic(frame, f_cnt) == frames.compute_mic(frame, nwk, f_cnt)
    assert cipher.verify(frame, f_cnt) is True
    assert cipher.verify(frame, f_cnt ^ 0x10000) is (frames.verify_mic(frame, nwk, f_cnt ^ 0x10000))
    assert cipher.verify(frame, (f_cnt + 1) % 2**32) is False
    assert cipher.decrypt(frame, f_cnt) == frames.decrypt(frame, nwk, app, f_cnt) == payload
    # the cached AES objects give the same answer on reuse
    assert cipher.decrypt(frame, f_cnt) == payload


def test_ciphers_are_cached_by_the_sealed_values():
    clear_cache()
    calls = []

    def opener(nwk: bytes, app: bytes):
        def open_keys() -> tuple[bytes, bytes]:
            calls.append(1)
            return nwk, app

        return open_keys

    dev = uuid.uuid4()
    one = session_cipher(("k", dev, b"n1", b"a1"), opener(bytes(16), bytes(16)))
    assert session_cipher(("k", dev, b"n1", b"a1"), opener(bytes(16), bytes(16))) is one
    rekeyed = session_cipher(("k", dev, b"n2", b"a1"), opener(b"\x01" * 16, bytes(16)))
    assert rekeyed is not one
    assert len(calls) == 2
    clear_cache()
    session_cipher(("k", dev, b"n1", b"a1"), opener(bytes(16), bytes(16)))
    assert len(calls) == 3
