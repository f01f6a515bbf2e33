"""The HTTP request and response as the protocol layer sees them (no framework types).

Keeping Starlette out of parsers and serializers lets the tests drive them with
whatever botocore's serializer produced, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import unquote

from panoptes.cloud.errors import ServiceError


class WireError(ServiceError):
    """An error whose HTTP status is fixed by the protocol (auth, routing, S3 codes)."""

    def __init__(self, code: str, message: str, status: int, **fields: Any) -> None:
        super().__init__(code, message, **fields)
        self.status = status


def split_query(query: str) -> list[tuple[str, str]]:
    """Decoded (key, value) pairs in order; a bare ``key`` has the value ``""``.

    ``+`` stays a plus: AWS SDKs encode spaces as ``%20`` and S3 keys may hold ``+``.
    """
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


@dataclass
class WireRequest:
    method: str
    path: str  # as sent: percent-encoded, without the query
    query: str = ""  # raw query string, without "?"
    headers: list[tuple[str, str]] = field(default_factory=list)  # names lower-cased
    body: bytes = b""
    #: Large bodies (S3 uploads) arrive spooled to a file instead of ``body``.
    body_file: BinaryIO | None = None

    def header(self, name: str) -> str | None:
        """All values of a header joined by "," (how HTTP folds repeats); None if absent."""
        name = name.lower()
        values = [v for k, v in self.headers if k == name]
        return ",".join(values) if values else None

    def query_pairs(self) -> list[tuple[str, str]]:
        return split_query(self.query)

    def query_dict(self) -> dict[str, str]:
        """First value per key."""
        out: dict[str, str] = {}
        for key, value in self.query_pairs():
            out.setdefault(key, value)
        return out


@dataclass
class WireResponse:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | Iterable[bytes] = b""

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def chunks(self) -> Iterator[bytes]:
        if isinstance(self.body, bytes):
            yield self.body
        else:
            yield from self.body
