"""Converters from each framework's Neo format to ONNX.

torch and TensorFlow are optional extras: they are imported only when a model of
theirs is compiled, so a device that receives ONNX models never installs them.
Each converter runs the model once on zeros of the descriptor's shapes first: that is
the cheapest way to tell a user their descriptor does not match the model, with the
framework's own words for why.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from panoptes.models.archive import ModelSource
from panoptes.models.errors import (
    EXTRA_TENSORFLOW,
    EXTRA_TORCH,
    ArchiveError,
    DescriptorMismatchError,
    MissingExtraError,
    UnsupportedFrameworkError,
)
from panoptes.spec import TensorSpec

# Opset 17 runs on every ONNX Runtime from 1.13 on, including the builds that the
# vendors' GPU/NPU execution providers lag behind on.
OPSET = 17


def versions(*packages: str) -> dict[str, str]:
    """Installed versions of the given distributions (recorded with every compiled model)."""
    found = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def np_dtype(spec: TensorSpec) -> np.dtype:
    # The descriptor's `type` is optional; Neo assumed float32 images.
    return np.dtype(spec.type or "float32")


def _shapes(inputs: Sequence[TensorSpec]) -> str:
    return ", ".join(f"{s.name} {list(s.shape)}" for s in inputs)


def _last_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def _mismatch(inputs: Sequence[TensorSpec], exc: BaseException) -> DescriptorMismatchError:
    return DescriptorMismatchError(
        f"the model does not run on the descriptor's input shape(s) ({_shapes(inputs)}): "
        f"{_last_line(exc)} (fix: set mlModelDescriptor.inputs[].shape to the shape the "
        "model was exported for)"
    )


def convert(source: ModelSource, inputs: Sequence[TensorSpec], *, dynamic_batch: bool = False):
    """The ONNX model for `source` and the versions of the tools that produced it."""
    if source.format == "onnx":
        try:
            return onnx.load(str(source.path)), versions("onnx")
        except Exception as exc:  # protobuf raises DecodeError and friends
            raise ArchiveError(
                f"{source.path.name} is not a readable ONNX model ({_last_line(exc)}); "
                "fix: export it again"
            ) from exc
    if source.format == "torchscript":
        return convert_torchscript(source.path, inputs, dynamic_batch=dynamic_batch)
    if source.format in ("savedmodel", "keras"):
        return convert_tensorflow(source, inputs)
    if source.format == "tflite":
        return convert_tflite(source.path, inputs)
    if source.format == "frozen-graph":
        raise UnsupportedFrameworkError(
            f"{source.path.name} looks like a TensorFlow frozen graph, which does not say "
            "which tensors are its outputs; fix: save the model as a SavedModel "
            "(tf.saved_model.save or model.export) or export it to ONNX"
        )
    if source.format == "mxnet":
        raise UnsupportedFrameworkError(
            "MXNet models cannot be compiled here: MXNet is retired (last release 1.9.1) and "
            "does not install beside Python 3.11 and NumPy 2; fix: in an MXNet 1.9 "
            "environment run mxnet.onnx.export_model(sym, params, in_shapes=[shape], "
            "onnx_file_path='model.onnx') and package the .onnx file"
        )
    raise UnsupportedFrameworkError(f"no converter for model format {source.format!r}")


# --- PyTorch ---------------------------------------------------------------------------


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingExtraError("compiling a PyTorch model", EXTRA_TORCH) from exc
    return torch


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _flatten(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _flatten(item)]
    return [value]


def load_torchscript(path: Path) -> Any:
    torch = _import_torch()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is "deprecated"
            return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:
        raise ArchiveError(
            f"{path.name} cannot be loaded as TorchScript ({_last_line(exc)}); fix: save the "
            "model with torch.jit.trace(model, example).save('model.pth')"
        ) from exc


def run_torchscript(module: Any, inputs: Sequence[TensorSpec]) -> tuple[tuple, list]:
    """Zeros of the descriptor's shapes and the module's flattened outputs on them."""
    torch = _import_torch()
    params = [a for a in module.forward.schema.arguments[1:]]  # [0] is self
    required = sum(1 for a in params if not a.has_default_value())
    if not required <= len(inputs) <= len(params):
        raise DescriptorMismatchError(
            f"the descriptor lists {len(inputs)} input(s) ({_shapes(inputs)}) but the "
            f"model's forward() takes {len(params)} ({', '.join(a.name for a in params)}); "
            "fix: list one mlModelDescriptor input per forward() argument, in order"
        )
    examples = tuple(torch.from_numpy(np.zeros(s.shape, np_dtype(s))) for s in inputs)
    with torch.no_grad():
        try:
            outputs = _flatten(module(*examples))
        except Exception as exc:
            raise _mismatch(inputs, exc) from exc
    return examples, outputs


def convert_torchscript(
    path: Path, inputs: Sequence[TensorSpec], *, dynamic_batch: bool = False
) -> tuple[onnx.ModelProto, dict[str, str]]:
    torch = _import_torch()
    module = load_torchscript(path)
    examples, outputs = run_torchscript(module, inputs)
    input_names = [s.name for s in inputs]
    output_names = [f"output{i}" for i in range(len(outputs))]
    # Neo compiled for the descriptor's exact shape; a dynamic batch axis is opt-in
    # because a model that reshapes with a literal batch size would export wrongly.
    axes = {n: {0: "batch"} for n in input_names + output_names} if dynamic_batch else None
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        try:
            torch.onnx.export(
                module,
                examples,
                buf,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
        except Exception as exc:
            raise UnsupportedFrameworkError(
                f"torch.onnx.export could not convert {path.name}: {_last_line(exc)}; fix: "
                "replace the unsupported operation, or export the model to ONNX yourself "
                "and package the .onnx file"
            ) from exc
    return onnx.load_from_string(buf.getvalue()), versions("torch", "onnx")


# --- TensorFlow / Keras / TFLite -------------------------------------------------------


def _import_tf() -> tuple[Any, Any]:
    try:
        import tensorflow as tf
        import tf2onnx
    except ImportError as exc:
        raise MissingExtraError("converting a TensorFlow model", EXTRA_TENSORFLOW) from exc
    return tf, tf2onnx


@contextlib.contextmanager
def _unreadable(path: Path, what: str, how: str) -> Iterator[None]:
    """A model file TensorFlow cannot parse (it raises OSError, ValueError, ...)."""
    try:
        yield
    except Exception as exc:
        raise ArchiveError(
            f"{path.name} cannot be loaded as {what} ({_last_line(exc)}); fix: save the "
            f"model again with {how} and package it again"
        ) from exc


def convert_tensorflow(
    source: ModelSource, inputs: Sequence[TensorSpec]
) -> tuple[onnx.ModelProto, dict[str, str]]:
    tf, tf2onnx = _import_tf()
    names = [s.name for s in inputs]
    if source.format == "savedmodel":
        with _unreadable(source.path, "a SavedModel", "model.export(path)"):
            loaded = tf.saved_model.load(str(source.path))
        signatures = dict(loaded.signatures)
        if not signatures:
            raise ArchiveError(
                "the SavedModel has no serving signature; fix: save it with "
                "model.export(path) or tf.saved_model.save(model, path, signatures=...)"
            )
        signature = signatures.get("serving_default") or next(iter(signatures.values()))
        declared = signature.structured_input_signature[1]
        unknown = [n for n in names if n not in declared]
        if unknown or len(names) != len(declared):
            raise DescriptorMismatchError(
                f"descriptor input(s) {names} do not match the SavedModel's signature "
                f"inputs {sorted(declared)}; fix: name mlModelDescriptor.inputs after them"
            )
        dtypes = [declared[n].dtype for n in names]

        def call(*args: Any) -> Any:
            return signature(**dict(zip(names, args, strict=True)))

    else:
        import keras

        with _unreadable(source.path, "a Keras model", "model.save('model.keras')"):
            model = keras.models.load_model(str(source.path), compile=False)
        dtypes = [tf.as_dtype(np_dtype(s)) for s in inputs]

        def call(*args: Any) -> Any:
            return model(args[0] if len(args) == 1 else list(args))

    specs = [tf.TensorSpec(s.shape, dt, name=s.name) for s, dt in zip(inputs, dtypes, strict=True)]
    try:
        call(*[tf.zeros(s.shape, dt) for s, dt in zip(inputs, dtypes, strict=True)])
    except Exception as exc:
        raise _mismatch(inputs, exc) from exc
    function = tf.function(call, input_signature=specs)
    model_proto, _ = tf2onnx.convert.from_function(function, input_signature=specs, opset=OPSET)
    return model_proto, versions("tensorflow-cpu", "tensorflow", "tf2onnx", "onnx")


def convert_tflite(
    path: Path, inputs: Sequence[TensorSpec]
) -> tuple[onnx.ModelProto, dict[str, str]]:
    _, tf2onnx = _import_tf()
    with _unreadable(path, "a TFLite model", "tf.lite.TFLiteConverter"):
        model, _ = tf2onnx.convert.from_tflite(str(path), opset=OPSET)
    # The TFLite converter names inputs like "serving_default_data:0"; give them the
    # descriptor's names so that callers use the names they declared.
    rename_inputs(model, [s.name for s in inputs])
    return model, versions("tensorflow-cpu", "tensorflow", "tf2onnx", "onnx")


def _bare(name: str) -> str:
    name = name.split(":")[0]
    return name.removeprefix("serving_default_")


def rename_inputs(model: onnx.ModelProto, wanted: Sequence[str]) -> None:
    """Rename graph inputs whose bare name equals a wanted name (in place)."""
    mapping = {}
    for graph_input in model.graph.input:
        for name in wanted:
            if graph_input.name != name and _bare(graph_input.name) == name:
                mapping[graph_input.name] = name
    for graph_input in model.graph.input:
        graph_input.name = mapping.get(graph_input.name, graph_input.name)
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name in mapping:
                node.input[i] = mapping[name]
