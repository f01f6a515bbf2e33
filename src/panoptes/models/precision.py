"""precisionMode (FP16/FP32) for the target's execution provider.

FP16 pays off only where the hardware has fast half-precision kernels: CUDA and
TensorRT. ONNX Runtime's CPU provider has few FP16 kernels and inserts casts around
the rest, so an FP16 model is slower and less exact there: on CPU (and OpenVINO, which
chooses its own inference precision) we keep FP32 and say so in the metadata, unless
the caller forces the conversion.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from panoptes.models.errors import EXTRA_FP16, MissingExtraError


@dataclass(frozen=True)
class PrecisionPlan:
    requested: str  # what the descriptor asked for
    weights: str  # the precision of the weights in the compiled ONNX file
    effective: str  # what the model will run in on the target
    note: str


def plan(requested: str, target: str, *, force_fp16: bool = False) -> PrecisionPlan:
    requested = requested.upper()
    if requested != "FP16":
        return PrecisionPlan("FP32", "FP32", "FP32", "")
    if force_fp16 or target == "cuda":
        return PrecisionPlan("FP16", "FP16", "FP16", "weights converted to float16")
    if target == "tensorrt":
        # TensorRT builds its own FP16 engine from FP32 weights (trt_fp16_enable), and
        # does it better than a pre-converted graph full of Cast nodes.
        return PrecisionPlan("FP16", "FP32", "FP16", "FP16 by TensorRT (trt_fp16_enable)")
    return PrecisionPlan(
        "FP16",
        "FP32",
        "FP32",
        f"FP16 requested but FP32 kept: the {target} execution provider gains nothing from "
        "FP16 weights (compile with force_fp16=True to convert anyway)",
    )


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        from onnxconverter_common import float16
    except ImportError as exc:
        raise MissingExtraError("converting a model to FP16", EXTRA_FP16) from exc
    # Inferred intermediate types (value_info) would keep saying float32 where the
    # converter makes float16 and produce an invalid graph: let it infer its own.
    model = onnx.ModelProto.FromString(model.SerializeToString())
    del model.graph.value_info[:]
    _isolate_outputs(model)
    # keep_io_types: callers keep sending and receiving float32 arrays, as on Panorama.
    return float16.convert_float_to_float16(model, keep_io_types=True)


def _isolate_outputs(model: onnx.ModelProto) -> None:
    """Give graph outputs that other nodes also read an Identity of their own (in place).

    With keep_io_types the converter casts such an output back to float32 at its
    producer, and the other readers then get float32 where they expect float16.
    """
    outputs = {o.name for o in model.graph.output}
    read = {name for node in model.graph.node for name in node.input}
    shared = outputs & read
    if not shared:
        return
    for node in model.graph.node:
        node.input[:] = [f"{n}__inner" if n in shared else n for n in node.input]
        node.output[:] = [f"{n}__inner" if n in shared else n for n in node.output]
    model.graph.node.extend(
        onnx.helper.make_node("Identity", [f"{n}__inner"], [n]) for n in sorted(shared)
    )


def apply(model: onnx.ModelProto, precision: PrecisionPlan) -> onnx.ModelProto:
    return to_fp16(model) if precision.weights == "FP16" else model
