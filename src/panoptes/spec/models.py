"""Typed, immutable views of the manifests, built from structurally valid documents.

The ``*_from_dict`` builders assume a document that passed `validate_document`
(documents.py); use `parse_*` there to check and build in one step. The rest of
Panoptes (runtime, control plane, CLI) reads these dataclasses, never raw dicts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from panoptes.spec.structure import PARAMETER_TYPES

ParameterType = Literal["boolean", "int32", "float32", "string"]
PortType = Literal["boolean", "int32", "float32", "string", "media"]
Category = Literal["media_source", "media_sink", "business_logic", "ml_model"]

_INTERFACE_RE = re.compile(r"^(?P<account>[^:]+)::(?P<package>[^.]+)\.(?P<interface>.+)$")


@dataclass(frozen=True)
class PackageRef:
    """``ACCOUNT::NAME`` at a version, as graphs list packages."""

    account: str
    name: str
    version: str
    patch_version: str | None = None

    @property
    def qualified(self) -> str:
        return f"{self.account}::{self.name}"

    @property
    def folder_name(self) -> str:
        """The project folder panorama-cli gives this package: ACCOUNT-NAME-VERSION."""
        return f"{self.account}-{self.name}-{self.version}"

    def __str__(self) -> str:
        return f"{self.qualified} {self.version}"


@dataclass(frozen=True)
class Decorator:
    title: str | None = None
    description: str | None = None
    constraint_text: str | None = None
    constraint_regex: str | None = None


@dataclass(frozen=True)
class Node:
    """A node of a graph or overrides document: an interface instance or a parameter."""

    name: str
    interface: str
    value: Any = None
    overridable: bool = False
    override_mandatory: bool = False
    launch: str = "onAppStart"
    decorator: Decorator | None = None

    @property
    def is_parameter(self) -> bool:
        return self.interface in PARAMETER_TYPES

    @property
    def parameter_type(self) -> ParameterType | None:
        return self.interface if self.is_parameter else None  # type: ignore[return-value]

    @property
    def package(self) -> str | None:
        """``ACCOUNT::PACKAGE`` of an interface node (None for parameters)."""
        m = _INTERFACE_RE.match(self.interface)
        return f"{m['account']}::{m['package']}" if m else None

    @property
    def interface_name(self) -> str | None:
        m = _INTERFACE_RE.match(self.interface)
        return m["interface"] if m else None


@dataclass(frozen=True)
class Edge:
    producer: str
    consumer: str


@dataclass(frozen=True)
class RoutingRule:
    node: str
    container_port: int
    host_port: int | None = None
    decorator: Decorator | None = None


@dataclass(frozen=True)
class NodeOverride:
    replace: str
    with_: tuple[str, ...]


@dataclass(frozen=True)
class NodeGraph:
    packages: tuple[PackageRef, ...]
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...] = ()
    routing_rules: tuple[RoutingRule, ...] = ()
    description: str | None = None


@dataclass(frozen=True)
class GraphOverrides:
    packages: tuple[PackageRef, ...] = ()
    nodes: tuple[Node, ...] = ()
    edges: tuple[Edge, ...] = ()
    routing_rules: tuple[RoutingRule, ...] = ()
    node_overrides: tuple[NodeOverride, ...] = ()


@dataclass(frozen=True)
class Port:
    name: str
    type: PortType
    description: str | None = None
    default: Any = None
    has_default: bool = False
    max_connections: int = 0


@dataclass(frozen=True)
class Interface:
    name: str
    category: Category
    asset: str | None = None
    inputs: tuple[Port, ...] = ()
    outputs: tuple[Port, ...] = ()
    inbound_ports: tuple[int, ...] = ()
    description: str | None = None

    def input(self, name: str) -> Port | None:
        return next((p for p in self.inputs if p.name == name), None)

    def output(self, name: str) -> Port | None:
        return next((p for p in self.outputs if p.name == name), None)


@dataclass(frozen=True)
class Implementation:
    type: str
    asset_uri: str
    descriptor_uri: str | None = None
    description: str | None = None
    requirements: tuple[dict[str, Any], ...] = ()

    @property
    def needs_gpu(self) -> bool:
        return any(r.get("type") == "hardware_access" for r in self.requirements)


@dataclass(frozen=True)
class Asset:
    name: str
    implementations: tuple[Implementation, ...] = ()


@dataclass(frozen=True)
class NodePackage:
    interfaces: tuple[Interface, ...]
    name: str | None = None
    version: str | None = None
    description: str | None = None
    assets: tuple[Asset, ...] = ()

    def interface(self, name: str) -> Interface | None:
        return next((i for i in self.interfaces if i.name == name), None)

    def asset(self, name: str) -> Asset | None:
        return next((a for a in self.assets if a.name == name), None)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    type: str | None = None


@dataclass(frozen=True)
class ModelDescriptor:
    framework: str
    inputs: tuple[TensorSpec, ...]
    framework_version: str | None = None
    precision_mode: str = "FP32"


@dataclass(frozen=True)
class EntryPoint:
    path: str = "$default"
    name: str | None = None
    arguments: tuple[str, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RuntimeDescriptor:
    entry: EntryPoint = field(default_factory=EntryPoint)
    events: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class AssetDescriptor:
    model: ModelDescriptor | None = None
    runtime: RuntimeDescriptor | None = None


# --- builders -------------------------------------------------------------------------


def _decorator(d: dict | None) -> Decorator | None:
    if d is None:
        return None
    return Decorator(
        d.get("title"), d.get("description"), d.get("constraintText"), d.get("constraintRegex")
    )


def _package_ref(d: dict) -> PackageRef:
    account, _, name = d["name"].partition("::")
    return PackageRef(account, name, d["version"], d.get("patchVersion"))


def _node(d: dict) -> Node:
    return Node(
        name=d["name"],
        interface=d["interface"],
        value=d.get("value"),
        overridable=d.get("overridable", False),
        override_mandatory=d.get("overrideMandatory", False),
        launch=d.get("launch", "onAppStart"),
        decorator=_decorator(d.get("decorator")),
    )


def _rule(d: dict) -> RoutingRule:
    return RoutingRule(
        d["node"], d["containerPort"], d.get("hostPort"), _decorator(d.get("decorator"))
    )


def _port(d: dict) -> Port:
    return Port(
        d["name"],
        d["type"],
        d.get("description"),
        d.get("default"),
        "default" in d,
        d.get("maxConnections", 0),
    )


def _interface(d: dict) -> Interface:
    ports = d.get("network", {}).get("inboundPorts", [])
    return Interface(
        name=d["name"],
        category=d["category"],
        asset=d.get("asset"),
        inputs=tuple(_port(p) for p in d.get("inputs", [])),
        outputs=tuple(_port(p) for p in d.get("outputs", [])),
        inbound_ports=tuple(p["port"] for p in ports),
        description=d.get("description"),
    )


def _asset(d: dict) -> Asset:
    impls = []
    for i in d.get("implementations", []):
        reqs = []
        for r in i.get("requirements", []):
            if "nvAccelerators" in r and "inferenceAccelerators" not in r:
                # Normalise the old spelling so nothing downstream sees it.
                r = {
                    ("inferenceAccelerators" if k == "nvAccelerators" else k): v
                    for k, v in r.items()
                }
            reqs.append(r)
        impls.append(
            Implementation(
                i["type"], i["assetUri"], i.get("descriptorUri"), i.get("description"), tuple(reqs)
            )
        )
    return Asset(d["name"], tuple(impls))


def graph_from_dict(doc: dict) -> NodeGraph:
    g = doc["nodeGraph"]
    return NodeGraph(
        packages=tuple(_package_ref(p) for p in g["packages"]),
        nodes=tuple(_node(n) for n in g["nodes"]),
        edges=tuple(Edge(e["producer"], e["consumer"]) for e in g.get("edges", [])),
        routing_rules=tuple(_rule(r) for r in g.get("networkRoutingRules", [])),
        description=g.get("description"),
    )


def overrides_from_dict(doc: dict) -> GraphOverrides:
    o = doc["nodeGraphOverrides"]
    return GraphOverrides(
        packages=tuple(_package_ref(p) for p in o.get("packages", [])),
        nodes=tuple(_node(n) for n in o.get("nodes", [])),
        edges=tuple(Edge(e["producer"], e["consumer"]) for e in o.get("edges", [])),
        routing_rules=tuple(_rule(r) for r in o.get("networkRoutingRules", [])),
        node_overrides=tuple(
            NodeOverride(x["replace"], tuple(w["name"] for w in x["with"]))
            for x in o.get("nodeOverrides", [])
        ),
    )


def package_from_dict(doc: dict) -> NodePackage:
    p = doc["nodePackage"]
    return NodePackage(
        interfaces=tuple(_interface(i) for i in p["interfaces"]),
        name=p.get("name"),
        version=p.get("version"),
        description=p.get("description"),
        assets=tuple(_asset(a) for a in p.get("assets", [])),
    )


def descriptor_from_dict(doc: dict) -> AssetDescriptor:
    model = runtime = None
    if (m := doc.get("mlModelDescriptor")) is not None:
        model = ModelDescriptor(
            framework=m["framework"],
            inputs=tuple(
                TensorSpec(t["name"], tuple(int(x) for x in t["shape"]), t.get("type"))
                for t in m["inputs"]
            ),
            framework_version=m.get("frameworkVersion"),
            precision_mode=m.get("precisionMode", "FP32"),
        )
    if (r := doc.get("runtimeDescriptor")) is not None:
        e = r.get("entry", {})
        runtime = RuntimeDescriptor(
            entry=EntryPoint(
                path=e.get("path", "$default"),
                name=e.get("name"),
                arguments=tuple(e.get("arguments", [])),
                environment=tuple((v["name"], v["value"]) for v in e.get("environment", [])),
            ),
            events=tuple(r.get("events", [])),
        )
    return AssetDescriptor(model, runtime)
