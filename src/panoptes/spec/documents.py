"""One document at a time: read it, check it, build its model.

`validate_document` = the published schema's verdict (structure.py) plus the checks
that need only this one document (unique names, parameter ranges). Checks that need
several documents (graph + overrides + packages) live in application.py.
"""

from __future__ import annotations

import json
import math
import re
import struct
from pathlib import Path
from typing import Any

from panoptes.spec.models import (
    AssetDescriptor,
    GraphOverrides,
    NodeGraph,
    NodePackage,
    descriptor_from_dict,
    graph_from_dict,
    overrides_from_dict,
    package_from_dict,
)
from panoptes.spec.problems import PathPart, Problem, Report
from panoptes.spec.structure import KINDS, PARAMETER_TYPES, check_structure, detect_kind

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

_ROOT = {
    "nodeGraph": "nodeGraph",
    "nodeGraphOverrides": "nodeGraphOverrides",
    "nodePackage": "nodePackage",
    "nodePackageOverrides": "nodePackageOverrides",
}


def read_json(path: str | Path) -> tuple[Any, Report]:
    """Load a JSON file; a syntax error becomes a Problem with line and column."""
    report = Report()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        report.error("$", f"cannot read {p}: {exc.strerror or exc}", "check the path")
        return None, _sourced(report, p)
    value = parse_json_text(text, report)
    return value, (report if report.ok else _sourced(report, p))


def parse_json_text(text: str, report: Report) -> Any:
    """JSON from ``text``; a syntax error becomes a Problem at ``$`` with line and column
    in ``report`` (and None is returned)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        report.error(
            "$",
            f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            "fix the JSON syntax there (a trailing comma or a missing quote is usual)",
        )
        return None


def _sourced(report: Report, path: Path) -> Report:
    out = Report()
    out.extend(report, source=str(path))
    return out


def validate_document(doc: Any, kind: str | None = None) -> Report:
    """Every problem of one manifest document, structural and local, in one pass."""
    if kind is None:
        kind = detect_kind(doc)
        if kind is None:
            report = Report()
            report.error(
                "$",
                "is not a Panorama manifest: no nodeGraph, nodeGraphOverrides, "
                "nodePackage, mlModelDescriptor or runtimeDescriptor key",
                "check that this is the file you meant",
            )
            return report
    if kind not in KINDS:
        raise ValueError(f"unknown manifest kind {kind!r}; expected one of {', '.join(KINDS)}")
    report = check_structure(doc, kind)
    if not isinstance(doc, dict):
        return report
    root = _ROOT.get(kind)
    if root is not None and root not in doc:
        report.error(
            root,
            "is missing: the document has no content",
            f'wrap the document in {{"{root}": {{...}}}}',
        )
        return report
    body = doc.get(root) if root else doc
    if isinstance(body, dict):
        _LOCAL_CHECKS[kind](body, (root,) if root else (), report)
    return report


# --- local checks ---------------------------------------------------------------------


def _unique(items: Any, key: str, path: tuple[PathPart, ...], what: str, report: Report) -> None:
    if not isinstance(items, list):
        return
    seen: dict[Any, int] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or key not in item:
            continue
        name = item[key]
        if not isinstance(name, str):
            continue
        if name in seen:
            report.error(
                (*path, i, key),
                f"{what} {name!r} is defined twice (first at {path[-1]}[{seen[name]}])",
                f"rename one of the {what}s",
            )
        else:
            seen[name] = i


def _fits_float32(value: float) -> bool:
    # struct rounds to the nearest float32 first, so 3.4028235e38 (the usual printed
    # maximum) fits while anything that would overflow to infinity does not.
    try:
        struct.pack("<f", value)
    except OverflowError:
        return False
    return math.isfinite(value)


def check_parameter_value(node: dict, path: tuple[PathPart, ...], report: Report) -> None:
    """Range and constraint checks of a parameter node's value (types are structural)."""
    kind, value = node.get("interface"), node.get("value")
    vpath = (*path, "value")
    if kind == "int32" and isinstance(value, int | float) and not isinstance(value, bool):
        if not INT32_MIN <= value <= INT32_MAX:
            report.error(
                vpath,
                f"{value} does not fit in int32 ({INT32_MIN}..{INT32_MAX})",
                "use a smaller number or a float32/string parameter",
            )
    if kind == "float32" and isinstance(value, int | float) and not isinstance(value, bool):
        if not _fits_float32(value):
            report.error(vpath, f"{value} does not fit in float32", "use a smaller number")
    regex = (node.get("decorator") or {}).get("constraintRegex")
    if isinstance(regex, str) and value is not None and not isinstance(value, dict | list):
        text = json.dumps(value) if isinstance(value, bool) else str(value)
        try:
            matched = re.fullmatch(regex, text) is not None
        except re.error as exc:
            report.error(
                (*path, "decorator", "constraintRegex"),
                f"is not a valid regular expression: {exc}",
                "fix the expression",
            )
        else:
            if not matched:
                hint = (node.get("decorator") or {}).get(
                    "constraintText"
                ) or f"give a value matching {regex}"
                report.error(vpath, f"{value!r} does not satisfy the constraint {regex}", hint)


