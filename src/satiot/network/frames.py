"""LoRaWAN 1.0.x data frames with ABP session keys: parse, build, MIC and payload encryption.

Terminals on the LR-FHSS satellite link use LoRaWAN MAC framing (REFERENCE §9). A join cannot
complete over a store-and-forward link, so sessions are provisioned (ABP) and this module only
handles data frames; join and proprietary frames are refused as "not a data frame".

The parser is the network's first contact with bytes from the sky, so it never raises anything
but ``FrameError`` however malformed its input, and it checks structure only: whether a frame is
authentic is a separate step (``verify_mic``) because it needs the session's keys and the full
32-bit frame counter, which only the network server knows (``recover_fcnt32``).

AES runs through the ``cryptography`` package: one ECB call produces all keystream blocks of a
payload, and ``CMAC`` computes the integrity code.
"""

from __future__ import annotations

import hmac
import struct
from enum import IntEnum
from typing import NamedTuple

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

KEY_BYTES = 16
MIC_BYTES = 4
MAX_PHY_PAYLOAD = 255  # the LoRa PHY length field is one byte
MAX_FOPTS = 15  # FOptsLen is the low nibble of FCtrl
_FHDR_MIN = 7  # DevAddr(4) FCtrl(1) FCnt(2)
_MIN_FRAME = 1 + _FHDR_MIN + MIC_BYTES
_U32 = 1 << 32
_U16 = 1 << 16
MAX_FCNT_GAP = 16384  # LoRaWAN 1.0.x MAX_FCNT_GAP


class MType(IntEnum):
    """The MHDR message types LoRaWAN 1.0.x defines (values 6 and 7 are RFU / proprietary)."""

    JOIN_REQUEST = 0
    JOIN_ACCEPT = 1
    UNCONFIRMED_UP = 2
    UNCONFIRMED_DOWN = 3
    CONFIRMED_UP = 4
    CONFIRMED_DOWN = 5


_DATA_TYPES = frozenset(
    {MType.UNCONFIRMED_UP, MType.UNCONFIRMED_DOWN, MType.CONFIRMED_UP, MType.CONFIRMED_DOWN}
)
_UPLINK_TYPES = frozenset({MType.JOIN_REQUEST, MType.UNCONFIRMED_UP, MType.CONFIRMED_UP})


#: MType by its 3-bit code, for the data types (a list lookup: calling the enum costs more
#: than the rest of a parse's field extraction).
_MTYPE_BY_CODE = [MType(code) if code < 6 else None for code in range(8)]
_HEADER = struct.Struct("<IBH")  # DevAddr, FCtrl, FCnt


class FrameError(ValueError):
    """Bytes that are not a well-formed LoRaWAN 1.0.x data frame; the message says why."""


class DataFrame(NamedTuple):
    """A parsed data frame, exactly as on air: ``frm_payload`` is still encrypted.

    FCtrl bits are named by their uplink meaning; in a downlink the ``adr_ack_req`` position
    is RFU and ``f_pending`` means "more downlink data pending" (in an uplink it is the class B
    bit). ``raw`` is MHDR…FRMPayload, the bytes the MIC covers. Immutable, and a named tuple
    rather than a frozen dataclass: ingest parses hundreds per batch, and a frozen dataclass
    costs three times as much to make.
    """

    mtype: MType
    major: int
    dev_addr: int
    adr: bool
    adr_ack_req: bool
    ack: bool
    f_pending: bool
    f_cnt16: int
    f_opts: bytes
    f_port: int | None
    frm_payload: bytes
    mic: bytes
    raw: bytes

    @property
    def uplink(self) -> bool:
        """True for frames a terminal sends."""
        return is_uplink(self.mtype)


def is_uplink(mtype: MType | int) -> bool:
    """Whether frames of this type travel from terminal to network (Dir = 0)."""
    return mtype in _UPLINK_TYPES


def _check_key(key: bytes, name: str) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
        raise ValueError(f"{name} must be {KEY_BYTES} bytes")


def _check_u32(value: int, name: str) -> None:
    if not 0 <= value < _U32:
        raise ValueError(f"{name} must be in 0..2**32-1, got {value}")


