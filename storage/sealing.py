"""Sealed values: AES-GCM under a key derived from ALIGN_SECRET, so a reader of the database
files (or a backup) without the key learns nothing from them but their size.

Each purpose has its own key (`derive`), so one sealed value can never be opened as another's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE = 12


def derive(secret: bytes, purpose: bytes) -> bytes:
    """A 32-byte key of its own for `purpose`, by HKDF-SHA256 from ALIGN_SECRET."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


class Seal:
    """AES-GCM with one key: `close` a value, `open` it again (raises InvalidTag when the value
    was changed, or sealed under another key or for another `bound` context)."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def keyed_by_hmac(cls, secret: bytes, label: bytes) -> Seal:
        """The inbox's key derivation (an HMAC of a label), kept so rows sealed before HKDF was
        used stay readable."""
        return cls(hmac.new(secret, label, hashlib.sha256).digest())

    def close_bytes(self, data: bytes, bound: bytes = b"") -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + self._aead.encrypt(nonce, data, bound or None)

    def open_bytes(self, sealed: bytes, bound: bytes = b"") -> bytes:
        return self._aead.decrypt(sealed[:NONCE], sealed[NONCE:], bound or None)

    def close(self, value: Any) -> str:
        data = json.dumps(value, separators=(",", ":")).encode()
        return base64.b64encode(self.close_bytes(data)).decode("ascii")

    def open(self, sealed: str) -> Any:
        return json.loads(self.open_bytes(base64.b64decode(sealed)))


__all__ = ["Seal", "derive"]
