"""A small image classifier with random weights, written as ONNX with no framework.

The demo needs a model node to call, and this machine has no weights to download:
conv → relu → global pool → dense → softmax over 10 classes, seeded so every demo
project gets the same file (and the model cache hits on the second run).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = 10
INPUT = "data"


def write_classifier(path: Path, seed: int = 7, size: int = 224) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    conv_w = rng.normal(0, 0.2, (16, 3, 5, 5)).astype(np.float32)
    conv_b = np.zeros(16, np.float32)
    dense_w = rng.normal(0, 0.5, (16, CLASSES)).astype(np.float32)
    dense_b = np.zeros(CLASSES, np.float32)
    nodes = [
        helper.make_node("Conv", [INPUT, "conv_w", "conv_b"], ["conv"], strides=[4, 4]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["flat"]),
        helper.make_node("Gemm", ["flat", "dense_w", "dense_b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["scores"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "panoptes_demo_classifier",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, CLASSES])],
        [
            numpy_helper.from_array(conv_w, "conv_w"),
            numpy_helper.from_array(conv_b, "conv_b"),
            numpy_helper.from_array(dense_w, "dense_w"),
            numpy_helper.from_array(dense_b, "dense_b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every ONNX Runtime we support
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