def parse(phy: bytes) -> DataFrame:
    """Split a PHYPayload into its fields, refusing anything that is not a data frame."""
    if type(phy) is bytes:
        data = phy
    elif isinstance(phy, bytes | bytearray | memoryview):
        data = bytes(phy)
    else:
        raise FrameError(f"a frame is bytes, not {type(phy).__name__}")
    if len(data) < _MIN_FRAME:
        raise FrameError(
            f"frame of {len(data)} bytes is shorter than the {_MIN_FRAME}-byte minimum"
        )
    if len(data) > MAX_PHY_PAYLOAD:
        raise FrameError(f"frame of {len(data)} bytes exceeds the {MAX_PHY_PAYLOAD}-byte maximum")
    mhdr = data[0]
    mtype_code = mhdr >> 5
    major = mhdr & 0x03
    if mtype_code == 7:
        raise FrameError("proprietary frame, not a data frame")
    if mtype_code == 6:
        raise FrameError("RFU message type 6, not a data frame")
    if mtype_code in (MType.JOIN_REQUEST, MType.JOIN_ACCEPT):
        raise FrameError(
            f"{MType(mtype_code).name.lower()} (sessions here are ABP), not a data frame"
        )
    if major != 0:
        raise FrameError(f"LoRaWAN major version {major} is not supported (only R1 = 0)")
    dev_addr, f_ctrl, f_cnt16 = _HEADER.unpack_from(data, 1)
    f_opts_len = f_ctrl & 0x0F
    body_end = len(data) - MIC_BYTES
    opts_end = 1 + _FHDR_MIN + f_opts_len
    if opts_end > body_end:
        raise FrameError(f"FOpts length {f_opts_len} runs past the end of the frame")
    f_port: int | None = None
    payload = b""
    if opts_end < body_end:
        f_port = data[opts_end]
        payload = data[opts_end + 1 : body_end]
        if f_port == 0 and f_opts_len:
            raise FrameError("FPort 0 (MAC commands in the payload) with FOpts present")
    mtype = _MTYPE_BY_CODE[mtype_code]
    assert mtype is not None  # codes 6 and 7 were refused above
    return DataFrame(  # positional, in field order: keywords cost a named tuple more
        mtype,
        major,
        dev_addr,
        bool(f_ctrl & 0x80),  # adr
        bool(f_ctrl & 0x40),  # adr_ack_req
        bool(f_ctrl & 0x20),  # ack
        bool(f_ctrl & 0x10),  # f_pending
        f_cnt16,
        data[1 + _FHDR_MIN : opts_end],  # f_opts
        f_port,
        payload,  # frm_payload
        data[body_end:],  # mic
        data[:body_end],  # raw
    )


def _block(prefix: int, dev_addr: int, f_cnt32: int, uplink: bool, last: int) -> bytes:
    """The A_i / B0 block layout shared by encryption and MIC (REFERENCE §9)."""
    return struct.pack("<B4xBIIxB", prefix, 0 if uplink else 1, dev_addr, f_cnt32, last)


