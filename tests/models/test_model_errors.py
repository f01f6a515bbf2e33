"""Import-time errors: each names the problem and the fix."""

from __future__ import annotations

import gzip
import logging
import sys
from pathlib import Path

import onnx
import pytest

import model_nets as nets
from panoptes.models import (
    ArchiveError,
    DescriptorMismatchError,
    MissingExtraError,
    ModelError,
    UnsupportedFrameworkError,
    check_model_archive,
    compile,
)


def _compile(archive: Path, desc, cache_dir: Path):
    return compile(archive, desc, "cpu", cache_dir=cache_dir)


def test_archive_that_is_not_gzip_or_tar(tmp_path: Path, cache_dir: Path):
    bad = tmp_path / "model.tar.gz"
    bad.write_bytes(b"this is not an archive at all" * 100)
    pattern = r"not a readable tar\.gz archive.*neither gzip-compressed nor a tar file.*tar -czf"
    with pytest.raises(ArchiveError, match=pattern):
        _compile(bad, nets.descriptor([1, 3, 32, 32]), cache_dir)


def test_truncated_archive(classifier_onnx: Path, tmp_path: Path, cache_dir: Path):
    whole = nets.tar_gz(tmp_path / "whole.tar.gz", {"model.onnx": classifier_onnx})
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ArchiveError, match="truncated or corrupted"):
        _compile(cut, nets.descriptor([1, 3, 32, 32]), cache_dir)


def test_gzip_of_something_else(tmp_path: Path, cache_dir: Path):
    bad = tmp_path / "model.tar.gz"
    bad.write_bytes(gzip.compress(b"plain text, no tar inside" * 50))
    with pytest.raises(ArchiveError, match=r"model\.tar\.gz"):
        _compile(bad, nets.descriptor([1, 3, 32, 32]), cache_dir)


def test_empty_and_missing_archives(tmp_path: Path, cache_dir: Path):
    empty = tmp_path / "model.tar.gz"
    empty.write_bytes(b"")
    with pytest.raises(ArchiveError, match="is empty"):
        _compile(empty, nets.descriptor([1, 3, 32, 32]), cache_dir)
    with pytest.raises(ArchiveError, match="does not exist"):
        check_model_archive(tmp_path / "nope.tar.gz", nets.descriptor([1, 3, 32, 32]))


def test_archive_escaping_its_directory(classifier_onnx: Path, tmp_path: Path, cache_dir):
    archive = nets.tar_gz(tmp_path / "evil.tar.gz", {"../../evil.onnx": classifier_onnx})
    with pytest.raises(ArchiveError, match="outside the archive"):
        _compile(archive, nets.descriptor([1, 3, 32, 32]), cache_dir)
    assert not (tmp_path.parent / "evil.onnx").exists()


def test_archive_without_a_model_file_for_the_framework(tmp_path: Path, cache_dir: Path):
    archive = nets.tar_gz(tmp_path / "model.tar.gz", {"README.txt": b"hello", "labels.txt": b""})
    with pytest.raises(ArchiveError) as err:
        _compile(archive, nets.descriptor([1, 3, 32, 32], framework="PYTORCH"), cache_dir)
    message = str(err.value)
    assert "no PyTorch model file (*.pth or *.pt)" in message
    assert "README.txt" in message and "torch.jit.trace" in message
    with pytest.raises(ArchiveError, match="no TensorFlow model"):
        _compile(archive, nets.descriptor([1, 3, 32, 32], framework="TENSORFLOW"), cache_dir)
    with pytest.raises(ArchiveError, match="no MXNet model"):
        _compile(archive, nets.descriptor([1, 3, 32, 32], framework="MXNET"), cache_dir)


def test_unknown_framework(classifier_onnx: Path, cache_dir: Path):
    desc = nets.descriptor([1, 3, 32, 32], framework="CAFFE")
    with pytest.raises(UnsupportedFrameworkError) as err:
        _compile(classifier_onnx, desc, cache_dir)
    assert "unknown model framework 'CAFFE'" in str(err.value)
    assert "TENSORFLOW, PYTORCH or MXNET" in str(err.value)
    with pytest.raises(UnsupportedFrameworkError, match="CAFFE"):
        check_model_archive(classifier_onnx, desc)


def test_descriptor_shape_that_does_not_match_the_model(classifier_onnx: Path, cache_dir: Path):
    with pytest.raises(DescriptorMismatchError) as err:
        _compile(classifier_onnx, nets.descriptor([1, 3, 64, 48]), cache_dir)
    message = str(err.value)
    assert "descriptor input 'data' has shape [1, 3, 64, 48]" in message
    assert "data [batch, 3, 32, 32] float32" in message


