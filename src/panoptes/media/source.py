"""A camera source process: open a video file, RTSP URL or V4L2 device, decode, publish.

Run as ``python -m panoptes.media.source CONFIG_JSON`` (or ``@FILE``) by the runtime,
one process per camera stream, so a stuck or crashing decoder takes down nothing else. Frames are
converted to BGR once, here, straight into the ring slot (readers share that one
conversion). Live sources reconnect with backoff; a file plays once at its own frame
rate (like a camera) unless ``loop`` is set, then the ring is marked ENDED.

Config keys: ring, uri, name (camera node), pace (1.0 = real time, 0 = as fast as
possible), loop, max_frames, max_width, max_height, status_file (where the source
says why it has no frames: {"reason": ...}, "" once frames flow; for the runtime's
node status). Camera passwords never reach the log or the status file (``redact``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from panoptes.media.ring import (
    CTL_PAUSE,
    CTL_STOP,
    ENDED,
    PAUSED,
    STARTING,
    FrameRing,
    RingWriter,
)

log = logging.getLogger("panoptes.media.source")

RTSP_OPTIONS = {"rtsp_transport": "tcp", "timeout": "5000000"}  # microseconds
OPEN_TIMEOUT = 10.0  # seconds, for PyAV's open/read on network sources
MAX_BACKOFF = 10.0
# Test hook (tests only): after this many published frames the decode loop hangs
# without a heartbeat, like a stuck decoder, so the runtime's watchdog can be tested.
HANG_AFTER_FRAMES_ENV = "PANOPTES_TEST_HANG_AFTER_FRAMES"


def redact(text: str, uri: str) -> str:
    """``text`` with the password of ``uri`` masked (FFmpeg's errors quote the URL)."""
    netloc = urllib.parse.urlsplit(uri).netloc
    userinfo, at, _ = netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not (at and colon and password):
        return text
    for secret in dict.fromkeys((password, urllib.parse.unquote(password))):
        text = text.replace(f"{user}:{secret}@", f"{user}:***@")
        if len(secret) >= 4:  # also bare (a short one would mask unrelated text)
            text = text.replace(secret, "***")
    return text


def describe(exc: BaseException, uri: str) -> str:
    """An error in a user's words: FFmpeg's message without its errno and URL."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return redact(str(text), uri)


def is_live(uri: str) -> bool:
    return uri.startswith(("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "/dev/video"))


def open_container(uri: str) -> av.container.InputContainer:
    """Open ``uri`` with the options that keep a dead network source from blocking."""
    if uri.startswith(("rtsp://", "rtsps://")):
        return av.open(uri, options=RTSP_OPTIONS, timeout=OPEN_TIMEOUT)
    if uri.startswith("/dev/video"):
        return av.open(uri, format="v4l2", timeout=OPEN_TIMEOUT)
    if not is_live(uri) and not Path(uri).is_file():
        raise FileNotFoundError(f"no such video file: {uri}")
    return av.open(uri, timeout=OPEN_TIMEOUT)


def fit(width: int, height: int, max_w: int, max_h: int) -> tuple[int, int]:
    """The size to deliver: downscaled (aspect kept, even) when above the maximum."""
    if width <= max_w and height <= max_h:
        return width, height
    k = min(max_w / width, max_h / height)
    return max(2, int(width * k) // 2 * 2), max(2, int(height * k) // 2 * 2)


def to_bgr(frame: av.VideoFrame, out: np.ndarray) -> None:
    """Convert a decoded frame into ``out`` (HxWx3) with one pass, no extra buffer.

    yuv420p through OpenCV is markedly faster than PyAV's own bgr24 conversion; other
    formats and sizes go through libswscale.
    """
    h, w = out.shape[:2]
    if (
        frame.format.name in ("yuv420p", "yuvj420p")
        and frame.width == w
        and frame.height == h
        and w % 2 == 0
        and h % 2 == 0
    ):
        cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2BGR_I420, dst=out)
    else:
        np.copyto(out, frame.to_ndarray(format="bgr24", width=w, height=h))


class Source:
    def __init__(self, config: dict[str, Any]) -> None:
        self.cfg = config
        self.uri: str = config["uri"]
        self.shown_uri = config.get("display_uri") or redact(self.uri)  # logs and frames carry this
        self.name: str = config.get("name", "camera")
        self.pace = float(config.get("pace", 1.0))
        self.loop = bool(config.get("loop", False))
        self.max_frames = int(config.get("max_frames") or 0)
        self.max_w = int(config.get("max_width", 1920))
        self.max_h = int(config.get("max_height", 1080))
        self.ring = FrameRing.attach(config["ring"])
        self.writer = RingWriter(self.ring)
        self.published = 0
        self.stopping = False
        self.hang_after = int(os.environ.get(HANG_AFTER_FRAMES_ENV) or 0)
        self.shown_uri = redact(self.uri, self.uri)
        self.status_file = Path(config["status_file"]) if config.get("status_file") else None
        self.reason: str | None = None

    def _report(self, reason: str) -> None:
        """Say why there are no frames ("" once they flow), for the runtime's status."""
        reason = redact(reason, self.uri)
        if self.status_file is None or reason == self.reason:
            return
        self.reason = reason
        tmp = self.status_file.with_name(self.status_file.name + ".tmp")
        try:
            tmp.write_text(json.dumps({"reason": reason, "time": time.time()}))
            tmp.replace(self.status_file)
        except OSError as exc:
            log.warning("%s: cannot write %s: %s", self.name, self.status_file, exc)

    def _wait_while_paused(self) -> bool:
        """Block while the runtime asks for a pause; False when asked to stop."""
        if self.ring.control == CTL_PAUSE:
            self.ring.state = PAUSED
            log.info("%s: paused", self.name)
            while self.ring.control == CTL_PAUSE and not self.stopping:
                self.writer.heartbeat()
                time.sleep(0.05)
            log.info("%s: resumed", self.name)
            if self.ring.state == PAUSED:
                self.ring.state = STARTING  # RUNNING again with the next frame committed
        return not (self.stopping or self.ring.control == CTL_STOP)

    def run(self) -> int:
        self.writer.heartbeat()  # alive: the runtime's watchdog now expects regular beats
        live = is_live(self.uri)
        backoff = 1.0
        while not self.stopping:
            if not self._wait_while_paused():
                break
            try:
                container = open_container(self.uri)
            except (OSError, av.FFmpegError) as exc:
                why = describe(exc, self.uri)
                if not live:
                    log.error("%s: cannot open %s: %s", self.name, self.shown_uri, why)
                    self._report(f"cannot open {self.shown_uri}: {why}")
                    return 2
                self.ring.state = STARTING  # not available until a frame comes
                log.warning("%s: cannot reach %s (%s); retry in %.0fs", self.name, self.shown_uri,
                            why, backoff)  # fmt: skip
                self._report(f"cannot reach {self.shown_uri}: {why}")
                self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = 1.0
            error = ""
            try:
                done = self._play(container, live)
            except (OSError, av.FFmpegError) as exc:
                why = describe(exc, self.uri)
                log.warning("%s: stream error: %s", self.name, why)
                error = f" ({why})"
                done = not live
            finally:
                container.close()
            if done:
                break
            if live and not self.stopping:
                # A killed server ends the stream without an error: a disconnect.
                log.warning("%s: %s disconnected; reconnecting", self.name, self.shown_uri)
                self._report(f"{self.shown_uri} disconnected{error}; reconnecting")
                self.ring.state = STARTING
                self._sleep(backoff)
        self.ring.state = ENDED
        log.info("%s: ended after %d frames", self.name, self.published)
        return 0

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self.stopping:
            self.writer.heartbeat()
            time.sleep(0.05)

    def _play(self, container: av.container.InputContainer, live: bool) -> bool:
        """Decode until the stream ends; True when the source is finished for good."""
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate or stream.guessed_rate or 30)
        self.writer.set_info(fps=fps)
        start = time.monotonic()
        first_pts: float | None = None
        n = 0
        while True:
            for frame in container.decode(stream):
                self.writer.heartbeat()  # also when the frame is dropped (slots all held)
                if self.stopping or not self._wait_while_paused():
                    return True
                if self.hang_after and self.published >= self.hang_after:
                    while not self.stopping:  # the test hook: stuck, no heartbeat
                        time.sleep(0.1)
                    return True
                if self.pace > 0 and not live:
                    # Play a file at its own rate, like a camera would deliver it.
                    t = float(frame.pts * stream.time_base) if frame.pts is not None else n / fps
                    first_pts = t if first_pts is None else first_pts
                    delay = start + (t - first_pts) / self.pace - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                n += 1
                self._publish(frame)
                if self.max_frames and self.published >= self.max_frames:
                    return True
            if live or not self.loop:
                return not live
            container.seek(0)
            start, first_pts = time.monotonic(), None

    def _publish(self, frame: av.VideoFrame) -> None:
        w, h = fit(frame.width, frame.height, self.max_w, self.max_h)
        view = self.writer.begin(w, h)
        if view is None:
            return  # every slot held by readers: drop this frame (counted in the ring)
        to_bgr(frame, view)
        now = time.time()
        self.writer.commit(
            w,
            h,
            time_stamp=(int(now), int((now % 1) * 1e6)),
            extra={"stream_id": self.name, "uri": self.shown_uri},
        )
        if self.published == 0:
            self.writer.set_info(size=(w, h))
        if self.reason:
            self._report("")  # frames flow again
        self.published += 1


def main(argv: list[str]) -> int:
    # "@FILE": the config in a file, so a camera password is not on the command line
    # (which every user of the machine can read in ps).
    text = Path(argv[0][1:]).read_text() if argv[0].startswith("@") else argv[0]
    config = json.loads(text)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    source = Source(config)

    def _stop(signum: int, frame: Any) -> None:
        source.stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        return source.run()
    finally:
        source.writer.close()  # the readers' wake-up FIFOs
        source.ring.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
