"""Server-side secret handling shared by the API (encrypts) and the worker (decrypts).

Keys are derived from the one server secret (``TABSTREAM_SECRET_KEY`` or ``<data_dir>/secret.key``)
with HKDF-SHA256 and a purpose label, so the JWT key and the header-encryption key differ.
"""

from __future__ import annotations

import base64
import json

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["HeaderCipher", "InvalidCiphertext", "derive_key"]


class InvalidCiphertext(ValueError):
    """Ciphertext that this server key did not produce (or that was tampered with)."""


def derive_key(secret: str, purpose: str, length: int = 32) -> bytes:
    """A ``length``-byte key for ``purpose`` derived from the server secret (HKDF-SHA256)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode())
    return hkdf.derive(secret.encode())


class HeaderCipher:
    """Encrypts ``teacher_predict_headers`` (a str->str dict) with Fernet (AES-128-CBC + HMAC)."""

    PURPOSE = "tabstream/teacher-headers/v1"

    def __init__(self, secret: str) -> None:
        key = base64.urlsafe_b64encode(derive_key(secret, self.PURPOSE))
        self._fernet = Fernet(key)

    def encrypt(self, headers: dict[str, str]) -> str:
        """Ciphertext (URL-safe base64 text) of ``headers``."""
        plain = json.dumps(headers, separators=(",", ":"), sort_keys=True).encode()
        return self._fernet.encrypt(plain).decode("ascii")

    def decrypt(self, token: str) -> dict[str, str]:
        """The headers ``encrypt`` sealed; ``InvalidCiphertext`` when the key or bytes differ."""
        try:
            data = json.loads(self._fernet.decrypt(token.encode("ascii")))
        except (InvalidToken, ValueError, UnicodeEncodeError) as exc:
            raise InvalidCiphertext("teacher headers cannot be decrypted with this key") from exc
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise InvalidCiphertext("decrypted teacher headers are not a str->str mapping")
        return data
