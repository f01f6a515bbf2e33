"""init-project, create-package and add-panorama-package: new folders and graph entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from panoptes.project import graph, templates
from panoptes.project.errors import ProjectError
from panoptes.project.files import atomic_write_bytes, write_json
from panoptes.project.layout import VERSION_RE, Project, check_account, check_name
from panoptes.spec import PackageRef

PackageType = Literal["Container", "Model", "Camera", "Datasink"]
PACKAGE_TYPES: tuple[str, ...] = ("Container", "Model", "Camera", "Datasink")
PanoramaPackageType = Literal["camera", "data_sink"]


def init_project(parent: Path, name: str) -> Path:
    """Create ``parent/name`` with graphs/<name>/graph.json, packages/ and assets/."""
    check_name(name, "project name")
    root = parent / name
    if root.exists():
        raise ProjectError(
            f"{root} already exists; init-project never overwrites a folder",
            "pick another --name or remove the folder",
        )
    # Build in a hidden sibling and rename, so a failure leaves no half project.
    staging = parent / f".{name}.init"
    for sub in ("assets", "packages", f"graphs/{name}"):
        (staging / sub).mkdir(parents=True, exist_ok=True)
    write_json(staging / "graphs" / name / "graph.json", templates.graph())
    staging.rename(root)
    return root


@dataclass
class CreatedPackage:
    path: Path
    ref: PackageRef
    graphs: list[Path] = field(default_factory=list)
    node: str | None = None


def create_package(
    project: Project, name: str, kind: str, version: str, account: str
) -> CreatedPackage:
    """Create packages/ACCOUNT-NAME-VERSION and reference it from every graph.

    Camera and Datasink packages also get a node, as panorama-cli adds; Container
    and Model packages get theirs when build-container / add-raw-model create the
    interface. No cloud call: registration happens when the app is deployed.
    """
    if kind not in PACKAGE_TYPES:
        raise ProjectError(
            f"--type {kind!r} is not a package type", f"use one of {', '.join(PACKAGE_TYPES)}"
        )
    check_name(name, "package name")
    check_account(account)
    if not VERSION_RE.match(version):
        raise ProjectError(f"--version {version!r} is not MAJOR.MINOR", "e.g. --version 1.0")
    ref = PackageRef(account, name, version)
    path = project.packages_dir / ref.folder_name
    if path.exists():
        raise ProjectError(
            f"package folder {project.rel(path)} already exists",
            "pick another --name or --version, or edit the existing package",
        )
    graph_files = project.graph_files()
    graphs = {p: graph.load_graph(p) for p in graph_files}

    node = None
    if kind == "Camera":
        manifest = templates.camera_package(name, version)
        node = templates.node(name, f"{ref.qualified}.{templates.CAMERA_INTERFACE}")
    elif kind == "Datasink":
        manifest = templates.datasink_package(name, version)
        node = templates.node(name, f"{ref.qualified}.{templates.DATASINK_INTERFACE}")
    else:
        manifest = templates.package(name, version)
    if node is not None:
        for p, doc in graphs.items():
            if any(n.get("name") == name for n in doc["nodeGraph"]["nodes"]):
                raise ProjectError(
                    f"{project.rel(p)}: a node named {name!r} already exists",
                    "pick another --name",
                )

    staging = project.packages_dir / f".{ref.folder_name}.new"
    staging.mkdir(parents=True, exist_ok=True)
    write_json(staging / "package.json", manifest)
    if kind == "Container":
        (staging / "src").mkdir(exist_ok=True)
        write_json(staging / "descriptor.json", templates.runtime_descriptor())
        atomic_write_bytes(staging / "Dockerfile", templates.DOCKERFILE.encode())
    elif kind == "Model":
        write_json(staging / "descriptor.json", templates.model_descriptor())
    staging.rename(path)

    result = CreatedPackage(path, ref, node=node["name"] if node else None)
    for p, doc in graphs.items():
        changed = graph.add_package(doc, ref.qualified, version)
        if node is not None:
            changed = graph.add_node(doc, dict(node)) or changed
        if changed:
            graph.save_graph(p, doc)
            result.graphs.append(p)
    return result


def add_panorama_package(project: Project, kind: str, name: str) -> list[Path]:
    """Add a Panorama-provided camera or HDMI sink package and a node to every graph."""
    if kind == "camera":
        (pkg, version, _), node = templates.ABSTRACT_CAMERA, templates.abstract_camera_node(name)
    elif kind == "data_sink":
        (pkg, version, _), node = templates.HDMI_SINK, templates.hdmi_sink_node(name)
    else:
        raise ProjectError(f"--type {kind!r} is not a Panorama package", "use camera or data_sink")
    check_name(name, "node name")
    files = project.graph_files()
    graphs = {p: graph.load_graph(p) for p in files}
    for p, doc in graphs.items():
        if any(n.get("name") == name for n in doc["nodeGraph"]["nodes"]):
            raise ProjectError(
                f"{project.rel(p)}: a node named {name!r} already exists", "pick another --name"
            )
    for p, doc in graphs.items():
        graph.add_package(doc, pkg, version)
        graph.add_node(doc, dict(node))
        graph.save_graph(p, doc)
    return files
