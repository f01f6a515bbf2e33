"""The output sink process (``panorama::hdmi_data_sink``): render, tile, encode, serve.

Run as ``python -m panoptes.media.sink CONFIG_JSON``. It reads the output rings the
applications ``put()`` into, draws their labels and rectangles, tiles the streams into
one picture (as the appliance's HDMI output did), and delivers that picture to an
MP4 file (PyAV/libx264) and the live output server (mjpeg.py: MJPEG, snapshots, and
WebRTC through webrtc.py for a low-latency browser view).

Several applications may share one output; the most recently started one owns it:
each sink writes its id into ``owner_file`` when it starts and stops publishing to
the shared endpoint once another id is there. Its MP4 file is its own and continues.

Config keys: rings [{ring, streams}], mp4 (path or null), fps, mjpeg ({host, port,
webrtc (default true)} or null), status_file, owner_file, owner_id.
"""

from __future__ import annotations

import fractions
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

from panoptes.media import render
from panoptes.media.mjpeg import MjpegServer
from panoptes.media.ring import FrameRing, RingReader

log = logging.getLogger("panoptes.media.sink")
POLL = 0.005


class Mp4Writer:
    def __init__(self, path: Path, size: tuple[int, int], fps: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), "w")
        rate = fractions.Fraction(fps).limit_denominator(1001)
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        self.stream = self.container.add_stream(codec, rate=rate)
        self.stream.width, self.stream.height = size
        self.stream.pix_fmt = "yuv420p"
        self.time_base = fractions.Fraction(rate.denominator, rate.numerator)
        self.stream.time_base = self.time_base
        if codec == "libx264":
            self.stream.options = {"preset": "veryfast", "crf": "20"}
        self.frames = 0

    def write(self, canvas: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(canvas, format="bgr24")
        frame.pts = self.frames
        frame.time_base = self.time_base
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


class Sink:
    def __init__(self, config: dict[str, Any]) -> None:
        self.cfg = config
        self.readers = [RingReader(FrameRing.attach(r["ring"])) for r in config["rings"]]
        self.offsets = []
        total = 0
        for r in config["rings"]:
            self.offsets.append(total)
            total += max(1, int(r.get("streams", 1)))
        self.tiles = total
        self.fps = float(config.get("fps") or 30.0)
        self.canvas: np.ndarray | None = None
        self.mp4: Mp4Writer | None = None
        self.mjpeg: MjpegServer | None = None
        self.frames = 0
        self.stopping = False
        self.owner_file = Path(config["owner_file"]) if config.get("owner_file") else None
        self.owner_id = str(config.get("owner_id", ""))
        self._owner_checked = 0.0
        self._owner = True
        m = config.get("mjpeg")
        if m is not None:
            host = m.get("host", "127.0.0.1")
            webrtc = None
            if m.get("webrtc", True):
                from panoptes.media.webrtc import WebRtcPublisher  # aiortc: only when used

                webrtc = WebRtcPublisher(host)
            self.mjpeg = MjpegServer(host, int(m.get("port", 0)), webrtc=webrtc)
            log.info("live output at %s (MJPEG%s)", self.mjpeg.url, ", WebRTC" * bool(webrtc))
        if self.owner_file is not None:
            self.owner_file.parent.mkdir(parents=True, exist_ok=True)
            self.owner_file.write_text(self.owner_id)
        self._status()

    def _status(self) -> None:
        if not self.cfg.get("status_file"):
            return
        doc = {
            "frames": self.frames,
            "url": self.mjpeg.url if self.mjpeg else None,
            "owner": self._owner,
            "size": None if self.canvas is None else list(self.canvas.shape[1::-1]),
        }
        tmp = Path(self.cfg["status_file"] + ".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(self.cfg["status_file"])

    def _is_owner(self) -> bool:
        now = time.monotonic()
        if self.owner_file is not None and now - self._owner_checked > 0.5:
            self._owner_checked = now
            try:
                owner = self.owner_file.read_text().strip()
            except FileNotFoundError:
                owner = self.owner_id
            if (owner == self.owner_id) != self._owner:
                self._owner = owner == self.owner_id
                log.info("shared output %s", "claimed" if self._owner else "taken by a newer app")
        return self._owner

    def run(self) -> int:
        last_status = time.monotonic()
        while not self.stopping:
            busy = self.step()
            if time.monotonic() - last_status > 0.5:
                self._status()
                last_status = time.monotonic()
            if not busy:
                time.sleep(POLL)
        self.step()  # whatever was put before the stop
        self.close()
        return 0

    def step(self) -> bool:
        emitted = False
        for reader, offset in zip(self.readers, self.offsets, strict=True):
            frames = reader.take_all()
            if not frames:
                continue
            try:
                for f in frames:
                    self._draw(offset, f)
                    if f.index >= f.count - 1:
                        self._emit()
                        emitted = True
            finally:
                reader.release()
        return emitted

    def _draw(self, offset: int, frame: Any) -> None:
        if self.canvas is None:
            w, h = render.canvas_size(frame.image.shape[1::-1], self.tiles)
            self.canvas = np.zeros((h, w, 3), np.uint8)
            if self.cfg.get("mp4"):
                self.mp4 = Mp4Writer(Path(self.cfg["mp4"]), (w, h), self.fps)
        tile = min(offset + frame.index, self.tiles - 1)
        cell = render.place(self.canvas, tile, self.tiles, frame.image)
        render.draw(cell, frame.extra.get("ann", []))

    def _emit(self) -> None:
        assert self.canvas is not None
        if self.mp4 is not None:
            self.mp4.write(self.canvas)
        if self.mjpeg is not None and self._is_owner():
            self.mjpeg.publish(self.canvas)
        self.frames += 1

    def close(self) -> None:
        if self.mp4 is not None:
            self.mp4.close()
            self.mp4 = None
        if self.mjpeg is not None:
            self.mjpeg.close()
        for r in self.readers:
            r.close()
            r.ring.close()
        self._status()
        log.info("output ended after %d frames", self.frames)


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    sink = Sink(json.loads(argv[0]))

    def _stop(signum: int, frame: Any) -> None:
        sink.stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return sink.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
