"""E2E fixtures: clips and models made here, a shared model cache (compile once)."""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import appkit


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """320x240, 30 frames at 30 fps, H.264 MP4."""
    return appkit.make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", frames=30)


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return appkit.make_clip(tmp_path_factory.mktemp("clips") / "long.mp4", frames=90)


@pytest.fixture(scope="session")
def squeezenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    return appkit.squeezenet_archive(tmp_path_factory.mktemp("models") / "squeezenet.tar.gz")


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


# --- an RTSP camera -----------------------------------------------------------------------

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, which owns the GStreamer gi bindings
RTSP_SERVER = Path(__file__).parent / "rtsp_server.py"


class RtspServer:
    """GStreamer's RTSP server in a subprocess (tests/e2e/rtsp_server.py), restartable
    on the same port: ``url`` serves a live 320x240 H.264 test pattern at 15 fps."""

    def __init__(self, port: int, log: Path, path: str = "cam") -> None:
        self.port, self.path, self.log = port, path, log
        self.url = f"rtsp://127.0.0.1:{port}/{path}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> RtspServer:
        deadline = time.monotonic() + timeout
        while True:  # the port of a just-killed server may take a moment to be free
            with self.log.open("a") as err:
                self.proc = subprocess.Popen(
                    [SYSTEM_PYTHON, str(RTSP_SERVER), str(self.port), self.path],
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                )
            assert self.proc.stdout is not None
            wait = max(0.1, deadline - time.monotonic())
            ready, _, _ = select.select([self.proc.stdout], [], [], wait)
            if ready and self.proc.stdout.readline().strip() == "READY":
                return self
            self.kill()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"RTSP server did not start on port {self.port}: {self.log.read_text()}"
                )
            time.sleep(0.5)

    def kill(self) -> None:
        """SIGKILL: the camera vanishes without a TEARDOWN."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def rtsp_available() -> None:
    """Skip unless Debian's Python can import GStreamer's RTSP server bindings."""
    if not Path(SYSTEM_PYTHON).exists():
        pytest.skip(f"RTSP tests need {SYSTEM_PYTHON} with GStreamer's gi bindings")
    check = subprocess.run(
        [SYSTEM_PYTHON, str(RTSP_SERVER), "--check"], capture_output=True, text=True
    )
    if check.returncode != 0:
        why = (check.stderr.strip().splitlines() or ["no error output"])[-1]
        pytest.skip(
            f"{SYSTEM_PYTHON} cannot import gi's GstRtspServer ({why}); install "
            "gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gst-1.0 "
            "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly"
        )


@pytest.fixture
def rtsp_server(rtsp_available: None, tmp_path: Path) -> Iterator[RtspServer]:
    """A running RTSP server on a free port; killed at the end of the test."""
    server = RtspServer(_free_port(), tmp_path / "rtsp-server.log").start()
    try:
        yield server
    finally:
        server.kill()
