"""Media fixtures: the product's test camera, frame rings, camera source processes."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from panoptes.media import FrameRing, segment_name
from panoptes.media.testcamera import CameraServer, unavailable

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))  # appkit: clips made here

FRAME_CAPACITY = 1920 * 1088 * 3  # what the runtime gives a camera ring


@pytest.fixture(scope="session")
def camera_checked() -> Callable[[str], None]:
    """``need(codec)``: skip unless the test camera can serve ``codec`` here."""
    known: dict[str, str | None] = {}

    def need(codec: str = "h264") -> None:
        if codec not in known:
            known[codec] = unavailable(codec)
        if known[codec]:
            pytest.skip(known[codec])

    return need


@pytest.fixture
def camera(camera_checked, tmp_path: Path) -> Iterator[Callable[..., CameraServer]]:
    """``camera(**options)``: a running test camera (CameraServer), killed at the end."""
    started: list[CameraServer] = []

    def make(**options) -> CameraServer:
        camera_checked(options.get("codec", "h264"))
        log = tmp_path / f"camera-{len(started)}.log"
        server = CameraServer(log=log, **options).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.kill()


@pytest.fixture
def ring() -> Iterator[Callable[[int], FrameRing]]:
    """``ring(nslots)``: a camera-sized frame ring, destroyed at the end."""
    made: list[FrameRing] = []

    def make(nslots: int = 8) -> FrameRing:
        r = FrameRing.create(segment_name(f"t-{uuid.uuid4().hex[:8]}"), FRAME_CAPACITY, nslots)
        made.append(r)
        return r

    yield make
    for r in made:
        r.destroy()


class SourceProc:
    """``python -m panoptes.media.source`` on a ring, its log in a file."""

    def __init__(self, config: dict, log: Path) -> None:
        self.log_path = log
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "panoptes.media.source", json.dumps(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)
        finally:
            self._log.close()


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Callable[..., SourceProc]]:
    """``source(ring, uri, **config)``: a camera source process, stopped at the end."""
    started: list[SourceProc] = []

    def start(ring: FrameRing, uri: str, **config) -> SourceProc:
        cfg = {"ring": ring.name, "uri": uri, "name": "cam", **config}
        p = SourceProc(cfg, tmp_path / f"source-{len(started)}.log")
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()
