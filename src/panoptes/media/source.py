"""A camera source process: open an RTSP URL, a video file or a V4L2 device, decode, publish.

Run as ``python -m panoptes.media.source CONFIG_JSON`` (or ``@FILE``: then a camera
password is not on the command line, which every user can read) by the runtime, one
process per camera stream, so a stuck or crashing decoder takes down nothing else. Frames are
converted to BGR once, here, straight into the ring slot (readers share that one
conversion). Live sources reconnect with capped exponential backoff and jitter; a
file plays once at its own frame rate (like a camera) unless ``loop`` is set, then
the ring is marked ENDED.

What the camera node's log says follows the spec's wording where it has one
("Failed to get SDP description: ...", "Camera did not provide an H264 encoded
stream"); camera credentials never appear in it (camera_url.mask).

Config keys: ring, uri, name (camera node), username, password (else inside the
URI), transport ("tcp" default, or "udp"), codecs (accepted codec names; default
h264, or $PANOPTES_CAMERA_CODECS), pace (1.0 = real time, 0 = as fast as possible),
loop (pace 0 on a file: every frame reaches every reader that keeps taking frames),
max_frames, max_pixels (larger streams are scaled down, aspect kept),
status_file (where the source says why it has no frames: {"reason": ..., "time": ...},
reason "" once frames flow; the runtime shows it in the node's status).
"""

from __future__ import annotations

import enum
import json
import logging
import math
import os
import random
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from panoptes.media import camera_url
from panoptes.media.ring import (
    CTL_PAUSE,
    CTL_STOP,
    ENDED,
    FAILED,
    PAUSED,
    STARTING,
    FrameRing,
    RingWriter,
)

log = logging.getLogger("panoptes.media.source")

RTSP_TIMEOUT_US = "5000000"  # a frozen camera ends a read after 5 s instead of never
OPEN_TIMEOUT = 10.0  # seconds, for PyAV's open/read on network sources
BACKOFF_MIN, BACKOFF_MAX = 0.5, 10.0
# The spec: streams above 2 megapixels are scaled to 1920x1080 or an equivalent size
# that keeps the aspect ratio: the same pixel budget.
MAX_PIXELS = 1920 * 1080
CODECS_ENV = "PANOPTES_CAMERA_CODECS"
NOT_H264 = "Camera did not provide an H264 encoded stream"
EXIT_CONFIG = 2  # the runtime does not restart a source that exits with this
# A file played at full speed (pace 0) is lossless: its ring is IN_ORDER, readers take
# frames in order and the source waits for the slowest (ring.READER_PATIENCE at most).
# Test hook (tests only): after this many published frames the decode loop hangs
# without a heartbeat, like a stuck decoder, so the runtime's watchdog can be tested.
HANG_AFTER_FRAMES_ENV = "PANOPTES_TEST_HANG_AFTER_FRAMES"


class SourceError(Exception):
    """A problem retrying cannot fix (no such file, a codec that is not accepted)."""


class _End(enum.Enum):
    DONE = "done"  # finished for good (a file played out, stop, max_frames)
    LOST = "lost"  # a live stream ended: reconnect
    PAUSED = "paused"  # a live stream was closed for a pause: reopen on resume


def open_container(uri: str, transport: str = "tcp") -> av.container.InputContainer:
    """Open ``uri`` with the options that keep a dead network source from blocking."""
    if uri.startswith(("rtsp://", "rtsps://")):
        options = {"rtsp_transport": transport, "timeout": RTSP_TIMEOUT_US}
        return av.open(uri, options=options, timeout=OPEN_TIMEOUT)
    if uri.startswith("/dev/video"):
        return av.open(uri, format="v4l2", timeout=OPEN_TIMEOUT)
    if not camera_url.is_live(uri) and not Path(uri).is_file():
        raise SourceError(f"no such video file: {uri}")
    return av.open(uri, timeout=OPEN_TIMEOUT)


def _ffmpeg_text(exc: BaseException) -> str:
    """FFmpeg's message without its errno and the URL it quotes (credentials)."""
    return str(getattr(exc, "strerror", None) or exc or type(exc).__name__)


