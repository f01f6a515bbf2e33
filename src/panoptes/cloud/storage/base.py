"""The object store interface: what services and the S3 front need, nothing more.

Keys are ``bucket/key`` pairs as S3 has them. Writes are atomic: a reader sees the
old object or the whole new one, never a part (an interrupted upload leaves nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str  # quoted hex MD5 for single-part uploads, as S3 does
    sha256: str  # hex; lets services check content-addressed names cheaply
    last_modified: datetime


class ObjectStore(Protocol):
    def create_bucket(self, bucket: str) -> None: ...

    def bucket_exists(self, bucket: str) -> bool: ...

    def list_buckets(self) -> list[tuple[str, datetime]]:
        """(name, creation time) of every bucket, by name.

        An S3 backend lists what the server lists for its credentials (SeaweedFS
        without identities configured lists none), as `aws s3 ls` would.
        """
        ...

    def put(self, bucket: str, key: str, data: BinaryIO | bytes) -> ObjectInfo: ...

    def head(self, bucket: str, key: str) -> ObjectInfo | None: ...

    def open(self, bucket: str, key: str) -> BinaryIO:
        """Raise KeyError when absent."""
        ...

    def delete(self, bucket: str, key: str) -> None: ...

    def list(self, bucket: str, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        """Objects in key order."""
        ...


__all__ = ["ObjectInfo", "ObjectStore"]
