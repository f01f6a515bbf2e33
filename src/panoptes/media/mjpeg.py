"""MJPEG over HTTP: the "HDMI port" of a headless box, viewable in any browser.

``/`` a page showing the stream, ``/stream.mjpg`` multipart JPEG, ``/frame.jpg`` the
latest picture. JPEG encoding happens only while someone is watching.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

BOUNDARY = b"panoptesframe"
_PAGE = b"""<!doctype html><title>Panoptes output</title>
<body style="margin:0;background:#111"><img src="/stream.mjpg" style="max-width:100%"></body>
"""


class MjpegServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, quality: int = 80) -> None:
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._seq = 0
        self._watchers = 0
        self.quality = quality
        self.closed = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet: the sink log is for video
                pass

            def do_GET(self) -> None:
                if self.path == "/":
                    self._send(200, "text/html", _PAGE)
                elif self.path.startswith("/frame.jpg"):
                    jpeg = server.wait_frame(0, timeout=5.0)[1]
                    if jpeg is None:
                        self._send(503, "text/plain", b"no frame yet")
                    else:
                        self._send(200, "image/jpeg", jpeg)
                elif self.path.startswith("/stream.mjpg"):
                    self._stream()
                else:
                    self._send(404, "text/plain", b"not found")

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self) -> None:
                self.send_response(200)
                ctype = f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}"
                self.send_header("Content-Type", ctype)
                self.end_headers()
                seq = 0
                try:
                    while not server.closed:
                        seq, jpeg = server.wait_frame(seq, timeout=1.0)
                        if jpeg is None:
                            continue
                        self.wfile.write(
                            b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\n"
                            b"Content-Length: " + str(len(jpeg)).encode() + b"\r\n\r\n"
                            + jpeg + b"\r\n"
                        )  # fmt: skip
                except (BrokenPipeError, ConnectionResetError):
                    return

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def wait_frame(self, after: int, timeout: float) -> tuple[int, bytes | None]:
        with self._cond:
            self._watchers += 1
            try:
                self._cond.wait_for(lambda: self._seq > after or self.closed, timeout)
                return self._seq, self._jpeg
            finally:
                self._watchers -= 1

    @property
    def watched(self) -> bool:
        return self._watchers > 0 or self._jpeg is None

    def publish(self, canvas: np.ndarray) -> None:
        """Offer a new picture; encoded only if a client waits (or none was ever made)."""
        if not self.watched:
            return
        ok, buf = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if ok:
            with self._cond:
                self._jpeg, self._seq = buf.tobytes(), self._seq + 1
                self._cond.notify_all()

    def close(self) -> None:
        self.closed = True
        with self._cond:
            self._cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()
