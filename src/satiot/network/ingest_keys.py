"""Opened session keys for ingest, cached per process, with their AES objects ready.

Opening a sealed key costs an AES-GCM call under the KEK, and setting up AES and CMAC for a
key costs more than using them: ``frames.verify_mic`` and ``frames.decrypt`` build both per
call, which is right for a codec but dominates a batch of hundreds of frames. A
:class:`SessionCipher` keeps, per device session, a keyed CMAC to copy and ECB encryptors for
both keys (ECB over whole blocks carries no state between calls), and computes exactly what
``frames`` computes (a property test holds them equal).

The cache key includes the sealed bytes themselves, so re-keying a device (new sealed values)
or another KEK can never be served an old session; it lives per thread because the
``cryptography`` objects are not meant to be shared between threads.
"""

from __future__ import annotations

import hmac
import struct
import threading
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from satiot.core.bulk import StoredId
from satiot.network.frames import DataFrame

_B0 = struct.Struct("<B4xBIIxB")
MAX_CACHED_SESSIONS = 200_000


class SessionCipher:
    """One device's uplink crypto (LoRaWAN 1.0.x, Dir = 0) with its AES state prepared."""

    __slots__ = ("_app_ecb", "_cmac", "_nwk_ecb")

    def __init__(self, nwk_s_key: bytes, app_s_key: bytes) -> None:
        self._cmac = CMAC(algorithms.AES(nwk_s_key))
        self._nwk_ecb = Cipher(algorithms.AES(nwk_s_key), modes.ECB()).encryptor()  # noqa: S305
        self._app_ecb = Cipher(algorithms.AES(app_s_key), modes.ECB()).encryptor()  # noqa: S305

    def mic(self, frame: DataFrame, f_cnt32: int) -> bytes:
        """The 4-byte MIC of an uplink frame under the full 32-bit counter."""
        mac = self._cmac.copy()
        mac.update(_B0.pack(0x49, 0, frame.dev_addr, f_cnt32, len(frame.raw)) + frame.raw)
        return mac.finalize()[:4]

    def verify(self, frame: DataFrame, f_cnt32: int) -> bool:
        if f_cnt32 & 0xFFFF != frame.f_cnt16:
            return False
        return hmac.compare_digest(self.mic(frame, f_cnt32), frame.mic)

    def decrypt(self, frame: DataFrame, f_cnt32: int) -> bytes:
        """The plaintext FRMPayload (NwkSKey on FPort 0, AppSKey otherwise)."""
        data = frame.frm_payload
        if frame.f_port is None or not data:
            return b""
        ecb = self._nwk_ecb if frame.f_port == 0 else self._app_ecb
        addr, pack = frame.dev_addr, _B0.pack
        blocks = b"".join([pack(1, 0, addr, f_cnt32, i) for i in range(1, -(-len(data) // 16) + 1)])
        stream = ecb.update(blocks)[: len(data)]
        mixed = int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")
        return mixed.to_bytes(len(data), "big")


#: (kek id, device id as stored, sealed NwkSKey, sealed AppSKey) -> cipher
CacheKey = tuple[str, StoredId, bytes, bytes]
_local = threading.local()


def _cache() -> dict[CacheKey, SessionCipher]:
    cache: dict[CacheKey, SessionCipher] | None = getattr(_local, "ciphers", None)
    if cache is None:
        cache = _local.ciphers = {}
    return cache


def session_cipher(key: CacheKey, open_keys: Callable[[], tuple[bytes, bytes]]) -> SessionCipher:
    """The cached cipher for ``key``, opening the sealed keys (``open_keys``) only on a miss."""
    cache = _cache()
    cipher = cache.get(key)
    if cipher is None:
        if len(cache) >= MAX_CACHED_SESSIONS:
            cache.clear()  # a crude bound: refilling costs one KEK call per active device
        cipher = cache[key] = SessionCipher(*open_keys())
    return cipher


def clear_cache() -> None:
    """Forget this thread's opened sessions (tests use it to count KEK calls)."""
    _cache().clear()
