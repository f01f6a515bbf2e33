"""The application format: graph.json, overrides, package.json and descriptors.

Parse, validate, resolve. Pure: reads only the files it is handed; no network, no
processes. Every check reports through a `Report` (JSON path + message + hint), so a
user sees all mistakes of a document in one pass; `ManifestError` carries one.

    report = validate_document(doc)                      # one document
    report = validate_application(graph, overrides, packages_dir)
    plan = resolve(graph, overrides, packages_dir)       # -> ResolvedApplication
"""

from panoptes.spec.application import (
    MAX_CAMERA_STREAMS,
    Binding,
    CameraStream,
    ResolvedApplication,
    ResolvedNode,
    resolve,
    validate_application,
)
from panoptes.spec.documents import (
    parse_descriptor,
    parse_graph,
    parse_json_text,
    parse_overrides,
    parse_package,
    read_json,
    validate_document,
    validate_file,
)
from panoptes.spec.models import (
    Asset,
    AssetDescriptor,
    Edge,
    GraphOverrides,
    Implementation,
    Interface,
    ModelDescriptor,
    Node,
    NodeGraph,
    NodePackage,
    PackageRef,
    Port,
    RoutingRule,
    RuntimeDescriptor,
    TensorSpec,
)
from panoptes.spec.packages import (
    ABSTRACT_CAMERA,
    HDMI_SINK,
    ChainedPackages,
    DirectoryPackages,
    FoundPackage,
    PackageSource,
    folder_ref,
)
from panoptes.spec.problems import ManifestError, Problem, Report
from panoptes.spec.structure import KINDS, detect_kind

__all__ = [
    "ABSTRACT_CAMERA",
    "HDMI_SINK",
    "KINDS",
    "MAX_CAMERA_STREAMS",
    "Asset",
    "AssetDescriptor",
    "Binding",
    "CameraStream",
    "ChainedPackages",
    "DirectoryPackages",
    "Edge",
    "FoundPackage",
    "GraphOverrides",
    "Implementation",
    "Interface",
    "ManifestError",
    "ModelDescriptor",
    "Node",
    "NodeGraph",
    "NodePackage",
    "PackageRef",
    "PackageSource",
    "Port",
    "Problem",
    "Report",
    "ResolvedApplication",
    "ResolvedNode",
    "RoutingRule",
    "RuntimeDescriptor",
    "TensorSpec",
    "detect_kind",
    "folder_ref",
    "parse_descriptor",
    "parse_graph",
    "parse_json_text",
    "parse_overrides",
    "parse_package",
    "read_json",
    "resolve",
    "validate_application",
    "validate_document",
    "validate_file",
]
