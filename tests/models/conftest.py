from __future__ import annotations

from pathlib import Path

import onnx
import pytest

import model_nets as nets


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def classifier_onnx(tmp_path: Path) -> Path:
    """A bare .onnx classifier with a dynamic batch axis, input data [N, 3, 32, 32]."""
    path = tmp_path / "classifier.onnx"
    onnx.save(nets.onnx_classifier(), path)
    return path


@pytest.fixture
def torch_module():
    return pytest.importorskip("torch", reason="torch not installed: pip install 'panoptes[torch]'")