def crypt_payload(key: bytes, dev_addr: int, f_cnt32: int, uplink: bool, data: bytes) -> bytes:
    """Encrypt or decrypt FRMPayload (AES-CTR-like keystream, so both are the same XOR)."""
    _check_key(key, "key")
    _check_u32(dev_addr, "dev_addr")
    _check_u32(f_cnt32, "f_cnt32")
    if not data:
        return b""
    n_blocks = -(-len(data) // 16)
    if n_blocks > 255:
        raise ValueError("payload too long for a one-byte block counter")
    counter_blocks = b"".join(
        _block(0x01, dev_addr, f_cnt32, uplink, i) for i in range(1, n_blocks + 1)
    )
    encryptor = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()  # noqa: S305
    stream = encryptor.update(counter_blocks)[: len(data)]
    # One big-integer XOR instead of a Python loop over bytes: this runs once per frame.
    mixed = int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")
    return mixed.to_bytes(len(data), "big")


def compute_mic(
    frame_or_bytes: DataFrame | bytes,
    nwk_s_key: bytes,
    f_cnt32: int,
    uplink: bool | None = None,
) -> bytes:
    """The 4-byte MIC of a frame (or of MHDR…FRMPayload bytes) under the 32-bit counter.

    ``uplink`` defaults to the direction the MHDR's message type implies; pass it only to
    compute a MIC for bytes whose type byte is not yet final.
    """
    _check_key(nwk_s_key, "nwk_s_key")
    _check_u32(f_cnt32, "f_cnt32")
    msg = frame_or_bytes.raw if isinstance(frame_or_bytes, DataFrame) else bytes(frame_or_bytes)
    if len(msg) < 1 + _FHDR_MIN:
        raise ValueError("message is shorter than MHDR and FHDR")
    dev_addr, _, f_cnt16 = struct.unpack_from("<IBH", msg, 1)
    if f_cnt16 != f_cnt32 & 0xFFFF:
        raise ValueError(f"f_cnt32 {f_cnt32} does not end in the frame's FCnt {f_cnt16}")
    if uplink is None:
        uplink = is_uplink(msg[0] >> 5)
    b0 = _block(0x49, dev_addr, f_cnt32, uplink, len(msg))
    mac = CMAC(algorithms.AES(bytes(nwk_s_key)))
    mac.update(b0 + msg)
    return mac.finalize()[:MIC_BYTES]


def verify_mic(frame: DataFrame, nwk_s_key: bytes, f_cnt32: int) -> bool:
    """Whether the frame is authentic under the session key and this full counter.

    A counter whose low half is not the frame's FCnt cannot authenticate it, so it is a plain
    False rather than an error; the comparison is constant-time.
    """
    if f_cnt32 & 0xFFFF != frame.f_cnt16:
        return False
    expected = compute_mic(frame, nwk_s_key, f_cnt32)
    return hmac.compare_digest(expected, frame.mic)


def decrypt(frame: DataFrame, nwk_s_key: bytes, app_s_key: bytes, f_cnt32: int) -> bytes:
    """The plaintext FRMPayload: MAC commands (FPort 0, NwkSKey) or application data (AppSKey)."""
    _check_key(nwk_s_key, "nwk_s_key")
    _check_key(app_s_key, "app_s_key")
    if f_cnt32 & 0xFFFF != frame.f_cnt16:
        raise ValueError(f"f_cnt32 {f_cnt32} does not end in the frame's FCnt {frame.f_cnt16}")
    if frame.f_port is None:
        return b""
    key = nwk_s_key if frame.f_port == 0 else app_s_key
    return crypt_payload(key, frame.dev_addr, f_cnt32, frame.uplink, frame.frm_payload)


def encode(
    *,
    mtype: MType,
    dev_addr: int,
    f_cnt32: int,
    f_port: int | None,
    payload: bytes,
    nwk_s_key: bytes,
    app_s_key: bytes,
    f_opts: bytes = b"",
    adr: bool = False,
    adr_ack_req: bool = False,
    ack: bool = False,
    f_pending: bool = False,
) -> bytes:
    """Build a complete PHYPayload: encrypt the payload, then append the MIC over the rest."""
    mtype = MType(mtype)
    if mtype not in _DATA_TYPES:
        raise ValueError(f"{mtype.name} is not a data frame type")
    _check_key(nwk_s_key, "nwk_s_key")
    _check_key(app_s_key, "app_s_key")
    _check_u32(dev_addr, "dev_addr")
    _check_u32(f_cnt32, "f_cnt32")
    if len(f_opts) > MAX_FOPTS:
        raise ValueError(f"FOpts holds at most {MAX_FOPTS} bytes, got {len(f_opts)}")
    if f_port is None:
        if payload:
            raise ValueError("a payload needs an FPort")
    elif not 0 <= f_port <= 255:
        raise ValueError(f"FPort must be 0..255, got {f_port}")
    elif f_port == 0 and f_opts:
        raise ValueError("MAC commands go either in FOpts or on FPort 0, not both")
    f_ctrl = (adr << 7) | (adr_ack_req << 6) | (ack << 5) | (f_pending << 4) | len(f_opts)
    msg = struct.pack("<BIBH", mtype << 5, dev_addr, f_ctrl, f_cnt32 & 0xFFFF) + bytes(f_opts)
    uplink = is_uplink(mtype)
    if f_port is not None:
        key = nwk_s_key if f_port == 0 else app_s_key
        msg += bytes([f_port]) + crypt_payload(key, dev_addr, f_cnt32, uplink, payload)
    if len(msg) + MIC_BYTES > MAX_PHY_PAYLOAD:
        raise ValueError(f"frame would be {len(msg) + MIC_BYTES} bytes, over {MAX_PHY_PAYLOAD}")
    return msg + compute_mic(msg, nwk_s_key, f_cnt32, uplink)


def recover_fcnt32(last_fcnt32: int | None, f_cnt16: int, *, max_gap: int = MAX_FCNT_GAP) -> int:
    """The full 32-bit counter of a frame from its 16 bits on air and the last accepted counter.

    Rule: the answer is the value congruent to ``f_cnt16`` modulo 2**16 that lies in the window
    ``(last - (65536 - max_gap), last + max_gap]``. Up to ``max_gap`` frames may have been lost
    in between (the LoRaWAN 1.0.x ``MAX_FCNT_GAP`` of 16384 is the default), crossing a 16-bit
    roll-over if need be; anything further ahead is read as an *older* frame. Older frames are
    normal here: store-and-forward delivers copies via different satellites hours apart and out
    of order, so a late copy must map to the counter it was sent with, where de-duplication
    (device, full FCnt, MIC) recognises it. The window is one full 16-bit cycle, so the answer
    is unique; deciding whether an old counter is a duplicate or a replay is the caller's job,
    and the MIC check rejects a wrong guess. With no accepted frame yet, the session is taken
    to be in its first 16-bit cycle (ABP counters start at 0).
    """
    if not 0 <= f_cnt16 < _U16:
        raise ValueError(f"f_cnt16 must be in 0..65535, got {f_cnt16}")
    if not 0 <= max_gap < _U16:
        raise ValueError(f"max_gap must be in 0..65535, got {max_gap}")
    if last_fcnt32 is None:
        return f_cnt16
    _check_u32(last_fcnt32, "last_fcnt32")
    ahead = (f_cnt16 - last_fcnt32) % _U16
    candidate = last_fcnt32 + ahead
    if ahead > max_gap and candidate - _U16 >= 0:
        candidate -= _U16
    if candidate >= _U32:
        raise FrameError("the 32-bit frame counter is exhausted; the session must be re-keyed")
    return candidate
