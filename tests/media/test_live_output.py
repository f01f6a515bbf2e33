"""The live output server as a browser uses it: many MJPEG viewers at their own pace, a
stalled viewer that harms no one, thumbnails, and the WebRTC stream."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import appkit
import cv2
import numpy as np
import pytest

from panoptes.media import mjpeg
from panoptes.media.mjpeg import MjpegServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def picture(i: int) -> np.ndarray:
    """640x360: left half red, right half blue, a grey level that counts frames."""
    img = np.zeros((360, 640, 3), np.uint8)
    img[:, :320] = (0, 0, 255)
    img[:, 320:] = (255, 0, 0)
    img[:40, :] = (i * 5) % 256
    return img


class Feeder:
    """Publishes pictures at about 30 fps from a thread, as the sink does."""

    def __init__(self, server: MjpegServer) -> None:
        self.server, self.count, self.stop = server, 0, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            self.server.publish(picture(self.count))
            self.count += 1
            time.sleep(1 / 30)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.fixture
def live():
    server = MjpegServer("127.0.0.1", 0)
    feeder = Feeder(server)
    yield server
    feeder.close()
    server.close()


def read_parts(url: str, parts: int, timeout: float = 20.0) -> list[np.ndarray]:
    return [
        cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR)
        for p in appkit.read_mjpeg(url, parts, timeout)
    ]


def test_many_viewers_and_a_stalled_one(live, monkeypatch):
    monkeypatch.setattr(mjpeg, "SEND_TIMEOUT", 2.0)
    # A viewer that connects and never reads: its socket fills, it must not hold up others.
    stalled = socket.create_connection(("127.0.0.1", live.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
    results: list[list[np.ndarray]] = [[] for _ in range(4)]

    def watch(i: int) -> None:
        results[i] = read_parts(live.url + "stream.mjpg", 8)

    threads = [threading.Thread(target=watch, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for frames in results:
        assert len(frames) == 8
        for img in frames:
            assert img.shape == (360, 640, 3)
            assert img[200, 100, 2] > 200 and img[200, 500, 0] > 200  # red | blue
        levels = [int(img[:30].mean()) for img in frames]
        assert len(set(levels)) > 1  # moving pictures, not one frame over and over
    # The stalled viewer is dropped once its send times out: the count goes back down.
    deadline = time.monotonic() + 30
    while live.viewers > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live.viewers == 0
    stalled.close()


def test_viewers_beyond_the_cap_get_503(live, monkeypatch):
    monkeypatch.setattr(mjpeg, "MAX_VIEWERS", 1)
    with urllib.request.urlopen(live.url + "stream.mjpg", timeout=10) as first:
        first.readline()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(live.url + "stream.mjpg", timeout=10)
        assert err.value.code == 503


def test_snapshot_and_thumbnail(live):
    deadline = time.monotonic() + 10
    while live.snapshot() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    with urllib.request.urlopen(live.url + "frame.jpg", timeout=10) as r:
        assert r.headers["Content-Type"] == "image/jpeg"
        full = cv2.imdecode(np.frombuffer(r.read(), np.uint8), cv2.IMREAD_COLOR)
    with urllib.request.urlopen(live.url + "frame.jpg?width=160", timeout=10) as r:
        thumb = cv2.imdecode(np.frombuffer(r.read(), np.uint8), cv2.IMREAD_COLOR)
    assert full.shape == (360, 640, 3) and thumb.shape == (90, 160, 3)
    assert thumb[50, 20, 2] > 200 and thumb[50, 140, 0] > 200


def test_webrtc_viewer_receives_the_live_picture():
    if "tensorflow" in sys.modules:
        # aiortc's libsrtp crashes the interpreter (SIGSEGV at import) once TensorFlow's
        # own OpenSSL is loaded; other tests of this run load TensorFlow. The output
        # sink process never imports TensorFlow, so run this test alone, as it runs there.
        here = f"{Path(__file__)}::test_webrtc_viewer_receives_the_live_picture"
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", here],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        return
    aiortc = pytest.importorskip("aiortc")
    from panoptes.media.webrtc import WebRtcPublisher

    publisher = WebRtcPublisher("127.0.0.1")
    server = MjpegServer("127.0.0.1", 0, webrtc=publisher)
    feeder = Feeder(server)
    try:
        with urllib.request.urlopen(server.url, timeout=10) as r:
            assert b"RTCPeerConnection" in r.read()  # the page plays WebRTC when it can

        async def view() -> list[np.ndarray]:
            pc = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))
            pc.addTransceiver("video", direction="recvonly")
            got: asyncio.Future = asyncio.get_running_loop().create_future()
            pc.on("track", lambda track: got.set_result(track))
            await pc.setLocalDescription(await pc.createOffer())
            body = json.dumps({"sdp": pc.localDescription.sdp, "type": "offer"}).encode()
            req = urllib.request.Request(
                server.url + "webrtc/offer", body, {"Content-Type": "application/json"}
            )
            answer = await asyncio.to_thread(
                lambda: json.loads(urllib.request.urlopen(req, timeout=30).read())
            )
            assert "video/H264" in answer["sdp"] or "H264/90000" in answer["sdp"]
            await pc.setRemoteDescription(aiortc.RTCSessionDescription(**answer))
            track = await asyncio.wait_for(got, 30)
            frames = []
            for _ in range(10):
                frame = await asyncio.wait_for(track.recv(), 30)
                frames.append(frame.to_ndarray(format="bgr24"))
            await pc.close()
            return frames

        frames = asyncio.run(view())
        for img in frames:
            assert img.shape == (360, 640, 3)
            assert img[200, 100, 2] > 180 and img[200, 500, 0] > 180  # red | blue
        assert len({int(img[:30].mean()) for img in frames}) > 1
        assert publisher.sent >= 10
    finally:
        feeder.close()
        server.close()
