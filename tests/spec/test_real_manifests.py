"""Manifests of public Panorama projects (read in place from /work/shared/reference).

96 files: 88 valid per the published schemas, 8 templates with placeholders that are not
meant to be valid (the classification is itself checked against jsonschema below). Then
every sample application folder (graphs/ + packages/) is validated as a whole for each
graph with each override document found in the folder, and without overrides.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_support import (
    MANIFEST_FIXTURES,
    at_or_below,
    describe,
    kind_of,
    load_json,
    schema_error_paths,
    schema_errors,
)

if not MANIFEST_FIXTURES.is_dir():
    pytest.skip(
        f"reference manifests not found at {MANIFEST_FIXTURES} (expected a checkout of the shared "
        "reference folder beside the repository)",
        allow_module_level=True,
    )

from panoptes.spec import DirectoryPackages, validate_application, validate_document

ALL_FILES = sorted(p for p in MANIFEST_FIXTURES.rglob("*") if p.is_file())

CLI_RES = "cli@HEAD/panoramacli/resources/"
POSE = (
    "samples@cb4fd0d_parent/samples/pose_estimation/pose_estimation_app/graphs/pose_estimation_app/"
)
TEMPLATES = {
    CLI_RES + "descriptor_model_template.json",  # framework ""
    CLI_RES + "graph_template.json",  # packages [] and nodes []
    CLI_RES + "package_skeleton/package.json",  # name "", interfaces []
    CLI_RES + "package_template.json",  # name "", interfaces []
    CLI_RES + "project_skeleton/graphs/graph.json",  # packages [] and nodes []
    CLI_RES + "video_from_file_package/package.json",  # port types "string[]", "minimum"
    POSE + "override_template.json",  # "{YourAwsAccountId}::{YourCameraName}" placeholders
    POSE + "override_template_multi_cameras.json",
}


def rel(path: Path) -> str:
    return path.relative_to(MANIFEST_FIXTURES).as_posix()


VALID_FILES = [p for p in ALL_FILES if rel(p) not in TEMPLATES]
TEMPLATE_FILES = [p for p in ALL_FILES if rel(p) in TEMPLATES]


def test_inventory():
    assert len(ALL_FILES) == 96
    # The brief said 87 valid + 9 templates; the published schemas say 88 + 8 (the 9th
    # "template" does not exist: the list it gave names 8 files).
    assert len(VALID_FILES) == 88
    assert {rel(p) for p in TEMPLATE_FILES} == TEMPLATES


@pytest.mark.parametrize("path", ALL_FILES, ids=rel)
def test_classification_agrees_with_published_schema(path: Path):
    errors = schema_errors(load_json(path))
    if rel(path) in TEMPLATES:
        assert errors, "listed as a template but the published schema accepts it"
    else:
        assert errors == [], "listed as valid but the published schema refuses it"


@pytest.mark.parametrize("path", VALID_FILES, ids=rel)
def test_real_manifest_passes_validate_document(path: Path):
    report = validate_document(load_json(path))
    assert report.ok, describe(report)


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=rel)
def test_template_fails_validate_document(path: Path):
    doc = load_json(path)
    report = validate_document(doc)
    assert not report.ok, "a template with placeholders was accepted"
    # At least one of our errors points where the published schema sees a problem.
    theirs = schema_error_paths(doc)
    ours = [p.path for p in report.errors]
    assert any(at_or_below(o, t) for o in ours for t in theirs), (
        f"schema errors at {theirs}\nours:\n{describe(report)}"
    )


# ---------------------------------------------------------------- whole applications

APP_DIRS = sorted(
    p
    for p in MANIFEST_FIXTURES.rglob("*")
    if p.is_dir() and (p / "graphs").is_dir() and (p / "packages").is_dir()
)


def _docs_of_kind(app: Path, kind: str, under: str | None = None) -> list[Path]:
    base = app / under if under else app
    out = []
    for p in sorted(base.rglob("*")):
        if p.is_file() and "assets" not in p.relative_to(app).parts:
            doc = load_json(p)
            if kind_of(doc) == kind:
                out.append(p)
    return out


def _combinations():
    for app in APP_DIRS:
        for graph in _docs_of_kind(app, "nodeGraph", "graphs"):
            yield app, graph, None
            for ov in _docs_of_kind(app, "nodeGraphOverrides"):
                yield app, graph, ov


COMBOS = list(_combinations())


def _key(app: Path, graph: Path, ov: Path | None) -> tuple[str, str, str | None]:
    return (
        rel(app),
        graph.relative_to(app).as_posix(),
        ov.relative_to(app).as_posix() if ov else None,
    )


DG = "devguide@HEAD/sample-apps/"
SH = "samples@HEAD/samples/"
SP = "samples@cb4fd0d_parent/samples/"
OK: list[str] = []

# Expected verdict of every (app, graph, overrides) combination found on disk: [] = valid,
# otherwise error paths that must be reported (an error at that path or inside it).
EXPECTED: dict[tuple[str, str, str | None], list[str]] = {
    # camera_node (nodes[2]) is overrideMandatory: fine while developing (a warning);
    # deploying it without an override is refused (test_deploying_without_a_camera).
    (DG + "aws-panorama-sample", "graphs/my-app/graph.json", None): OK,
    (DG + "aws-panorama-sample", "graphs/my-app/graph.json", "graphs/my-app/override.json"): OK,
    (DG + "aws-panorama-sample", "graphs/my-app/graph.json", "graphs/my-app/override.json.bup"): OK,
    # Two registered cameras replace one abstract camera (onAppStart + onSignal).
    (
        DG + "aws-panorama-sample",
        "graphs/my-app/graph.json",
        "graphs/my-app/override-multicam.json",
    ): OK,
    (DG + "debug-server", "graphs/my-app/graph.json", None): OK,
    # The override repeats the graph's routing rule code_node:80 <- 8080 (the guide asks for
    # exactly that to confirm opening the port): not a host port used twice.
    (DG + "debug-server", "graphs/my-app/graph.json", "graphs/my-app/override.json"): OK,
    (DG + "debug-server", "graphs/my-app/graph.json", "graphs/my-app/override.json.bup"): OK,
    (SH + "ONNX2TRT_opengpu/onnx2trt_app", "graphs/onnx2trt_app/graph.json", None): OK,
    (SH + "ONNX_opengpu/onnx_app", "graphs/onnx_app/graph.json", None): OK,
    # graph_with_hdmi.json names 937544830708::onnx_app, but the folder only holds
    # packages/028663699634-onnx_app-1.0: the package reference cannot be resolved.
    (SH + "ONNX_opengpu/onnx_app", "graphs/onnx_app/graph_with_hdmi.json", None): [
        "nodeGraph.packages[0]"
    ],
    (SH + "PT_opengpu/yolov5s_pt_app", "graphs/yolov5s_pt_app/graph.json", None): OK,
    (
        SH + "PT_opengpu/yolov5s_pt_app",
        "graphs/yolov5s_pt_app/graph.json",
        "deployment_overrides/override_camera.json",
    ): OK,
    # camera_node (nodes[1]) is overrideMandatory and the sample ships no override.
    (SH + "car_tracker_opengpu/car_tracker_app", "graphs/car_tracker_app/graph.json", None): OK,
    # No camera at all: code_node.video_in is never fed. AWS ships this sample and its
    # notebook deploys it to DEPLOYMENT_SUCCEEDED, so an unfed business-logic media input
    # is accepted by the service.
    (SH + "inbound_network/inbound_network_app", "graphs/inbound_network_app/graph.json", None): OK,
    (
        SH + "inbound_network/inbound_network_app",
        "graphs/inbound_network_app/graph.json",
        "graphs/inbound_network_app/override.json",
    ): OK,
    (
        SH + "kinesis_video_streams/kinesis_video_streams_app",
        "graphs/kinesis_video_streams_app/graph.json",
        None,
    ): OK,
    # The template replaces parameters with override_iot_role_alias, override_kvs_stream_name
    # and override_kvs_region, but defines no node at all: each `with` names nothing.
    (
        SH + "kinesis_video_streams/kinesis_video_streams_app",
        "graphs/kinesis_video_streams_app/graph.json",
        "deployment_overrides/override_configuration_template.json",
    ): [
        "nodeGraphOverrides.nodeOverrides[1].with[0]",
        "nodeGraphOverrides.nodeOverrides[2].with[0]",
        "nodeGraphOverrides.nodeOverrides[3].with[0]",
    ],
    (
        "samples@HEAD/tools/pano_jupyter/src/pano_jupyter_tf",
        "graphs/pano_jupyter_tf/graph.json",
        None,
    ): OK,
    (
        "samples@HEAD/tools/pano_jupyter/src/pano_jupyter_tf",
        "graphs/pano_jupyter_tf/graph.json",
        "graphs/pano_jupyter_tf/override.json",
    ): OK,
    (SP + "TF37_opengpu/tf2_4_trt_app", "graphs/tf2_4_trt_app/graph.json", None): OK,
    (
        SP + "TF37_opengpu/tf2_4_trt_app",
        "graphs/tf2_4_trt_app/graph.json",
        "deployment_overrides/override_camera.json",
    ): OK,
    (SP + "TRTPT36_opengpu/trtpt_36_2_app", "graphs/trtpt_36_2_app/graph.json", None): OK,
    (
        SP + "TRTPT36_opengpu/trtpt_36_2_app",
        "graphs/trtpt_36_2_app/graph.json",
        "deployment_overrides/override_camera.json",
    ): OK,
    # Camera from the app's own media_source package (RTSP_STREAM, inputs with defaults).
    (SP + "car_tracker/car_tracker_app", "graphs/car_tracker_app/graph.json", None): OK,
    (SP + "mot_analysis/mot_analysis_app", "graphs/mot_analysis_app/graph.json", None): OK,
    (
        SP + "mot_analysis/mot_analysis_app",
        "graphs/mot_analysis_app/graph.json",
        "deployment_overrides/override_camera.json",
    ): OK,
    (SP + "people_counter/people_counter_app", "graphs/people_counter_app/graph.json", None): OK,
    (
        SP + "people_counter/people_counter_app",
        "graphs/people_counter_app/graph.json",
        "deployment_overrides/override_camera.json",
    ): OK,
    (SP + "pose_estimation/pose_estimation_app", "graphs/pose_estimation_app/graph.json", None): OK,
    # Templates: "{YourAwsAccountId}::{YourCameraName}" is not a package name.
    (
        SP + "pose_estimation/pose_estimation_app",
        "graphs/pose_estimation_app/graph.json",
        "graphs/pose_estimation_app/override_template.json",
    ): ["nodeGraphOverrides.packages[0]"],
    (
        SP + "pose_estimation/pose_estimation_app",
        "graphs/pose_estimation_app/graph.json",
        "graphs/pose_estimation_app/override_template_multi_cameras.json",
    ): ["nodeGraphOverrides.packages[0]"],
}


def test_every_combination_has_an_expected_verdict():
    found = {_key(*c) for c in COMBOS}
    assert found - EXPECTED.keys() == set(), "combinations on disk without a verdict"
    assert EXPECTED.keys() - found == set(), "verdicts for combinations not on disk"
    assert len(APP_DIRS) == 15


def _combo_id(combo) -> str:
    app, graph, ov = _key(*combo)
    return f"{app}:{graph}+{ov or 'no-overrides'}"


@pytest.mark.parametrize("combo", COMBOS, ids=_combo_id)
def test_sample_application(combo):
    app, graph, ov = combo
    want = EXPECTED[_key(*combo)]
    report = validate_application(
        load_json(graph), load_json(ov) if ov else None, DirectoryPackages(app / "packages")
    )
    assert all(p.source for p in report.problems), "every problem names its document"
    if not want:
        assert report.ok, describe(report)
    else:
        assert not report.ok, "expected errors, got none"
        for path in want:
            assert any(at_or_below(p.path, path) for p in report.errors), (
                f"no error at {path}:\n{describe(report)}"
            )


# Graphs whose camera node is overrideMandatory, and that node's path.
MANDATORY_CAMERA = {
    (DG + "aws-panorama-sample", "graphs/my-app/graph.json"): "nodeGraph.nodes[2]",
    (DG + "debug-server", "graphs/my-app/graph.json"): "nodeGraph.nodes[2]",
    (SH + "car_tracker_opengpu/car_tracker_app", "graphs/car_tracker_app/graph.json"): (
        "nodeGraph.nodes[1]"
    ),
    (SP + "mot_analysis/mot_analysis_app", "graphs/mot_analysis_app/graph.json"): (
        "nodeGraph.nodes[3]"
    ),
}


@pytest.mark.parametrize("key", sorted(MANDATORY_CAMERA), ids=lambda k: f"{k[0]}:{k[1]}")
def test_deploying_without_a_camera(key):
    app_dir = MANIFEST_FIXTURES / key[0]
    graph_doc = load_json(app_dir / key[1])
    packages = DirectoryPackages(app_dir / "packages")
    path = MANDATORY_CAMERA[key]
    developing = validate_application(graph_doc, None, packages)
    assert developing.ok and any(at_or_below(p.path, path) for p in developing.warnings)
    deploying = validate_application(graph_doc, None, packages, deployment=True)
    assert any(at_or_below(p.path, path) for p in deploying.errors), describe(deploying)
