"""The demo that `panoptes up --demo` deploys: built like a developer's project, it runs."""

from __future__ import annotations

from pathlib import Path

import appkit
import numpy as np
import pytest

from panoptes.demo.project import graph_path, make_demo_project
from panoptes.runtime import Runtime, make_plan
from panoptes.spec import resolve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_demo_project_is_a_valid_project_in_the_users_account(tmp_path: Path) -> None:
    project = make_demo_project(tmp_path, "111122223333")
    app = resolve(graph_path(project), None, project.packages_dir, deployment=False)
    assert {n.role for n in app.nodes.values()} == {"camera", "code", "model", "parameter", "sink"}
    assert all(ref.account in ("111122223333", "panorama") for ref in app.packages)
    # add-raw-model and build-container stored the assets, named by their SHA-256.
    kinds = sorted(p.suffix for p in project.assets_dir.iterdir())
    assert kinds == [".gz", ".json", ".json", ".onnx"]


def test_demo_application_boxes_motion_and_labels_frames(tmp_path: Path, long_clip: Path) -> None:
    project = make_demo_project(tmp_path, "111122223333")
    app = resolve(graph_path(project), None, project.packages_dir, deployment=False)
    plan = make_plan(app, project.root, {"camera_node": [str(long_clip)]})
    with Runtime(plan, tmp_path / "work", output_dir=tmp_path / "out", mjpeg_port=None) as rt:
        assert rt.wait_finished(timeout=120), rt.status()
        log = rt.app_log("code_node")
    assert "demo application started" in log
    out = appkit.read_frames(tmp_path / "out" / "output_node.mp4")
    src = appkit.read_frames(long_clip)
    assert len(out) >= len(src) // 2
    # The source frame this output frame shows (frames may be skipped): the closest
    # one below the label band; then the band must differ: the labels were drawn.
    frame = out[-1]
    h, w = frame.shape[:2]
    below = (slice(h // 2, h), slice(0, w))
    j = min(range(len(src)), key=lambda k: np.abs(src[k][below].astype(int) - frame[below]).mean())
    band = (slice(0, h // 6), slice(0, w // 2))
    diff = np.abs(frame[band].astype(int) - src[j][band].astype(int)).mean()
    assert diff > 5, f"no label drawn (mean difference {diff:.1f})"
