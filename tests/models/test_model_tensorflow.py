"""TensorFlow (SavedModel, Keras file, TFLite) -> ONNX with tf2onnx, checked against Keras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import model_nets as nets
from panoptes.models import DescriptorMismatchError, compile, open_session

tf = pytest.importorskip("tensorflow", reason="pip install 'panoptes[tensorflow]'")
pytest.importorskip("tf2onnx", reason="pip install 'panoptes[tensorflow]'")

pytestmark = [
    pytest.mark.slow,  # TensorFlow's import and each conversion take seconds
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

SHAPE = (1, 32, 32, 3)  # Keras is channels-last


@pytest.fixture(scope="module")
def keras_model():
    return nets.keras_classifier(0, SHAPE[1:])


def _archive(tmp_path: Path, root: Path) -> Path:
    files = {str(p.relative_to(root.parent)): p for p in root.rglob("*") if p.is_file()}
    if root.is_file():
        files = {root.name: root}
    return nets.tar_gz(tmp_path / "model.tar.gz", files)


def _check(compiled, keras_model) -> None:
    x = np.random.default_rng(0).random(SHAPE, np.float32)
    (got,) = open_session(compiled, target="cpu").run(None, {"data": x})
    np.testing.assert_allclose(got, keras_model(x).numpy(), atol=1e-5)


def test_saved_model(keras_model, tmp_path: Path, cache_dir: Path):
    keras_model.export(str(tmp_path / "saved"))
    archive = _archive(tmp_path, tmp_path / "saved")
    desc = nets.descriptor(SHAPE, framework="TENSORFLOW")
    compiled = compile(archive, desc, "cpu", cache_dir=cache_dir)
    assert compiled.metadata.source_format == "savedmodel"
    assert compiled.input_names == ["data"] and "tf2onnx" in compiled.metadata.converters
    _check(compiled, keras_model)
    with pytest.raises(DescriptorMismatchError, match=r"signature inputs \['data'\]"):
        compile(
            archive,
            nets.descriptor(SHAPE, name="x", framework="TENSORFLOW"),
            "cpu",
            cache_dir=cache_dir,
        )


def test_keras_file(keras_model, tmp_path: Path, cache_dir: Path):
    keras_model.save(tmp_path / "model.keras")
    archive = _archive(tmp_path, tmp_path / "model.keras")
    compiled = compile(
        archive, nets.descriptor(SHAPE, framework="TENSORFLOW"), "cpu", cache_dir=cache_dir
    )
    assert compiled.metadata.source_format == "keras"
    _check(compiled, keras_model)


def test_tflite(keras_model, tmp_path: Path, cache_dir: Path):
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    (tmp_path / "model.tflite").write_bytes(converter.convert())
    archive = _archive(tmp_path, tmp_path / "model.tflite")
    compiled = compile(
        archive, nets.descriptor(SHAPE, framework="TENSORFLOW"), "cpu", cache_dir=cache_dir
    )
    assert compiled.metadata.source_format == "tflite"
    assert compiled.input_names == ["data"]  # renamed from serving_default_data:0
    _check(compiled, keras_model)
