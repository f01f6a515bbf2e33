"""The shapes of the five manifest kinds, mirroring the published 2021-01-01 schemas.

One constant per schema file of the envelope version 2021-01-01, named after it, so a
reader can put this page beside the published schema and compare. Deliberate
deviations are marked DEVIATION and explained.
"""

from __future__ import annotations

from typing import Any

from panoptes.spec.problems import Report
from panoptes.spec.shapes import (
    Arr,
    Bool,
    Enum,
    Field,
    Int,
    Num,
    Obj,
    OneOf,
    Path,
    Shape,
    Str,
)

ENVELOPE_VERSION = "2021-01-01"
KINDS = (
    "nodeGraph",
    "nodeGraphOverrides",
    "nodePackage",
    "nodePackageOverrides",
    "assetDescriptor",
)

# Patterns, as published.
NODE_NAME = r"^[$A-Z_a-z0-9\-]+$"
NODE_INTERFACE = r"^[$A-Z_a-z0-9\-]+::[A-Z_a-z0-9\-]+\.[A-Z_a-z0-9\-]+$"
PACKAGE_REF = r"^[$A-Z_a-z0-9]+::[a-zA-Z_0-9\-]+$"
PACKAGE_NAME = r"^[a-z_A-Z0-9\-]+$"
VERSION = r"^[0-9]+\.[0-9]+$"
PORT_NAME = r"^[$A-Z_a-z0-9]+$"
EDGE_END = r"^[a-zA-Z0-9_\-]+\.?[a-z_A-Z0-9\-]+$"
FRAMEWORK_VERSION = r"^[0-9]+\.[A-Za-z0-9.]+$"

PARAMETER_TYPES = ("boolean", "int32", "float32", "string")
PORT_TYPES = (*PARAMETER_TYPES, "media")


def _req(shape: Shape) -> Field:
    return Field(shape, required=True)


def _opt(shape: Shape) -> Field:
    return Field(shape)


ENVELOPE = Enum([ENVELOPE_VERSION], hint=f'use "envelopeVersion": "{ENVELOPE_VERSION}"')
TEXT_255 = Str(max_len=255)

NODE_DECORATOR = Obj(
    {
        "title": _opt(Str(1, 255)),
        "description": _opt(Str(1, 255)),
        "constraintText": _opt(Str(1, 255)),
        "constraintRegex": _opt(Str(1, 255)),
    },
    what="decorator",
)

NODE_NAME_STR = Str(1, 128, NODE_NAME, hint="use letters, digits, _, - or $ (up to 128)")


def _value_node(type_name: str, value: Shape) -> Obj:
    return Obj(
        {
            "name": _req(NODE_NAME_STR),
            "interface": _req(Enum([type_name])),
            "value": _opt(value),
            "overridable": _opt(Bool()),
            "overrideMandatory": _opt(Bool()),
            "decorator": _opt(NODE_DECORATOR),
        },
        what=f"{type_name} parameter node",
    )


NODE_WITH_INTERFACE = Obj(
    {
        "name": _req(NODE_NAME_STR),
        "interface": _req(
            Str(
                pattern=NODE_INTERFACE,
                hint="write ACCOUNT::PACKAGE.INTERFACE, or one of the parameter types "
                "boolean, int32, float32, string",
            )
        ),
        "overridable": _opt(Bool()),
        "overrideMandatory": _opt(Bool()),
        "launch": _opt(Enum(["onDemand", "onAppStart", "onSignal"])),
        "decorator": _opt(NODE_DECORATOR),
    },
    what="node",
)

# node.schema.json: oneOf, told apart by "interface".
NODE = OneOf(
    "interface",
    {
        "boolean": _value_node("boolean", Bool()),
        "float32": _value_node("float32", Num(hint="write a number without quotes")),
        "int32": _value_node("int32", Int(hint="write a whole number without quotes")),
        "string": _value_node("string", Str(hint="put the value in double quotes")),
    },
    default=NODE_WITH_INTERFACE,
    what="node",
)

PACKAGE_INCLUDE = Obj(
    {
        "name": _req(
            Str(
                max_len=255,
                pattern=PACKAGE_REF,
                hint="write ACCOUNT::NAME, e.g. 123456789012::SAMPLE_CODE",
            )
        ),
        "version": _req(Str(max_len=255, pattern=VERSION, hint='write MAJOR.MINOR, e.g. "1.0"')),
        "patchVersion": _opt(Str()),
        "generatedPatchVersion": _opt(Str()),
        "uri": _opt(Str()),
    },
    what="package reference",
)

