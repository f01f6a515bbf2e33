"""Checking asset descriptors (descriptor.json) before they become assets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panoptes.project.errors import ProjectError
from panoptes.project.files import read_json

FRAMEWORKS = ("TENSORFLOW", "PYTORCH", "MXNET")


def _schema_problems(doc: Any) -> list[str] | None:
    """Problems found by panoptes.spec, or None when that module is not there yet."""
    try:
        from panoptes.spec import validate_document  # type: ignore[attr-defined]
    except ImportError:
        # TODO(spec): panoptes.spec.validate_document not importable yet; the
        # minimal checks in load_descriptor stand in until it is.
        return None
    report = validate_document(doc, "assetDescriptor")
    return [str(p) for p in report.errors]


def load_descriptor(path: Path, kind: str) -> dict[str, Any]:
    """Read and check a descriptor; ``kind`` is mlModelDescriptor or runtimeDescriptor."""
    doc = read_json(path, "descriptor")
    # The wrong kind of descriptor first: "expected a model descriptor" is a clearer
    # message than the schema errors of the other kind.
    if not isinstance(doc, dict) or not isinstance(doc.get(kind), dict):
        other = "runtimeDescriptor" if kind == "mlModelDescriptor" else "mlModelDescriptor"
        found = f"a {other}" if isinstance(doc, dict) and other in doc else "something else"
        raise ProjectError(
            f"{path}: expected a {kind} descriptor, found {found}",
            "models take the package's mlModelDescriptor descriptor.json, code packages "
            "a runtimeDescriptor",
        )
    problems = _schema_problems(doc)
    if problems:
        raise ProjectError(
            f"{path}: not a valid asset descriptor:\n  " + "\n  ".join(problems),
            "correct the fields listed above",
        )
    body = doc[kind]
    if kind == "mlModelDescriptor":
        _check_model(path, body)
    else:
        entry = body.get("entry")
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ProjectError(
                f"{path}: runtimeDescriptor.entry.name is missing",
                'set "entry": {"path": "python3", "name": "/panorama/app.py"}',
            )
    return doc


def _check_model(path: Path, body: dict[str, Any]) -> None:
    framework = body.get("framework")
    if framework not in FRAMEWORKS:
        raise ProjectError(
            f"{path}: mlModelDescriptor.framework is {framework!r}",
            f"set it to one of {', '.join(FRAMEWORKS)}",
        )
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ProjectError(
            f"{path}: mlModelDescriptor.inputs must list the model inputs",
            'e.g. "inputs": [{"name": "data", "shape": [1, 3, 224, 224]}]',
        )
    for i, item in enumerate(inputs):
        shape = item.get("shape") if isinstance(item, dict) else None
        if (
            not isinstance(item, dict)
            or not item.get("name")
            or not isinstance(shape, list)
            or not shape
            or not all(isinstance(d, int) and d > 0 for d in shape)
        ):
            raise ProjectError(
                f"{path}: mlModelDescriptor.inputs[{i}] needs a name and a shape of positive ints",
                'e.g. {"name": "data", "shape": [1, 3, 224, 224]}',
            )