def _check_nodes(body: dict, root: tuple[PathPart, ...], report: Report) -> None:
    nodes = body.get("nodes")
    _unique(nodes, "name", (*root, "nodes"), "node", report)
    _unique(body.get("packages"), "name", (*root, "packages"), "package", report)
    if isinstance(nodes, list):
        for i, node in enumerate(nodes):
            if not isinstance(node, dict):
                continue
            if node.get("interface") in PARAMETER_TYPES:
                check_parameter_value(node, (*root, "nodes", i), report)
            if node.get("overrideMandatory") is True and node.get("overridable") is not True:
                report.error(
                    (*root, "nodes", i, "overrideMandatory"),
                    "is true, but the node is not overridable: no deployment could satisfy it",
                    'add "overridable": true, or drop "overrideMandatory"',
                )


def _check_package(body: dict, root: tuple[PathPart, ...], report: Report) -> None:
    _unique(body.get("interfaces"), "name", (*root, "interfaces"), "interface", report)
    _unique(body.get("assets"), "name", (*root, "assets"), "asset", report)
    assets = {a.get("name") for a in body.get("assets") or [] if isinstance(a, dict)}
    for i, itf in enumerate(body.get("interfaces") or []):
        if not isinstance(itf, dict):
            continue
        ipath = (*root, "interfaces", i)
        for side in ("inputs", "outputs"):
            _unique(itf.get(side), "name", (*ipath, side), "port", report)
        asset = itf.get("asset")
        if assets and isinstance(asset, str) and asset not in assets:
            report.warning(
                (*ipath, "asset"),
                f"names asset {asset!r}, which is not in assets",
                "build it (panoptes app build-container / add-raw-model) or fix the name",
            )
        ports = [
            p.get("port")
            for p in (itf.get("network") or {}).get("inboundPorts") or []
            if isinstance(p, dict)
        ]
        dupes = {p for p in ports if ports.count(p) > 1}
        for p in sorted(x for x in dupes if isinstance(x, int)):
            report.error(
                (*ipath, "network", "inboundPorts"),
                f"port {p} is listed twice",
                "list each port once",
            )


def _check_descriptor(body: dict, root: tuple[PathPart, ...], report: Report) -> None:
    if "mlModelDescriptor" not in body and "runtimeDescriptor" not in body:
        report.error(
            "$",
            "is empty: a descriptor holds mlModelDescriptor or runtimeDescriptor",
            "see packages/*/descriptor.json in a sample application",
        )
    model = body.get("mlModelDescriptor")
    if isinstance(model, dict):
        _unique(model.get("inputs"), "name", ("mlModelDescriptor", "inputs"), "input", report)
        for i, tensor in enumerate(model.get("inputs") or []):
            shape = tensor.get("shape") if isinstance(tensor, dict) else None
            if isinstance(shape, list) and not shape:
                report.error(
                    ("mlModelDescriptor", "inputs", i, "shape"),
                    "is empty",
                    "give every dimension, e.g. [1, 3, 224, 224]",
                )
            elif isinstance(shape, list) and any(
                isinstance(d, int | float) and not isinstance(d, bool) and d < 1 for d in shape
            ):
                report.error(
                    ("mlModelDescriptor", "inputs", i, "shape"),
                    "has a dimension below 1; models are compiled for a fixed shape",
                    "give the exact input shape, e.g. [1, 3, 224, 224]",
                )


def _check_nothing(body: dict, root: tuple[PathPart, ...], report: Report) -> None:
    return None


_LOCAL_CHECKS = {
    "nodeGraph": _check_nodes,
    "nodeGraphOverrides": _check_nodes,
    "nodePackage": _check_package,
    "nodePackageOverrides": _check_nothing,
    "assetDescriptor": _check_descriptor,
}

# --- parse = validate + build ---------------------------------------------------------


def _parse(doc: Any, kind: str, what: str, build: Any) -> Any:
    validate_document(doc, kind).raise_for_errors(what)
    return build(doc)


def parse_graph(doc: Any) -> NodeGraph:
    """The graph's model; ManifestError (with every problem) if the document is invalid."""
    return _parse(doc, "nodeGraph", "application manifest", graph_from_dict)


def parse_overrides(doc: Any) -> GraphOverrides:
    return _parse(doc, "nodeGraphOverrides", "overrides document", overrides_from_dict)


def parse_package(doc: Any) -> NodePackage:
    return _parse(doc, "nodePackage", "package configuration", package_from_dict)


def parse_descriptor(doc: Any) -> AssetDescriptor:
    return _parse(doc, "assetDescriptor", "descriptor", descriptor_from_dict)


def validate_file(path: str | Path, kind: str | None = None) -> tuple[Any, Report]:
    """Read and validate one file; problems carry the file name as their source."""
    doc, report = read_json(path)
    if doc is None:
        return None, report
    out = Report()
    out.extend(validate_document(doc, kind), source=str(path))
    return doc, out


__all__ = [
    "Problem",
    "parse_descriptor",
    "parse_graph",
    "parse_overrides",
    "parse_package",
    "read_json",
    "validate_document",
    "validate_file",
]