EDGE = Obj(
    {
        "producer": _req(
            Str(pattern=EDGE_END, hint="write NODE.PORT, or the name of a parameter node")
        ),
        "consumer": _req(Str(pattern=EDGE_END, hint="write NODE.PORT")),
    },
    what="edge",
)

NETWORK_ROUTING_RULE = Obj(
    {
        "node": _req(Str(1, 128, NODE_NAME)),
        "containerPort": _req(Int(1, 65535)),
        "hostPort": _opt(Int()),
        "decorator": _opt(NODE_DECORATOR),
    },
    what="network routing rule",
)

NODE_OVERRIDE = Obj(
    {
        "envelopeVersion": _opt(ENVELOPE),
        "replace": _req(Str(pattern=NODE_NAME, hint="name a node of the application graph")),
        "with": _req(Arr(Obj({"name": _req(Str(pattern=NODE_NAME))}, what="replacement"))),
    },
    what="node override",
)

NODE_GRAPH = Obj(
    {
        "nodeGraph": _opt(
            Obj(
                {
                    "envelopeVersion": _req(ENVELOPE),
                    "description": _opt(TEXT_255),
                    "packages": _req(
                        Arr(
                            PACKAGE_INCLUDE,
                            min_items=1,
                            hint="list the packages whose interfaces the nodes use",
                        )
                    ),
                    "nodes": _req(Arr(NODE, min_items=1, hint="an application needs nodes")),
                    "edges": _opt(Arr(EDGE)),
                    "networkRoutingRules": _opt(Arr(NETWORK_ROUTING_RULE)),
                },
                what="nodeGraph",
            )
        ),
    },
    what="application manifest",
)

NODE_GRAPH_OVERRIDES = Obj(
    {
        "nodeGraphOverrides": _opt(
            Obj(
                {
                    "envelopeVersion": _req(ENVELOPE),
                    "description": _opt(TEXT_255),
                    "packages": _opt(Arr(PACKAGE_INCLUDE)),
                    "nodes": _opt(Arr(NODE)),
                    "networkRoutingRules": _opt(Arr(NETWORK_ROUTING_RULE)),
                    "edges": _opt(Arr(EDGE)),
                    "nodeOverrides": _opt(Arr(NODE_OVERRIDE)),
                },
                what="nodeGraphOverrides",
            )
        ),
    },
    what="overrides document",
)

# --- packages -------------------------------------------------------------------------


def _input_port(type_name: str, default: Shape | None, closed: bool = True) -> Obj:
    fields: dict[str, Field] = {
        "description": _opt(TEXT_255),
        "name": _req(Str(1, 50, PORT_NAME, hint="use letters, digits, _ or $ (no hyphens)")),
        "type": _req(Enum([type_name])),
    }
    if default is not None:
        fields["default"] = _opt(default)
        if type_name != "boolean":
            fields["constraintRegex"] = _opt(Str())
    fields["maxConnections"] = _opt(Int(minimum=0))
    if default is not None:
        fields["reference"] = _opt(Bool())
        fields["referenceSource"] = _opt(Str())
    return Obj(fields, closed=closed, what=f"{type_name} input port")


INPUT_PORT = OneOf(
    "type",
    {
        "boolean": _input_port("boolean", Bool()),
        "int32": _input_port("int32", Int()),
        "float32": _input_port("float32", Num()),
        # As published, a string input port alone accepts extra fields.
        "string": _input_port("string", Str(), closed=False),
        "media": _input_port("media", None),
    },
    what="input port",
)


def _output_port(type_name: str) -> Obj:
    return Obj(
        {
            "description": _opt(Str()),
            "name": _req(Str(1, 50, PORT_NAME, hint="use letters, digits, _ or $ (no hyphens)")),
            "type": _req(Enum([type_name])),
        },
        what=f"{type_name} output port",
    )


OUTPUT_PORT = OneOf("type", {t: _output_port(t) for t in PORT_TYPES}, what="output port")

INBOUND_PORT = Obj(
    {"description": _opt(TEXT_255), "port": _req(Int(1, 65535))}, what="inbound port"
)
NETWORK = Obj({"inboundPorts": _opt(Arr(INBOUND_PORT, max_items=10))}, what="network configuration")

