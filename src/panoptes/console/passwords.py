"""Password hashing with scrypt (a memory-hard KDF from the standard library).

Stored form: ``scrypt$N$r$p$SALT$HASH`` (base64), so the cost can be raised later
and old hashes still verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# RFC 7914's interactive-login parameters: 16 MiB of memory per check.
N, R, P = 2**14, 8, 1
_DKLEN = 32
_MAXMEM = 64 * 1024 * 1024
MIN_LENGTH = 10


class WeakPassword(ValueError):
    """A password too short to keep; the message says what is wanted."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=N, r=R, p=P, dklen=_DKLEN, maxmem=_MAXMEM
    )
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=_MAXMEM,
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


#: Checked against when the user name is unknown, so both failures cost the same time.
DUMMY_HASH = hash_password("not-a-real-password-" + secrets.token_hex(8))


def generate_password() -> str:
    """A random password to print once: 20 URL-safe characters (~120 bits)."""
    return secrets.token_urlsafe(15)
