"""A whole application: graph + overrides + packages, checked together and resolved.

`resolve` turns the three into the deployable plan that the runtime and the control
plane consume (`ResolvedApplication`); `validate_application` runs the same code and
returns only the findings. One code path, so what validates is what runs.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from panoptes.spec.documents import read_json, validate_document
from panoptes.spec.models import (
    Edge,
    GraphOverrides,
    Interface,
    Node,
    NodeGraph,
    PackageRef,
    RoutingRule,
    graph_from_dict,
    overrides_from_dict,
)
from panoptes.spec.packages import (
    ABSTRACT_CAMERA,
    BUILTIN_PACKAGES,
    ChainedPackages,
    DirectoryPackages,
    FoundPackage,
    PackageSource,
    is_builtin_name,
)
from panoptes.spec.problems import ManifestError, PathPart, Report

Role = Literal["code", "model", "camera", "sink", "parameter"]
ROLE_OF_CATEGORY: dict[str, Role] = {
    "business_logic": "code",
    "ml_model": "model",
    "media_source": "camera",
    "media_sink": "sink",
}
MAX_CAMERA_STREAMS = 8  # per application (spec: service quotas)
HOST_PORTS = range(8000, 9001)  # spec: ports 8000-9000 can be opened on the device


@dataclass(frozen=True)
class CameraStream:
    """One camera behind a camera node after overrides."""

    node: str  # the camera node instance (the override's node name, or the graph's)
    replaces: str  # the graph node it stands for
    package: PackageRef | None  # None: an abstract camera nobody chose yet
    launch: str = "onAppStart"
    registered: bool = False  # a data source registered with the control plane


@dataclass(frozen=True)
class Binding:
    """What feeds one input port: an edge from NODE.PORT, a parameter, or the default."""

    kind: Literal["edge", "parameter", "default"]
    producer: str | None = None
    value: Any = None


@dataclass(frozen=True)
class ResolvedNode:
    name: str
    role: Role
    package: PackageRef | None = None
    interface: Interface | None = None
    launch: str = "onAppStart"
    parameter_type: str | None = None
    value: Any = None
    inputs: dict[str, tuple[Binding, ...]] = field(default_factory=dict)
    cameras: tuple[CameraStream, ...] = ()


@dataclass(frozen=True)
class ResolvedApplication:
    """The deployable plan: what to start and how its ports are wired."""

    nodes: dict[str, ResolvedNode]
    edges: tuple[Edge, ...]
    camera_streams: dict[str, tuple[CameraStream, ...]]  # "code_node.video_in" -> cameras
    routing_rules: tuple[RoutingRule, ...]
    packages: tuple[PackageRef, ...]
    warnings: tuple[str, ...] = ()

    def by_role(self, role: Role) -> list[ResolvedNode]:
        return [n for n in self.nodes.values() if n.role == role]

    @property
    def parameters(self) -> dict[str, Any]:
        return {n.name: n.value for n in self.by_role("parameter")}


@dataclass
class _NodeInfo:
    node: Node
    path: tuple[PathPart, ...]
    role: Role | None = None  # None: unknown (its package could not be read)
    package: PackageRef | None = None
    interface: Interface | None = None
    value: Any = None
    cameras: list[CameraStream] = field(default_factory=list)
    registered: bool = False


def _close(word: str, choices: Iterable[str]) -> str:
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {found[0]!r}?" if found else ""


def _as_source(packages: PackageSource | str | Path | None) -> ChainedPackages:
    if packages is None:
        return ChainedPackages(())
    if isinstance(packages, str | Path):
        return ChainedPackages((DirectoryPackages(Path(packages)),))
    return ChainedPackages((packages,))


class _Resolver:
    def __init__(
        self,
        graph: NodeGraph,
        overrides: GraphOverrides | None,
        packages: ChainedPackages,
        deployment: bool,
        report: Report,
        graph_source: str,
        overrides_source: str,
    ) -> None:
        self.g, self.o, self.packages = graph, overrides, packages
        self.deployment, self.report = deployment, report
        self.gsrc, self.osrc = graph_source, overrides_source
        self.nodes: dict[str, _NodeInfo] = {}
        self.override_nodes: dict[str, _NodeInfo] = {}
        self.listed: dict[str, FoundPackage | None] = {}
        self.used: set[str] = set()

    # -- reporting helpers -------------------------------------------------------------

    def err(self, src: str, path: tuple[PathPart, ...], msg: str, hint: str = "") -> None:
        sub = Report()
        sub.error(path, msg, hint)
        self.report.extend(sub, source=src)

    def warn(self, src: str, path: tuple[PathPart, ...], msg: str, hint: str = "") -> None:
        sub = Report()
        sub.warning(path, msg, hint)
        self.report.extend(sub, source=src)

    # -- steps -------------------------------------------------------------------------

    def run(self) -> ResolvedApplication | None:
        self._packages(self.g.packages, ("nodeGraph", "packages"), self.gsrc, optional=False)
        for i, node in enumerate(self.g.nodes):
            self.nodes[node.name] = self._node(node, ("nodeGraph", "nodes", i), self.gsrc)
        if self.o is not None:
            self._packages(
                self.o.packages, ("nodeGraphOverrides", "packages"), self.osrc, optional=True
            )
            for i, node in enumerate(self.o.nodes):
                info = self._node(node, ("nodeGraphOverrides", "nodes", i), self.osrc)
                if node.name in self.override_nodes:
                    continue  # reported by validate_document
                self.override_nodes[node.name] = info
            self._node_overrides()
        self._unreplaced()
        edges = self._edges()
        self._camera_quota()
        rules = self._routing_rules()
        for i, ref in enumerate(self.g.packages):
            if ref.qualified not in self.used and self.listed.get(ref.qualified) is not None:
                self.warn(
                    self.gsrc,
                    ("nodeGraph", "packages", i, "name"),
                    f"package {ref.qualified} is listed but no node uses it",
                    "remove it, or add a node with one of its interfaces",
                )
        if not self.report.ok:
            return None
        return self._plan(edges, rules)

    def _packages(
        self, refs: tuple[PackageRef, ...], path: tuple[PathPart, ...], src: str, optional: bool
    ) -> None:
        for i, ref in enumerate(refs):
            found = self.packages.find(ref, self.report)
            if ref.qualified not in self.listed or found is not None:
                self.listed[ref.qualified] = found
            if found is not None or optional:
                continue  # overrides may name registered cameras we cannot see here
            if is_builtin_name(ref.qualified):
                versions = [v for n, v in BUILTIN_PACKAGES if n == ref.qualified]
                self.err(
                    src,
                    (*path, i, "version"),
                    f"{ref.qualified} has no version {ref.version}",
                    f"use version {', '.join(versions)}",
                )
            elif self.packages.sources:
                self.err(
                    src,
                    (*path, i, "name"),
                    f"package {ref} was not found: no {ref.folder_name}/package.json "
                    "in the packages folder",
                    f"create it (panoptes app create-package --name {ref.name}) or fix "
                    "the name and version",
                )
            else:
                self.err(
                    src,
                    (*path, i, "name"),
                    f"package {ref} is unknown (no packages folder was given)",
                    "pass --packages-dir, or run from the project folder",
                )

    def _node(self, node: Node, path: tuple[PathPart, ...], src: str) -> _NodeInfo:
        info = _NodeInfo(node, path)
        if node.is_parameter:
            info.role, info.value = "parameter", node.value
            return info
        qualified = node.package or ""
        self.used.add(qualified)
        if qualified not in self.listed:
            where = "nodeGraphOverrides.packages" if src == self.osrc else "nodeGraph.packages"
            self.err(
                src,
                (*path, "interface"),
                f"names package {qualified}, which is not listed in {where}",
                f'add {{"name": "{qualified}", "version": "1.0"}} to {where}',
            )
            return info
        found = self.listed[qualified]
        if found is None:
            if src == self.osrc:
                # A package we cannot see, named in the overrides: a camera registered
                # with the control plane (the console's data sources).
                info.role, info.registered = "camera", True
                info.package = next(r for r in self._all_refs() if r.qualified == qualified)
            return info
        info.package = next(r for r in self._all_refs() if r.qualified == qualified)
        itf = found.package.interface(node.interface_name or "")
        if itf is None:
            names = [i.name for i in found.package.interfaces]
            self.err(
                src,
                (*path, "interface"),
                f"package {qualified} has no interface {node.interface_name!r} "
                f"(it has: {', '.join(names)})",
                _close(node.interface_name or "", names) or "use one of those",
            )
            return info
        info.interface, info.role = itf, ROLE_OF_CATEGORY[itf.category]
        if info.role == "camera":
            info.cameras = [
                CameraStream(
                    node.name,
                    node.name,
                    None if qualified == ABSTRACT_CAMERA else info.package,
                    node.launch,
                )
            ]
        return info

    def _all_refs(self) -> Iterable[PackageRef]:
        yield from self.g.packages
        if self.o is not None:
            yield from self.o.packages

    def _node_overrides(self) -> None:
        assert self.o is not None
        seen: dict[str, int] = {}
        for i, ov in enumerate(self.o.node_overrides):
            path: tuple[PathPart, ...] = ("nodeGraphOverrides", "nodeOverrides", i)
            target = self.nodes.get(ov.replace)
            if target is None:
                self.err(
                    self.osrc,
                    (*path, "replace"),
                    f"the graph has no node {ov.replace!r}",
                    _close(ov.replace, self.nodes) or "name a node of graph.json",
                )
                continue
            if ov.replace in seen:
                self.err(
                    self.osrc,
                    (*path, "replace"),
                    f"{ov.replace!r} is replaced twice (also nodeOverrides[{seen[ov.replace]}])",
                    "merge the two into one override",
                )
                continue
            seen[ov.replace] = i
            if not target.node.overridable:
                self.err(
                    self.osrc,
                    (*path, "replace"),
                    f"node {ov.replace!r} is not overridable",
                    f'set "overridable": true on {ov.replace} in graph.json, or drop this override',
                )
                continue
            replacements: list[_NodeInfo] = []
            for j, name in enumerate(ov.with_):
                rep = self.override_nodes.get(name)
                if rep is None:
                    self.err(
                        self.osrc,
                        (*path, "with", j, "name"),
                        f"{name!r} is not a node of the overrides document",
                        _close(name, self.override_nodes)
                        or "define it in nodeGraphOverrides.nodes",
                    )
                    continue
                replacements.append(rep)
            self._apply(target, replacements, ov.with_, path)

    def _apply(
        self,
        target: _NodeInfo,
        reps: list[_NodeInfo],
        names: tuple[str, ...],
        path: tuple[PathPart, ...],
    ) -> None:
        want = target.node.parameter_type
        if not names:
            what = "a camera" if target.role == "camera" else "a node"
            self.err(
                self.osrc,
                (*path, "with"),
                f"is empty: {target.node.name} needs {what}",
                f'list {what} to use, e.g. [{{"name": "my_camera"}}]',
            )
            return
        if len(reps) != len(names):
            return  # missing names already reported
        if target.role == "parameter":
            if len(reps) != 1:
                self.err(
                    self.osrc,
                    (*path, "with"),
                    f"a parameter takes one value; {len(reps)} nodes are given",
                    "keep one",
                )
                return
            rep = reps[0]
            if rep.node.parameter_type != want:
                got = rep.node.parameter_type or "an interface node"
                self.err(
                    self.osrc,
                    (*path, "with", 0, "name"),
                    f"{rep.node.name!r} is {got}, but {target.node.name!r} is {want}",
                    f'give {rep.node.name} "interface": "{want}"',
                )
                return
            target.value = rep.value
            return
        if target.role == "camera":
            streams = []
            for j, rep in enumerate(reps):
                if rep.role not in ("camera", None):
                    self.err(
                        self.osrc,
                        (*path, "with", j, "name"),
                        f"{rep.node.name!r} is not a camera",
                        "replace a camera node with camera nodes (a data source's package)",
                    )
                    continue
                if rep.node.launch == "onDemand":
                    self.err(
                        self.osrc,
                        (*rep.path, "launch"),
                        "a camera starts onAppStart or onSignal",
                        'use "onAppStart"',
                    )
                streams.append(
                    CameraStream(
                        rep.node.name,
                        target.node.name,
                        rep.package,
                        rep.node.launch,
                        rep.registered,
                    )
                )
            target.cameras = streams
            return
        if len(reps) != 1 or reps[0].role != target.role:
            self.err(
                self.osrc,
                (*path, "with"),
                f"{target.node.name!r} ({target.role}) must be replaced by one node of "
                "the same kind",
                "name one node with an interface of the same category",
            )
            return
        target.package, target.interface = reps[0].package, reps[0].interface

    def _unreplaced(self) -> None:
        replaced = {ov.replace for ov in self.o.node_overrides} if self.o else set()
        for name, info in self.nodes.items():
            if name in replaced:
                continue
            src, path = self.gsrc, info.path
            if info.node.override_mandatory:
                msg = f"node {name!r} must be replaced at deployment (overrideMandatory)"
                hint = f'add {{"replace": "{name}", "with": [...]}} to the overrides'
                (self.err if self.deployment else self.warn)(src, path, msg, hint)
            elif self.deployment and info.cameras and info.cameras[0].package is None:
                self.err(
                    src,
                    path,
                    f"camera node {name!r} is a placeholder and no camera replaces it",
                    f'add {{"replace": "{name}", "with": '
                    '[{"name": "<camera node>"}]} to the overrides',
                )

    def _endpoint(self, text: str) -> tuple[str, str | None]:
        node, dot, port = text.partition(".")
        return node, (port if dot else None)

    def _edges(self) -> list[tuple[Edge, str, tuple[PathPart, ...]]]:
        edges = [(e, self.gsrc, ("nodeGraph", "edges", i)) for i, e in enumerate(self.g.edges)]
        if self.o is not None:
            edges += [
                (e, self.osrc, ("nodeGraphOverrides", "edges", i))
                for i, e in enumerate(self.o.edges)
            ]
        fed: dict[tuple[str, str], list[tuple[PathPart, ...]]] = {}
        good = []
        for edge, src, path in edges:
            ptype = self._producer_type(edge, src, path)
            ctype = self._consumer_type(edge, src, path)
            if ctype is None:
                continue
            # The input counts as fed even when this edge is broken: its error is
            # already reported, and "not fed" on top would only repeat it.
            cnode, cport = self._endpoint(edge.consumer)
            fed.setdefault((cnode, cport or ""), []).append((*path, "consumer"))
            if ptype is None:
                continue
            if ptype != "?" and ctype != "?" and ptype != ctype:
                self.err(
                    src,
                    (*path, "consumer"),
                    f"{edge.producer} gives {ptype} but {edge.consumer} takes {ctype}",
                    "connect ports of the same type",
                )
                continue
            good.append((edge, src, path))
        self._fed_inputs(fed)
        return good

    def _producer_type(self, edge: Edge, src: str, path: tuple[PathPart, ...]) -> str | None:
        name, port = self._endpoint(edge.producer)
        where = (*path, "producer")
        info = self._edge_node(name, src, where)
        if info is None:
            return None
        if info.role == "parameter":
            if port is not None:
                self.err(
                    src,
                    where,
                    f"{name!r} is a parameter: use its name alone",
                    f'write "producer": "{name}"',
                )
                return None
            return info.node.parameter_type
        if port is None:
            outs = [p.name for p in info.interface.outputs] if info.interface else []
            self.err(
                src,
                where,
                f"{name!r} is not a parameter: name its output port",
                f'write "{name}.{outs[0]}"' if outs else "write NODE.PORT",
            )
            return None
        return self._port_type(info, port, "output", src, where)

    def _consumer_type(self, edge: Edge, src: str, path: tuple[PathPart, ...]) -> str | None:
        name, port = self._endpoint(edge.consumer)
        where = (*path, "consumer")
        info = self._edge_node(name, src, where)
        if info is None:
            return None
        if info.role == "parameter" or port is None:
            self.err(
                src,
                where,
                f"{edge.consumer!r} is not an input port",
                "write NODE.PORT naming an input of a code, model or output node",
            )
            return None
        return self._port_type(info, port, "input", src, where)

    def _edge_node(self, name: str, src: str, where: tuple[PathPart, ...]) -> _NodeInfo | None:
        info = self.nodes.get(name)
        if info is None:
            self.err(
                src,
                where,
                f"no node named {name!r}",
                _close(name, self.nodes) or "name a node of the graph",
            )
        return info

    def _port_type(
        self,
        info: _NodeInfo,
        port: str,
        side: Literal["input", "output"],
        src: str,
        where: tuple[PathPart, ...],
    ) -> str | None:
        """The type of ``port`` on the node's ``side``; "?" when the interface is unknown."""
        itf = info.interface
        if itf is None:
            return "?"  # its package was reported already; a registered camera gives media
        own, other = (itf.inputs, itf.outputs) if side == "input" else (itf.outputs, itf.inputs)
        found = next((p for p in own if p.name == port), None)
        if found is not None:
            return found.type
        name = info.node.name
        if any(p.name == port for p in other):
            end = "ends at an input" if side == "input" else "starts at an output"
            self.err(
                src,
                where,
                f"{port!r} is an {'output' if side == 'input' else 'input'} of {name!r}; "
                f"an edge {end}",
                "swap producer and consumer?",
            )
        else:
            names = [p.name for p in own]
            self.err(
                src,
                where,
                f"{name!r} has no {side} {port!r} ({side}s: {', '.join(names) or 'none'})",
                _close(port, names),
            )
        return None

    def _fed_inputs(self, fed: dict[tuple[str, str], list[tuple[PathPart, ...]]]) -> None:
        for name, info in self.nodes.items():
            # Model inputs are fed by the code's node.call(), not by edges.
            if info.interface is None or info.role not in ("code", "sink", "camera"):
                continue
            for port in info.interface.inputs:
                paths = fed.get((name, port.name), [])
                if not paths and not port.has_default:
                    # A code node's media input may stay unconnected (video_in.get()
                    # then yields no streams): the public inbound_network sample deployed
                    # like that. A typed input without a default has no value to read,
                    # and an output (sink) fed by nothing shows nothing: errors.
                    optional = port.type == "media" and info.role == "code"
                    report = self.warn if optional else self.err
                    report(
                        self.gsrc,
                        info.path,
                        f"input {port.name!r} ({port.type}) of node {name!r} is not fed",
                        self._feed_hint(name, port.name, port.type),
                    )
                limit = port.max_connections or (0 if port.type == "media" else 1)
                if limit and len(paths) > limit:
                    self.err(
                        self.gsrc,
                        paths[limit],
                        f"{name}.{port.name} takes {limit} connection(s); "
                        f"{len(paths)} edges feed it",
                        "remove the extra edges",
                    )

    def _feed_hint(self, node: str, port: str, ptype: str) -> str:
        for other in self.nodes.values():
            if other.role == "parameter" and other.node.parameter_type == ptype:
                if other.node.name == port or ptype != "media":
                    return (
                        f'add an edge {{"producer": "{other.node.name}", '
                        f'"consumer": "{node}.{port}"}} or a parameter node of type {ptype}'
                    )
        return f'add an edge whose "consumer" is "{node}.{port}"'

    def _camera_quota(self) -> None:
        total = sum(len(i.cameras) for i in self.nodes.values() if i.role == "camera")
        if total > MAX_CAMERA_STREAMS:
            path: tuple[PathPart, ...] = ("nodeGraphOverrides", "nodeOverrides")
            src = self.osrc if self.o is not None else self.gsrc
            if self.o is None:
                path = ("nodeGraph", "nodes")
            self.err(
                src,
                path,
                f"{total} camera streams; an application takes at most {MAX_CAMERA_STREAMS}",
                "split the cameras over several applications, or "
                'launch the extra ones "onSignal" in another application',
            )

    def _routing_rules(self) -> tuple[RoutingRule, ...]:
        graph_rules = [
            (r, self.gsrc, ("nodeGraph", "networkRoutingRules", i))
            for i, r in enumerate(self.g.routing_rules)
        ]
        ov_rules = (
            []
            if self.o is None
            else [
                (r, self.osrc, ("nodeGraphOverrides", "networkRoutingRules", i))
                for i, r in enumerate(self.o.routing_rules)
            ]
        )
        for rule, src, path in graph_rules + ov_rules:
            self._check_rule(rule, src, path)
        effective: dict[tuple[str, int], tuple[RoutingRule, str, tuple[PathPart, ...]]] = {}
        confirmed = {(r.node, r.container_port) for r, _, _ in ov_rules}
        for rule, src, path in graph_rules:
            key = (rule.node, rule.container_port)
            if self.deployment and key not in confirmed:
                self.warn(
                    src,
                    path,
                    f"port {rule.container_port} of {rule.node} stays closed: "
                    "the deployment's overrides do not confirm this rule",
                    "repeat the rule in the overrides' networkRoutingRules to open it",
                )
                continue
            effective[key] = (rule, src, path)
        for rule, src, path in ov_rules:
            effective[(rule.node, rule.container_port)] = (rule, src, path)
        used: dict[int, tuple[PathPart, ...]] = {}
        for rule, src, path in effective.values():
            if rule.host_port is None:
                self.err(
                    src,
                    path,
                    f"no hostPort for {rule.node}:{rule.container_port}",
                    'add "hostPort": a free port in 8000-9000',
                )
            elif rule.host_port in used:
                self.err(
                    src,
                    (*path, "hostPort"),
                    f"host port {rule.host_port} is used twice",
                    "give each rule its own host port",
                )
            else:
                used[rule.host_port] = path
        return tuple(r for r, _, _ in effective.values())

    def _check_rule(self, rule: RoutingRule, src: str, path: tuple[PathPart, ...]) -> None:
        info = self.nodes.get(rule.node)
        if info is None or info.role == "parameter":
            self.err(
                src,
                (*path, "node"),
                f"no code node named {rule.node!r}",
                _close(rule.node, self.nodes) or "name a node of the graph",
            )
            return
        if info.interface is not None and rule.container_port not in info.interface.inbound_ports:
            declared = ", ".join(map(str, info.interface.inbound_ports)) or "none"
            self.err(
                src,
                (*path, "containerPort"),
                f"{rule.node}'s interface does not declare port {rule.container_port} "
                f"(declared: {declared})",
                f'add {{"port": {rule.container_port}}} to network.inboundPorts of its '
                "package.json interface",
            )
        if rule.host_port is not None and rule.host_port not in HOST_PORTS:
            self.err(
                src,
                (*path, "hostPort"),
                f"{rule.host_port} is outside 8000-9000",
                "the device opens host ports 8000 to 9000 only",
            )

    def _plan(
        self, edges: list[tuple[Edge, str, tuple[PathPart, ...]]], rules: tuple[RoutingRule, ...]
    ) -> ResolvedApplication:
        inputs: dict[str, dict[str, list[Binding]]] = {n: {} for n in self.nodes}
        streams: dict[str, list[CameraStream]] = {}
        for edge, _, _ in edges:
            pnode, _ = self._endpoint(edge.producer)
            cnode, cport = self._endpoint(edge.consumer)
            producer = self.nodes[pnode]
            if producer.role == "parameter":
                binding = Binding("parameter", pnode, producer.value)
            else:
                binding = Binding("edge", edge.producer)
            inputs[cnode].setdefault(cport or "", []).append(binding)
            if producer.role == "camera":
                streams.setdefault(edge.consumer, []).extend(producer.cameras)
        nodes = {}
        for name, info in self.nodes.items():
            bound = {k: tuple(v) for k, v in inputs[name].items()}
            if info.interface is not None:
                for port in info.interface.inputs:
                    if port.name not in bound and port.has_default:
                        bound[port.name] = (Binding("default", value=port.default),)
            nodes[name] = ResolvedNode(
                name=name,
                role=info.role or "code",
                package=info.package,
                interface=info.interface,
                launch=info.node.launch,
                parameter_type=info.node.parameter_type,
                value=info.value,
                inputs=bound,
                cameras=tuple(info.cameras),
            )
        used = {n.package for n in nodes.values() if n.package is not None}
        return ResolvedApplication(
            nodes=nodes,
            edges=tuple(e for e, _, _ in edges),
            camera_streams={k: tuple(v) for k, v in streams.items()},
            routing_rules=rules,
            packages=tuple(r for r in self.g.packages if r in used)
            + tuple(sorted((r for r in used if r not in self.g.packages), key=str)),
            warnings=tuple(str(p) for p in self.report.warnings),
        )


