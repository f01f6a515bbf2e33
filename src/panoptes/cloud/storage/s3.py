"""ObjectStore over a real S3 API (AWS S3, SeaweedFS, MinIO) for production.

Puts stream through boto3's managed transfer (multipart above its threshold) while
the SHA-256 is computed on the way, since S3 itself keeps only an MD5-style ETag;
the digest is stored as object metadata so ``head`` can report it without a read.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO

from panoptes.cloud.storage.base import ObjectInfo

_SHA_META = "panoptes-sha256"


class _HashingReader:
    """Wraps a file so what boto3 reads is hashed as it goes."""

    def __init__(self, data: BinaryIO) -> None:
        self._data = data
        self.sha = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        piece = self._data.read(size)
        self.sha.update(piece)
        return piece


class S3Store:
    def __init__(self, client: Any) -> None:
        """``client``: a boto3 S3 client (endpoint, credentials and addressing set)."""
        self.client = client

    def create_bucket(self, bucket: str) -> None:
        with contextlib.suppress(self.client.exceptions.BucketAlreadyOwnedByYou):
            self.client.create_bucket(Bucket=bucket)

    def list_buckets(self) -> list[tuple[str, datetime]]:
        listed = self.client.list_buckets().get("Buckets", [])
        return sorted((b["Name"], b["CreationDate"]) for b in listed)

    def bucket_exists(self, bucket: str) -> bool:
        try:
            self.client.head_bucket(Bucket=bucket)
        except self.client.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchBucket", "403"):
                return False
            raise
        return True

    def put(self, bucket: str, key: str, data: BinaryIO | bytes) -> ObjectInfo:
        if isinstance(data, bytes | bytearray):
            digest = hashlib.sha256(data).hexdigest()
            self.client.put_object(
                Bucket=bucket, Key=key, Body=bytes(data), Metadata={_SHA_META: digest}
            )
        else:
            # The digest is known only after the upload; S3 metadata cannot change in
            # place, so copy the object onto itself with the digest (server side).
            reader = _HashingReader(data)
            self.client.upload_fileobj(reader, bucket, key)
            digest = reader.sha.hexdigest()
            self.client.copy_object(
                Bucket=bucket,
                Key=key,
                CopySource={"Bucket": bucket, "Key": key},
                Metadata={_SHA_META: digest},
                MetadataDirective="REPLACE",
            )
        info = self.head(bucket, key)
        if info is None:
            raise KeyError(f"{bucket}/{key} vanished right after it was written")
        return info

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            answer = self.client.head_object(Bucket=bucket, Key=key)
        except self.client.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NoSuchBucket"):
                return None
            raise
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=answer["ContentLength"],
            etag=answer["ETag"],
            sha256=answer.get("Metadata", {}).get(_SHA_META, ""),
            last_modified=answer["LastModified"],
        )

    def open(self, bucket: str, key: str) -> BinaryIO:
        try:
            return self.client.get_object(Bucket=bucket, Key=key)["Body"]
        except self.client.exceptions.NoSuchKey:
            raise KeyError(f"{bucket}/{key}") from None
        except self.client.exceptions.NoSuchBucket:
            raise KeyError(f"{bucket}/{key}") from None

    def delete(self, bucket: str, key: str) -> None:
        self.client.delete_object(Bucket=bucket, Key=key)

    def list(self, bucket: str, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        # StartAfter is filtered here, not sent: SeaweedFS (a filer with real folders)
        # skips a whole "folder" a/b/ after StartAfter="a/b", where S3 lists a/b/c.
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", []):
                if item["Key"] <= start_after:
                    continue
                # Listings do not carry metadata; the digest needs a HEAD per object.
                yield ObjectInfo(
                    bucket=bucket,
                    key=item["Key"],
                    size=item["Size"],
                    etag=item["ETag"],
                    sha256="",
                    last_modified=item["LastModified"],
                )
