"""CreateApplicationInstance and friends, with the developer guide's sample app."""

from __future__ import annotations

import json

import pytest
from package_helpers import (
    package_doc,
    publish,
    publish_sample_app,
    register_camera,
    sample_payloads,
)
from svc_constants import ACCOUNT


def deploy(api, device_id: str, graph: str | None = None, overrides: str | None = None, **kw):
    g, o = sample_payloads()
    params = {
        "Name": "aws-panorama-sample",
        "Description": "command-line deploy",
        "DefaultRuntimeContextDevice": device_id,
        "ManifestPayload": {"PayloadData": graph or g},
        "ManifestOverridesPayload": {"PayloadData": overrides if overrides is not None else o},
        "RuntimeRoleArn": f"arn:aws:iam::{ACCOUNT}:role/panorama-sample-runtime",
        "Tags": {"client": "sample"},
        **kw,
    }
    return api("CreateApplicationInstance", **params)["ApplicationInstanceId"]


@pytest.fixture
def sample(api):
    patches = publish_sample_app(api)
    return {"device": api.provision(), **patches}


def test_sample_app_deploys_and_is_described(api, sample):
    app_id = deploy(api, sample["device"])
    assert app_id.startswith("applicationInstance-") and len(app_id) == 20 + 26
    out = api("DescribeApplicationInstance", ApplicationInstanceId=app_id)
    assert out["Status"] == "DEPLOYMENT_PENDING"
    assert out["HealthStatus"] == "NOT_AVAILABLE"
    assert out["StatusDescription"]
    assert out["Arn"] == f"arn:aws:panorama:us-east-1:{ACCOUNT}:applicationInstance/{app_id}"
    assert out["DefaultRuntimeContextDeviceName"] == "my-appliance"
    assert out["Tags"] == {"client": "sample"}
    assert out["RuntimeRoleArn"].endswith("role/panorama-sample-runtime")
    details = api("DescribeApplicationInstanceDetails", ApplicationInstanceId=app_id)
    g, o = sample_payloads()
    assert details["ManifestPayload"] == {"PayloadData": g}
    assert details["ManifestOverridesPayload"] == {"PayloadData": o}


def test_node_instances_and_dependencies_name_exact_patches(api, sample):
    app_id = deploy(api, sample["device"])
    nodes = api("ListApplicationInstanceNodeInstances", ApplicationInstanceId=app_id)
    by_id = {n["NodeInstanceId"]: n for n in nodes["NodeInstances"]}
    assert set(by_id) == {"code_node", "model_node", "camera_node_override", "output_node"}
    code = by_id["code_node"]
    assert code["PackageName"] == "SAMPLE_CODE"
    assert code["PackagePatchVersion"] == sample["code"]
    assert code["NodeId"] == f"SAMPLE_CODE-1.0-{sample['code'][:8]}-interface"
    assert code["CurrentStatus"] == "NOT_AVAILABLE"
    assert by_id["camera_node_override"]["NodeName"] == "MY_CAMERA"
    assert by_id["output_node"]["NodeName"] == "hdmi0"
    # The node ids point at real nodes.
    api("DescribeNode", NodeId=code["NodeId"])
    deps = api("ListApplicationInstanceDependencies", ApplicationInstanceId=app_id)
    names = {(d["Name"], d["PatchVersion"]) for d in deps["PackageObjects"]}
    assert ("SAMPLE_CODE", sample["code"]) in names
    assert ("SQUEEZENET_PYTORCH", sample["model"]) in names
    assert {d["Name"] for d in deps["PackageObjects"]} >= {"MY_CAMERA", "hdmi_data_sink"}


