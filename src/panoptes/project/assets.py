"""Recording a content-addressed asset in a package's package.json.

Shared by add-raw-model and build-container/export-container: both produce
``assets/<sha>.<ext>`` plus ``assets/<sha>.json`` and then need the same
bookkeeping: replace the asset block in place, keep hand-added ``requirements``,
add an interface + graph node for a brand-new asset, and delete superseded asset
files nobody references any more.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panoptes.project import graph, templates
from panoptes.project.errors import ProjectError
from panoptes.project.files import read_json_object, write_json
from panoptes.project.layout import Project
from panoptes.spec import PackageRef, folder_ref


@dataclass
class Registered:
    package_json: Path
    replaced: bool  # an asset with this name existed before
    interface: str | None = None  # name of an interface we added
    node: str | None = None  # name of a graph node we added
    graphs: list[Path] = field(default_factory=list)


def package_manifest(package_dir: Path) -> tuple[Path, dict[str, Any]]:
    path = package_dir / "package.json"
    if not path.is_file():
        raise ProjectError(
            f"{package_dir}: no package.json in this folder",
            "pass a folder made by `panoptes app create-package` (packages/ACCOUNT-NAME-VERSION)",
        )
    return path, read_json_object(
        path, "nodePackage", "package manifest", lists=("assets", "interfaces")
    )


def package_ref(package_dir: Path, manifest: dict[str, Any], account: str) -> PackageRef:
    """Identity of a package: folder name first (it is what graphs use), else package.json."""
    parsed = folder_ref(package_dir)
    body = manifest["nodePackage"]
    name = body.get("name") or (parsed.name if parsed else package_dir.name)
    version = body.get("version") or (parsed.version if parsed else "1.0")
    return PackageRef(parsed.account if parsed else account, name, version)


def asset_files(asset: dict[str, Any]) -> set[str]:
    return {
        uri
        for impl in asset.get("implementations", [])
        for uri in (impl.get("assetUri"), impl.get("descriptorUri"))
        if isinstance(uri, str) and uri
    }


def referenced_files(project: Project) -> set[str]:
    """Every asset file name any package.json in the project still points at."""
    refs: set[str] = set()
    for folder in project.package_folders():
        if not (folder / "package.json").is_file():
            continue
        _, doc = package_manifest(folder)
        for asset in doc["nodePackage"]["assets"]:
            if isinstance(asset, dict):
                refs |= asset_files(asset)
    return refs


def register_asset(
    project: Project,
    package_dir: Path,
    asset: dict[str, Any],
    category: str,
    node_name: str,
    account: str,
) -> tuple[Registered, set[str]]:
    """Write ``asset`` into package.json; return what changed and the superseded files.

    The caller deletes superseded files (see ``remove_unreferenced``) once every
    package it updates has been written, so a model shared by two packages
    stays until no package.json mentions it.
    """
    path, doc = package_manifest(package_dir)
    body = doc["nodePackage"]
    name = asset["name"]
    superseded: set[str] = set()
    new_asset = copy.deepcopy(asset)
    for i, old in enumerate(body["assets"]):
        if isinstance(old, dict) and old.get("name") == name:
            superseded = asset_files(old) - asset_files(new_asset)
            _keep_requirements(old, new_asset)
            body["assets"][i] = new_asset  # in place: the order of assets is kept
            replaced = True
            break
    else:
        body["assets"].append(new_asset)
        replaced = False
    result = Registered(path, replaced)

    if not replaced and not any(
        isinstance(i, dict) and i.get("asset") == name for i in body["interfaces"]
    ):
        iface = templates.interface(f"{name}_interface", category, name)
        body["interfaces"].append(iface)
        result.interface = iface["name"]
        ref = package_ref(package_dir, doc, account)
        node = templates.node(node_name, f"{ref.qualified}.{iface['name']}")
        # Only graphs that use this package get the node (panorama-cli: the first graph).
        for gpath in project.graph_files():
            gdoc = graph.load_graph(gpath)
            if graph.has_package(gdoc, ref.qualified) and graph.add_node(gdoc, dict(node)):
                graph.save_graph(gpath, gdoc)
                result.graphs.append(gpath)
        if result.graphs:
            result.node = node_name
    write_json(path, doc)
    return result, superseded


def _keep_requirements(old: dict[str, Any], new: dict[str, Any]) -> None:
    # Users add e.g. GPU hardware_access requirements by hand after a build;
    # a rebuild must not drop them.
    reqs = [i["requirements"] for i in old.get("implementations", []) if "requirements" in i]
    if reqs:
        for impl in new.get("implementations", []):
            impl.setdefault("requirements", copy.deepcopy(reqs[0]))


def remove_unreferenced(project: Project, candidates: set[str]) -> list[str]:
    """Delete superseded asset files unless some package.json still references them."""
    if not candidates:
        return []
    still_used = referenced_files(project)
    removed = []
    for uri in sorted(candidates - still_used):
        target = project.assets_dir / uri
        # uri comes from a manifest: never let it point outside assets/.
        if target.parent.resolve() != project.assets_dir.resolve():
            continue
        if target.is_file():
            target.unlink()
            removed.append(uri)
    return removed
