"""Small models with random weights, built here (no model hub): ONNX by hand, and torch.

The torch networks have the shapes of the models Panorama users deploy: a
SqueezeNet-style classifier (fire modules, one logits output) and an SSD/YOLO-style
detector (a backbone and two heads: boxes and class scores).
"""

from __future__ import annotations

import io
import tarfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def tar_gz(path: Path, files: dict[str, bytes | Path]) -> Path:
    """A .tar.gz holding `files` (archive name -> bytes or a file to copy)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in files.items():
            data = content.read_bytes() if isinstance(content, Path) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def onnx_classifier(
    batch: int | str = "batch",
    size: int | str = 32,
    classes: int = 10,
    seed: int = 0,
    flatten_linear: bool = False,
) -> onnx.ModelProto:
    """Conv -> Relu -> (GlobalAveragePool | Flatten) -> Gemm -> logits, plus Softmax probs.

    `flatten_linear` makes the linear layer depend on the spatial size, so the model
    fails at run time on any other size even when H and W are declared dynamic.
    """
    rng = np.random.default_rng(seed)
    conv_w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.2
    conv_b = rng.standard_normal(8).astype(np.float32) * 0.1
    features = 8 * (size if isinstance(size, int) else 16) ** 2 if flatten_linear else 8
    fc_w = rng.standard_normal((classes, features)).astype(np.float32) * 0.1
    fc_b = rng.standard_normal(classes).astype(np.float32) * 0.1
    pool = (
        helper.make_node("Flatten", ["relu"], ["flat"], axis=1)
        if flatten_linear
        else helper.make_node("GlobalAveragePool", ["relu"], ["pool"])
    )
    nodes = [
        helper.make_node("Conv", ["data", "conv_w", "conv_b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        pool,
    ]
    if not flatten_linear:
        nodes.append(helper.make_node("Flatten", ["pool"], ["flat"], axis=1))
    nodes += [
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "classifier",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [batch, 3, size, size])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes]),
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, classes]),
        ],
        [
            numpy_helper.from_array(conv_w, "conv_w"),
            numpy_helper.from_array(conv_b, "conv_b"),
            numpy_helper.from_array(fc_w, "fc_w"),
            numpy_helper.from_array(fc_b, "fc_b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what every onnxruntime from 1.13 on reads
    return model


def onnx_tiler(width: int, repeats: int) -> onnx.ModelProto:
    """A model whose output is far larger than its input (x [1, width] tiled)."""
    graph = helper.make_graph(
        [helper.make_node("Tile", ["x", "repeats"], ["y"])],
        "tiler",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, width * repeats])],
        [numpy_helper.from_array(np.array([1, repeats], np.int64), "repeats")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def descriptor(shape, *, name: str = "data", framework: str = "PYTORCH", precision="FP32"):
    from panoptes.spec import ModelDescriptor, TensorSpec

    return ModelDescriptor(
        framework=framework,
        inputs=(TensorSpec(name, tuple(shape)),),
        precision_mode=precision,
    )


# --- torch ---------------------------------------------------------------------------


def torch_nets():
    """(SqueezeNetLike, DetectorLike) classes; imported lazily so torch stays optional."""
    import torch
    from torch import nn

    class Fire(nn.Module):
        def __init__(self, cin: int, squeeze: int, expand: int) -> None:
            super().__init__()
            self.squeeze = nn.Conv2d(cin, squeeze, 1)
            self.e1 = nn.Conv2d(squeeze, expand, 1)
            self.e3 = nn.Conv2d(squeeze, expand, 3, padding=1)

        def forward(self, x):
            x = torch.relu(self.squeeze(x))
            return torch.cat([torch.relu(self.e1(x)), torch.relu(self.e3(x))], 1)

    class SqueezeNetLike(nn.Module):
        """SqueezeNet 1.1's layout; `width` scales the channels (1.0 = the real sizes)."""

        def __init__(self, classes: int = 10, width: float = 0.25) -> None:
            super().__init__()

            def c(n: int) -> int:
                return max(4, int(n * width))

            self.features = nn.Sequential(
                nn.Conv2d(3, c(64), 3, stride=2),
                nn.ReLU(),
                nn.MaxPool2d(3, 2, ceil_mode=True),
                Fire(c(64), c(16), c(64)),
                Fire(c(128), c(16), c(64)),
                nn.MaxPool2d(3, 2, ceil_mode=True),
                Fire(c(128), c(32), c(128)),
                Fire(c(256), c(32), c(128)),
                nn.MaxPool2d(3, 2, ceil_mode=True),
                Fire(c(256), c(48), c(192)),
                Fire(c(384), c(64), c(256)),
            )
            self.classifier = nn.Sequential(nn.Conv2d(c(512), classes, 1), nn.ReLU())

        def forward(self, x):
            x = self.classifier(self.features(x))
            return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)

    class DetectorLike(nn.Module):
        """SSD/YOLO-shaped: per-anchor boxes [N, A, 4] and class scores [N, A, C]."""

        def __init__(self, classes: int = 5, anchors: int = 3) -> None:
            super().__init__()
            self.classes, self.anchors = classes, anchors
            self.backbone = nn.Sequential(
                nn.Conv2d(3, 16, 3, stride=2, padding=1),
                nn.BatchNorm2d(16),
                nn.ReLU(),
                nn.Conv2d(16, 32, 3, stride=2, padding=1),
                nn.BatchNorm2d(32),
                nn.ReLU(),
                nn.Conv2d(32, 32, 3, stride=2, padding=1),
                nn.ReLU(),
            )
            self.box_head = nn.Conv2d(32, anchors * 4, 1)
            self.cls_head = nn.Conv2d(32, anchors * classes, 1)

        def forward(self, x):
            f = self.backbone(x)
            n = x.shape[0]
            boxes = self.box_head(f).permute(0, 2, 3, 1).reshape(n, -1, 4)
            scores = self.cls_head(f).permute(0, 2, 3, 1).reshape(n, -1, self.classes)
            return torch.sigmoid(boxes), torch.sigmoid(scores)

    return SqueezeNetLike, DetectorLike