INTERFACE = Obj(
    {
        "description": _opt(Str()),
        "name": _req(Str(1, 128, r"^[a-z_A-Z0-9\-]+$")),
        "asset": _opt(Str()),
        "category": _req(Enum(["media_source", "media_sink", "business_logic", "ml_model"])),
        "inputs": _opt(Arr(INPUT_PORT)),
        "outputs": _opt(Arr(OUTPUT_PORT)),
        "network": _opt(NETWORK),
    },
    what="interface",
)

INFERENCE_ACCELERATOR = Obj(
    {
        "deviceType": _req(Enum(["nvhost_gpu"])),
        "sharedResourcePolicy": _req(
            Obj({"policy": _opt(Enum(["allow_all"]))}, closed=False, what="sharedResourcePolicy")
        ),
    },
    what="inference accelerator",
)


def _ota_needs_a_bound(value: dict, path: Path, report: Report) -> None:
    if "minVersion" not in value and "maxVersion" not in value:
        report.error(
            path,
            "an ota requirement needs minVersion or maxVersion",
            'add "minVersion": "4.3.35" (or a maxVersion)',
        )


class _HardwareAccess(Obj):
    """hardware_access, with the old "nvAccelerators" spelling folded into the standard one.

    DEVIATION: the published schema requires "inferenceAccelerators", but real GPU
    packages spelled it "nvAccelerators" and the service evidently accepted them. We
    accept the old spelling with a warning that says how to write it today.
    """

    def check(self, value: Any, path: Path, report: Report) -> None:
        if (
            isinstance(value, dict)
            and "nvAccelerators" in value
            and "inferenceAccelerators" not in value
        ):
            report.warning(
                (*path, "nvAccelerators"),
                'is the old spelling of "inferenceAccelerators"; accepted',
                'rename "nvAccelerators" to "inferenceAccelerators"',
            )
            value = {
                ("inferenceAccelerators" if k == "nvAccelerators" else k): v
                for k, v in value.items()
            }
        super().check(value, path, report)


REQUIREMENT = OneOf(
    "type",
    {
        "ota": Obj(
            {"type": _req(Enum(["ota"])), "minVersion": _opt(Str()), "maxVersion": _opt(Str())},
            rules=(_ota_needs_a_bound,),
            what="ota requirement",
        ),
        "device": Obj(
            {"type": _req(Enum(["device"])), "name": _req(Enum(["panorama_devkit"]))},
            what="device requirement",
        ),
        "hardware_access": _HardwareAccess(
            {
                "type": _req(Enum(["hardware_access"])),
                "inferenceAccelerators": _req(Arr(INFERENCE_ACCELERATOR)),
            },
            what="hardware_access requirement",
        ),
    },
    what="requirement",
)

ASSET = Obj(
    {
        "description": _opt(Str()),
        "name": _req(Str(1, 255, NODE_NAME)),
        "implementations": _opt(
            Arr(
                Obj(
                    {
                        "description": _opt(TEXT_255),
                        "type": _req(Enum(["system", "container", "model"])),
                        "assetUri": _req(Str(1, 255)),
                        "descriptorUri": _opt(Str()),
                        "requirements": _opt(Arr(REQUIREMENT)),
                    },
                    what="asset implementation",
                )
            )
        ),
    },
    what="asset",
)

NODE_PACKAGE = Obj(
    {
        "nodePackage": _opt(
            Obj(
                {
                    "envelopeVersion": _req(ENVELOPE),
                    "name": _opt(Str(1, 128, PACKAGE_NAME)),
                    "version": _opt(
                        Str(max_len=255, pattern=VERSION, hint='write MAJOR.MINOR, e.g. "1.0"')
                    ),
                    "description": _opt(TEXT_255),
                    "assets": _opt(Arr(ASSET)),
                    "interfaces": _req(
                        Arr(INTERFACE, min_items=1, hint="a package defines at least one interface")
                    ),
                },
                what="nodePackage",
            )
        ),
    },
    what="package configuration",
)

NODE_PACKAGE_OVERRIDES = Obj(
    {
        "nodePackageOverrides": _opt(
            Obj(
                {
                    "envelopeVersion": _req(ENVELOPE),
                    "name": _opt(Str(1, 128, PACKAGE_NAME)),
                    "version": _opt(Str(max_len=255, pattern=VERSION)),
                    "description": _opt(TEXT_255),
                    "assetOverrides": _opt(Arr(ASSET)),
                },
                what="nodePackageOverrides",
            )
        ),
    },
    what="package overrides document",
)

