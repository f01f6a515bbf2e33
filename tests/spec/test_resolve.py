"""resolve(): the plan the runtime and control plane consume, built from real manifests."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from panoptes.spec import ManifestError, resolve, validate_application


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_sample_app_plan_wires_camera_code_model_and_output(sample_app: Path) -> None:
    graph = sample_app / "graphs/my-app/graph.json"
    plan = resolve(graph, sample_app / "graphs/my-app/override.json", sample_app / "packages")

    roles = {n.name: n.role for n in plan.nodes.values()}
    assert roles["code_node"] == "code"
    assert roles["model_node"] == "model"
    assert roles["camera_node"] == "camera"
    assert roles["output_node"] == "sink"
    assert roles["detection_threshold"] == "parameter"
    # The override replaced the placeholder camera with a registered camera.
    (stream,) = plan.camera_streams["code_node.video_in"]
    assert stream.node == "camera_node_override"
    assert stream.replaces == "camera_node"
    assert stream.registered and stream.package is not None
    assert stream.package.qualified == "123456789012::MY_CAMERA"
    # Parameter overrides reach the code node's inputs; untouched ones keep the graph value.
    code = plan.nodes["code_node"]
    assert code.inputs["region"][0].value == "MY_REGION"
    assert code.inputs["threshold"][0].value == 20.0
    assert plan.parameters["log_level"] == "INFO"


def test_multicam_override_gives_one_input_two_cameras_with_launch_modes(
    sample_app: Path,
) -> None:
    plan = resolve(
        sample_app / "graphs/my-app/graph.json",
        sample_app / "graphs/my-app/override-multicam.json",
        sample_app / "packages",
    )
    streams = plan.camera_streams["code_node.video_in"]
    assert [(s.node, s.launch) for s in streams] == [
        ("CAMERA_A", "onAppStart"),
        ("CAMERA_B", "onSignal"),
    ]


def test_graph_alone_resolves_for_local_runs_but_placeholder_is_reported_at_deploy(
    sample_app: Path,
) -> None:
    graph = sample_app / "graphs/my-app/graph.json"
    local = validate_application(graph, None, sample_app / "packages")
    assert local.ok
    assert any("overrideMandatory" in p.message for p in local.warnings)

    deploy = validate_application(graph, None, sample_app / "packages", deployment=True)
    assert not deploy.ok
    assert [p.path for p in deploy.errors] == ["nodeGraph.nodes[2]"]


def test_resolve_raises_with_every_problem(sample_app: Path, tmp_path: Path) -> None:
    graph = _load(sample_app / "graphs/my-app/graph.json")
    broken = copy.deepcopy(graph)
    broken["nodeGraph"]["edges"][0]["consumer"] = "code_node.vidoe_in"
    broken["nodeGraph"]["nodes"][4]["value"] = "high"
    with pytest.raises(ManifestError) as info:
        resolve(broken, None, sample_app / "packages")
    paths = [p.path for p in info.value.report.errors]
    # Structure is checked first: the bad value stops before wiring is looked at.
    assert paths == ["nodeGraph.nodes[4].value"]

    broken["nodeGraph"]["nodes"][4]["value"] = 0.5
    report = validate_application(broken, None, sample_app / "packages")
    (problem,) = report.errors
    assert problem.path == "nodeGraph.edges[0].consumer"
    assert "video_in" in problem.hint  # did you mean 'video_in'?


def test_routing_rules_from_overrides_are_the_open_ports(tmp_path: Path) -> None:
    debug = Path(__file__).resolve().parents[2].parent / "shared/reference/manifest-fixtures"
    app = debug / "devguide@HEAD/sample-apps/debug-server"
    if not app.is_dir():
        pytest.skip("reference fixtures missing")
    plan = resolve(
        app / "graphs/my-app/graph.json", app / "graphs/my-app/override.json", app / "packages"
    )
    assert [(r.node, r.container_port, r.host_port) for r in plan.routing_rules] == [
        ("code_node", 80, 8080)
    ]
    overrides = _load(app / "graphs/my-app/override.json")
    overrides["nodeGraphOverrides"]["networkRoutingRules"][0]["hostPort"] = 9090
    report = validate_application(app / "graphs/my-app/graph.json", overrides, app / "packages")
    assert [p.path for p in report.errors] == ["nodeGraphOverrides.networkRoutingRules[0].hostPort"]