def test_broken_manifest_lists_every_problem_with_paths(api, sample):
    g, o = sample_payloads()
    graph = json.loads(g)
    graph["nodeGraph"]["edges"][0]["consumer"] = "code_node.video_inn"
    graph["nodeGraph"]["packages"][1]["version"] = "9.9"
    overrides = json.loads(o)
    overrides["nodeGraphOverrides"]["nodeOverrides"][0]["replace"] = "regionn"
    err = api.fails(
        "ValidationException",
        "CreateApplicationInstance",
        DefaultRuntimeContextDevice=sample["device"],
        ManifestPayload={"PayloadData": json.dumps(graph)},
        ManifestOverridesPayload={"PayloadData": json.dumps(overrides)},
    )
    paths = [f["Name"] for f in err.fields["Fields"]]
    assert "nodeGraph.edges[0].consumer" in paths
    assert "nodeGraph.packages[1].name" in paths
    assert "nodeGraphOverrides.nodeOverrides[0].replace" in paths
    assert "nodeGraph.edges[0].consumer: 'code_node' has no input 'video_inn'" in err.message
    assert "not registered in account 123456789012" in err.message
    assert "(fix: " in err.message
    assert api("ListApplicationInstances")["ApplicationInstances"] == []


def test_manifest_that_is_not_json_names_the_member(api, sample):
    err = api.fails(
        "ValidationException",
        "CreateApplicationInstance",
        DefaultRuntimeContextDevice=sample["device"],
        ManifestPayload={"PayloadData": "{not json"},
    )
    assert err.fields["Fields"][0]["Name"] == "ManifestPayload.PayloadData"


def test_unknown_device_or_replacement_is_a_validation_error(api, sample):
    err = api.fails("ValidationException", "CreateApplicationInstance", **_params("device-nope"))
    assert err.fields["Fields"][0]["Name"] == "DefaultRuntimeContextDevice"
    err = api.fails(
        "ValidationException",
        "CreateApplicationInstance",
        **_params(sample["device"]),
        ApplicationInstanceIdToReplace="applicationInstance-nope",
    )
    assert err.fields["Fields"][0]["Name"] == "ApplicationInstanceIdToReplace"


def _params(device: str) -> dict:
    g, o = sample_payloads()
    return {
        "DefaultRuntimeContextDevice": device,
        "ManifestPayload": {"PayloadData": g},
        "ManifestOverridesPayload": {"PayloadData": o},
    }


def test_deployment_lifecycle_driven_by_the_device(api, sample):
    device = sample["device"]
    app_id = deploy(api, device)
    view = api.view
    view.mark_published(app_id, api.now)
    for status in ("DEPLOYMENT_IN_PROGRESS", "DEPLOYMENT_SUCCEEDED"):
        view.report_instance_status(device, app_id, status, api.now)
    view.report_health(device, app_id, "RUNNING", api.now, nodes={"code_node": "RUNNING"})
    out = api("DescribeApplicationInstance", ApplicationInstanceId=app_id)
    assert (out["Status"], out["HealthStatus"]) == ("DEPLOYMENT_SUCCEEDED", "RUNNING")
    assert out["StatusDescription"] == "Application deployed successfully."
    listed = api("ListApplicationInstances", DeviceId=device, StatusFilter="DEPLOYMENT_SUCCEEDED")
    assert [a["ApplicationInstanceId"] for a in listed["ApplicationInstances"]] == [app_id]
    # A report that skips the table is refused.
    from panoptes.cloud.errors import Conflict

    with pytest.raises(Conflict):
        view.report_instance_status(device, app_id, "DEPLOYMENT_IN_PROGRESS", api.now)
    api("RemoveApplicationInstance", ApplicationInstanceId=app_id)
    assert api("DescribeApplicationInstance", ApplicationInstanceId=app_id)["Status"] == (
        "REMOVAL_PENDING"
    )
    listed = api("ListApplicationInstances", StatusFilter="PROCESSING_REMOVAL")
    assert len(listed["ApplicationInstances"]) == 1
    assert view.desired_state(device)["ApplicationInstances"][0]["Desired"] == "REMOVED"
    view.mark_published(app_id, api.now)
    view.report_instance_status(device, app_id, "REMOVAL_SUCCEEDED", api.now)
    api.fails("ConflictException", "RemoveApplicationInstance", ApplicationInstanceId=app_id)
    assert view.desired_state(device)["ApplicationInstances"] == []


