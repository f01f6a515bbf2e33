"""Checks an ONNX model against its descriptor: names, shapes, types, then a dry run.

The dry run (zeros of the descriptor's shapes through ONNX Runtime on the CPU) catches
what static shapes cannot: a model with dynamic dimensions whose layers only accept
one size. It is cheap next to a conversion and makes every error appear at import
time rather than on the device at the first frame.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort

from panoptes.models.convert import np_dtype
from panoptes.models.errors import ArchiveError, DescriptorMismatchError
from panoptes.spec import TensorSpec

Dim = int | str | None  # fixed size, symbolic name, or unknown


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[Dim, ...]
    dtype: str  # numpy name: float32, uint8, ...

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, d: dict) -> TensorInfo:
        return cls(d["name"], tuple(d["shape"]), d["dtype"])

    def describe(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name} [{dims}] {self.dtype}"


def _value_info(v: onnx.ValueInfoProto) -> TensorInfo:
    t = v.type.tensor_type
    dims: list[Dim] = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or None)
    dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name if t.elem_type else "?"
    return TensorInfo(v.name, tuple(dims), dtype)


def graph_inputs(model: onnx.ModelProto) -> list[TensorInfo]:
    # Models from opset < 9 exporters list their weights as inputs too.
    weights = {i.name for i in model.graph.initializer}
    return [_value_info(v) for v in model.graph.input if v.name not in weights]


def graph_outputs(model: onnx.ModelProto) -> list[TensorInfo]:
    return [_value_info(v) for v in model.graph.output]


def _listing(infos: Sequence[TensorInfo]) -> str:
    return "; ".join(i.describe() for i in infos)


def check_model(model: onnx.ModelProto, inputs: Sequence[TensorSpec]) -> onnx.ModelProto:
    """The model with inferred shapes; DescriptorMismatchError/ArchiveError if unusable."""
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ArchiveError(f"the ONNX model is invalid: {str(exc).splitlines()[0]}") from exc
    # Partial inference is fine: the dry run below is the real check.
    with contextlib.suppress(Exception):
        model = onnx.shape_inference.infer_shapes(model)

    declared = {i.name: i for i in graph_inputs(model)}
    wanted = {s.name for s in inputs}
    for spec in inputs:
        info = declared.get(spec.name)
        if info is None:
            raise DescriptorMismatchError(
                f"descriptor input {spec.name!r} is not an input of the model; the model's "
                f"inputs are: {_listing(declared.values())} (fix: set "
                "mlModelDescriptor.inputs[].name to one of those)"
            )
        if len(info.shape) != len(spec.shape) or any(
            isinstance(d, int) and d != s for d, s in zip(info.shape, spec.shape, strict=False)
        ):
            raise DescriptorMismatchError(
                f"descriptor input {spec.name!r} has shape {list(spec.shape)} but the model "
                f"expects {info.describe()} (fix: set its shape in the descriptor to match)"
            )
        if spec.type and info.dtype != np_dtype(spec).name:
            raise DescriptorMismatchError(
                f"descriptor input {spec.name!r} has type {spec.type} but the model expects "
                f"{info.dtype} (fix: set its type in the descriptor to {info.dtype})"
            )
    missing = [i for name, i in declared.items() if name not in wanted]
    if missing:
        raise DescriptorMismatchError(
            f"the model's input(s) {_listing(missing)} are missing from the descriptor "
            "(fix: add them to mlModelDescriptor.inputs)"
        )
    dry_run(model, inputs)
    return model


def dry_run(model: onnx.ModelProto, inputs: Sequence[TensorSpec]) -> list[np.ndarray]:
    declared = {i.name: i for i in graph_inputs(model)}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3  # errors only: warnings about unused initializers are noise
    try:
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise ArchiveError(f"ONNX Runtime cannot load the model: {exc}") from exc
    feeds = {s.name: np.zeros(s.shape, np.dtype(declared[s.name].dtype)) for s in inputs}
    try:
        return session.run(None, feeds)
    except Exception as exc:
        shapes = ", ".join(f"{s.name} {list(s.shape)}" for s in inputs)
        raise DescriptorMismatchError(
            f"the model fails on zeros of the descriptor's input shape(s) ({shapes}): "
            f"{str(exc).strip().splitlines()[-1]} (fix: set mlModelDescriptor.inputs[].shape "
            "to the shape the model was exported for)"
        ) from exc
