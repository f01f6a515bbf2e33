"""From a resolved application to what the runtime starts: the run plan.

`make_plan` reads the project's package folders and assets for every node and
checks, before any process starts, everything that would otherwise fail later:
each camera stream has a video source, each model node its archive and descriptor,
each code node its entry point. Every problem is one `RunError` naming the node and
the fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panoptes.media.camera_url import is_live
from panoptes.spec import (
    HDMI_SINK,
    ManifestError,
    PackageRef,
    ResolvedApplication,
    ResolvedNode,
    RuntimeDescriptor,
    parse_descriptor,
    parse_package,
)
from panoptes.spec.models import EntryPoint, NodePackage


class RunError(Exception):
    """The application cannot run as given; the message names the node and the fix."""

    def __init__(self, message: str, fix: str = "", node: str | None = None) -> None:
        super().__init__(message)
        self.message, self.fix, self.node = message, fix, node

    def __str__(self) -> str:
        return self.message + (f"\n  fix: {self.fix}" if self.fix else "")


@dataclass(frozen=True)
class CameraPlan:
    stream: str  # stream id: the camera node instance (what media.stream_id reports)
    node: str  # the graph's camera node it stands for
    uri: str
    launch: str = "onAppStart"


@dataclass(frozen=True)
class ModelPlan:
    node: str
    archive: Path
    descriptor: dict[str, Any]
    descriptor_path: Path | None = None  # where it was read (for messages)
    package_dir: Path | None = None


@dataclass(frozen=True)
class CodePlan:
    node: str
    package: PackageRef
    package_dir: Path
    asset: Path | None  # a built container asset, or None: run from the package folder
    entry: EntryPoint
    parameters: dict[str, tuple[str, Any]]  # port -> (type, value)
    media_inputs: dict[str, tuple[str, ...]]  # port -> camera stream ids
    media_outputs: dict[str, tuple[str, ...]]  # port -> sink nodes
    inbound_ports: tuple[int, ...] = ()


@dataclass(frozen=True)
class SinkPlan:
    node: str
    feeds: tuple[tuple[str, str], ...]  # (code node, output port)


@dataclass
class RunPlan:
    app: ResolvedApplication
    project_dir: Path
    cameras: list[CameraPlan] = field(default_factory=list)
    models: list[ModelPlan] = field(default_factory=list)
    codes: list[CodePlan] = field(default_factory=list)
    sinks: list[SinkPlan] = field(default_factory=list)
    routing: list[tuple[str, int, int]] = field(default_factory=list)  # node, container, host


def _package(project: Path, node: ResolvedNode) -> tuple[Path, NodePackage]:
    assert node.package is not None
    folder = project / "packages" / node.package.folder_name
    try:
        doc = json.loads((folder / "package.json").read_text(encoding="utf-8"))
        return folder, parse_package(doc)
    except FileNotFoundError:
        raise RunError(
            f"node {node.name!r}: package folder {folder} has no package.json",
            f"create the package (panoptes app create-package --name {node.package.name})",
            node.name,
        ) from None
    except (ValueError, ManifestError) as exc:
        raise RunError(
            f"node {node.name!r}: {folder / 'package.json'} is invalid: {exc}",
            "fix the package configuration",
            node.name,
        ) from None


def _asset_impl(project: Path, node: ResolvedNode, pkg: NodePackage, kind: str):
    name = node.interface.asset if node.interface else None
    asset = pkg.asset(name) if name else None
    if asset is None:
        return None
    for impl in asset.implementations:
        if impl.type == kind:
            return impl
    return None


def _model(project: Path, node: ResolvedNode) -> ModelPlan:
    folder, pkg = _package(project, node)
    impl = _asset_impl(project, node, pkg, "model")
    if impl is None:
        raise RunError(
            f"model node {node.name!r}: package {node.package} has no model asset",
            "import the model: panoptes app add-raw-model --model-asset-name NAME "
            f"--model-local-path MODEL.tar.gz --descriptor-path {folder}/descriptor.json "
            f"--packages-path {folder}",
            node.name,
        )
    archive = project / "assets" / impl.asset_uri
    if not archive.is_file():
        raise RunError(
            f"model node {node.name!r}: model file {archive} is missing",
            "re-import it with panoptes app add-raw-model, or restore the assets folder",
            node.name,
        )
    desc_path = project / "assets" / (impl.descriptor_uri or "")
    if not impl.descriptor_uri or not desc_path.is_file():
        desc_path = folder / "descriptor.json"
    try:
        descriptor = json.loads(desc_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(
            f"model node {node.name!r}: cannot read its descriptor {desc_path}: {exc}",
            "give the model package a descriptor.json with mlModelDescriptor",
            node.name,
        ) from None
    return ModelPlan(node.name, archive, descriptor, desc_path, folder)


def _runtime_descriptor(path: Path, node: str) -> RuntimeDescriptor:
    try:
        desc = parse_descriptor(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ManifestError) as exc:
        raise RunError(
            f"code node {node!r}: cannot read {path}: {exc}",
            'write {"runtimeDescriptor": {"envelopeVersion": "2021-01-01", "entry": '
            '{"path": "python3", "name": "/panorama/application.py"}}}',
            node,
        ) from None
    if desc.runtime is None:
        raise RunError(f"code node {node!r}: {path} has no runtimeDescriptor", "add one", node)
    return desc.runtime


def _code(project: Path, node: ResolvedNode, app: ResolvedApplication) -> CodePlan:
    folder, pkg = _package(project, node)
    impl = _asset_impl(project, node, pkg, "container")
    asset = None
    desc_path = folder / "descriptor.json"
    if impl is not None:
        candidate = project / "assets" / impl.asset_uri
        if candidate.is_file():
            asset = candidate
            if impl.descriptor_uri and (project / "assets" / impl.descriptor_uri).is_file():
                desc_path = project / "assets" / impl.descriptor_uri
    if asset is None and not desc_path.is_file():
        raise RunError(
            f"code node {node.name!r}: no built container asset and no descriptor.json in {folder}",
            "add descriptor.json with a runtimeDescriptor, or build the container "
            "(panoptes app build-container)",
            node.name,
        )
    runtime = _runtime_descriptor(desc_path, node.name)
    params: dict[str, tuple[str, Any]] = {}
    media_in: dict[str, tuple[str, ...]] = {}
    assert node.interface is not None
    for port in node.interface.inputs:
        if port.type == "media":
            continue
        bindings = node.inputs.get(port.name, ())
        value = bindings[0].value if bindings else port.default
        params[port.name] = (port.type, value)
    media_out: dict[str, list[str]] = {}
    for edge in app.edges:
        pnode, _, pport = edge.producer.partition(".")
        cnode, _, _ = edge.consumer.partition(".")
        if pnode == node.name and app.nodes[cnode].role == "sink":
            media_out.setdefault(pport, []).append(cnode)
    for port in node.interface.outputs:
        media_out.setdefault(port.name, [])
    return CodePlan(
        node=node.name,
        package=node.package,  # type: ignore[arg-type]
        package_dir=folder,
        asset=asset,
        entry=runtime.entry,
        parameters=params,
        media_inputs=media_in,
        media_outputs={k: tuple(v) for k, v in media_out.items()},
        inbound_ports=node.interface.inbound_ports,
    )


def _check_uri(stream: str, uri: str) -> None:
    if is_live(uri):
        return  # reachability is the source's job (it reconnects with backoff)
    if not Path(uri).is_file():
        raise RunError(
            f"camera node {stream!r}: video file {uri} does not exist",
            f"pass --camera {stream}=PATH with an existing file, or an rtsp:// URL",
            stream,
        )


def _cameras(app: ResolvedApplication, uris: dict[str, list[str]]) -> dict[str, list[CameraPlan]]:
    """Camera streams per graph camera node, with the URIs given on the command line."""
    by_node: dict[str, list[CameraPlan]] = {}
    known: dict[str, str] = {}
    for cam in app.by_role("camera"):
        for s in cam.cameras:
            known[s.node] = cam.name
        known[cam.name] = cam.name
    unknown = [k for k in uris if k not in known]
    if unknown:
        raise RunError(
            f"--camera names {', '.join(map(repr, unknown))}, which is not a camera node "
            f"of this application (camera nodes: {', '.join(sorted(known)) or 'none'})",
            "use NODE=URI with one of those names",
            unknown[0],
        )
    for cam in app.by_role("camera"):
        streams: list[CameraPlan] = []
        given = uris.get(cam.name)
        launch = cam.cameras[0].launch if cam.cameras else cam.launch
        if given and not any(s.node == cam.name for s in cam.cameras[1:]):
            # URIs given for the graph's camera node replace whatever stood there.
            for i, uri in enumerate(given):
                stream = cam.name if len(given) == 1 else f"{cam.name}_{i + 1}"
                streams.append(CameraPlan(stream, cam.name, uri, launch))
        else:
            for s in cam.cameras:
                got = uris.get(s.node)
                if not got:
                    what = "is a placeholder" if s.package is None else "has no video source here"
                    raise RunError(
                        f"camera node {s.node!r} {what}: no video file or stream URL for it",
                        f"pass --camera {s.node}=URI (a video file, rtsp://... or /dev/video0)",
                        s.node,
                    )
                for i, uri in enumerate(got):
                    stream = s.node if len(got) == 1 else f"{s.node}_{i + 1}"
                    streams.append(CameraPlan(stream, cam.name, uri, s.launch))
        for c in streams:
            _check_uri(c.stream, c.uri)
        by_node[cam.name] = streams
    return by_node


def make_plan(
    app: ResolvedApplication, project_dir: Path, cameras: dict[str, list[str]] | None = None
) -> RunPlan:
    """Check and gather everything needed to run ``app`` from ``project_dir``."""
    project = Path(project_dir)
    plan = RunPlan(app, project)
    by_node = _cameras(app, cameras or {})
    for streams in by_node.values():
        plan.cameras.extend(streams)
    for node in app.by_role("model"):
        plan.models.append(_model(project, node))
    for node in app.by_role("code"):
        code = _code(project, node, app)
        media_in = {}
        assert node.interface is not None
        for port in node.interface.inputs:
            if port.type != "media":
                continue
            ids: list[str] = []
            for b in node.inputs.get(port.name, ()):
                if b.kind == "edge" and b.producer:
                    producer = b.producer.partition(".")[0]
                    ids += [c.stream for c in by_node.get(producer, [])]
            media_in[port.name] = tuple(ids)
        plan.codes.append(
            CodePlan(**{**code.__dict__, "media_inputs": media_in})  # frozen: rebuild
        )
    for node in app.by_role("sink"):
        feeds = []
        for b in node.inputs.get("video_in", ()):
            if b.producer:
                n, _, p = b.producer.partition(".")
                feeds.append((n, p))
        if node.package is not None and node.package.qualified != HDMI_SINK:
            raise RunError(
                f"output node {node.name!r} uses {node.package}, which Panoptes cannot render",
                f"use {HDMI_SINK}",
                node.name,
            )
        plan.sinks.append(SinkPlan(node.name, tuple(feeds)))
    for rule in app.routing_rules:
        if rule.host_port is not None:
            plan.routing.append((rule.node, rule.container_port, rule.host_port))
    return plan
