"""Build the demo project in the user's account, the way a developer would."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from panoptes.demo.model import write_classifier
from panoptes.project.accounts import import_application
from panoptes.project.containers import SourceOptions, build_container
from panoptes.project.layout import Project
from panoptes.project.models import add_raw_model

TEMPLATE = Path(__file__).parent / "template"
TEMPLATE_ACCOUNT = "123456789012"
NAME = "panoptes_demo"
CODE, MODEL = "DEMO_CODE", "DEMO_MODEL"


def make_demo_project(parent: Path, account: str) -> Project:
    """``parent/panoptes_demo``: graph, code asset and model asset, ready to publish.

    Built again from the template each time (it takes a second), so an upgrade of
    Panoptes brings the new demo.
    """
    root = parent / NAME
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(TEMPLATE, root, ignore=shutil.ignore_patterns(".keep", "__pycache__"))
    project = Project.at(root)
    import_application(project, account, TEMPLATE_ACCOUNT)
    model_dir = project.packages_dir / f"{account}-{MODEL}-1.0"
    code_dir = project.packages_dir / f"{account}-{CODE}-1.0"
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = write_classifier(Path(tmp) / "classifier.onnx")
        add_raw_model(
            project, "model_asset", onnx_path, model_dir / "descriptor.json", [model_dir], account
        )
    # The app needs only what Panoptes installs (OpenCV, NumPy): no wheelhouse.
    build_container(
        project, "code_asset", code_dir, account, engine_choice="none",
        source=SourceOptions(wheelhouse=False),
    )  # fmt: skip
    return project


def graph_path(project: Project) -> Path:
    return project.root / "graphs" / NAME / "graph.json"
