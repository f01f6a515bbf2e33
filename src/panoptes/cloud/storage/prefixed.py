"""All of Panoptes' buckets inside one real bucket, under a prefix.

Production installs are often given one bucket (and maybe a prefix) rather than the
right to create buckets: `--object-store s3://BUCKET/PREFIX`. Each logical bucket
becomes the folder ``PREFIX/<bucket>/`` of the real one, marked by an empty
``.bucket`` object so that empty buckets exist too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import BinaryIO

from panoptes.cloud.storage.base import ObjectInfo, ObjectStore

MARKER = ".bucket"


class PrefixedStore:
    def __init__(self, inner: ObjectStore, bucket: str, prefix: str = "") -> None:
        self.inner, self.bucket = inner, bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def _key(self, bucket: str, key: str) -> str:
        if not bucket or "/" in bucket:
            raise ValueError(f"bucket name {bucket!r} must be non-empty and have no '/'")
        return f"{self.prefix}{bucket}/{key}"

    def _logical(self, bucket: str, info: ObjectInfo) -> ObjectInfo:
        return replace(info, bucket=bucket, key=info.key[len(self._key(bucket, "")) :])

    def create_bucket(self, bucket: str) -> None:
        if not self.bucket_exists(bucket):
            self.inner.put(self.bucket, self._key(bucket, MARKER), b"")

    def bucket_exists(self, bucket: str) -> bool:
        return self.inner.head(self.bucket, self._key(bucket, MARKER)) is not None

    def list_buckets(self) -> list[tuple[str, datetime]]:
        found = []
        for info in self.inner.list(self.bucket, prefix=self.prefix):
            name, _, rest = info.key[len(self.prefix) :].partition("/")
            if rest == MARKER:
                found.append((name, info.last_modified))
        return sorted(found)

    def _require(self, bucket: str) -> None:
        if not self.bucket_exists(bucket):
            raise KeyError(f"no such bucket: {bucket}")

    def put(self, bucket: str, key: str, data: BinaryIO | bytes) -> ObjectInfo:
        self._require(bucket)
        return self._logical(bucket, self.inner.put(self.bucket, self._key(bucket, key), data))

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        info = self.inner.head(self.bucket, self._key(bucket, key))
        return None if info is None or key == MARKER else self._logical(bucket, info)

    def open(self, bucket: str, key: str) -> BinaryIO:
        if key == MARKER:
            raise KeyError(key)
        return self.inner.open(self.bucket, self._key(bucket, key))

    def delete(self, bucket: str, key: str) -> None:
        if key != MARKER:
            self.inner.delete(self.bucket, self._key(bucket, key))

    def list(self, bucket: str, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        self._require(bucket)
        base = self._key(bucket, "")
        after = base + start_after if start_after else ""
        for info in self.inner.list(self.bucket, prefix=base + prefix, start_after=after):
            if info.key != base + MARKER:
                yield self._logical(bucket, info)
