"""WebRTC output: the live picture in a browser with sub-second latency (aiortc).

Why WebRTC rather than HLS/LL-HLS: HLS buffers whole segments (seconds of delay;
LL-HLS needs partial segments and blocking playlist reloads that FFmpeg's muxer does
not make), while a WebRTC peer shows a frame as soon as it is encoded and sent, which
is what someone aiming a camera or checking an overlay needs. The cost is an encoder
per viewer, so peers are capped (``MAX_PEERS``) and the picture is scaled to at most
``MAX_WIDTH``; MJPEG (mjpeg.py) stays the way to show many viewers at once.

Signalling is one HTTP exchange (non-trickle ICE: aiortc gathers every candidate
before it answers): the browser POSTs its offer to ``/webrtc/offer`` on the output
server and gets the answer back. Each peer's track pulls the newest picture when its
encoder is ready for one: a queue of one, so a slow peer skips frames, never lags.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import threading
import time
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcrtpsender import RTCRtpSender

from panoptes.media import render

MAX_PEERS = 4
MAX_WIDTH = 1280
ANSWER_TIMEOUT = 20.0
CLOCK = 90_000  # the RTP video clock


def _only_on(host: str) -> None:
    """Offer ICE candidates on ``host`` only, the address the output server listens on.

    aioice offers every interface's address except loopback; a server bound to one
    address (127.0.0.1 by default) must not send media from, or to, any other.
    """
    if host in ("", "0.0.0.0", "::"):
        return
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [host]


class WebRtcPublisher:
    """Answers WebRTC offers and sends every peer the newest published picture."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        _only_on(host)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="webrtc", daemon=True)
        self._thread.start()
        self._peers: set[Any] = set()
        self._image: np.ndarray | None = None
        self._seq = 0
        self._waiters: list[asyncio.Future] = []
        self._t0 = time.monotonic()
        self.sent = 0  # frames handed to encoders (all peers)

    @property
    def peers(self) -> int:
        return len(self._peers)

    def answer(self, sdp: str, kind: str = "offer") -> dict[str, str]:
        """The answer to a browser's offer (blocking; called from an HTTP thread)."""
        if kind != "offer":
            raise ValueError(f"expected an SDP offer, got {kind!r}")
        future = asyncio.run_coroutine_threadsafe(self._answer(sdp), self._loop)
        return future.result(ANSWER_TIMEOUT)

    async def _answer(self, sdp: str) -> dict[str, str]:
        if len(self._peers) >= MAX_PEERS:
            raise RuntimeError(f"at most {MAX_PEERS} WebRTC viewers; use /stream.mjpg")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN: a local network
        self._peers.add(pc)

        @pc.on("connectionstatechange")
        async def _changed() -> None:
            if pc.connectionState in ("failed", "closed"):
                self._peers.discard(pc)
                await pc.close()

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            pc.addTrack(_NewestFrameTrack(self))
            # H.264 first: libx264 costs less CPU per viewer than libvpx's VP8.
            codecs = RTCRtpSender.getCapabilities("video").codecs
            preferred = sorted(codecs, key=lambda c: c.mimeType.lower() != "video/h264")
            for t in pc.getTransceivers():
                if t.kind == "video":
                    t.setCodecPreferences(preferred)
            await pc.setLocalDescription(await pc.createAnswer())
        except BaseException:
            self._peers.discard(pc)
            await pc.close()
            raise
        return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}

    def publish(self, image: np.ndarray) -> None:
        """Offer the newest picture (BGR); no work at all while nobody is connected."""
        if not self._peers:
            return
        small = render.thumbnail(image, MAX_WIDTH)
        self._loop.call_soon_threadsafe(self._set, small)

    def _set(self, image: np.ndarray) -> None:
        self._image, self._seq = image, self._seq + 1
        for f in self._waiters:
            if not f.done():
                f.set_result(None)
        self._waiters.clear()

    async def next_frame(self, after: int) -> tuple[int, av.VideoFrame]:
        while self._seq <= after or self._image is None:
            f = self._loop.create_future()
            self._waiters.append(f)
            await f
        frame = av.VideoFrame.from_ndarray(self._image, format="bgr24")
        frame.pts = int((time.monotonic() - self._t0) * CLOCK)
        frame.time_base = fractions.Fraction(1, CLOCK)
        self.sent += 1
        return self._seq, frame

    def close(self) -> None:
        async def _close_all() -> None:
            for pc in list(self._peers):
                await pc.close()
            self._peers.clear()

        if self._loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(_close_all(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


class _NewestFrameTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, publisher: WebRtcPublisher) -> None:
        super().__init__()
        self._pub = publisher
        self._seq = 0

    async def recv(self) -> av.VideoFrame:
        self._seq, frame = await self._pub.next_frame(self._seq)
        return frame
