"""compile(): a model asset + its descriptor -> an ONNX file for a target, cached.

This is the step SageMaker Neo did for Panorama, done offline on the device or the
developer's machine. ONNX is the one format every execution provider we use
(TensorRT, CUDA, OpenVINO, CPU) loads, so every framework is converted to it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import onnx

from panoptes.models import convert as converters
from panoptes.models import precision as precision_mod
from panoptes.models.archive import check_framework, open_asset, sha256_file
from panoptes.models.cache import CacheKey, ModelCache
from panoptes.models.errors import MissingExtraError, ModelError
from panoptes.models.session import resolve_target
from panoptes.models.validate import TensorInfo, check_model, graph_inputs, graph_outputs
from panoptes.spec import AssetDescriptor, ModelDescriptor, parse_descriptor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelMetadata:
    """Everything a runtime needs to know about a compiled model (metadata.json)."""

    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    source_sha256: str
    framework: str
    source_format: str
    target: str
    precision: str  # what the model runs in on the target
    precision_requested: str
    weights_precision: str
    precision_note: str
    converters: dict[str, str]
    descriptor_inputs: tuple[dict, ...]
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def to_json(self) -> dict:
        return {
            "inputs": [i.to_json() for i in self.inputs],
            "outputs": [o.to_json() for o in self.outputs],
            "source_sha256": self.source_sha256,
            "framework": self.framework,
            "source_format": self.source_format,
            "target": self.target,
            "precision": self.precision,
            "precision_requested": self.precision_requested,
            "weights_precision": self.weights_precision,
            "precision_note": self.precision_note,
            "converters": self.converters,
            "descriptor_inputs": list(self.descriptor_inputs),
            "created": self.created,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ModelMetadata:
        return cls(
            inputs=tuple(TensorInfo.from_json(i) for i in d["inputs"]),
            outputs=tuple(TensorInfo.from_json(o) for o in d["outputs"]),
            source_sha256=d["source_sha256"],
            framework=d["framework"],
            source_format=d["source_format"],
            target=d["target"],
            precision=d["precision"],
            precision_requested=d["precision_requested"],
            weights_precision=d["weights_precision"],
            precision_note=d["precision_note"],
            converters=dict(d["converters"]),
            descriptor_inputs=tuple(d["descriptor_inputs"]),
            created=d["created"],
        )


@dataclass(frozen=True)
class CompiledModel:
    path: Path  # the .onnx file inside the cache entry
    metadata: ModelMetadata
    cache_hit: bool

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.metadata.inputs]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.metadata.outputs]


def model_descriptor(descriptor: ModelDescriptor | AssetDescriptor | Mapping) -> ModelDescriptor:
    """Accept the parsed model descriptor, the asset descriptor, or the raw JSON document."""
    if isinstance(descriptor, Mapping):
        descriptor = parse_descriptor(dict(descriptor))  # ManifestError if invalid
    if isinstance(descriptor, AssetDescriptor):
        if descriptor.model is None:
            raise ModelError("the descriptor has no mlModelDescriptor: it is not a model's")
        descriptor = descriptor.model
    if not descriptor.inputs:
        raise ModelError("the descriptor lists no inputs (fix: add mlModelDescriptor.inputs)")
    return descriptor


def _options_digest(md: ModelDescriptor, force_fp16: bool, dynamic_batch: bool) -> str:
    doc = {
        "inputs": [[s.name, list(s.shape), s.type] for s in md.inputs],
        "force_fp16": force_fp16,
        "dynamic_batch": dynamic_batch,
        "opset": converters.OPSET,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]


def compile(  # the name; shadows the builtin only inside this module
    archive: str | Path,
    descriptor: ModelDescriptor | AssetDescriptor | Mapping,
    target: str = "auto",
    *,
    cache_dir: str | Path | None = None,
    force_fp16: bool = False,
    dynamic_batch: bool = False,
) -> CompiledModel:
    """Compile a model asset for `target` (auto|tensorrt|cuda|openvino|cpu), using the cache.

    `dynamic_batch` exports PyTorch models with a symbolic batch axis, which lets the
    model server batch requests of several callers; other formats keep their own axes.
    """
    archive = Path(archive)
    md = model_descriptor(descriptor)
    framework = check_framework(md.framework)
    target = resolve_target(target)
    plan = precision_mod.plan(md.precision_mode, target, force_fp16=force_fp16)
    digest = sha256_file(archive)
    key = CacheKey(
        digest,
        target,
        plan.requested + ("-forced" if force_fp16 else ""),
        _options_digest(md, force_fp16, dynamic_batch),
    )
    cache = ModelCache(Path(cache_dir) if cache_dir is not None else None)
    if (hit := cache.load(key)) is not None:
        path, meta = hit
        return CompiledModel(path, ModelMetadata.from_json(meta), cache_hit=True)

    model, source_format, versions = _convert(archive, md, dynamic_batch=dynamic_batch)
    model = check_model(model, md.inputs)
    inputs, outputs = graph_inputs(model), graph_outputs(model)
    model = precision_mod.apply(model, plan)
    if plan.weights == "FP16":
        versions.update(converters.versions("onnxconverter-common"))
    if plan.note:
        log.info("%s: %s", archive.name, plan.note)
    metadata = ModelMetadata(
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        source_sha256=digest,
        framework=framework,
        source_format=source_format,
        target=target,
        precision=plan.effective,
        precision_requested=plan.requested,
        weights_precision=plan.weights,
        precision_note=plan.note,
        converters={**versions, **converters.versions("onnxruntime")},
        descriptor_inputs=tuple(
            {"name": s.name, "shape": list(s.shape), "type": s.type} for s in md.inputs
        ),
    )
    path = cache.store(key, model.SerializeToString(), metadata.to_json())
    return CompiledModel(path, metadata, cache_hit=False)


def _convert(
    archive: Path, md: ModelDescriptor, *, dynamic_batch: bool
) -> tuple[onnx.ModelProto, str, dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="panoptes-model-") as scratch:
        source = open_asset(archive, md.framework, Path(scratch))
        model, versions = converters.convert(source, md.inputs, dynamic_batch=dynamic_batch)
        return model, source.format, versions


def check_model_archive(
    archive: Path,
    descriptor: ModelDescriptor | AssetDescriptor | Mapping,
    *,
    require_converter: bool = False,
) -> str:
    """Raise a ModelError naming the problem and its fix if the asset cannot be compiled.

    Always checked: the archive reads, holds one model file for the framework, and the
    framework is known. With the framework's converter installed, also the descriptor's
    input names and shapes, by running the model once on zeros. Without it the deeper
    check is skipped with a warning in the log (the device, which has the extra, will
    fail at compile time), unless `require_converter` makes that an error.

    Returns the format of the model found (ModelSource.format: onnx, torchscript, ...).
    """
    md = model_descriptor(descriptor)
    check_framework(md.framework)
    with tempfile.TemporaryDirectory(prefix="panoptes-check-") as scratch:
        source = open_asset(Path(archive), md.framework, Path(scratch))
        try:
            if source.format == "torchscript":
                # Running the module is the whole check; no need to export it.
                converters.run_torchscript(converters.load_torchscript(source.path), md.inputs)
                return source.format
            model, _ = converters.convert(source, md.inputs)
        except MissingExtraError as exc:
            if require_converter:
                raise
            log.warning("%s: input names and shapes not checked: %s", archive, exc)
            return source.format
    check_model(model, md.inputs)
    return source.format
