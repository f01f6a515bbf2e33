"""Encryption at rest for camera passwords, access-key secrets and other secrets.

AES-256-GCM with a master key from ``PANOPTES_MASTER_KEY`` (urlsafe base64 of 32
bytes) or ``DATA_DIR/master.key`` (created 0600 on first start). Each ciphertext is
bound to what it protects (``purpose``, e.g. ``"camera:<package version id>"``) as
associated data, so a ciphertext copied into another row does not decrypt there.
Format: b"v1" + 12-byte nonce + ciphertext-and-tag.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets as _random
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MASTER_KEY_ENV = "PANOPTES_MASTER_KEY"
MASTER_KEY_FILE = "master.key"
_VERSION = b"v1"


class SecretError(Exception):
    """A ciphertext that does not decrypt (wrong key, tampered, or moved)."""


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise SecretError(f"{where} must hold 32 bytes in urlsafe base64")
    return key


def load_master_key(data_dir: Path) -> bytes:
    """The master key: the environment's, else the data dir's (created if absent)."""
    if value := os.environ.get(MASTER_KEY_ENV):
        return _decode_key(value, MASTER_KEY_ENV)
    path = Path(data_dir) / MASTER_KEY_FILE
    try:
        return _decode_key(path.read_text(), str(path))
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = AESGCM.generate_key(bit_length=256)
    # O_EXCL: two processes starting at once must not write two different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _decode_key(path.read_text(), str(path))
    with os.fdopen(fd, "w") as f:
        f.write(base64.urlsafe_b64encode(key).decode() + "\n")
    return key


class Secrets:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> Secrets:
        return cls(load_master_key(data_dir))

    def encrypt(self, plaintext: str, purpose: str) -> bytes:
        nonce = _random.token_bytes(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), purpose.encode())

    def decrypt(self, blob: bytes, purpose: str) -> str:
        if not blob.startswith(_VERSION) or len(blob) < 2 + 12 + 16:
            raise SecretError("not a Panoptes ciphertext")
        nonce, body = blob[2:14], blob[14:]
        try:
            return self._aead.decrypt(nonce, body, purpose.encode()).decode()
        except InvalidTag:
            raise SecretError("secret does not decrypt with this master key") from None

    def __repr__(self) -> str:  # never show key material
        return "Secrets(<master key>)"
