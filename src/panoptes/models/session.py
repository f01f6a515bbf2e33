"""ONNX Runtime sessions: execution provider by capability, threads sized on purpose.

Preference: TensorRT > CUDA > OpenVINO > CPU, among what the installed onnxruntime
build offers (onnxruntime-gpu brings TensorRT/CUDA, onnxruntime-openvino OpenVINO).
The CPU provider always comes last, so that ONNX Runtime can place any node the
accelerator does not support.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnxruntime as ort

from panoptes.models.errors import ModelError

# target name -> ONNX Runtime execution provider, best first.
PROVIDERS: dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
TARGETS = ("auto", *PROVIDERS)

_INSTALL = {
    "tensorrt": "pip install onnxruntime-gpu (with TensorRT libraries on the device)",
    "cuda": "pip install onnxruntime-gpu (with CUDA and cuDNN on the device)",
    "openvino": "pip install onnxruntime-openvino",
}


def available_providers() -> list[str]:
    return list(ort.get_available_providers())


def best_target(available: Sequence[str]) -> str:
    """The best target that a list of available execution providers supports."""
    for target, provider in PROVIDERS.items():
        if provider in available:
            return target
    return "cpu"


def resolve_target(target: str, available: Sequence[str] | None = None) -> str:
    """A concrete target name for `target` ("auto" picks the best available)."""
    target = target.lower()
    if target not in TARGETS:
        raise ModelError(f"unknown target {target!r}: use one of {', '.join(TARGETS)}")
    if target == "auto":
        return best_target(available_providers() if available is None else available)
    return target


def select_providers(available: Sequence[str], target: str = "auto") -> list[str]:
    """Execution providers to hand ONNX Runtime, best first, CPU last.

    `available` is what onnxruntime.get_available_providers() returns on the device;
    passing it in keeps this decision testable on a machine without a GPU.
    """
    target = resolve_target(target, available)
    provider = PROVIDERS[target]
    if provider not in available:
        raise ModelError(
            f"target {target!r} needs ONNX Runtime's {provider}, which this onnxruntime "
            f"build does not have (it has {', '.join(available)}); fix: {_INSTALL[target]}, "
            "or use target 'auto'"
        )
    # CUDA is a fine fallback for the nodes TensorRT rejects; OpenVINO is not mixed
    # with either (both would claim the same subgraphs for different devices).
    chosen = {
        "tensorrt": [provider, PROVIDERS["cuda"]],
        "cuda": [provider],
        "openvino": [provider],
        "cpu": [],
    }[target] + [PROVIDERS["cpu"]]
    return [p for p in chosen if p in available]


def default_threads() -> int:
    """Intra-op threads: one per core this process may use (2 on the reference device).

    More threads than cores only adds spin-waiting; the decode and application
    processes need their share too, so callers running beside them may pass fewer.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def session_options(
    intra_op_threads: int | None = None, *, allow_spinning: bool = True
) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = intra_op_threads or default_threads()
    # One model graph per frame: parallelism inside operators is what pays; a second
    # (inter-op) pool would only compete for the same two cores.
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    if not allow_spinning:
        # Idle workers stop spinning at once: gives the cores back to the video decoder
        # at the price of a little wake-up latency.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def provider_options(provider: str, *, fp16: bool, cache_dir: Path | None) -> dict[str, Any]:
    if provider == "TensorrtExecutionProvider":
        opts: dict[str, Any] = {"trt_fp16_enable": fp16}
        if cache_dir is not None:
            # Building a TensorRT engine takes minutes; cache it beside the ONNX file.
            opts.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(cache_dir))
        return opts
    return {}


def open_session(
    model: Any,
    *,
    target: str = "auto",
    intra_op_threads: int | None = None,
    allow_spinning: bool = True,
    available: Sequence[str] | None = None,
) -> ort.InferenceSession:
    """An ONNX Runtime session for a CompiledModel or an .onnx path."""
    path = Path(getattr(model, "path", model))
    metadata = getattr(model, "metadata", None)
    fp16 = metadata is not None and metadata.precision == "FP16"
    providers = select_providers(available_providers() if available is None else available, target)
    return ort.InferenceSession(
        str(path),
        session_options(intra_op_threads, allow_spinning=allow_spinning),
        providers=providers,
        provider_options=[provider_options(p, fp16=fp16, cache_dir=path.parent) for p in providers],
    )
