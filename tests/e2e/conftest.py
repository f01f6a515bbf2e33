"""E2E fixtures: clips and models made here, a shared model cache (compile once)."""

from __future__ import annotations

import sys
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
