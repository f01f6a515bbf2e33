"""The agreement corpus: valid base documents of the five kinds and single-fault mutations.

Each invalid case breaks its base in exactly ONE way and names the JSON path it broke
(for a missing required field, the missing field's own path; for an unknown field, that
field's path). The published schema (through jsonschema) is the oracle for the verdict;
the test checks that our validator agrees and reports an error at (or inside) that path.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

EV = "2021-01-01"
_DROP = object()


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    doc: Any
    path: str | None  # None: valid per the published schema; else the path that was broken


def _walk(doc: Any, parts: tuple) -> tuple[Any, Any]:
    *head, last = parts
    node = doc
    for part in head:
        node = node[part]
    return node, last


def mutate(base: Any, parts: tuple, value: Any = _DROP) -> Any:
    """A deep copy of ``base`` with the value at ``parts`` replaced (or dropped)."""
    doc = copy.deepcopy(base)
    node, last = _walk(doc, parts)
    if value is _DROP:
        del node[last]
    elif isinstance(node, list) and last == len(node):
        node.append(value)
    else:
        node[last] = value
    return doc


def edit(base: Any, fn: Callable[[Any], None]) -> Any:
    doc = copy.deepcopy(base)
    fn(doc)
    return doc


# ---------------------------------------------------------------------------- bases

GRAPH = {
    "nodeGraph": {
        "envelopeVersion": EV,
        "description": "Counts things.",
        "packages": [
            {"name": "123456789012::APP_CODE", "version": "1.0"},
            {"name": "panorama::abstract_rtsp_media_source", "version": "1.0"},
            {"name": "panorama::hdmi_data_sink", "version": "1.0"},
        ],
        "nodes": [
            {
                "name": "code_node",
                "interface": "123456789012::APP_CODE.interface",
                "overridable": False,
                "launch": "onAppStart",
            },
            {
                "name": "threshold",
                "interface": "float32",
                "value": 0.5,
                "overridable": True,
                "decorator": {"title": "Threshold", "description": "Minimum confidence."},
            },
            {"name": "batch", "interface": "int32", "value": 8},
            {"name": "debug", "interface": "boolean", "value": False, "overridable": True},
            {"name": "region", "interface": "string", "value": "us-east-1", "overridable": True},
            {
                "name": "camera_node",
                "interface": "panorama::abstract_rtsp_media_source.rtsp_v1_interface",
                "overridable": True,
                "overrideMandatory": True,
                "decorator": {"title": "Camera", "description": "Choose a camera stream."},
            },
            {"name": "output_node", "interface": "panorama::hdmi_data_sink.hdmi0"},
        ],
        "edges": [
            {"producer": "camera_node.video_out", "consumer": "code_node.video_in"},
            {"producer": "code_node.video_out", "consumer": "output_node.video_in"},
            {"producer": "threshold", "consumer": "code_node.threshold"},
            {"producer": "batch", "consumer": "code_node.batch"},
            {"producer": "debug", "consumer": "code_node.debug"},
            {"producer": "region", "consumer": "code_node.region"},
        ],
    }
}

OVERRIDES = {
    "nodeGraphOverrides": {
        "envelopeVersion": EV,
        "packages": [{"name": "123456789012::lobby", "version": "1.0"}],
        "nodes": [
            {"name": "lobby_cam", "interface": "123456789012::lobby.lobby", "launch": "onAppStart"},
            {"name": "threshold_override", "interface": "float32", "value": 0.7},
        ],
        "nodeOverrides": [
            {"replace": "camera_node", "with": [{"name": "lobby_cam"}]},
            {"replace": "threshold", "with": [{"name": "threshold_override"}]},
        ],
        "networkRoutingRules": [{"node": "code_node", "containerPort": 80, "hostPort": 8080}],
    }
}

PACKAGE = {
    "nodePackage": {
        "envelopeVersion": EV,
        "name": "APP_CODE",
        "version": "1.0",
        "description": "Application code.",
        "assets": [
            {
                "name": "code_asset",
                "implementations": [
                    {
                        "type": "container",
                        "assetUri": "0123abcd.tar.gz",
                        "descriptorUri": "4567ef01.json",
                        "requirements": [
                            {
                                "type": "hardware_access",
                                "inferenceAccelerators": [
                                    {
                                        "deviceType": "nvhost_gpu",
                                        "sharedResourcePolicy": {"policy": "allow_all"},
                                    }
                                ],
                            },
                            {"type": "ota", "minVersion": "4.3.35"},
                        ],
                    }
                ],
            }
        ],
        "interfaces": [
            {
                "name": "interface",
                "category": "business_logic",
                "asset": "code_asset",
                "inputs": [
                    {"name": "video_in", "type": "media"},
                    {"name": "threshold", "type": "float32", "default": 0.5},
                    {"name": "batch", "type": "int32"},
                    {"name": "debug", "type": "boolean"},
                    {"name": "region", "type": "string"},
                    {"name": "mode", "type": "string", "default": "fast"},
                ],
                "outputs": [{"description": "Video out", "name": "video_out", "type": "media"}],
                "network": {"inboundPorts": [{"port": 80, "description": "http"}]},
            }
        ],
    }
}

PACKAGE_OVERRIDES = {
    "nodePackageOverrides": {
        "envelopeVersion": EV,
        "name": "APP_CODE",
        "version": "1.0",
        "assetOverrides": [
            {
                "name": "code_asset",
                "implementations": [{"type": "container", "assetUri": "89abcdef.tar.gz"}],
            }
        ],
    }
}

MODEL = {
    "mlModelDescriptor": {
        "envelopeVersion": EV,
        "framework": "PYTORCH",
        "frameworkVersion": "1.8",
        "precisionMode": "FP16",
        "inputs": [{"name": "data", "shape": [1, 3, 224, 224]}],
    }
}

RUNTIME = {
    "runtimeDescriptor": {
        "envelopeVersion": EV,
        "entry": {
            "path": "python3",
            "name": "/panorama/app.py",
            "arguments": ["--verbose"],
            "environment": [{"name": "LOG_LEVEL", "value": "INFO"}],
        },
        "events": [{"type": "onExit", "handler": "on_exit"}],
    }
}

# --------------------------------------------------------------------------- cases

G = ("nodeGraph",)
OV = ("nodeGraphOverrides",)
P = ("nodePackage",)
IF0 = (*P, "interfaces", 0)
IMPL = (*P, "assets", 0, "implementations", 0)
REQ = (*IMPL, "requirements")
Q = ("nodePackageOverrides",)
M = ("mlModelDescriptor",)
R = ("runtimeDescriptor",)

ELEVEN_PORTS = [{"port": 8000 + i} for i in range(11)]
TEN_PORTS = [{"port": 8000 + i} for i in range(10)]


def _g(id_, parts, value=_DROP, path=None, *, valid=False):
    return _case(id_, "nodeGraph", GRAPH, parts, value, path, valid)


def _o(id_, parts, value=_DROP, path=None, *, valid=False):
    return _case(id_, "nodeGraphOverrides", OVERRIDES, parts, value, path, valid)


def _p(id_, parts, value=_DROP, path=None, *, valid=False):
    return _case(id_, "nodePackage", PACKAGE, parts, value, path, valid)


def _q(id_, parts, value=_DROP, path=None, *, valid=False):
    return _case(id_, "nodePackageOverrides", PACKAGE_OVERRIDES, parts, value, path, valid)


def _m(id_, parts, value=_DROP, path=None, *, valid=False):
    return _case(id_, "assetDescriptor", MODEL, parts, value, path, valid)


def _r(id_, parts, value=_DROP, path=None, *, valid=False):
    return _case(id_, "assetDescriptor", RUNTIME, parts, value, path, valid)


def _dotted(parts: tuple) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _case(id_, kind, base, parts, value, path, valid):
    doc = mutate(base, parts, value)
    want = None if valid else (path if path is not None else _dotted(parts))
    return Case(id_, kind, doc, want)


STRUCTURAL_CASES: list[Case] = [
    # ---- valid documents
    Case("graph-base", "nodeGraph", GRAPH, None),
    Case("overrides-base", "nodeGraphOverrides", OVERRIDES, None),
    Case("package-base", "nodePackage", PACKAGE, None),
    Case("package-overrides-base", "nodePackageOverrides", PACKAGE_OVERRIDES, None),
    Case("model-descriptor-base", "assetDescriptor", MODEL, None),
    Case("runtime-descriptor-base", "assetDescriptor", RUNTIME, None),
    _g("graph-without-edges", (*G, "edges"), valid=True),
    _g("graph-without-description", (*G, "description"), valid=True),
    _g("graph-int32-value-3.0-is-an-integer", (*G, "nodes", 2, "value"), 3.0, valid=True),
    _g("graph-float32-value-integer", (*G, "nodes", 1, "value"), 1, valid=True),
    _g("graph-int32-without-value", (*G, "nodes", 2, "value"), valid=True),
    _g("graph-launch-onSignal", (*G, "nodes", 0, "launch"), "onSignal", valid=True),
    _g(
        "graph-routing-rule-with-decorator",
        (*G, "networkRoutingRules"),
        [{"node": "code_node", "containerPort": 80, "hostPort": 8080, "decorator": {"title": "x"}}],
        valid=True,
    ),
    _g(
        "graph-package-with-patchVersion",
        (*G, "packages", 0, "patchVersion"),
        "a" * 64,
        valid=True,
    ),
    Case(
        "overrides-only-envelope",
        "nodeGraphOverrides",
        {"nodeGraphOverrides": {"envelopeVersion": EV}},
        None,
    ),
    _o("overrides-empty-packages", (*OV, "packages"), [], valid=True),
    _o(
        "override-entry-with-its-envelopeVersion",
        (*OV, "nodeOverrides", 0, "envelopeVersion"),
        EV,
        valid=True,
    ),
    _p("package-int32-default-2.0", (*IF0, "inputs", 2, "default"), 2.0, valid=True),
    # portString is the one port schema without additionalProperties: false.
    _p("package-string-input-extra-field", (*IF0, "inputs", 4, "color"), "red", valid=True),
    _p("package-ten-inbound-ports", (*IF0, "network", "inboundPorts"), TEN_PORTS, valid=True),
    _p(
        "package-device-requirement",
        (*REQ, 2),
        {"type": "device", "name": "panorama_devkit"},
        valid=True,
    ),
    _p("package-ota-maxVersion-only", (*REQ, 1), {"type": "ota", "maxVersion": "5.0"}, valid=True),
    _p("package-without-assets", (*P, "assets"), valid=True),
    Case(
        "package-overrides-only-envelope",
        "nodePackageOverrides",
        {"nodePackageOverrides": {"envelopeVersion": EV}},
        None,
    ),
    _m("model-tensorflow-no-version", (*M, "frameworkVersion"), valid=True),
    _m("model-input-type-float32", (*M, "inputs", 0, "type"), "float32", valid=True),
    _r("runtime-entry-name-only", (*R, "entry"), {"name": "/panorama/app.py"}, valid=True),
    _r(
        "runtime-onCompleteInput-event",
        (*R, "events", 0),
        {"type": "onCompleteInput", "handler": "h", "inputs": ["video_in"]},
        valid=True,
    ),
    Case(
        "descriptor-with-model-and-runtime",
        "assetDescriptor",
        {**MODEL, **RUNTIME},
        None,
    ),
    # ---- nodeGraph: one fault each
    _g("graph-missing-packages", (*G, "packages")),
    _g("graph-missing-nodes", (*G, "nodes")),
    _g("graph-missing-envelopeVersion", (*G, "envelopeVersion")),
    _g("graph-envelopeVersion-enum", (*G, "envelopeVersion"), "2020-01-01"),
    _g("graph-empty-packages", (*G, "packages"), [], "nodeGraph.packages"),
    _g("graph-empty-nodes", (*G, "nodes"), [], "nodeGraph.nodes"),
    _g("graph-package-name-without-colons", (*G, "packages", 0, "name"), "APP_CODE"),
    _g("graph-package-version-1", (*G, "packages", 0, "version"), "1"),
    _g("graph-package-missing-version", (*G, "packages", 0, "version")),
    _g("graph-package-unknown-field", (*G, "packages", 0, "path"), "/tmp"),
    _g("graph-edge-double-dot", (*G, "edges", 0, "producer"), "camera_node..video_out"),
    _g("graph-edge-missing-consumer", (*G, "edges", 1, "consumer")),
    _g("graph-edge-unknown-field", (*G, "edges", 0, "kind"), "video"),
    _g("graph-edge-producer-number", (*G, "edges", 0, "producer"), 7),
    _g("graph-int32-value-1.5", (*G, "nodes", 2, "value"), 1.5),
    _g("graph-int32-value-string", (*G, "nodes", 2, "value"), "8"),
    _g("graph-boolean-value-string-true", (*G, "nodes", 3, "value"), "true"),
    _g("graph-float32-value-true", (*G, "nodes", 1, "value"), True),
    _g("graph-string-value-number", (*G, "nodes", 4, "value"), 5),
    _g("graph-node-interface-without-colons", (*G, "nodes", 0, "interface"), "APP_CODE.interface"),
    _g("graph-node-interface-without-dot", (*G, "nodes", 0, "interface"), "123456789012::APP_CODE"),
    _g("graph-node-missing-interface", (*G, "nodes", 0, "interface")),
    _g("graph-node-missing-name", (*G, "nodes", 4, "name")),
    _g("graph-node-name-with-space", (*G, "nodes", 0, "name"), "code node"),
    _g("graph-node-launch-enum", (*G, "nodes", 0, "launch"), "always"),
    _g("graph-interface-node-with-value", (*G, "nodes", 0, "value"), 1),
    _g("graph-param-node-with-launch", (*G, "nodes", 2, "launch"), "onAppStart"),
    _g("graph-overridable-string", (*G, "nodes", 1, "overridable"), "yes"),
    _g("graph-decorator-unknown-field", (*G, "nodes", 5, "decorator", "color"), "red"),
    _g("graph-decorator-empty-title", (*G, "nodes", 5, "decorator", "title"), ""),
    _g("graph-description-256-chars", (*G, "description"), "d" * 256),
    _g("graph-unknown-field", (*G, "version"), "1.0"),
    _g("graph-unknown-root-field", ("extra",), {}),
    _g(
        "graph-rule-containerPort-70000",
        (*G, "networkRoutingRules"),
        [{"node": "code_node", "containerPort": 70000, "hostPort": 8080}],
        "nodeGraph.networkRoutingRules[0].containerPort",
    ),
    _g(
        "graph-rule-missing-node",
        (*G, "networkRoutingRules"),
        [{"containerPort": 80, "hostPort": 8080}],
        "nodeGraph.networkRoutingRules[0].node",
    ),
    _g(
        "graph-rule-hostPort-string",
        (*G, "networkRoutingRules"),
        [{"node": "code_node", "containerPort": 80, "hostPort": "8080"}],
        "nodeGraph.networkRoutingRules[0].hostPort",
    ),
    # ---- nodeGraphOverrides
    _o("overrides-missing-envelopeVersion", (*OV, "envelopeVersion")),
    _o("overrides-missing-with", (*OV, "nodeOverrides", 0, "with")),
    _o("overrides-missing-replace", (*OV, "nodeOverrides", 0, "replace")),
    _o("overrides-replace-bad-pattern", (*OV, "nodeOverrides", 0, "replace"), "camera node!"),
    _o("overrides-with-unknown-field", (*OV, "nodeOverrides", 0, "with", 0, "launch"), "onSignal"),
    _o("overrides-with-not-array", (*OV, "nodeOverrides", 0, "with"), {"name": "lobby_cam"}),
    _o(
        "overrides-entry-envelopeVersion-enum", (*OV, "nodeOverrides", 0, "envelopeVersion"), "2022"
    ),
    _o("overrides-package-name-without-colons", (*OV, "packages", 0, "name"), "lobby"),
    _o("overrides-float32-value-string", (*OV, "nodes", 1, "value"), "0.7"),
    _o("overrides-unknown-field", (*OV, "overrides"), []),
    _o("overrides-rule-containerPort-0", (*OV, "networkRoutingRules", 0, "containerPort"), 0),
    # ---- nodePackage
    _p("package-missing-interfaces", (*P, "interfaces")),
    _p("package-missing-envelopeVersion", (*P, "envelopeVersion")),
    _p("package-empty-interfaces", (*P, "interfaces"), [], "nodePackage.interfaces"),
    _p("package-name-with-space", (*P, "name"), "my package"),
    _p("package-version-1", (*P, "version"), "1"),
    _p("package-unknown-field", (*P, "author"), "me"),
    _p("package-description-256-chars", (*P, "description"), "d" * 256),
    _p("interface-category-logic", (*IF0, "category"), "logic"),
    _p("interface-missing-category", (*IF0, "category")),
    _p("interface-empty-name", (*IF0, "name"), ""),
    _p("interface-unknown-field", (*IF0, "launch"), "onAppStart"),
    _p("input-port-name-with-hyphen", (*IF0, "inputs", 0, "name"), "video-in"),
    _p("output-port-name-with-hyphen", (*IF0, "outputs", 0, "name"), "video-out"),
    _p("input-port-type-double", (*IF0, "inputs", 1, "type"), "double"),
    _p("input-port-missing-type", (*IF0, "inputs", 2, "type")),
    _p("input-float32-default-string", (*IF0, "inputs", 1, "default"), "high"),
    _p("input-int32-default-2.5", (*IF0, "inputs", 2, "default"), 2.5),
    _p("input-boolean-default-0", (*IF0, "inputs", 3, "default"), 0),
    _p("input-media-with-default", (*IF0, "inputs", 0, "default"), "x"),
    _p("input-maxConnections-negative", (*IF0, "inputs", 0, "maxConnections"), -1),
    _p("output-media-maxConnections", (*IF0, "outputs", 0, "maxConnections"), 1),
    _p("inbound-port-70000", (*IF0, "network", "inboundPorts", 0, "port"), 70000),
    _p("inbound-port-missing-port", (*IF0, "network", "inboundPorts", 0, "port")),
    _p(
        "network-eleven-inbound-ports",
        (*IF0, "network", "inboundPorts"),
        ELEVEN_PORTS,
        "nodePackage.interfaces[0].network.inboundPorts",
    ),
    _p("network-unknown-field", (*IF0, "network", "outboundPorts"), []),
    _p("asset-missing-name", (*P, "assets", 0, "name")),
    _p("asset-name-with-space", (*P, "assets", 0, "name"), "code asset"),
    _p("implementation-type-binary", (*IMPL, "type"), "binary"),
    _p("implementation-missing-assetUri", (*IMPL, "assetUri")),
    _p("requirement-type-os", (*REQ, 2), {"type": "os", "family": "unix"}, _dotted((*REQ, 2))),
    _p("requirement-ota-without-versions", (*REQ, 1), {"type": "ota"}, _dotted((*REQ, 1))),
    _p(
        "requirement-missing-sharedResourcePolicy",
        (*REQ, 0, "inferenceAccelerators", 0, "sharedResourcePolicy"),
    ),
    _p("requirement-deviceType-cuda", (*REQ, 0, "inferenceAccelerators", 0, "deviceType"), "cuda"),
    # ---- nodePackageOverrides
    _q("package-overrides-missing-envelopeVersion", (*Q, "envelopeVersion")),
    _q("package-overrides-version-v1", (*Q, "version"), "v1"),
    _q("package-overrides-unknown-field", (*Q, "assets"), []),
    _q("package-overrides-asset-unknown-field", (*Q, "assetOverrides", 0, "uri"), "s3://x"),
    _q(
        "package-overrides-implementation-type-zip",
        (*Q, "assetOverrides", 0, "implementations", 0, "type"),
        "zip",
    ),
    # ---- assetDescriptor
    _m("model-framework-ONNX", (*M, "framework"), "ONNX"),
    _m("model-missing-inputs", (*M, "inputs")),
    _m("model-missing-framework", (*M, "framework")),
    _m("model-frameworkVersion-1", (*M, "frameworkVersion"), "1"),
    _m("model-precisionMode-INT8", (*M, "precisionMode"), "INT8"),
    _m("model-shape-string-item", (*M, "inputs", 0, "shape", 0), "1"),
    _m("model-input-missing-shape", (*M, "inputs", 0, "shape")),
    _m("model-input-type-float128", (*M, "inputs", 0, "type"), "float128"),
    _m("model-unknown-field", (*M, "batch"), 1),
    _m("model-envelopeVersion-enum", (*M, "envelopeVersion"), "2021-02-02"),
    _r("runtime-entry-path-without-name", (*R, "entry", "name")),
    _r(
        "runtime-entry-arguments-without-name",
        (*R, "entry"),
        {"arguments": ["x"]},
        "runtimeDescriptor.entry.name",
    ),
    _r("runtime-environment-missing-value", (*R, "entry", "environment", 0, "value")),
    _r("runtime-argument-number", (*R, "entry", "arguments", 0), 1),
    _r("runtime-entry-unknown-field", (*R, "entry", "cwd"), "/"),
    _r(
        "runtime-event-type-onStart",
        (*R, "events", 0, "type"),
        "onStart",
        "runtimeDescriptor.events[0]",
    ),
    _r(
        "runtime-partial-input-without-inputs",
        (*R, "events", 0),
        {"type": "onPartialInput", "handler": "h"},
        "runtimeDescriptor.events[0]",
    ),
    _r("runtime-missing-envelopeVersion", (*R, "envelopeVersion")),
    _r("runtime-unknown-root-field", ("extra",), 1),
]

# The deliberate deviation: `nvAccelerators` instead of `inferenceAccelerators`.
NV_ACCELERATORS = edit(
    PACKAGE,
    lambda d: d["nodePackage"]["assets"][0]["implementations"][0]["requirements"].__setitem__(
        0,
        {
            "type": "hardware_access",
            "nvAccelerators": [
                {"deviceType": "nvhost_gpu", "sharedResourcePolicy": {"policy": "allow_all"}}
            ],
        },
    ),
)
NV_ACCELERATORS_PATH = _dotted((*REQ, 0))
