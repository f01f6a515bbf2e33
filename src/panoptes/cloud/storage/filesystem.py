"""ObjectStore on a local directory: the single-node default.

Layout under ``root``::

    buckets/<bucket>.b/keys/<seg>.d/.../<seg>.o   small JSON: key, size, etag, sha256, blob
    buckets/<bucket>.b/blobs/<random>              the bytes

A put streams into a temporary blob (hashing as it goes), fsyncs and renames it, then
atomically replaces the ``.o`` record; the record switch is the commit, so a reader
sees the whole old object or the whole new one. Each key segment gets a suffix
(``.d`` for a folder, ``.o`` for an object) after percent-encoding, so keys ``a`` and
``a/b`` coexist and no key can name ``..`` or escape the root.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote

from panoptes.cloud.storage.base import ObjectInfo

_CHUNK = 1 << 20
#: Longer encoded segments are replaced by their hash (file names stop at 255 bytes).
_MAX_SEGMENT = 200


def _segment(text: str) -> str:
    encoded = quote(text, safe="-_")
    if len(encoded) > _MAX_SEGMENT:
        return "h-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return encoded


class FilesystemStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        (self.root / "buckets").mkdir(parents=True, exist_ok=True)

    # ---- paths -------------------------------------------------------------------

    def _bucket_dir(self, bucket: str) -> Path:
        if not bucket:
            raise ValueError("bucket name must not be empty")
        return self.root / "buckets" / f"{_segment(bucket)}.b"

    def _record_path(self, bucket: str, key: str) -> Path:
        if not key:
            raise ValueError("object key must not be empty")
        *folders, name = key.split("/")
        parts = [f"{_segment(f)}.d" for f in folders] + [f"{_segment(name)}.o"]
        return self._bucket_dir(bucket).joinpath("keys", *parts)

    # ---- buckets -----------------------------------------------------------------

    def create_bucket(self, bucket: str) -> None:
        base = self._bucket_dir(bucket)
        (base / "keys").mkdir(parents=True, exist_ok=True)
        (base / "blobs").mkdir(parents=True, exist_ok=True)

    def bucket_exists(self, bucket: str) -> bool:
        return self._bucket_dir(bucket).is_dir()

    def list_buckets(self) -> list[tuple[str, datetime]]:
        found = []
        for folder in (self.root / "buckets").glob("*.b"):
            # Bucket names are short enough that _segment never hashed them.
            created = datetime.fromtimestamp(folder.stat().st_mtime, UTC)
            found.append((unquote(folder.name[: -len(".b")]), created))
        return sorted(found)

    def _require_bucket(self, bucket: str) -> Path:
        base = self._bucket_dir(bucket)
        if not base.is_dir():
            raise KeyError(f"no such bucket: {bucket}")
        return base

    # ---- objects -----------------------------------------------------------------

    def put(self, bucket: str, key: str, data: BinaryIO | bytes) -> ObjectInfo:
        base = self._require_bucket(bucket)
        record = self._record_path(bucket, key)
        blob_name = uuid.uuid4().hex
        blob = base / "blobs" / blob_name
        temp = base / "blobs" / f".tmp-{blob_name}"
        md5, sha, size = hashlib.md5(), hashlib.sha256(), 0
        try:
            with open(temp, "wb") as out:
                for piece in _pieces(data):
                    md5.update(piece)
                    sha.update(piece)
                    size += len(piece)
                    out.write(piece)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, blob)
            info = ObjectInfo(
                bucket, key, size, f'"{md5.hexdigest()}"', sha.hexdigest(), datetime.now(UTC)
            )
            previous = self._read_record(record)
            self._write_record(record, info, blob_name)
        except BaseException:
            temp.unlink(missing_ok=True)
            blob.unlink(missing_ok=True)
            raise
        if previous is not None and previous[1] != blob_name:
            (base / "blobs" / previous[1]).unlink(missing_ok=True)
        return info

    def _write_record(self, record: Path, info: ObjectInfo, blob_name: str) -> None:
        document = {
            "key": info.key,
            "size": info.size,
            "etag": info.etag,
            "sha256": info.sha256,
            "last_modified": info.last_modified.isoformat(),
            "blob": blob_name,
        }
        for attempt in range(3):
            try:
                record.parent.mkdir(parents=True, exist_ok=True)
                temp = record.parent / f".tmp-{uuid.uuid4().hex}"
                with open(temp, "w", encoding="utf-8") as out:
                    json.dump(document, out)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temp, record)
                return
            except FileNotFoundError:
                # A concurrent delete pruned the folder we just made; make it again.
                if attempt == 2:
                    raise

    def _read_record(self, record: Path) -> tuple[ObjectInfo, str] | None:
        try:
            document = json.loads(record.read_text(encoding="utf-8"))
        except (FileNotFoundError, NotADirectoryError):
            return None
        bucket = record.relative_to(self.root / "buckets").parts[0]
        info = ObjectInfo(
            bucket=_unsuffix(bucket),
            key=document["key"],
            size=document["size"],
            etag=document["etag"],
            sha256=document["sha256"],
            last_modified=datetime.fromisoformat(document["last_modified"]),
        )
        return info, document["blob"]

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        if not key or not self.bucket_exists(bucket):
            return None
        found = self._read_record(self._record_path(bucket, key))
        return None if found is None else _with_bucket(found[0], bucket)

    def open(self, bucket: str, key: str) -> BinaryIO:
        if not key or not self.bucket_exists(bucket):
            raise KeyError(f"{bucket}/{key}")
        # The record may switch between reading it and opening its blob; read again.
        for _ in range(3):
            found = self._read_record(self._record_path(bucket, key))
            if found is None:
                raise KeyError(f"{bucket}/{key}")
            try:
                return open(self._bucket_dir(bucket) / "blobs" / found[1], "rb")
            except FileNotFoundError:
                continue
        raise KeyError(f"{bucket}/{key}")

    def delete(self, bucket: str, key: str) -> None:
        if not key or not self.bucket_exists(bucket):
            return
        record = self._record_path(bucket, key)
        found = self._read_record(record)
        if found is None:
            return
        record.unlink(missing_ok=True)
        (self._bucket_dir(bucket) / "blobs" / found[1]).unlink(missing_ok=True)
        keys = self._bucket_dir(bucket) / "keys"
        folder = record.parent
        while folder != keys:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only succeeds when empty
            folder = folder.parent

    def list(self, bucket: str, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        if not self.bucket_exists(bucket):
            return iter(())
        keys = self._bucket_dir(bucket) / "keys"
        # Walk only below the folders the prefix fully names.
        folders = prefix.split("/")[:-1]
        top = keys.joinpath(*(f"{_segment(f)}.d" for f in folders))
        infos = []
        for folder, _dirs, files in os.walk(top):
            for name in files:
                if not name.endswith(".o") or name.startswith(".tmp-"):
                    continue
                found = self._read_record(Path(folder) / name)
                if found is None:
                    continue
                info = found[0]
                if info.key.startswith(prefix) and info.key > start_after:
                    infos.append(_with_bucket(info, bucket))
        infos.sort(key=lambda i: i.key.encode("utf-8", "surrogatepass"))
        return iter(infos)

    def delete_bucket(self, bucket: str) -> None:
        """Remove a bucket and everything in it (tests and administration)."""
        shutil.rmtree(self._bucket_dir(bucket), ignore_errors=True)


def _unsuffix(name: str) -> str:
    return name[:-2] if name.endswith(".b") else name


def _with_bucket(info: ObjectInfo, bucket: str) -> ObjectInfo:
    if info.bucket == bucket:
        return info
    return ObjectInfo(bucket, info.key, info.size, info.etag, info.sha256, info.last_modified)


def _pieces(data: BinaryIO | bytes) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for start in range(0, len(view), _CHUNK):
            yield bytes(view[start : start + _CHUNK])
        return
    while True:
        piece = data.read(_CHUNK)
        if not piece:
            return
        yield piece
