"""E2E fixtures: clips and models made here, a shared model cache (compile once)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import appkit

from panoptes.media import testcamera


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
# The product's test camera (GStreamer's RTSP server run by Debian's Python):
# ``url`` serves a live 320x240 H.264 test pattern at 15 fps, restartable on its port.


@pytest.fixture(scope="session")
def rtsp_available() -> None:
    """Skip unless Debian's Python can run GStreamer's RTSP server here."""
    why = testcamera.unavailable()
    if why:
        pytest.skip(why)


@pytest.fixture
def rtsp_server(rtsp_available: None, tmp_path: Path) -> Iterator[testcamera.CameraServer]:
    """A running RTSP server on a free port; killed at the end of the test."""
    server = testcamera.CameraServer(log=tmp_path / "rtsp-server.log").start()
    try:
        yield server
    finally:
        server.kill()
