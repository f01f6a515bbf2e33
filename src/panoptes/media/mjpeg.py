"""The live output over HTTP: the "HDMI port" of a headless box, viewable in any browser.

``/`` a page showing the stream (WebRTC when the server has it, else MJPEG),
``/stream.mjpg`` multipart JPEG, ``/frame.jpg[?width=N]`` the latest picture (a
thumbnail when ``width`` is given), ``POST /webrtc/offer`` the WebRTC signalling
(webrtc.py). JPEG encoding happens only while someone is watching, once per frame
for every viewer.

Each MJPEG viewer has a queue of one: it always gets the newest picture, never a
backlog, so a slow viewer skips frames instead of growing memory. A viewer that stops
reading (its socket buffer full) is dropped after ``SEND_TIMEOUT``; at most
``MAX_VIEWERS`` watch at once (others get 503), so viewers cannot exhaust threads.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from panoptes.media import render

BOUNDARY = b"panoptesframe"
MAX_VIEWERS = 16
SEND_TIMEOUT = 10.0  # seconds a viewer may leave a part unread before it is dropped
_PAGE = """<!doctype html><meta charset="utf-8"><title>Panoptes output</title>
<body style="margin:0;background:#111">
<video id="v" autoplay muted playsinline style="max-width:100%;display:none"></video>
<img id="m" style="max-width:100%;display:none">
<script>
const webrtc = WEBRTC;
async function play() {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", {direction: "recvonly"});
  pc.ontrack = (e) => { const v = document.getElementById("v");
    v.srcObject = e.streams[0] || new MediaStream([e.track]); v.style.display = "block"; };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((ok) => { if (pc.iceGatheringState === "complete") ok();
    else pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && ok(); });
  const r = await fetch("webrtc/offer", {method: "POST", headers: {"Content-Type":
    "application/json"}, body: JSON.stringify(pc.localDescription)});
  if (!r.ok) throw new Error(await r.text());
  await pc.setRemoteDescription(await r.json());
}
function mjpeg() { const m = document.getElementById("m");
  m.src = "stream.mjpg"; m.style.display = "block"; }
if (webrtc && window.RTCPeerConnection) play().catch(mjpeg); else mjpeg();
</script></body>
"""


class MjpegServer:
    """Serves the newest published picture to MJPEG viewers (and WebRTC peers)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        quality: int = 80,
        webrtc: Any = None,
    ) -> None:
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._image: np.ndarray | None = None  # the newest picture, for thumbnails
        self._seq = 0
        self._waiting = 0
        self.viewers = 0
        self.quality = quality
        self.webrtc = webrtc  # a webrtc.WebRtcPublisher, or None
        self.closed = False
        server = self
        page = _PAGE.replace("WEBRTC", "true" if webrtc is not None else "false").encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet: the sink log is for video
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/":
                    self._send(200, "text/html; charset=utf-8", page)
                elif url.path == "/frame.jpg":
                    width = parse_qs(url.query).get("width", [""])[0]
                    jpeg = server.snapshot(int(width) if width.isdigit() else None)
                    if jpeg is None:
                        self._send(503, "text/plain", b"no frame yet")
                    else:
                        self._send(200, "image/jpeg", jpeg)
                elif url.path == "/stream.mjpg":
                    self._stream()
                else:
                    self._send(404, "text/plain", b"not found")

            def do_POST(self) -> None:
                if urlsplit(self.path).path != "/webrtc/offer" or server.webrtc is None:
                    self._send(404, "text/plain", b"not found")
                    return
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    offer = json.loads(self.rfile.read(min(length, 1 << 20)))
                    answer = server.webrtc.answer(offer["sdp"], offer.get("type", "offer"))
                except (ValueError, KeyError, TypeError) as exc:
                    self._send(400, "text/plain", f"bad offer: {exc}".encode())
                    return
                except RuntimeError as exc:  # too many peers
                    self._send(503, "text/plain", str(exc).encode())
                    return
                self._send(200, "application/json", json.dumps(answer).encode())

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _stream(self) -> None:
                if not server._join():
                    self._send(503, "text/plain", b"too many viewers")
                    return
                try:
                    self.connection.settimeout(SEND_TIMEOUT)
                    self.send_response(200)
                    ctype = f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}"
                    self.send_header("Content-Type", ctype)
                    self.send_header("Cache-Control", "no-store")
                    self.end_headers()
                    seq = 0
                    while not server.closed:
                        seq, jpeg = server.wait_frame(seq, timeout=1.0)
                        if jpeg is None:
                            continue
                        self.wfile.write(
                            b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\n"
                            b"Content-Length: " + str(len(jpeg)).encode() + b"\r\n\r\n"
                            + jpeg + b"\r\n"
                        )  # fmt: skip
                except OSError:  # gone, reset, or stalled past SEND_TIMEOUT
                    return
                finally:
                    server._leave()

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def _join(self) -> bool:
        with self._cond:
            if self.viewers >= MAX_VIEWERS:
                return False
            self.viewers += 1
            return True

    def _leave(self) -> None:
        with self._cond:
            self.viewers -= 1

    def wait_frame(self, after: int, timeout: float) -> tuple[int, bytes | None]:
        """The newest JPEG once it is newer than ``after`` (or the current one on timeout)."""
        with self._cond:
            self._waiting += 1
            try:
                self._cond.wait_for(lambda: self._seq > after or self.closed, timeout)
                return self._seq, self._jpeg
            finally:
                self._waiting -= 1

    def snapshot(self, max_width: int | None = None) -> bytes | None:
        """The latest picture as JPEG, scaled down to ``max_width`` for thumbnails."""
        with self._cond:
            image, jpeg = self._image, self._jpeg
        if image is None:
            return None
        if max_width is None or max_width >= image.shape[1]:
            return jpeg if jpeg is not None else render.jpeg(image, self.quality)
        return render.jpeg(render.thumbnail(image, max_width), self.quality)

    @property
    def watched(self) -> bool:
        return self.viewers > 0 or self._waiting > 0

    def publish(self, canvas: np.ndarray) -> None:
        """Offer a new picture; JPEG-encoded only while a viewer waits for one."""
        image = canvas.copy()  # the sink draws the next frame into ``canvas``
        jpeg = render.jpeg(image, self.quality) if self.watched else None
        with self._cond:
            self._image, self._jpeg, self._seq = image, jpeg, self._seq + 1
            self._cond.notify_all()
        if self.webrtc is not None:
            self.webrtc.publish(image)

    def close(self) -> None:
        self.closed = True
        with self._cond:
            self._cond.notify_all()
        if self.webrtc is not None:
            self.webrtc.close()
        self.httpd.shutdown()
        self.httpd.server_close()