# --- descriptors ----------------------------------------------------------------------

TENSOR_TYPES = [
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "float16",
    "float32",
    "float64",
]


def _entry_dependencies(value: dict, path: Path, report: Report) -> None:
    # JSON Schema "dependencies": path, arguments and environment need a name.
    for key in ("path", "arguments", "environment"):
        if key in value and "name" not in value:
            report.error(
                (*path, "name"),
                f'is required when "{key}" is given',
                'add "name": the entry file, e.g. "/panorama/application.py"',
            )


def _event(kind: str, with_inputs: bool) -> Obj:
    fields = {
        "description": _opt(Str()),
        "type": _req(Enum([kind])),
        "handler": _req(Str(1)),
    }
    if with_inputs:
        fields["inputs"] = _req(Arr(Str(1)))
    return Obj(fields, what=f"{kind} event")


ASSET_DESCRIPTOR = Obj(
    {
        "mlModelDescriptor": _opt(
            Obj(
                {
                    "envelopeVersion": _req(ENVELOPE),
                    "framework": _req(Enum(["TENSORFLOW", "PYTORCH", "MXNET"])),
                    "frameworkVersion": _opt(
                        Str(3, 10, FRAMEWORK_VERSION, hint='give MAJOR.MINOR only, e.g. "1.8"')
                    ),
                    "inputs": _req(
                        Arr(
                            Obj(
                                {
                                    "name": _req(Str(hint='the model\'s input name, e.g. "data"')),
                                    "type": _opt(Enum(TENSOR_TYPES)),
                                    "shape": _req(Arr(Int(), hint="e.g. [1, 3, 224, 224]")),
                                },
                                what="input tensor",
                            )
                        )
                    ),
                    "precisionMode": _opt(Enum(["FP32", "FP16"])),
                },
                what="mlModelDescriptor",
            )
        ),
        "runtimeDescriptor": _opt(
            Obj(
                {
                    "envelopeVersion": _req(ENVELOPE),
                    "entry": _opt(
                        Obj(
                            {
                                "path": _opt(Str()),
                                "name": _opt(Str(1)),
                                "arguments": _opt(Arr(Str())),
                                "environment": _opt(
                                    Arr(
                                        Obj(
                                            {"name": _req(Str(1)), "value": _req(Str())},
                                            what="environment variable",
                                        )
                                    )
                                ),
                            },
                            rules=(_entry_dependencies,),
                            what="entry",
                        )
                    ),
                    "events": _opt(
                        Arr(
                            OneOf(
                                "type",
                                {
                                    "onExit": _event("onExit", False),
                                    "onPartialInput": _event("onPartialInput", True),
                                    "onCompleteInput": _event("onCompleteInput", True),
                                },
                                what="event",
                            )
                        )
                    ),
                },
                what="runtimeDescriptor",
            )
        ),
    },
    what="asset descriptor",
)

SHAPES: dict[str, Shape] = {
    "nodeGraph": NODE_GRAPH,
    "nodeGraphOverrides": NODE_GRAPH_OVERRIDES,
    "nodePackage": NODE_PACKAGE,
    "nodePackageOverrides": NODE_PACKAGE_OVERRIDES,
    "assetDescriptor": ASSET_DESCRIPTOR,
}

_ROOT_KEYS = {
    "nodeGraph": "nodeGraph",
    "nodeGraphOverrides": "nodeGraphOverrides",
    "nodePackage": "nodePackage",
    "nodePackageOverrides": "nodePackageOverrides",
    "mlModelDescriptor": "assetDescriptor",
    "runtimeDescriptor": "assetDescriptor",
}


def detect_kind(doc: Any) -> str | None:
    """The manifest kind of a document, from its top-level key; None if unknown."""
    if isinstance(doc, dict):
        for key in doc:
            if key in _ROOT_KEYS:
                return _ROOT_KEYS[key]
    return None


def check_structure(doc: Any, kind: str) -> Report:
    """Every structural problem of ``doc`` read as ``kind``, as the schema would see it."""
    report = Report()
    SHAPES[kind].check(doc, (), report)
    return report