def _load(doc: Any, kind: str, src: str, report: Report) -> Any:
    if isinstance(doc, str | Path):
        src = str(doc)
        doc, problems = read_json(doc)
        report.extend(problems)
        if doc is None:
            return None
    problems = validate_document(doc, kind)
    report.extend(problems, source=src)
    if not problems.ok:
        return None
    return graph_from_dict(doc) if kind == "nodeGraph" else overrides_from_dict(doc)


def _run(
    graph: Any,
    overrides: Any,
    packages: PackageSource | str | Path | None,
    deployment: bool | None,
    graph_source: str,
    overrides_source: str,
) -> tuple[ResolvedApplication | None, Report]:
    report = Report()
    g = _load(graph, "nodeGraph", graph_source, report)
    o = None
    if overrides is not None:
        o = _load(overrides, "nodeGraphOverrides", overrides_source, report)
        if o is None:
            return None, report
    if g is None:
        return None, report
    if deployment is None:
        deployment = overrides is not None
    resolver = _Resolver(
        g,
        o,
        _as_source(packages),
        deployment,
        report,
        str(graph) if isinstance(graph, str | Path) else graph_source,
        str(overrides) if isinstance(overrides, str | Path) else overrides_source,
    )
    return resolver.run(), report


def validate_application(
    graph: Any,
    overrides: Any = None,
    packages: PackageSource | str | Path | None = None,
    *,
    deployment: bool | None = None,
    graph_source: str = "graph.json",
    overrides_source: str = "overrides",
) -> Report:
    """Every problem of an application (graph + overrides + packages) in one pass.

    ``graph``/``overrides`` are parsed JSON documents or paths to them; ``packages`` a
    PackageSource or a project's packages/ folder. ``deployment`` (default: True when
    overrides are given) makes deploy-time duties errors: mandatory overrides, cameras
    for placeholder camera nodes.
    """
    return _run(graph, overrides, packages, deployment, graph_source, overrides_source)[1]


def resolve(
    graph: Any,
    overrides: Any = None,
    packages: PackageSource | str | Path | None = None,
    *,
    deployment: bool | None = None,
    graph_source: str = "graph.json",
    overrides_source: str = "overrides",
) -> ResolvedApplication:
    """The deployable plan; ManifestError listing every problem if there is one."""
    plan, report = _run(graph, overrides, packages, deployment, graph_source, overrides_source)
    if plan is None:
        raise ManifestError("application", report)
    return plan
