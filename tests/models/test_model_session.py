"""Execution provider selection (by capability) and session settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from panoptes.models import (
    ModelError,
    best_target,
    default_threads,
    open_session,
    resolve_target,
    select_providers,
    session_options,
)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TRT = "TensorrtExecutionProvider"
OPENVINO = "OpenVINOExecutionProvider"


@pytest.mark.parametrize(
    ("available", "expected"),
    [
        ([CPU], [CPU]),
        ([CUDA, CPU], [CUDA, CPU]),
        ([TRT, CUDA, CPU], [TRT, CUDA, CPU]),
        ([CPU, CUDA, TRT], [TRT, CUDA, CPU]),  # ONNX Runtime's order does not matter
        ([OPENVINO, CPU], [OPENVINO, CPU]),
        ([TRT, CUDA, OPENVINO, CPU], [TRT, CUDA, CPU]),  # never mix OpenVINO with CUDA
        (["AzureExecutionProvider", CPU], [CPU]),
    ],
)
def test_auto_prefers_tensorrt_then_cuda_then_openvino(available, expected):
    assert select_providers(available, "auto") == expected


def test_explicit_targets():
    everything = [TRT, CUDA, OPENVINO, CPU]
    assert select_providers(everything, "cpu") == [CPU]
    assert select_providers(everything, "cuda") == [CUDA, CPU]
    assert select_providers(everything, "openvino") == [OPENVINO, CPU]
    assert best_target([OPENVINO, CPU]) == "openvino"
    assert resolve_target("auto", [CUDA, CPU]) == "cuda"


def test_target_without_its_provider_names_the_package():
    with pytest.raises(ModelError, match="onnxruntime-gpu"):
        select_providers([CPU], "cuda")
    with pytest.raises(ModelError, match="onnxruntime-openvino"):
        select_providers([CPU], "openvino")
    with pytest.raises(ModelError, match="unknown target 'tpu'"):
        resolve_target("tpu")


def test_session_options():
    options = session_options(3)
    assert options.intra_op_num_threads == 3
    assert options.inter_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert session_options().intra_op_num_threads == default_threads() >= 1


def test_open_session_on_this_machine(classifier_onnx: Path):
    session = open_session(classifier_onnx, target="auto")
    assert session.get_providers()[-1] == CPU
    out = session.run(None, {"data": np.zeros((2, 3, 32, 32), np.float32)})
    assert out[0].shape == (2, 10)
