"""compile(): ONNX passthrough, metadata, the cache, precision."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import model_nets as nets
import panoptes.models.compiler as compile_mod
from panoptes.models import ModelCache, compile, open_session
from panoptes.spec import ManifestError


def test_bare_onnx_is_passed_through_with_metadata(classifier_onnx: Path, cache_dir: Path):
    compiled = compile(classifier_onnx, nets.descriptor([1, 3, 32, 32]), "cpu", cache_dir=cache_dir)
    assert not compiled.cache_hit
    assert compiled.path.is_file() and compiled.path.is_relative_to(cache_dir)
    meta = compiled.metadata
    assert compiled.input_names == ["data"]
    assert compiled.output_names == ["logits", "probs"]
    assert meta.inputs[0].shape == ("batch", 3, 32, 32) and meta.inputs[0].dtype == "float32"
    assert meta.outputs[0].shape == ("batch", 10)
    assert meta.source_format == "onnx" and meta.framework == "PYTORCH"
    assert meta.target == "cpu" and meta.precision == "FP32"
    assert set(meta.converters) >= {"onnx", "onnxruntime"}
    on_disk = json.loads((compiled.path.parent / "metadata.json").read_text())
    import hashlib

    assert on_disk["source_sha256"] == hashlib.sha256(classifier_onnx.read_bytes()).hexdigest()


def test_onnx_inside_tar_gz(classifier_onnx: Path, tmp_path: Path, cache_dir: Path):
    archive = nets.tar_gz(tmp_path / "model.tar.gz", {"sub/model.onnx": classifier_onnx})
    compiled = compile(archive, nets.descriptor([1, 3, 32, 32]), "cpu", cache_dir=cache_dir)
    session = open_session(compiled, target="cpu")
    x = np.random.default_rng(1).random((1, 3, 32, 32), np.float32)
    reference = ort.InferenceSession(str(classifier_onnx), providers=["CPUExecutionProvider"])
    want = reference.run(None, {"data": x})
    for got, w in zip(session.run(None, {"data": x}), want, strict=True):
        np.testing.assert_allclose(got, w, atol=1e-6)


def test_raw_descriptor_document_is_accepted(classifier_onnx: Path, cache_dir: Path):
    doc = {
        "mlModelDescriptor": {
            "envelopeVersion": "2021-01-01",
            "framework": "PYTORCH",
            "inputs": [{"name": "data", "shape": [1, 3, 32, 32]}],
        }
    }
    assert compile(classifier_onnx, doc, "cpu", cache_dir=cache_dir).input_names == ["data"]
    doc["mlModelDescriptor"]["framework"] = "CAFFE"
    with pytest.raises(ManifestError, match="CAFFE"):
        compile(classifier_onnx, doc, "cpu", cache_dir=cache_dir)


def test_second_compile_is_a_cache_hit_without_conversion(
    classifier_onnx: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    desc = nets.descriptor([1, 3, 32, 32])
    first = compile(classifier_onnx, desc, "cpu", cache_dir=cache_dir)

    def no_conversion(*args, **kwargs):
        raise AssertionError("a cache hit must not convert")

    monkeypatch.setattr(compile_mod, "_convert", no_conversion)
    monkeypatch.setattr(compile_mod, "check_model", no_conversion)
    second = compile(classifier_onnx, desc, "cpu", cache_dir=cache_dir)
    assert second.cache_hit and second.path == first.path
    assert second.metadata == first.metadata


def test_cache_key_separates_target_precision_and_descriptor(classifier_onnx, cache_dir):
    a = compile(classifier_onnx, nets.descriptor([1, 3, 32, 32]), "cpu", cache_dir=cache_dir)
    b = compile(classifier_onnx, nets.descriptor([2, 3, 32, 32]), "cpu", cache_dir=cache_dir)
    c = compile(
        classifier_onnx,
        nets.descriptor([1, 3, 32, 32], precision="FP16"),
        "cpu",
        cache_dir=cache_dir,
    )
    assert len({a.path, b.path, c.path}) == 3
    assert a.path.parent.parent == b.path.parent.parent  # same asset digest directory


def test_fp16_on_cpu_keeps_fp32_and_says_so(classifier_onnx: Path, cache_dir: Path):
    desc = nets.descriptor([1, 3, 32, 32], precision="FP16")
    meta = compile(classifier_onnx, desc, "cpu", cache_dir=cache_dir).metadata
    assert meta.precision_requested == "FP16"
    assert meta.precision == "FP32" and meta.weights_precision == "FP32"
    assert "FP16 requested but FP32 kept" in meta.precision_note


def test_fp16_forced_converts_weights_and_stays_close(classifier_onnx: Path, cache_dir: Path):
    pytest.importorskip("onnxconverter_common", reason="pip install 'panoptes[fp16]'")
    desc = nets.descriptor([1, 3, 32, 32], precision="FP16")
    compiled = compile(classifier_onnx, desc, "cpu", cache_dir=cache_dir, force_fp16=True)
    assert compiled.metadata.weights_precision == "FP16"
    assert "onnxconverter-common" in compiled.metadata.converters
    weights = onnx.load(compiled.path).graph.initializer
    assert {w.data_type for w in weights if w.name == "conv_w"} == {onnx.TensorProto.FLOAT16}
    x = np.random.default_rng(2).random((1, 3, 32, 32), np.float32)
    half = open_session(compiled, target="cpu").run(None, {"data": x})
    full = ort.InferenceSession(str(classifier_onnx), providers=["CPUExecutionProvider"])
    assert half[0].dtype == np.float32  # callers still send and receive float32
    np.testing.assert_allclose(half[0], full.run(None, {"data": x})[0], atol=2e-2)


@pytest.mark.parametrize(
    ("target", "weights", "effective"),
    [
        ("cuda", "FP16", "FP16"),  # half-precision weights pay off on CUDA
        ("tensorrt", "FP32", "FP16"),  # TensorRT builds its FP16 engine from FP32
        ("openvino", "FP32", "FP32"),
        ("cpu", "FP32", "FP32"),
    ],
)
def test_precision_plan_per_target(target: str, weights: str, effective: str):
    from panoptes.models import precision

    plan = precision.plan("FP16", target)
    assert (plan.weights, plan.effective) == (weights, effective)
    assert precision.plan("FP32", target).weights == "FP32"
    assert precision.plan("FP16", target, force_fp16=True).weights == "FP16"


def test_cache_write_is_atomic(classifier_onnx: Path, cache_dir: Path, monkeypatch):
    """A crash in the middle of writing an entry leaves no entry (and no half one)."""
    import panoptes.models.cache as cache_mod

    real_write = cache_mod._write

    def crash_on_metadata(path: Path, data: bytes) -> None:
        if path.name == "metadata.json":
            raise KeyboardInterrupt("simulated crash")
        real_write(path, data)

    monkeypatch.setattr(cache_mod, "_write", crash_on_metadata)
    desc = nets.descriptor([1, 3, 32, 32])
    with pytest.raises(KeyboardInterrupt):
        compile(classifier_onnx, desc, "cpu", cache_dir=cache_dir)
    assert not list(cache_dir.glob("*/*/model.onnx"))
    assert not list(cache_dir.glob(".tmp-*"))
    monkeypatch.setattr(cache_mod, "_write", real_write)
    assert not compile(classifier_onnx, desc, "cpu", cache_dir=cache_dir).cache_hit
    assert compile(classifier_onnx, desc, "cpu", cache_dir=cache_dir).cache_hit


def test_cache_ignores_an_incomplete_entry(classifier_onnx: Path, cache_dir: Path):
    desc = nets.descriptor([1, 3, 32, 32])
    first = compile(classifier_onnx, desc, "cpu", cache_dir=cache_dir)
    first.path.unlink()  # e.g. someone cleaned files by hand
    again = compile(classifier_onnx, desc, "cpu", cache_dir=cache_dir)
    assert not again.cache_hit and again.path.is_file()


def test_default_cache_root_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PANOPTES_MODEL_CACHE", str(tmp_path / "c"))
    assert ModelCache().root == tmp_path / "c"
