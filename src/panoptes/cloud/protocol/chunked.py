"""``Content-Encoding: aws-chunked`` bodies, decoded as they stream in.

Wire form, repeated: ``<hex size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n``; then a
zero-size chunk, optional trailers (``name:value\\r\\n``, e.g. a checksum and
``x-amz-trailer-signature``) and a blank line. Signed variants chain each chunk's
signature to the previous one, starting from the request's own signature.
"""

from __future__ import annotations

import hashlib
import hmac

from panoptes.cloud.protocol.sigv4 import EMPTY_SHA256, AuthFailure, Verified

SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING = (SIGNED, SIGNED_TRAILER, UNSIGNED_TRAILER)
_MAX_LINE = 4096


class ChunkError(Exception):
    """The body is not valid aws-chunked encoding."""


class AwsChunkedDecoder:
    """Feed raw bytes, get payload bytes; ``finish`` checks the end and returns trailers."""

    def __init__(self, verified: Verified | None) -> None:
        self._verified = verified
        self._signed = verified is not None and verified.payload_hash in (SIGNED, SIGNED_TRAILER)
        self._previous = verified.authorization.signature if verified else ""
        self._buffer = bytearray()
        self._state = "size"  # size -> data -> crlf -> ... -> trailers -> done
        self._remaining = 0
        self._chunk_sig = ""
        self._chunk_hash = hashlib.sha256()
        self.trailers: dict[str, str] = {}
        self._trailer_lines: list[str] = []

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = bytearray()
        while True:
            if self._state == "size":
                line = self._line()
                if line is None:
                    break
                self._start_chunk(line)
            elif self._state == "data":
                if not self._buffer:
                    break
                piece = bytes(self._buffer[: self._remaining])
                del self._buffer[: len(piece)]
                self._remaining -= len(piece)
                self._chunk_hash.update(piece)
                out += piece
                if self._remaining == 0:
                    self._end_chunk()
                    self._state = "crlf"
            elif self._state == "crlf":
                if len(self._buffer) < 2:
                    break
                if self._buffer[:2] != b"\r\n":
                    raise ChunkError("Chunk data must end with CRLF")
                del self._buffer[:2]
                self._state = "size"
            elif self._state == "trailers":
                line = self._line()
                if line is None:
                    break
                if line == "":
                    self._end_trailers()
                    self._state = "done"
                else:
                    self._trailer(line)
            else:  # done: anything further is garbage
                if self._buffer.strip():
                    raise ChunkError("Data after the final chunk")
                self._buffer.clear()
                break
        return bytes(out)

    def finish(self) -> dict[str, str]:
        if self._state == "trailers" and not self._buffer:
            # Some clients end the body right after the last trailer line.
            self._end_trailers()
            self._state = "done"
        if self._state != "done":
            raise ChunkError("The body ended before the final chunk")
        return self.trailers

    def _line(self) -> str | None:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > _MAX_LINE:
                raise ChunkError("Chunk header line too long")
            return None
        line = bytes(self._buffer[:end]).decode("ascii", "replace")
        del self._buffer[: end + 2]
        return line

    def _start_chunk(self, line: str) -> None:
        size_text, _, extension = line.partition(";")
        try:
            size = int(size_text.strip(), 16)
        except ValueError:
            raise ChunkError(f"Bad chunk size {size_text!r}") from None
        key, _, sig = extension.partition("=")
        self._chunk_sig = sig.strip() if key.strip() == "chunk-signature" else ""
        if self._signed and not self._chunk_sig:
            raise AuthFailure(
                "bad_signature", "A chunk of a signed streaming body lacks its signature"
            )
        self._chunk_hash = hashlib.sha256()
        self._remaining = size
        if size == 0:
            self._end_chunk()
            self._state = "trailers"
        else:
            self._state = "data"

    def _end_chunk(self) -> None:
        if not self._signed:
            return
        assert self._verified is not None
        auth = self._verified.authorization
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                auth.amz_date,
                auth.scope,
                self._previous,
                EMPTY_SHA256,
                self._chunk_hash.hexdigest(),
            ]
        )
        expected = hmac.new(self._verified.signing_key, to_sign.encode(), hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest(), self._chunk_sig.lower()):
            raise AuthFailure("bad_signature", "A chunk signature does not match its data")
        self._previous = self._chunk_sig.lower()

    def _trailer(self, line: str) -> None:
        name, sep, value = line.partition(":")
        if not sep:
            raise ChunkError(f"Bad trailer line {line!r}")
        name = name.strip().lower()
        self.trailers[name] = value.strip()
        if name != "x-amz-trailer-signature":
            self._trailer_lines.append(f"{name}:{value.strip()}\n")

    def _end_trailers(self) -> None:
        if self._verified is None or self._verified.payload_hash != SIGNED_TRAILER:
            return
        auth = self._verified.authorization
        given = self.trailers.get("x-amz-trailer-signature", "")
        digest = hashlib.sha256("".join(self._trailer_lines).encode()).hexdigest()
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256-TRAILER", auth.amz_date, auth.scope, self._previous, digest]
        )
        expected = hmac.new(self._verified.signing_key, to_sign.encode(), hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest(), given.lower()):
            raise AuthFailure("bad_signature", "The trailer signature does not match")