def test_replacement_removes_the_old_instance_only_when_the_new_one_succeeds(api, sample):
    device, view = sample["device"], api.view
    old = deploy(api, device)
    view.mark_published(old, api.now)
    view.report_instance_status(device, old, "DEPLOYMENT_SUCCEEDED", api.now)
    failing = deploy(api, device, ApplicationInstanceIdToReplace=old)
    assert (
        api("DescribeApplicationInstance", ApplicationInstanceId=failing)[
            "ApplicationInstanceIdToReplace"
        ]
        == old
    )
    view.mark_published(failing, api.now)
    view.report_instance_status(device, failing, "DEPLOYMENT_FAILED", api.now, "image pull")
    assert api("DescribeApplicationInstance", ApplicationInstanceId=old)["Status"] == (
        "DEPLOYMENT_SUCCEEDED"
    )
    new = deploy(api, device, ApplicationInstanceIdToReplace=old)
    view.mark_published(new, api.now)
    view.report_instance_status(device, new, "DEPLOYMENT_SUCCEEDED", api.now)
    assert api("DescribeApplicationInstance", ApplicationInstanceId=old)["Status"] == (
        "REMOVAL_PENDING"
    )


def test_signals_pause_and_resume_camera_nodes(api, sample):
    app_id = deploy(api, sample["device"])
    out = api(
        "SignalApplicationInstanceNodeInstances",
        ApplicationInstanceId=app_id,
        NodeSignals=[{"NodeInstanceId": "camera_node_override", "Signal": "PAUSE"}],
    )
    assert out == {"ApplicationInstanceId": app_id}
    desired = api.view.desired_state(sample["device"])["ApplicationInstances"][0]
    assert desired["NodeSignals"]["camera_node_override"] == "PAUSED"
    api(
        "SignalApplicationInstanceNodeInstances",
        ApplicationInstanceId=app_id,
        NodeSignals=[{"NodeInstanceId": "camera_node_override", "Signal": "RESUME"}],
    )
    desired = api.view.desired_state(sample["device"])["ApplicationInstances"][0]
    assert desired["NodeSignals"]["camera_node_override"] == "RUNNING"
    err = api.fails(
        "ValidationException",
        "SignalApplicationInstanceNodeInstances",
        ApplicationInstanceId=app_id,
        NodeSignals=[{"NodeInstanceId": "nope", "Signal": "PAUSE"}],
    )
    assert err.fields["Fields"][0]["Name"] == "NodeSignals[0].NodeInstanceId"
    api.fails(
        "ValidationException",
        "SignalApplicationInstanceNodeInstances",
        ApplicationInstanceId=app_id,
        NodeSignals=[{"NodeInstanceId": "code_node", "Signal": "PAUSE"}],
    )
    for op in (
        "DescribeApplicationInstance",
        "DescribeApplicationInstanceDetails",
        "ListApplicationInstanceDependencies",
        "ListApplicationInstanceNodeInstances",
        "RemoveApplicationInstance",
    ):
        api.fails("ResourceNotFoundException", op, ApplicationInstanceId="applicationInstance-x")


def test_desired_state_gives_the_device_its_camera_credentials(api, sample):
    deploy(api, sample["device"])
    app = api.view.desired_state(sample["device"])["ApplicationInstances"][0]
    assert app["Cameras"]["camera_node_override"] == {
        "StreamUrl": "rtsp://10.0.0.5:554/MY_CAMERA",
        "Username": "admin",
        "Password": "s3cr3t-pw",
    }
    assert app["Plan"]["cameraStreams"] == {"code_node.video_in": ["camera_node_override"]}


def test_list_application_instances_paginates(api, sample):
    ids = []
    for _ in range(3):
        ids.append(deploy(api, sample["device"]))
        api.tick(seconds=1)
    page = api("ListApplicationInstances", MaxResults=2)
    assert len(page["ApplicationInstances"]) == 2 and page["NextToken"]
    rest = api("ListApplicationInstances", MaxResults=2, NextToken=page["NextToken"])
    got = [a["ApplicationInstanceId"] for a in page["ApplicationInstances"]]
    got += [a["ApplicationInstanceId"] for a in rest["ApplicationInstances"]]
    assert got == list(reversed(ids)) and "NextToken" not in rest
    api.fails("ValidationException", "ListApplicationInstances", NextToken="garbage")
    api.fails(
        "ValidationException", "ListApplicationInstances", DeviceId="x", NextToken=page["NextToken"]
    )


