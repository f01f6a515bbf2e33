"""The S3 subset that Panorama workflows and ``aws s3 cp`` use, over an ObjectStore.

It is a backend like the Panorama services (``handle(operation, ctx, params)``), so
the app treats it the same way. Multipart uploads keep their parts in the store
itself under a bucket name S3 never allows (``.multipart``), which keeps API workers
stateless: any worker can take the next part or the completion.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import quote

from panoptes.cloud.context import RequestContext
from panoptes.cloud.protocol.wire import WireError
from panoptes.cloud.storage.base import ObjectInfo, ObjectStore

OPERATIONS = (
    "PutObject",
    "GetObject",
    "HeadObject",
    "DeleteObject",
    "CreateBucket",
    "HeadBucket",
    "ListBuckets",
    "ListObjectsV2",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
)
PARTS_BUCKET = ".multipart"
_READ = 256 * 1024
_MAX_PART = 10_000
#: Sorts after every key that starts with a given prefix (used to skip a CommonPrefix).
_PAST = "\U0010ffff"


def _no_such_bucket(bucket: str) -> WireError:
    return WireError(
        "NoSuchBucket", "The specified bucket does not exist", status=404, BucketName=bucket
    )


class S3Front:
    service = "s3"

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def handle(self, operation: str, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        method = getattr(self, f"_{operation}", None)
        if method is None:
            raise WireError("NotImplemented", f"{operation} is not supported", status=501)
        return method(params)

    # ---- buckets ---------------------------------------------------------------

    def _bucket(self, bucket: str) -> str:
        if not self.store.bucket_exists(bucket):
            raise _no_such_bucket(bucket)
        return bucket

    def _CreateBucket(self, p: dict) -> dict:
        bucket = p["Bucket"]
        if not (3 <= len(bucket) <= 63) or bucket.startswith(".") or "/" in bucket:
            raise WireError("InvalidBucketName", "Bucket names have 3 to 63 characters", status=400)
        if self.store.bucket_exists(bucket):
            raise WireError(
                "BucketAlreadyOwnedByYou",
                "Your previous request to create the named bucket succeeded and you already "
                "own it.",
                status=409,
                BucketName=bucket,
            )
        self.store.create_bucket(bucket)
        return {"Location": f"/{bucket}"}

    def _ListBuckets(self, p: dict) -> dict:
        # `aws s3 ls`: the package buckets; the multipart staging bucket is internal.
        buckets = [
            {"Name": name, "CreationDate": created}
            for name, created in self.store.list_buckets()
            if name != PARTS_BUCKET
        ]
        return {"Buckets": buckets, "Owner": {"DisplayName": "panoptes", "ID": "panoptes"}}

    def _HeadBucket(self, p: dict) -> dict:
        self._bucket(p["Bucket"])
        return {}

    # ---- objects ---------------------------------------------------------------

    def _PutObject(self, p: dict) -> dict:
        info = self.store.put(self._bucket(p["Bucket"]), p["Key"], _body(p))
        return {"ETag": info.etag}

    def _head(self, bucket: str, key: str) -> ObjectInfo:
        info = self.store.head(self._bucket(bucket), key)
        if info is None:
            raise WireError("NoSuchKey", "The specified key does not exist.", status=404, Key=key)
        return info

    def _HeadObject(self, p: dict) -> dict:
        info = self._head(p["Bucket"], p["Key"])
        return _object_headers(info) | {"ContentLength": info.size}

    def _GetObject(self, p: dict) -> dict:
        info = self._head(p["Bucket"], p["Key"])
        start, end = 0, info.size - 1
        result = _object_headers(info)
        if p.get("Range"):
            start, end = _parse_range(p["Range"], info.size)
            result["ContentRange"] = f"bytes {start}-{end}/{info.size}"
            result["StatusCode"] = 206
        try:
            handle = self.store.open(p["Bucket"], p["Key"])
        except KeyError:
            raise WireError("NoSuchKey", "The specified key does not exist.", status=404) from None
        result["ContentLength"] = max(0, end - start + 1)
        result["Body"] = _stream(handle, start, end - start + 1)
        return result

    def _DeleteObject(self, p: dict) -> dict:
        self.store.delete(self._bucket(p["Bucket"]), p["Key"])
        return {}

    def _ListObjectsV2(self, p: dict) -> dict:
        bucket = self._bucket(p["Bucket"])
        prefix, delimiter = p.get("Prefix", ""), p.get("Delimiter", "")
        max_keys = min(max(p.get("MaxKeys", 1000), 0), 1000)
        start_after = p.get("StartAfter", "")
        if p.get("ContinuationToken"):
            start_after = max(start_after, _token_key(p["ContinuationToken"]))
        contents: list[dict] = []
        prefixes: list[str] = []
        truncated, last = False, ""
        for info in self.store.list(bucket, prefix, start_after):
            if len(contents) + len(prefixes) >= max_keys:
                truncated = True
                break
            rest = info.key[len(prefix) :]
            if delimiter and delimiter in rest:
                common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
                if prefixes and prefixes[-1] == common:
                    continue
                prefixes.append(common)
                last = common + _PAST
                continue
            contents.append(
                {
                    "Key": info.key,
                    "LastModified": info.last_modified,
                    "ETag": info.etag,
                    "Size": info.size,
                    "StorageClass": "STANDARD",
                }
            )
            last = info.key
        if truncated and prefixes and last == prefixes[-1] + _PAST:
            # The page ended on a common prefix: check something lies past it.
            truncated = any(True for _ in self.store.list(bucket, prefix, last))
        encode = _url_encoder(p.get("EncodingType"))
        result: dict[str, Any] = {
            "Name": bucket,
            "Prefix": encode(prefix),
            "MaxKeys": max_keys,
            "KeyCount": len(contents) + len(prefixes),
            "IsTruncated": truncated,
            "Contents": [c | {"Key": encode(c["Key"])} for c in contents] or None,
            "CommonPrefixes": [{"Prefix": encode(cp)} for cp in prefixes] or None,
        }
        if delimiter:
            result["Delimiter"] = encode(delimiter)
        if p.get("EncodingType"):
            result["EncodingType"] = p["EncodingType"]
        if p.get("StartAfter"):
            result["StartAfter"] = encode(p["StartAfter"])
        if p.get("ContinuationToken"):
            result["ContinuationToken"] = p["ContinuationToken"]
        if truncated:
            result["NextContinuationToken"] = _make_token(last)
        return result

    # ---- multipart ---------------------------------------------------------------

    def _parts_bucket(self) -> str:
        if not self.store.bucket_exists(PARTS_BUCKET):
            self.store.create_bucket(PARTS_BUCKET)
        return PARTS_BUCKET

    def _upload(self, p: dict) -> dict:
        meta = self.store.head(self._parts_bucket(), f"{p['UploadId']}/upload.json")
        if meta is None or "/" in p["UploadId"]:
            raise WireError(
                "NoSuchUpload",
                "The specified upload does not exist. The upload ID may be invalid, or the "
                "upload may have been aborted or completed.",
                status=404,
                UploadId=p["UploadId"],
            )
        with self.store.open(PARTS_BUCKET, f"{p['UploadId']}/upload.json") as handle:
            upload = json.load(handle)
        if upload["bucket"] != p["Bucket"] or upload["key"] != p["Key"]:
            raise WireError("NoSuchUpload", "The upload belongs to another object.", status=404)
        return upload

    def _CreateMultipartUpload(self, p: dict) -> dict:
        self._bucket(p["Bucket"])
        upload_id = secrets.token_urlsafe(24)
        record = json.dumps({"bucket": p["Bucket"], "key": p["Key"]}).encode()
        self.store.put(self._parts_bucket(), f"{upload_id}/upload.json", record)
        return {"Bucket": p["Bucket"], "Key": p["Key"], "UploadId": upload_id}

    def _UploadPart(self, p: dict) -> dict:
        self._upload(p)
        number = p["PartNumber"]
        if not 1 <= number <= _MAX_PART:
            raise WireError(
                "InvalidArgument", f"Part number must be between 1 and {_MAX_PART}", status=400
            )
        info = self.store.put(PARTS_BUCKET, f"{p['UploadId']}/{number:05d}", _body(p))
        return {"ETag": info.etag}

    def _CompleteMultipartUpload(self, p: dict) -> dict:
        self._upload(p)
        wanted = (p.get("MultipartUpload") or {}).get("Parts") or []
        if not wanted:
            raise WireError("MalformedXML", "You must specify at least one part", status=400)
        numbers = [part.get("PartNumber", 0) for part in wanted]
        if numbers != sorted(set(numbers)):
            raise WireError(
                "InvalidPartOrder", "The list of parts was not in ascending order.", status=400
            )
        infos = []
        for part in wanted:
            info = self.store.head(PARTS_BUCKET, f"{p['UploadId']}/{part['PartNumber']:05d}")
            if info is None or (
                part.get("ETag") and part["ETag"].strip('"') != info.etag.strip('"')
            ):
                raise WireError(
                    "InvalidPart",
                    "One or more of the specified parts could not be found or its entity tag "
                    "did not match.",
                    status=400,
                )
            infos.append(info)
        reader = _Concatenation(self.store, infos)
        self.store.put(p["Bucket"], p["Key"], reader)
        digest = hashlib.md5(b"".join(bytes.fromhex(i.etag.strip('"')) for i in infos))
        self._drop_upload(p["UploadId"])
        return {
            "Bucket": p["Bucket"],
            "Key": p["Key"],
            "ETag": f'"{digest.hexdigest()}-{len(infos)}"',
            "Location": f"/{p['Bucket']}/{quote(p['Key'])}",
        }

    def _AbortMultipartUpload(self, p: dict) -> dict:
        self._upload(p)
        self._drop_upload(p["UploadId"])
        return {}

    def _drop_upload(self, upload_id: str) -> None:
        for info in list(self.store.list(PARTS_BUCKET, f"{upload_id}/")):
            self.store.delete(PARTS_BUCKET, info.key)


def _body(p: dict) -> BinaryIO | bytes:
    body = p.get("Body")
    return b"" if body is None else body


def _object_headers(info: ObjectInfo) -> dict[str, Any]:
    return {
        "ETag": info.etag,
        "LastModified": info.last_modified,
        "AcceptRanges": "bytes",
        "ContentType": "binary/octet-stream",
    }


def _parse_range(text: str, size: int) -> tuple[int, int]:
    unit, _, spec = text.partition("=")
    first, _, last = spec.partition("-")
    try:
        if unit.strip() != "bytes" or "," in spec:
            raise ValueError
        if first.strip() == "":
            start, end = max(0, size - int(last)), size - 1
        else:
            start = int(first)
            end = min(int(last), size - 1) if last.strip() else size - 1
    except ValueError:
        raise WireError("InvalidArgument", f"Bad Range header {text!r}", status=400) from None
    if start >= size or start > end:
        raise WireError(
            "InvalidRange",
            "The requested range is not satisfiable",
            status=416,
            ActualObjectSize=str(size),
            RangeRequested=text,
        )
    return start, end


def _stream(handle: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    try:
        if start:
            if handle.seekable():
                handle.seek(start)
            else:
                _skip(handle, start)
        while length > 0:
            piece = handle.read(min(_READ, length))
            if not piece:
                break
            length -= len(piece)
            yield piece
    finally:
        handle.close()


def _skip(handle: BinaryIO, count: int) -> None:
    while count > 0:
        piece = handle.read(min(_READ, count))
        if not piece:
            return
        count -= len(piece)


def _make_token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8", "surrogatepass")).decode()


def _token_key(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode("utf-8", "surrogatepass")
    except (ValueError, UnicodeDecodeError):
        raise WireError(
            "InvalidArgument", "The continuation token provided is incorrect", status=400
        ) from None


def _url_encoder(encoding: str | None):
    if encoding == "url":
        return lambda text: quote(text, safe="/")
    return lambda text: text


class _Concatenation:
    """A read-only file over the parts of an upload, one open part at a time."""

    def __init__(self, store: ObjectStore, parts: list[ObjectInfo]) -> None:
        self._store = store
        self._parts = list(parts)
        self._current: BinaryIO | None = None

    def read(self, size: int = -1) -> bytes:
        out = bytearray()
        while size < 0 or len(out) < size:
            if self._current is None:
                if not self._parts:
                    break
                info = self._parts.pop(0)
                self._current = self._store.open(info.bucket, info.key)
            piece = self._current.read(_READ if size < 0 else min(_READ, size - len(out)))
            if not piece:
                self._current.close()
                self._current = None
                continue
            out += piece
        return bytes(out)

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
