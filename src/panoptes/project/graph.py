"""Edits to graphs/<app>/graph.json: adding package references and nodes.

Every edit reads, changes and atomically rewrites the file; nothing else in the
document (edges, parameters, key order) is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panoptes.project.files import read_json_object, write_json


def load_graph(path: Path) -> dict[str, Any]:
    return read_json_object(path, "nodeGraph", "application manifest", lists=("packages", "nodes"))


def has_package(doc: dict[str, Any], qualified: str) -> bool:
    return any(p.get("name") == qualified for p in doc["nodeGraph"]["packages"])


def add_package(doc: dict[str, Any], qualified: str, version: str) -> bool:
    """Reference a package; False if the same name+version is already listed."""
    packages = doc["nodeGraph"]["packages"]
    if any(p.get("name") == qualified and p.get("version") == version for p in packages):
        return False
    packages.append({"name": qualified, "version": version})
    return True


def add_node(doc: dict[str, Any], node: dict[str, Any]) -> bool:
    """Append a node; False (and no change) if a node already has that name."""
    nodes = doc["nodeGraph"]["nodes"]
    if any(n.get("name") == node["name"] for n in nodes):
        return False
    nodes.append(node)
    return True


def save_graph(path: Path, doc: dict[str, Any]) -> None:
    write_json(path, doc)
