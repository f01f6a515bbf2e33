"""Helpers shared by the panoptes.project tests (a unique name: no clash with conftest)."""

from __future__ import annotations

import json
from pathlib import Path

from panoptes.project import Project

ACCOUNT = "123456789012"


SHAPE = (1, 3, 32, 32)  # what model_nets' tiny models take: small, so checks run fast


def model_descriptor(
    path: Path, framework: str = "PYTORCH", shape: tuple[int, ...] = SHAPE
) -> Path:
    """A model descriptor with one input "data" of `shape`."""
    doc = {
        "mlModelDescriptor": {
            "envelopeVersion": "2021-01-01",
            "framework": framework,
            "inputs": [{"name": "data", "shape": list(shape)}],
        }
    }
    path.write_text(json.dumps(doc, indent=4) + "\n")
    return path


def graph_of(project: Project) -> dict:
    return json.loads((project.graphs_dir / "app" / "graph.json").read_text())


def package_json(folder: Path) -> dict:
    return json.loads((folder / "package.json").read_text())
