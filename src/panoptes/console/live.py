"""Video for the browser: the MJPEG proxy of an instance's output, camera snapshots.

The browser only ever talks to the control plane: `open_mjpeg` relays any MJPEG
URL (the device's output server, or the runtime's own MjpegServer) byte for byte;
`snapshot_jpeg` grabs one frame of an RTSP camera and scales it to a thumbnail.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit, urlunsplit

READ_TIMEOUT = 15.0  # a stalled upstream ends the relay instead of holding it open
CONNECT_TIMEOUT = 5.0
THUMB_WIDTH = 320


class LiveUnavailable(Exception):
    """The upstream cannot be read; the message says why (for the page, never secrets)."""


@dataclass
class MjpegStream:
    content_type: str
    body: AsyncIterator[bytes]


async def open_mjpeg(url: str) -> MjpegStream:
    """Connect to URL (http://) and return its content type and a byte relay."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise LiveUnavailable(f"not an http:// MJPEG URL: {parts.scheme}://")
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, port), CONNECT_TIMEOUT
        )
    except (OSError, TimeoutError) as exc:
        raise LiveUnavailable(f"the device's video output does not answer ({exc})") from None
    # HTTP/1.0: the answer is the body until close, never chunked.
    writer.write(f"GET {path} HTTP/1.0\r\nHost: {parts.hostname}:{port}\r\n\r\n".encode())
    try:
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.close()
        raise LiveUnavailable("the device's video output sent no answer") from None
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[1] != "200":
        writer.close()
        raise LiveUnavailable(f"the device's video output answered {lines[0]!r}")
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
    }
    content_type = headers.get("content-type", "")
    if not content_type.startswith(("multipart/x-mixed-replace", "image/jpeg")):
        # Only video goes through: the relay is no way to read other HTTP services.
        writer.close()
        raise LiveUnavailable(f"the device's video output sent {content_type or 'no type'}")

    async def body() -> AsyncIterator[bytes]:
        try:
            while True:
                chunk = await asyncio.wait_for(reader.read(65536), READ_TIMEOUT)
                if not chunk:
                    return
                yield chunk
        except (OSError, TimeoutError):
            return
        finally:
            writer.close()

    return MjpegStream(content_type, body())


# --- camera snapshots -------------------------------------------------------------------


def stream_url(url: str, username: str | None, password: str | None) -> str:
    """The URL with the camera's credentials in its userinfo (how FFmpeg takes them)."""
    if not username:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    auth = quote(username, safe="")
    if password:
        auth += ":" + quote(password, safe="")
    return urlunsplit(parts._replace(netloc=f"{auth}@{host}"))


def grab_jpeg(url: str, width: int = THUMB_WIDTH) -> bytes:
    """One decoded frame of the stream as a JPEG WIDTH pixels wide (blocking, bounded)."""
    import cv2

    from panoptes.media.source import open_container

    try:
        with open_container(url) as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                image = frame.to_ndarray(format="bgr24")
                break
            else:
                raise LiveUnavailable("the camera sent no picture")
    except LiveUnavailable:
        raise
    except Exception as exc:  # PyAV raises many kinds; the URL may hold a password
        raise LiveUnavailable(f"cannot read the camera stream ({type(exc).__name__})") from None
    h, w = image.shape[:2]
    if w > width:
        image = cv2.resize(image, (width, max(2, h * width // w)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise LiveUnavailable("cannot encode the snapshot")
    return buf.tobytes()


@dataclass
class SnapshotCache:
    """Thumbnails kept for ``ttl`` seconds: a page of ten cameras opens ten streams once."""

    ttl: float = 30.0
    _items: dict[str, tuple[float, bytes]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: str, url: str) -> bytes:
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and now - hit[0] < self.ttl:
                return hit[1]
        jpeg = grab_jpeg(url)
        with self._lock:
            self._items[key] = (now, jpeg)
        return jpeg

    def forget(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)