def test_shape_mismatch_found_by_the_dry_run(tmp_path: Path, cache_dir: Path):
    """H and W are declared dynamic, but the linear layer only fits 16x16."""
    path = tmp_path / "m.onnx"
    onnx.save(nets.onnx_classifier(batch=1, size="h", flatten_linear=True), path)
    _compile(path, nets.descriptor([1, 3, 16, 16]), cache_dir)  # the size it was built for
    with pytest.raises(DescriptorMismatchError) as err:
        _compile(path, nets.descriptor([1, 3, 20, 20]), cache_dir)
    assert "fails on zeros of the descriptor's input shape(s) (data [1, 3, 20, 20])" in str(
        err.value
    )


def test_descriptor_input_name_not_in_model(classifier_onnx: Path, cache_dir: Path):
    with pytest.raises(DescriptorMismatchError) as err:
        _compile(classifier_onnx, nets.descriptor([1, 3, 32, 32], name="image"), cache_dir)
    message = str(err.value)
    assert "descriptor input 'image' is not an input of the model" in message
    assert "data [batch, 3, 32, 32]" in message


def test_invalid_onnx_file(tmp_path: Path, cache_dir: Path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ArchiveError, match=r"model\.onnx"):
        _compile(bad, nets.descriptor([1, 3, 32, 32]), cache_dir)


def test_darknet_and_mxnet_name_the_onnx_route(tmp_path: Path, cache_dir: Path):
    darknet = nets.tar_gz(tmp_path / "d.tar.gz", {"yolo.cfg": b"[net]", "yolo.weights": b"\0"})
    with pytest.raises(UnsupportedFrameworkError, match=r"Darknet.*export the model to ONNX"):
        _compile(darknet, nets.descriptor([1, 3, 32, 32]), cache_dir)
    mxnet = nets.tar_gz(tmp_path / "m.tar.gz", {"ssd-symbol.json": b"{}", "ssd-0000.params": b"\0"})
    with pytest.raises(UnsupportedFrameworkError, match=r"mxnet\.onnx\.export_model"):
        _compile(mxnet, nets.descriptor([1, 3, 32, 32], framework="MXNET"), cache_dir)


def test_missing_torch_extra_names_the_install(tmp_path, cache_dir, monkeypatch):
    archive = nets.tar_gz(tmp_path / "m.tar.gz", {"model.pth": nets.torchscript_lookalike()})
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(MissingExtraError) as err:
        _compile(archive, nets.descriptor([1, 3, 32, 32]), cache_dir)
    assert "pip install 'panoptes[torch]'" in str(err.value)


def test_missing_tensorflow_extra_names_the_install(tmp_path, cache_dir, monkeypatch):
    archive = nets.tar_gz(tmp_path / "m.tar.gz", {"saved/saved_model.pb": b"\0"})
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(MissingExtraError) as err:
        _compile(archive, nets.descriptor([1, 32, 32, 3], framework="TENSORFLOW"), cache_dir)
    assert "pip install 'panoptes[tensorflow]'" in str(err.value)


def test_check_without_converter_checks_the_archive_only(tmp_path, monkeypatch, caplog):
    archive = nets.tar_gz(tmp_path / "m.tar.gz", {"model.pth": nets.torchscript_lookalike()})
    monkeypatch.setitem(sys.modules, "torch", None)
    with caplog.at_level(logging.WARNING):
        check_model_archive(archive, nets.descriptor([1, 3, 32, 32]))
    assert "not checked" in caplog.text and "panoptes[torch]" in caplog.text
    with pytest.raises(MissingExtraError):
        check_model_archive(archive, nets.descriptor([1, 3, 32, 32]), require_converter=True)


def test_check_model_archive_on_onnx(classifier_onnx: Path):
    check_model_archive(classifier_onnx, nets.descriptor([1, 3, 32, 32]))
    with pytest.raises(ModelError, match="has shape"):
        check_model_archive(classifier_onnx, nets.descriptor([1, 3, 30, 30]))


def test_state_dict_is_not_torchscript(tmp_path: Path, cache_dir: Path):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # the layout torch.save writes
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    archive = nets.tar_gz(tmp_path / "m.tar.gz", {"weights.pth": buf.getvalue()})
    with pytest.raises(ArchiveError, match=r"not a TorchScript file.*torch\.jit\.trace"):
        _compile(archive, nets.descriptor([1, 3, 32, 32]), cache_dir)
