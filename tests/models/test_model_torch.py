"""PyTorch (Neo format: TorchScript in a .tar.gz) -> ONNX, checked against torch itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import model_nets as nets
from panoptes.models import DescriptorMismatchError, check_model_archive, compile, open_session

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'panoptes[torch]'")

pytestmark = [
    pytest.mark.slow,  # each test traces and exports a network (a few seconds)
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # torch.jit / legacy exporter
]

ATOL = 1e-4  # FP32: ONNX Runtime's kernels sum in a different order than torch's


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # torch runs beside ONNX Runtime here: one thread each way, or their pools fight.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _torch_outputs(module, x: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        out = module(torch.from_numpy(x))
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def _max_diffs(got: list[np.ndarray], want: list[np.ndarray]) -> list[float]:
    assert [g.shape for g in got] == [w.shape for w in want]
    return [float(np.max(np.abs(g - w))) for g, w in zip(got, want, strict=True)]


@pytest.mark.parametrize("which", ["classifier", "detector"])
def test_torchscript_archive_matches_torch(which: str, tmp_path: Path, cache_dir: Path):
    squeeze, detector = nets.torch_nets()
    torch.manual_seed(0)
    if which == "classifier":
        module, shape = squeeze(), (1, 3, 96, 96)
    else:
        module, shape = detector(), (1, 3, 64, 64)
    archive = nets.torchscript_archive(module, shape, tmp_path / "model.tar.gz")
    desc = nets.descriptor(shape)
    compiled = compile(archive, desc, "cpu", cache_dir=cache_dir)
    meta = compiled.metadata
    assert meta.source_format == "torchscript" and "torch" in meta.converters
    assert compiled.input_names == ["data"]
    assert meta.inputs[0].shape == shape
    assert len(meta.outputs) == (1 if which == "classifier" else 2)

    x = np.random.default_rng(3).random(shape, np.float32)
    session = open_session(compiled, target="cpu", intra_op_threads=1)
    got = session.run(None, {"data": x})
    reference = torch.jit.load(str(tmp_path / "model.pth"))
    diffs = _max_diffs(got, _torch_outputs(reference, x))
    assert max(diffs) < ATOL, diffs
    assert compile(archive, desc, "cpu", cache_dir=cache_dir).cache_hit


def test_detector_exported_to_onnx_directly(tmp_path: Path, cache_dir: Path):
    """The other route users take: torch.onnx.export themselves, import the .onnx."""
    _, detector = nets.torch_nets()
    torch.manual_seed(1)
    module = detector().eval()
    path = tmp_path / "detector.onnx"
    torch.onnx.export(
        module,
        (torch.rand(1, 3, 64, 64),),
        str(path),
        input_names=["data"],
        output_names=["boxes", "scores"],
        dynamic_axes={"data": {0: "n"}, "boxes": {0: "n"}, "scores": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    compiled = compile(path, nets.descriptor([1, 3, 64, 64]), "cpu", cache_dir=cache_dir)
    assert compiled.output_names == ["boxes", "scores"]
    x = np.random.default_rng(4).random((2, 3, 64, 64), np.float32)  # batch 2: dynamic axis
    got = open_session(compiled, target="cpu").run(None, {"data": x})
    assert max(_max_diffs(got, _torch_outputs(module, x))) < ATOL


def test_dynamic_batch_export(tmp_path: Path, cache_dir: Path):
    squeeze, _ = nets.torch_nets()
    torch.manual_seed(2)
    module = squeeze()
    archive = nets.torchscript_archive(module, (1, 3, 64, 64), tmp_path / "model.tar.gz")
    compiled = compile(
        archive, nets.descriptor([1, 3, 64, 64]), "cpu", cache_dir=cache_dir, dynamic_batch=True
    )
    assert compiled.metadata.inputs[0].shape[0] == "batch"
    x = np.random.default_rng(5).random((3, 3, 64, 64), np.float32)
    got = open_session(compiled, target="cpu").run(None, {"data": x})
    assert max(_max_diffs(got, _torch_outputs(module.eval(), x))) < ATOL


def test_descriptor_shape_wrong_for_torchscript(tmp_path: Path, cache_dir: Path):
    squeeze, _ = nets.torch_nets()
    archive = nets.torchscript_archive(squeeze(), (1, 3, 64, 64), tmp_path / "model.tar.gz")
    wrong = nets.descriptor([1, 1, 64, 64])  # grey image for an RGB network
    for action in (
        lambda: compile(archive, wrong, "cpu", cache_dir=cache_dir),
        lambda: check_model_archive(archive, wrong),
    ):
        with pytest.raises(DescriptorMismatchError) as err:
            action()
        message = str(err.value)
        assert "does not run on the descriptor's input shape(s) (data [1, 1, 64, 64])" in message
        assert "channels" in message  # torch's own explanation comes along
    check_model_archive(archive, nets.descriptor([1, 3, 64, 64]))


def test_descriptor_with_too_many_inputs(tmp_path: Path, cache_dir: Path):
    from panoptes.spec import ModelDescriptor, TensorSpec

    squeeze, _ = nets.torch_nets()
    archive = nets.torchscript_archive(squeeze(), (1, 3, 64, 64), tmp_path / "model.tar.gz")
    desc = ModelDescriptor(
        "PYTORCH", (TensorSpec("data", (1, 3, 64, 64)), TensorSpec("extra", (1, 4)))
    )
    with pytest.raises(DescriptorMismatchError, match="lists 2 input"):
        compile(archive, desc, "cpu", cache_dir=cache_dir)
