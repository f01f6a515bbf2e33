"""The deploy wizard's logic: what a graph asks the deployer, and the overrides it writes."""

from __future__ import annotations

import json

from panoptes.console import wizard
from panoptes.spec import validate_application
from sample_app import SAMPLE_APP

ACCOUNT = "123456789012"  # the guide's manifests name this account
GRAPH = (SAMPLE_APP / "graphs/my-app/graph.json").read_text()


def _form() -> wizard.GraphForm:
    checked = wizard.check_graph(GRAPH, SAMPLE_APP / "packages")
    assert checked.report.ok, checked.problems
    assert checked.form is not None
    return checked.form


def test_the_sample_graph_asks_for_one_camera_and_four_values():
    form = _form()
    assert [(c.node, c.title, c.mandatory) for c in form.cameras] == [
        ("camera_node", "IP camera", True)
    ]
    params = {p.node: p for p in form.parameters}
    assert list(params) == ["detection_threshold", "region", "device_id", "log_level"]
    assert params["detection_threshold"].title == "Threshold"
    assert params["detection_threshold"].type == "float32"
    assert params["detection_threshold"].value == 20.0
    assert params["log_level"].description == "DEBUG, INFO, WARNING, ERROR, or CRITICAL."


def test_two_cameras_one_on_signal_and_typed_values_make_valid_overrides():
    form = _form()
    cameras = {
        "camera_node": [
            wizard.CameraChoice("CAMERA_A", "1.0", "CAMERA_A", "onAppStart"),
            wizard.CameraChoice("CAMERA_B", "1.0", "CAMERA_B", "onSignal"),
        ]
    }
    doc, report = wizard.build_overrides(
        ACCOUNT, form, cameras, {"detection_threshold": "42.5", "log_level": "INFO"}, set()
    )
    assert report.ok and doc is not None
    o = doc["nodeGraphOverrides"]
    assert o["packages"] == [
        {"name": f"{ACCOUNT}::CAMERA_A", "version": "1.0"},
        {"name": f"{ACCOUNT}::CAMERA_B", "version": "1.0"},
    ]
    nodes = {n["name"]: n for n in o["nodes"]}
    assert nodes["CAMERA_B"] == {
        "name": "CAMERA_B", "interface": f"{ACCOUNT}::CAMERA_B.CAMERA_B", "launch": "onSignal"
    }  # fmt: skip
    assert nodes["detection_threshold_override"]["value"] == 42.5
    assert "log_level_override" not in nodes  # INFO is the graph's own value
    # The document is what the spec accepts as overrides of this graph: no finding at all.
    findings = validate_application(json.loads(GRAPH), doc, SAMPLE_APP / "packages")
    assert list(findings) == []


def test_wrong_values_name_their_field():
    form = _form()
    cams = {"camera_node": [wizard.CameraChoice("C", "1.0", "C")]}
    doc, report = wizard.build_overrides(ACCOUNT, form, cams, {"detection_threshold": "x"}, set())
    assert doc is None
    assert [(p.path, p.message) for p in report.errors] == [
        ("parameters.detection_threshold", "is not a float32")
    ]
    doc, report = wizard.build_overrides(ACCOUNT, form, {}, {}, set())
    assert doc is None and report.errors[0].path == "cameras.camera_node"


def test_inbound_ports_are_opened_only_when_confirmed():
    graph = json.loads(GRAPH)
    graph["nodeGraph"]["networkRoutingRules"] = [
        {"node": "code_node", "containerPort": 8080, "hostPort": 8080,
         "decorator": {"title": "Dashboard"}},
        {"node": "code_node", "containerPort": 9090, "hostPort": 8090},
    ]  # fmt: skip
    checked = wizard.check_graph(json.dumps(graph), None)
    form = checked.form
    assert form is not None
    assert [(r.container_port, r.title) for r in form.ports] == [
        (8080, "Dashboard"), (9090, "code_node port")
    ]  # fmt: skip
    cams = {"camera_node": [wizard.CameraChoice("C", "1.0", "C")]}
    doc, _ = wizard.build_overrides(ACCOUNT, form, cams, {}, {("code_node", 8080)})
    assert doc["nodeGraphOverrides"]["networkRoutingRules"] == [
        {"node": "code_node", "containerPort": 8080, "hostPort": 8080}
    ]


def test_an_instances_overrides_become_the_wizards_answers():
    multicam = json.loads((SAMPLE_APP / "graphs/my-app/override-multicam.json").read_text())
    cameras, values = wizard.answers_from_overrides(multicam)
    assert cameras == {"camera_node": ["CAMERA_A", "CAMERA_B"]}
    assert values == {"region": "MY_REGION", "device_id": "MY_DEVICE_ID", "log_level": "INFO"}


def test_json_syntax_errors_give_line_and_column():
    checked = wizard.check_graph('{"nodeGraph": {,}}', None)
    assert checked.form is None
    assert checked.problems[0]["path"] == "$"
    assert "line 1 column 16" in checked.problems[0]["message"]