class TestQuotas:
    @pytest.fixture
    def limits(self, low_limits):
        return low_limits

    def test_instances_per_device(self, api, sample):
        deploy(api, sample["device"])
        err = api.fails(
            "ServiceQuotaExceededException",
            "CreateApplicationInstance",
            **_params(sample["device"]),
        )
        assert err.fields["QuotaCode"] == "panorama-application-instances"

    def test_replacing_does_not_count_the_replaced_instance(self, api, sample):
        old = deploy(api, sample["device"])
        deploy(api, sample["device"], ApplicationInstanceIdToReplace=old)

    def test_deployments_per_day(self, api, sample):
        device = sample["device"]
        first = deploy(api, device)
        api("RemoveApplicationInstance", ApplicationInstanceId=first)
        second = deploy(api, device)
        api("RemoveApplicationInstance", ApplicationInstanceId=second)
        err = api.fails(
            "ServiceQuotaExceededException", "CreateApplicationInstance", **_params(device)
        )
        assert err.fields["QuotaCode"] == "panorama-deployments-per-day"
        api.tick(days=1)
        deploy(api, device)

    def test_camera_streams_per_application(self, api, sample):
        register_camera(api, "second_cam")
        o = json.loads(sample_payloads()[1])
        body = o["nodeGraphOverrides"]
        body["packages"].append({"name": f"{ACCOUNT}::second_cam", "version": "1.0"})
        body["nodes"].append({"name": "cam2", "interface": f"{ACCOUNT}::second_cam.second_cam"})
        body["nodeOverrides"][3]["with"].append({"name": "cam2"})
        err = api.fails(
            "ServiceQuotaExceededException",
            "CreateApplicationInstance",
            DefaultRuntimeContextDevice=sample["device"],
            ManifestPayload={"PayloadData": sample_payloads()[0]},
            ManifestOverridesPayload={"PayloadData": json.dumps(o)},
        )
        assert err.fields["QuotaCode"] == "panorama-camera-streams"


def test_more_than_eight_cameras_is_a_quota_error(api, sample):
    o = json.loads(sample_payloads()[1])
    body = o["nodeGraphOverrides"]
    for i in range(9):
        register_camera(api, f"cam{i}")
        body["packages"].append({"name": f"{ACCOUNT}::cam{i}", "version": "1.0"})
        body["nodes"].append({"name": f"c{i}", "interface": f"{ACCOUNT}::cam{i}.cam{i}"})
        body["nodeOverrides"][3]["with"].append({"name": f"c{i}"})
    err = api.fails(
        "ServiceQuotaExceededException",
        "CreateApplicationInstance",
        DefaultRuntimeContextDevice=sample["device"],
        ManifestPayload={"PayloadData": sample_payloads()[0]},
        ManifestOverridesPayload={"PayloadData": json.dumps(o)},
    )
    assert "at most 8" in err.message


def test_pinned_patch_version_is_deployed(api, sample):
    doc = package_doc("SAMPLE_CODE")
    doc["nodePackage"]["interfaces"] = _code_interfaces()
    doc["nodePackage"]["description"] = "second build"
    _, newer = publish(api, doc, mark_latest=True)
    g = json.loads(sample_payloads()[0])
    g["nodeGraph"]["packages"][0]["patchVersion"] = sample["code"]
    app_id = deploy(api, sample["device"], graph=json.dumps(g))
    deps = api("ListApplicationInstanceDependencies", ApplicationInstanceId=app_id)
    code = next(d for d in deps["PackageObjects"] if d["Name"] == "SAMPLE_CODE")
    assert code["PatchVersion"] == sample["code"] != newer
    latest = deploy(api, sample["device"])
    deps = api("ListApplicationInstanceDependencies", ApplicationInstanceId=latest)
    code = next(d for d in deps["PackageObjects"] if d["Name"] == "SAMPLE_CODE")
    assert code["PatchVersion"] == newer


def _code_interfaces() -> list:
    from package_helpers import SAMPLE_APP

    path = SAMPLE_APP / "packages/123456789012-SAMPLE_CODE-1.0/package.json"
    return json.loads(path.read_text())["nodePackage"]["interfaces"]
