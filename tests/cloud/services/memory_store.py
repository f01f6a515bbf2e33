"""An in-memory ObjectStore for service tests (the real one is storage/filesystem.py)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import BinaryIO

from panoptes.cloud.storage.base import ObjectInfo


class MemoryStore:
    def __init__(self) -> None:
        self.buckets: dict[str, dict[str, tuple[bytes, ObjectInfo]]] = {}

    def create_bucket(self, bucket: str) -> None:
        self.buckets.setdefault(bucket, {})

    def bucket_exists(self, bucket: str) -> bool:
        return bucket in self.buckets

    def list_buckets(self) -> list[tuple[str, datetime]]:
        return [(name, datetime(2026, 1, 1, tzinfo=UTC)) for name in sorted(self.buckets)]

    def put(self, bucket: str, key: str, data: BinaryIO | bytes) -> ObjectInfo:
        raw = data if isinstance(data, bytes) else data.read()
        info = ObjectInfo(
            bucket,
            key,
            len(raw),
            f'"{hashlib.md5(raw).hexdigest()}"',
            hashlib.sha256(raw).hexdigest(),
            datetime.now(UTC),
        )
        self.buckets[bucket][key] = (raw, info)
        return info

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        entry = self.buckets.get(bucket, {}).get(key)
        return entry[1] if entry else None

    def open(self, bucket: str, key: str) -> BinaryIO:
        return io.BytesIO(self.buckets[bucket][key][0])

    def delete(self, bucket: str, key: str) -> None:
        self.buckets.get(bucket, {}).pop(key, None)

    def list(self, bucket: str, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        for key in sorted(self.buckets.get(bucket, {})):
            if key.startswith(prefix) and key > start_after:
                yield self.buckets[bucket][key][1]