def describe_open_error(uri: str, exc: BaseException) -> str:
    """What a failed open means, in the camera log's wording (no credentials)."""
    text = _ffmpeg_text(exc)
    if not uri.startswith(("rtsp://", "rtsps://")):
        return f"cannot open {camera_url.mask(uri)}: {text}"
    m = re.match(r"Server returned (\d{3}) ([^(]*)", text)
    if m:
        code, reason = int(m[1]), f"{m[1]} {m[2].strip()}"
    elif isinstance(exc, OSError) and exc.errno and exc.errno < 4096:
        code, reason = -exc.errno, f"Connection to server failed: {text} ({-exc.errno})"
    else:
        code, reason = -1, text
    msg = f"Failed to get SDP description: {reason}; with the result code: {code}"
    if code == 401:
        msg += " (check the camera's username and password)"
    return msg


def fit(width: int, height: int, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """The size to deliver: within ``max_pixels``, aspect kept, even sides."""
    if width * height <= max_pixels:
        return width, height
    k = math.sqrt(max_pixels / (width * height))
    return max(2, int(width * k) // 2 * 2), max(2, int(height * k) // 2 * 2)


def to_bgr(frame: av.VideoFrame, out: np.ndarray) -> None:
    """Convert (and scale) a decoded frame into ``out`` (HxWx3), written in place.

    yuv420p through OpenCV is markedly faster than PyAV's own bgr24 conversion, so
    other formats and sizes are first brought to yuv420p at the output size by
    libswscale (cheaper at 1.5 bytes a pixel), then converted the same way.
    """
    h, w = out.shape[:2]
    if w % 2 or h % 2:
        np.copyto(out, frame.to_ndarray(format="bgr24", width=w, height=h))
        return
    if frame.format.name not in ("yuv420p", "yuvj420p") or (frame.width, frame.height) != (w, h):
        frame = frame.reformat(width=w, height=h, format="yuv420p")
    cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2BGR_I420, dst=out)


class Backoff:
    """Capped exponential delays with jitter: cameras that failed together (a switch
    rebooted) do not all retry in the same instant."""

    def __init__(self, low: float = BACKOFF_MIN, high: float = BACKOFF_MAX) -> None:
        self.low, self.high, self.tries = low, high, 0

    def next(self) -> float:
        cap = min(self.high, self.low * 2**self.tries)
        self.tries += 1
        return cap * (0.5 + 0.5 * random.random())

    def reset(self) -> None:
        self.tries = 0


def accepted_codecs(config: dict[str, Any]) -> set[str]:
    given = config.get("codecs") or os.environ.get(CODECS_ENV, "h264")
    names = given.split(",") if isinstance(given, str) else list(given)
    aliases = {"h265": "hevc", "avc": "h264"}
    return {aliases.get(n.strip().lower(), n.strip().lower()) for n in names if n.strip()}


class Source:
    def __init__(self, config: dict[str, Any]) -> None:
        self.cfg = config
        self.name: str = config.get("name", "camera")
        user, password = camera_url.credentials(config["uri"])
        user = config.get("username") or user
        password = config.get("password") or password
        self.url = camera_url.with_credentials(config["uri"], user, password)
        self.secrets = (password,)
        self.shown = camera_url.mask(self.url)  # the URL as logs and apps see it
        self.transport = str(config.get("transport") or "tcp").lower()
        if self.transport not in ("tcp", "udp"):
            raise SourceError(f"transport must be tcp or udp, not {self.transport!r}")
        self.codecs = accepted_codecs(config)
        self.pace = float(config.get("pace", 1.0))
        self.loop = bool(config.get("loop", False))
        self.max_frames = int(config.get("max_frames") or 0)
        self.max_pixels = int(config.get("max_pixels") or MAX_PIXELS)
        self.lossless = self.pace <= 0 and not camera_url.is_live(self.url)
        self.ring = FrameRing.attach(config["ring"])
        self.writer = RingWriter(self.ring)
        self.ring.in_order = self.lossless
        self.published = 0
        self.stopping = False
        self.backoff = Backoff()
        self._lost_at: float | None = None  # wall time of the last frame before a loss
        self._last_frame = 0.0
        self._size: tuple[int, int] | None = None
        self.hang_after = int(os.environ.get(HANG_AFTER_FRAMES_ENV) or 0)
        self.status_file = Path(config["status_file"]) if config.get("status_file") else None
        self.reason: str | None = None

    def _report(self, reason: str) -> None:
        """Say why there are no frames ("" once they flow), for the runtime's status."""
        reason = camera_url.mask(reason, self.secrets)
        if self.status_file is None or reason == self.reason:
            return
        self.reason = reason
        tmp = self.status_file.with_name(self.status_file.name + ".tmp")
        try:
            tmp.write_text(json.dumps({"reason": reason, "time": time.time()}))
            tmp.replace(self.status_file)
        except OSError as exc:
            log.warning("%s: cannot write %s: %s", self.name, self.status_file, exc)

    def _say(self, level: int, text: str) -> None:
        log.log(level, "%s: %s", self.name, camera_url.mask(text, self.secrets))

    def _wait_while_paused(self) -> float:
        """Block while the runtime asks for a pause; returns the seconds paused."""
        if self.ring.control != CTL_PAUSE:
            return 0.0
        t0 = time.monotonic()
        self.ring.state = PAUSED
        self._say(logging.INFO, "paused")
        while self.ring.control == CTL_PAUSE and not self.stopping:
            self.writer.heartbeat()
            time.sleep(0.05)
        self._say(logging.INFO, "resumed")
        if self.ring.state == PAUSED:
            self.ring.state = STARTING  # RUNNING again with the next frame committed
        return time.monotonic() - t0

    def _halted(self) -> bool:
        return self.stopping or self.ring.control == CTL_STOP

    def run(self) -> int:
        self.writer.heartbeat()  # alive: the runtime's watchdog now expects regular beats
        live = camera_url.is_live(self.url)
        while not self._halted():
            self._wait_while_paused()
            if self._halted():
                break
            try:
                container = open_container(self.url, self.transport)
            except SourceError as exc:
                return self._fail(str(exc))
            except (OSError, av.FFmpegError) as exc:
                if not live:
                    return self._fail(describe_open_error(self.url, exc))
                self.ring.state = STARTING  # not available until a frame comes
                delay = self.backoff.next()
                why = describe_open_error(self.url, exc)
                self._say(logging.WARNING, f"{why}; retry in {delay:.1f} s ({self.shown})")
                self._report(f"cannot reach {self.shown}: {_ffmpeg_text(exc)}")
                self._sleep(delay)
                continue
            error = ""
            try:
                end = self._play(container, live)
            except SourceError as exc:
                return self._fail(str(exc))
            except (OSError, av.FFmpegError) as exc:
                error = f" ({_ffmpeg_text(exc)})"
                self._say(logging.WARNING, f"stream error: {_ffmpeg_text(exc)} ({self.shown})")
                end = _End.LOST if live else _End.DONE
            finally:
                container.close()
            if end is _End.DONE:
                break
            if end is _End.LOST and not self._halted():
                # A killed server ends the stream without an error: a disconnect.
                self._lost_at = self._lost_at or self._last_frame or time.time()
                self.ring.state = STARTING
                delay = self.backoff.next()
                self._say(
                    logging.WARNING, f"{self.shown} disconnected; reconnecting in {delay:.1f} s"
                )
                self._report(f"{self.shown} disconnected{error}; reconnecting")
                self._sleep(delay)
        self.ring.state = ENDED
        self._say(logging.INFO, f"ended after {self.published} frames")
        return 0

    def _fail(self, why: str) -> int:
        self._say(logging.ERROR, why)
        self._report(why)
        self.ring.state = FAILED
        return EXIT_CONFIG

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self.stopping:
            self.writer.heartbeat()
            time.sleep(0.05)

    def _open_stream(self, container: av.container.InputContainer, live: bool) -> Any:
        if not container.streams.video:
            raise SourceError(f"{self.shown} has no video stream")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        if not self.uri_is_device() and codec not in self.codecs:
            raise SourceError(
                f"{NOT_H264} (it sends {codec}); reconfigure the camera for H.264, or accept "
                f"{codec} with {CODECS_ENV}={','.join(sorted(self.codecs | {codec}))}"
            )
        # Frame threads add one frame of delay per thread: a live camera decodes with
        # slice threads (low latency), a file with frame threads (throughput).
        stream.thread_type = "SLICE" if live else "AUTO"
        return stream

    def uri_is_device(self) -> bool:
        return self.url.startswith("/dev/video")  # raw/MJPEG webcams are not H.264

    def _play(self, container: av.container.InputContainer, live: bool) -> _End:
        """Decode until the stream ends, stops or (live) is paused."""
        stream = self._open_stream(container, live)
        fps = float(stream.average_rate or stream.guessed_rate or 30)
        self.writer.set_info(fps=fps)
        start = time.monotonic()
        first_pts: float | None = None
        arrived: dict[int | None, float] = {}  # pts -> wall time its packet came in
        n = 0
        while True:
            for packet in container.demux(stream):
                now = time.time()
                arrived[packet.pts] = now
                for frame in packet.decode():
                    self.writer.heartbeat()  # also when the frame is dropped (slots all held)
                    if self._halted():
                        return _End.DONE
                    if self.ring.control == CTL_PAUSE:
                        if live:
                            return _End.PAUSED  # close the connection while paused
                        start += self._wait_while_paused()  # a file resumes where it was
                        if self._halted():
                            return _End.DONE
                    if self.hang_after and self.published >= self.hang_after:
                        while not self.stopping:  # the test hook: stuck, no heartbeat
                            time.sleep(0.1)
                        return _End.DONE
                    if self.pace > 0 and not live:
                        # Play a file at its own rate, like a camera would deliver it.
                        t = (
                            float(frame.pts * stream.time_base)
                            if frame.pts is not None
                            else n / fps
                        )
                        first_pts = t if first_pts is None else first_pts
                        delay = start + (t - first_pts) / self.pace - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                    n += 1
                    self._publish(frame, arrived.pop(frame.pts, now) if live else time.time())
                    if len(arrived) > 64:  # pts the decoder never returned (errors)
                        arrived.clear()
                    if self.max_frames and self.published >= self.max_frames:
                        return _End.DONE
            if live:
                return _End.LOST
            if not self.loop:
                return _End.DONE
            container.seek(0)
            start, first_pts = time.monotonic(), None

    def _publish(self, frame: av.VideoFrame, stamp: float) -> None:
        w, h = fit(frame.width, frame.height, self.max_pixels)
        view = self.writer.begin(w, h)
        if view is None:
            return  # every slot held by readers: drop this frame (counted in the ring)
        to_bgr(frame, view)
        if self._size != (w, h):
            # Before the commit: whoever holds the first frame of a new size finds its
            # size in the ring's info and the scaling in the log.
            self._size = (w, h)
            self.writer.set_info(size=(w, h))
            if (w, h) != (frame.width, frame.height):
                self._say(logging.INFO, f"{frame.width}x{frame.height} scaled to {w}x{h}")
        if self._lost_at is not None:
            self._say(
                logging.INFO, f"frames again after a gap of {time.time() - self._lost_at:.1f} s"
            )
            self._lost_at = None
        self.writer.commit(
            w,
            h,
            time_stamp=(int(stamp), int((stamp % 1) * 1e6)),
            extra={"stream_id": self.name, "uri": self.shown},
        )
        if self.reason:
            self._report("")  # frames flow (again)
        self._last_frame = time.time()
        self.backoff.reset()  # connected and decoding: the next failure starts short
        self.published += 1


def main(argv: list[str]) -> int:
    text = Path(argv[0][1:]).read_text() if argv[0].startswith("@") else argv[0]
    config = json.loads(text)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        source = Source(config)
    except SourceError as exc:
        log.error("%s: %s", config.get("name", "camera"), exc)
        return EXIT_CONFIG

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
