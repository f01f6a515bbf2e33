"""Reading a request body: size limit, aws-chunked decoding, hashes and checksums.

Small bodies (API calls) are kept in memory; uploads are spooled to a temporary file
so a 5 GiB PUT never sits in RAM. Every check that needs the whole payload (the
signed SHA-256, Content-MD5, x-amz-checksum-*) runs here, before any handler sees
the data, so a corrupted upload is refused instead of stored.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import BinaryIO

from panoptes.cloud.protocol.chunked import STREAMING, AwsChunkedDecoder, ChunkError
from panoptes.cloud.protocol.sigv4 import AuthFailure, Verified, is_hex_hash
from panoptes.cloud.protocol.wire import WireError, WireRequest

_SPOOL_IN_MEMORY = 1 << 20


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than the {limit} bytes allowed")
        self.limit = limit


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


# Checksums we can verify with the standard library; others are accepted unchecked.
_CHECKERS = {
    "x-amz-checksum-crc32": _Crc32,
    "x-amz-checksum-sha1": hashlib.sha1,
    "x-amz-checksum-sha256": hashlib.sha256,
    "content-md5": hashlib.md5,
}


@dataclass
class Body:
    data: bytes | None  # in memory, or
    file: BinaryIO | None  # spooled, positioned at 0
    size: int
    sha256: str


def is_streaming(request: WireRequest) -> bool:
    sha = (request.header("x-amz-content-sha256") or "").strip()
    return sha in STREAMING


async def read_body(
    chunks: AsyncIterator[bytes],
    request: WireRequest,
    *,
    verified: Verified | None,
    limit: int,
    spool: bool,
) -> Body:
    """Read, decode and check the body; ``verified`` enables chunk-signature checks."""
    decoder = AwsChunkedDecoder(verified) if is_streaming(request) else None
    sha = hashlib.sha256()
    checkers = {name: make() for name, make in _CHECKERS.items() if request.header(name)}
    for name in (request.header("x-amz-trailer") or "").lower().split(","):
        if name.strip() in _CHECKERS:
            checkers[name.strip()] = _CHECKERS[name.strip()]()
    # The spooled file outlives this function (the handler reads it), hence no `with`.
    sink: BinaryIO = _Bytes()
    if spool:
        sink = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
    size = 0
    try:
        async for raw in chunks:
            try:
                data = decoder.feed(raw) if decoder else raw
            except ChunkError as exc:
                raise WireError("IncompleteBody", str(exc), status=400) from None
            size += len(data)
            if size > limit:
                raise BodyTooLarge(limit)
            sha.update(data)
            for checker in checkers.values():
                checker.update(data)
            sink.write(data)
        trailers = {}
        if decoder:
            try:
                trailers = decoder.finish()
            except ChunkError as exc:
                raise WireError("IncompleteBody", str(exc), status=400) from None
        _check(request, verified, sha.hexdigest(), checkers, trailers)
        declared = (request.header("x-amz-decoded-content-length") or "").strip()
        if decoder and declared.isdigit() and int(declared) != size:
            raise WireError(
                "IncompleteBody",
                f"The decoded body has {size} bytes, not the {declared} announced",
                status=400,
            )
    except BaseException:
        sink.close()
        raise
    sink.seek(0)
    if spool:
        return Body(None, sink, size, sha.hexdigest())
    return Body(sink.read(), None, size, sha.hexdigest())


def _check(request, verified, sha_hex, checkers, trailers) -> None:
    claimed = verified.payload_hash if verified else None
    if claimed and is_hex_hash(claimed) and claimed != sha_hex:
        raise AuthFailure(
            "payload_mismatch",
            "The provided x-amz-content-sha256 header does not match what was computed",
        )
    for name, checker in checkers.items():
        given = trailers.get(name) or request.header(name) or ""
        if not given:
            continue
        if base64.b64encode(checker.digest()).decode() != given.strip():
            code = "BadDigest" if name == "content-md5" else "InvalidRequest"
            raise WireError(
                code,
                f"The {name} you specified did not match the calculated checksum",
                status=400,
            )


class _Bytes:
    """A tiny writable buffer with the file methods read_body uses."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._data = b""

    def write(self, data: bytes) -> int:
        self._parts.append(data)
        return len(data)

    def seek(self, _pos: int) -> None:
        self._data = b"".join(self._parts)

    def read(self) -> bytes:
        return self._data

    def close(self) -> None:
        self._parts.clear()
