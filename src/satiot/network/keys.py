"""Sealing secrets at rest under the key-encryption key (KEK).

Device session keys and integration secrets are stored only sealed: AES-256-GCM under the KEK,
with the owner and purpose bound in as associated data, so a sealed value copied onto another
row or field fails to open instead of silently handing over another device's key. Each sealed
value records which KEK sealed it (``kek_id``), so that keys can be re-sealed after a rotation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from satiot.core.config import Settings

KEK_BYTES = 32
_NONCE_BYTES = 12


class KekError(ValueError):
    """The configured KEK is unusable, or a sealed value does not open under it."""


@dataclass(frozen=True)
class Kek:
    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) != KEK_BYTES:
            raise KekError(f"the KEK must be {KEK_BYTES} bytes, got {len(self.key)}")

    @cached_property
    def id(self) -> str:
        """A short public fingerprint naming this KEK (never the key itself); computed once,
        since ingest compares it for every candidate device."""
        return hashlib.sha256(b"satiot-kek-id" + self.key).hexdigest()[:16]

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + AESGCM(self.key).encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        try:
            return AESGCM(self.key).decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], aad)
        except InvalidTag as exc:
            raise KekError("sealed value does not open under this KEK (wrong key or row)") from exc


def parse_kek(text: str) -> Kek:
    """A KEK from its base64 form (how ``SATIOT_KEK`` and the key file hold it)."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KekError("SATIOT_KEK must be base64") from exc
    return Kek(raw)


def load_kek(settings: Settings) -> Kek:
    """The configured KEK; without one, the embedded default keeps a generated key in
    ``<data_dir>/kek`` (created once, mode 0600) so a restart opens what it sealed."""
    if settings.kek:
        return parse_kek(settings.kek)
    path = Path(settings.data_dir) / "kek"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = base64.b64encode(secrets.token_bytes(KEK_BYTES)).decode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text + "\n")
    return parse_kek(path.read_text())
