"""The device endpoint: HTTPS with mutual TLS for bulk downloads (link.DEVICE_HTTP_*).

Why the standard library's ThreadingHTTPServer rather than the API's uvicorn: the
caller is identified by its client certificate, and uvicorn does not hand the peer
certificate to the ASGI app; `ssl.SSLSocket.getpeercert` is right here. The work is
a few long streaming downloads (models, wheels), which a thread per connection
serves well, with Range for resuming.

    GET /device/v1/desired                    the caller's DesiredState (with Revision)
    GET /device/v1/assets/{bucket}/{key}      an asset its desired state lists
    GET /device/v1/software/{version}         a published Panoptes wheel
    GET /device/v1/credentials/{instance}     the instance's role credentials (404: no
                                              role, or not an instance of the caller)

A certificate that is revoked (deleted device), expired or unknown gets 403 with a
message saying so; an object the device's desired state does not list gets 404.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import ssl
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from panoptes.cloud.channel.access import Gatekeeper
from panoptes.cloud.errors import ResourceNotFound
from panoptes.cloud.services import software
from panoptes.cloud.services.device_view import DeviceView
from panoptes.cloud.services.roles import device_credentials_response
from panoptes.link import (
    BRIDGE_IDENTITY,
    DEVICE_HTTP_ASSETS,
    DEVICE_HTTP_CREDENTIALS,
    DEVICE_HTTP_DESIRED,
    DEVICE_HTTP_SOFTWARE,
)

log = logging.getLogger(__name__)

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
#: A client must finish the TLS handshake and each read within this time.
SOCKET_TIMEOUT = 60.0


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``Range: bytes=a-b`` -> (first, last) inclusive; None: the whole object.

    Raises _Refused(416) for a range outside the object (or several ranges)."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if m is None or (not m[1] and not m[2]):
        raise _Refused(416, f"Range {header!r}: send one range, bytes=FIRST-[LAST]")
    if not m[1]:  # bytes=-N: the last N bytes
        first, last = max(size - int(m[2]), 0), size - 1
    else:
        first = int(m[1])
        last = min(int(m[2]), size - 1) if m[2] else size - 1
    if first >= size or last < first:
        raise _Refused(416, f"Range {header!r} is outside the object ({size} bytes)")
    return first, last


class _Handler(BaseHTTPRequestHandler):
    server: DeviceEndpoint.Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        # The handshake runs here, in this connection's thread, so a slow or hostile
        # client never holds up the accept loop.
        self.request.settimeout(SOCKET_TIMEOUT)
        self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("device endpoint: " + format, *args)

    def do_GET(self) -> None:
        try:
            device = self._device()
            path = unquote(urlsplit(self.path).path)
            if path == DEVICE_HTTP_DESIRED:
                self._json(200, self.server.view.publishable_state(device))
            elif path.startswith(DEVICE_HTTP_ASSETS + "/"):
                self._asset(device, path)
            elif path.startswith(DEVICE_HTTP_SOFTWARE + "/"):
                self._software(path[len(DEVICE_HTTP_SOFTWARE) + 1 :])
            elif path.startswith(DEVICE_HTTP_CREDENTIALS + "/"):
                instance = path[len(DEVICE_HTTP_CREDENTIALS) + 1 :]
                status, body = device_credentials_response(
                    self.server.view.env, device, instance, datetime.now(UTC)
                )
                self._json(status, body)  # the secret goes to its device only, never logged
            else:
                raise _Refused(404, f"no route {path}")
        except _Refused as exc:
            self._json(exc.status, {"message": exc.message})
        except ResourceNotFound as exc:
            self._json(403, {"message": exc.message})
        except (ConnectionError, TimeoutError):
            pass  # the device went away mid-download; it resumes with Range
        except Exception:
            log.exception("device endpoint: GET %s failed", self.path)
            self._json(500, {"message": "internal error"})

    def _device(self) -> str:
        assert isinstance(self.connection, ssl.SSLSocket)
        der = self.connection.getpeercert(binary_form=True)
        verdict = self.server.gate.identify(der)
        if verdict.identity is None or verdict.identity == BRIDGE_IDENTITY:
            log.info("device endpoint: refused %s: %s", self.client_address[0], verdict.reason)
            raise _Refused(403, verdict.reason or "only devices use this endpoint")
        return verdict.identity

    def _asset(self, device: str, path: str) -> None:
        state = self.server.view.desired_state(device)
        listed = {a["Path"] for p in state["Packages"] for a in p["Assets"]}
        if path not in listed:
            raise _Refused(404, f"{path} is not an asset of {device}'s desired state")
        bucket, _, key = path[len(DEVICE_HTTP_ASSETS) + 1 :].partition("/")
        self._object(bucket, key, None)

    def _software(self, version: str) -> None:
        image = software.images(self.server.store).get(version)
        if image is None:
            raise _Refused(404, f"no software image {version!r} is published")
        self._object(software.BUCKET, image.key, image.file_name)

    def _object(self, bucket: str, key: str, file_name: str | None) -> None:
        store = self.server.store
        info = store.head(bucket, key)
        if info is None:
            raise _Refused(404, f"{bucket}/{key} is gone from the object store")
        span = parse_range(self.headers.get("Range"), info.size)
        first, last = span or (0, info.size - 1)
        length = max(last - first + 1, 0)
        with store.open(bucket, key) as body:
            _skip(body, first)
            self.send_response(206 if span else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", f'"{info.sha256}"')
            self.send_header("X-Panoptes-Sha256", info.sha256)
            if span:
                self.send_header("Content-Range", f"bytes {first}-{last}/{info.size}")
            if file_name:
                self.send_header("Content-Disposition", f'attachment; filename="{file_name}"')
            self.end_headers()
            _copy(body, self.wfile, length)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


def _skip(body: BinaryIO, offset: int) -> None:
    if not offset:
        return
    if getattr(body, "seekable", lambda: False)():
        body.seek(offset)
        return
    while offset:  # a streaming body (S3): read past the start
        chunk = body.read(min(offset, 1 << 20))
        if not chunk:
            return
        offset -= len(chunk)


def _copy(body: BinaryIO, out: Any, length: int) -> None:
    shutil.copyfileobj(_Limited(body, length), out, 1 << 20)


class _Limited:
    """Reads at most ``left`` bytes of ``body`` (the end of a Range)."""

    def __init__(self, body: BinaryIO, left: int) -> None:
        self.body, self.left = body, left

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n < 0 else min(n, self.left)
        chunk = self.body.read(n)
        self.left -= len(chunk)
        return chunk


class DeviceEndpoint:
    """The endpoint on ``host:port`` in a daemon thread; `stop()` closes it."""

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        view: DeviceView
        gate: Gatekeeper
        store: Any

        def handle_error(self, request: Any, client_address: Any) -> None:
            # Failed handshakes (no certificate, another CA) are the normal refusals.
            log.info("device endpoint: connection from %s failed", client_address[0])

    def __init__(
        self, view: DeviceView, context: ssl.SSLContext, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        server = DeviceEndpoint.Server((host, port), _Handler, bind_and_activate=False)
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        server.server_bind()
        server.server_activate()
        server.view, server.gate, server.store = view, Gatekeeper(view), view.env.store
        self.server = server
        self.port: int = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, name="panoptes-device-endpoint", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)