def torchscript_archive(module, shape, path: Path, name: str = "model.pth") -> Path:
    """Trace `module` at `shape`, save it as TorchScript and pack it Neo-style."""
    import torch

    torch.manual_seed(0)
    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "torch.jit is deprecated"
        traced = torch.jit.trace(module, torch.rand(*shape))
    pth = path.parent / name
    traced.save(str(pth))
    return tar_gz(path, {name: pth})


def tiny_torch_net(seed: int = 0, size: int = 32):
    """Conv -> Flatten -> Linear: its Linear layer only fits inputs of `size` x `size`.

    `seed` sets the weights (different seeds, different files and digests).
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)
    half = (size + 1) // 2
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * half * half, 10),
    )


def tiny_torchscript_archive(
    path: Path, seed: int = 0, shape=(1, 3, 32, 32), name: str = "model.pth"
) -> Path:
    """A Neo-style PyTorch archive: tiny_torch_net(seed) traced at `shape`, in TorchScript."""
    return torchscript_archive(tiny_torch_net(seed, shape[-1]), shape, path, name)


def state_dict_archive(path: Path, seed: int = 0, name: str = "model.pth") -> Path:
    """The common mistake: torch.save(model.state_dict()) packed where TorchScript belongs."""
    import torch

    pth = path.parent / name
    torch.save(tiny_torch_net(seed).state_dict(), pth)
    return tar_gz(path, {name: pth})


def torchscript_lookalike() -> bytes:
    """Enough of TorchScript's zip layout to be recognised as one (not loadable)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("model/code/__torch__.py", "")
        z.writestr("model/data.pkl", b"")
    return buf.getvalue()


# --- TensorFlow ----------------------------------------------------------------------


def keras_classifier(seed: int = 0, shape=(32, 32, 3)):
    """A channels-last Keras classifier with one input named "data" (imports keras)."""
    import keras

    keras.utils.set_random_seed(seed)
    data = keras.Input(shape, name="data")
    x = keras.layers.Conv2D(8, 3, activation="relu")(data)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(data, keras.layers.Dense(5, activation="softmax")(x))
