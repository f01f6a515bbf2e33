"""`panoptes manifest validate` as a user runs it: a real process, exit codes, output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "panoptes", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_valid_graph_prints_one_line_summary_and_exits_0(sample_app: Path) -> None:
    graphs = sample_app / "graphs/my-app"
    res = run(
        "manifest",
        "validate",
        str(graphs / "graph.json"),
        "--overrides",
        str(graphs / "override.json"),
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("valid ")
    assert "8 nodes" in lines[0] and "1 camera stream(s)" in lines[0]


def test_packages_dir_is_found_from_the_project_layout(sample_app: Path, tmp_path: Path) -> None:
    # Running from elsewhere: graphs/APP/graph.json finds ../../packages by itself.
    res = run("manifest", "validate", str(sample_app / "graphs/my-app/graph.json"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "warning" in res.stderr  # the mandatory camera is still to be chosen


def test_every_problem_listed_with_path_and_fix_then_exit_1(
    sample_app: Path, tmp_path: Path
) -> None:
    graph = json.loads((sample_app / "graphs/my-app/graph.json").read_text())
    graph["nodeGraph"]["edges"][1]["producer"] = "code_node.video_in"  # an input
    graph["nodeGraph"]["edges"][2]["producer"] = "threshold"  # no such node
    graph["nodeGraph"]["nodes"][0]["launch"] = "always"  # not an enum value
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(graph))

    res = run("manifest", "validate", str(path), "--packages-dir", str(sample_app / "packages"))
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    # Structure first: the bad launch value is reported; wiring waits for a valid shape.
    assert "nodeGraph.nodes[0].launch" in res.stderr
    assert "fix:" in res.stderr

    graph["nodeGraph"]["nodes"][0]["launch"] = "onAppStart"
    path.write_text(json.dumps(graph))
    res = run("manifest", "validate", str(path), "--packages-dir", str(sample_app / "packages"))
    assert res.returncode == 1
    assert "nodeGraph.edges[1].producer" in res.stderr
    assert "nodeGraph.edges[2].producer" in res.stderr
    assert "2 error(s)" in res.stderr


def test_json_syntax_error_names_line_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "graph.json"
    path.write_text('{\n  "nodeGraph": {\n    "envelopeVersion": "2021-01-01",\n  }\n}\n')
    res = run("manifest", "validate", str(path))
    assert res.returncode == 1
    assert "line 4" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("relative", "kind"),
    [
        ("packages/123456789012-SAMPLE_CODE-1.0/package.json", "nodePackage"),
        ("packages/123456789012-SQUEEZENET_PYTORCH-1.0/descriptor.json", "assetDescriptor"),
    ],
)
def test_other_manifest_kinds_validate_alone(sample_app: Path, relative: str, kind: str) -> None:
    res = run("manifest", "validate", str(sample_app / relative))
    assert res.returncode == 0, res.stderr
    assert kind in res.stdout
