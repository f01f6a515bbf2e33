"""All 34 Panorama operations through unchanged boto3, against the whole served stack.

The server is `build_server` as `panoptes serve` runs it (protocol layer, the real
PanoramaBackend, SQLite or a fresh PostgreSQL database, filesystem object store,
admin key) under uvicorn on 127.0.0.1; the client is boto3's `panorama` client with
the model Panoptes ships. Every module-scoped fixture runs once per database, so
each test runs on SQLite and on PostgreSQL. Errors are asserted the way users
catch them: ``client.exceptions.ResourceNotFoundException`` and its fields.

    .venv/bin/pytest tests/cloud/test_api_boto3.py
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from api_helpers import (
    SAMPLE_APP,
    Stack,
    bring_online,
    compact,
    deploy_params,
    for_account,
    provision,
    publish_sample_app,
    read_archive,
    register_camera,
    running_stack,
)
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from panoptes.cloud.db.models import AccessKey
from panoptes.cloud.protocol.models import load_service_model
from panoptes.cloud.services import DbCredentialStore
from panoptes.cloud.services.quotas import Limits as Quotas
from pg_support import pg_available

sys.path.insert(0, str(Path(__file__).parent / "protocol"))
from protocol_examples import example_string

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MODEL = load_service_model("panorama")
OPERATIONS = sorted(MODEL.operation_names)
LOW_QUOTAS = replace(
    Quotas(),
    devices=2,
    packages=5,
    application_instances_per_device=1,
    camera_streams_per_application=1,
)

#: What each test saw: operation -> {"ok"} | error codes, per database.
SEEN: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))


def botocore_name(name: str) -> str:
    from botocore import xform_name

    return xform_name(name)


def _record(kind: str):
    def hook(http_response, parsed, model, **_: Any) -> None:
        status = http_response.status_code
        code = "ok" if status < 300 else parsed.get("Error", {}).get("Code", str(status))
        SEEN[kind][model.name].add(code)

    return hook


def watched(stack: Stack, **cfg: Any) -> Any:
    """A client whose every answer is recorded in SEEN (all the stack's clients are)."""
    return stack.client(**cfg)


# --- fixtures: one server (and one low-quota server) per database ------------------


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(not pg_available(), reason="no PostgreSQL on :5432"),
        ),
    ],
)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def stack(kind: str, tmp_path_factory: pytest.TempPathFactory):
    with running_stack(kind, tmp_path_factory.mktemp(f"{kind}-data")) as served:
        served.hooks.append(("after-call.panorama", _record(kind)))
        yield served


@pytest.fixture(scope="module")
def low(kind: str, tmp_path_factory: pytest.TempPathFactory):
    with running_stack(kind, tmp_path_factory.mktemp(f"{kind}-low"), quotas=LOW_QUOTAS) as s:
        s.hooks.append(("after-call.panorama", _record(kind)))
        yield s


@pytest.fixture(scope="module")
def client(stack: Stack) -> Any:
    return watched(stack)


@pytest.fixture(scope="module")
def lax(stack: Stack) -> Any:
    """No client-side validation: what a hand-made or hostile request looks like."""
    return watched(stack, parameter_validation=False)


@pytest.fixture(scope="module")
def sample(stack: Stack, client: Any) -> dict[str, str]:
    """The developer guide's sample app published, a device online, the app deployed."""
    published = publish_sample_app(stack)
    device = provision(stack, "my-appliance")
    app = client.create_application_instance(**deploy_params(stack, device, Tags={"a": "b"}))
    return {**published, "device": device, "app": app["ApplicationInstanceId"]}


def raises(client: Any, code: str, call, **params: Any) -> dict[str, Any]:
    """Call and expect the modeled exception ``code``; its parsed response."""
    error_class = getattr(client.exceptions, code)
    with pytest.raises(error_class) as caught:
        call(**params)
    return caught.value.response


# --- the deploy flow, end to end over boto3 + S3 -----------------------------------


def test_sample_app_deploys_over_boto3(stack: Stack, client: Any, sample: dict) -> None:
    app_id = sample["app"]
    out = client.describe_application_instance(ApplicationInstanceId=app_id)
    assert out["Status"] == "DEPLOYMENT_PENDING"
    assert out["DefaultRuntimeContextDevice"] == sample["device"]
    assert out["DefaultRuntimeContextDeviceName"] == "my-appliance"
    assert out["Arn"] == stack.arn("applicationInstance", app_id)
    assert out["Tags"] == {"a": "b"}
    details = client.describe_application_instance_details(ApplicationInstanceId=app_id)
    assert json.loads(details["ManifestPayload"]["PayloadData"])["nodeGraph"]
    overrides = json.loads(details["ManifestOverridesPayload"]["PayloadData"])
    assert overrides["nodeGraphOverrides"]["packages"][0]["name"].endswith("::MY_CAMERA")

    nodes = client.list_application_instance_node_instances(ApplicationInstanceId=app_id)
    by_id = {n["NodeInstanceId"]: n for n in nodes["NodeInstances"]}
    assert {"code_node", "model_node", "camera_node_override", "output_node"} <= set(by_id)
    assert by_id["code_node"]["PackagePatchVersion"] == sample["code"]
    assert by_id["camera_node_override"]["NodeName"] == "MY_CAMERA"
    client.describe_node(NodeId=by_id["code_node"]["NodeId"])
    deps = client.list_application_instance_dependencies(ApplicationInstanceId=app_id)
    names = {(d["Name"], d["PatchVersion"]) for d in deps["PackageObjects"]}
    assert ("SAMPLE_CODE", sample["code"]) in names
    assert ("SQUEEZENET_PYTORCH", sample["model"]) in names

    listed = client.list_application_instances(DeviceId=sample["device"])
    assert [a["ApplicationInstanceId"] for a in listed["ApplicationInstances"]] == [app_id]
    pending = client.list_application_instances(StatusFilter="DEPLOYMENT_SUCCEEDED")
    assert pending["ApplicationInstances"] == []
    signal = client.signal_application_instance_node_instances(
        ApplicationInstanceId=app_id,
        NodeSignals=[{"NodeInstanceId": "camera_node_override", "Signal": "PAUSE"}],
    )
    assert signal["ApplicationInstanceId"] == app_id
    raises(
        client,
        "ValidationException",
        client.signal_application_instance_node_instances,
        ApplicationInstanceId=app_id,
        NodeSignals=[{"NodeInstanceId": "code_node", "Signal": "PAUSE"}],
    )


def test_packages_nodes_and_camera_jobs(stack: Stack, client: Any, sample: dict) -> None:
    package = client.describe_package(PackageId=sample["code_id"])
    assert package["PackageName"] == "SAMPLE_CODE"
    loc = package["StorageLocation"]
    assert loc["Bucket"] and loc["BinaryPrefixLocation"].endswith("/binaries")
    version = client.describe_package_version(PackageId=sample["code_id"], PackageVersion="1.0")
    assert version["PatchVersion"] == sample["code"] and version["IsLatestPatch"]
    assert version["Status"] == "REGISTER_COMPLETED"
    nodes = client.list_nodes(PackageName="SAMPLE_CODE")["Nodes"]
    assert nodes and client.describe_node(NodeId=nodes[0]["NodeId"])["PackageName"] == "SAMPLE_CODE"
    assert client.list_nodes(Category="MEDIA_SOURCE")["Nodes"]
    job = client.describe_node_from_template_job(JobId=sample["camera_job"])
    assert job["Status"] == "SUCCEEDED" and job["OutputPackageName"] == "MY_CAMERA"
    assert "s3cr3t-pw" not in json.dumps(job, default=str)
    jobs = client.list_node_from_template_jobs()["NodeFromTemplateJobs"]
    assert sample["camera_job"] in {j["JobId"] for j in jobs}
    # CreatePackage twice and the same camera twice are conflicts.
    err = raises(client, "ConflictException", client.create_package, PackageName="SAMPLE_CODE")
    assert err["ResourceId"] == "SAMPLE_CODE"
    raises(
        client,
        "ConflictException",
        client.create_node_from_template_job,
        TemplateType="RTSP_CAMERA_STREAM",
        OutputPackageName="MY_CAMERA",
        OutputPackageVersion="1.0",
        NodeName="MY_CAMERA",
        TemplateParameters={"Username": "a", "Password": "b", "StreamUrl": "rtsp://h/x"},
    )
    # A version in use by a running application cannot go; a package with versions
    # needs ForceDelete.
    raises(
        client,
        "ConflictException",
        client.deregister_package_version,
        PackageId=sample["code_id"],
        PackageVersion="1.0",
        PatchVersion=sample["code"],
    )
    raises(client, "ConflictException", client.delete_package, PackageId=sample["code_id"])
    # Re-registering the same patch is a no-op (a re-run of package-application).
    client.register_package_version(
        PackageId=sample["code_id"], PackageVersion="1.0", PatchVersion=sample["code"]
    )


def test_package_import_job_from_s3(stack: Stack, client: Any, sample: dict) -> None:
    s3 = stack.s3()
    s3.create_bucket(Bucket="import-src")
    manifest = SAMPLE_APP / "packages/123456789012-SAMPLE_CODE-1.0/package.json"
    doc = json.loads(manifest.read_text())
    doc["nodePackage"]["name"] = "IMPORTED_CODE"
    s3.put_object(Bucket="import-src", Key="imported/package.json", Body=json.dumps(doc).encode())
    params = {
        "ClientToken": "import-1",
        "JobType": "NODE_PACKAGE_VERSION",
        "InputConfig": {
            "PackageVersionInputConfig": {
                "S3Location": {"BucketName": "import-src", "ObjectKey": "imported/package.json"}
            }
        },
        "OutputConfig": {
            "PackageVersionOutputConfig": {"PackageName": "IMPORTED_CODE", "PackageVersion": "1.0"}
        },
    }
    job_id = client.create_package_import_job(**params)["JobId"]
    assert client.create_package_import_job(**params)["JobId"] == job_id  # idempotent
    job = client.describe_package_import_job(JobId=job_id)
    assert job["Status"] == "SUCCEEDED", job["StatusMessage"]
    assert job_id in {j["JobId"] for j in client.list_package_import_jobs()["PackageImportJobs"]}
    other = dict(params, JobType="MARKETPLACE_NODE_PACKAGE_VERSION")
    err = raises(client, "ConflictException", client.create_package_import_job, **other)
    assert err["ResourceId"] == job_id


def test_broken_manifest_lists_every_problem_with_its_path(
    stack: Stack, client: Any, sample: dict
) -> None:
    params = deploy_params(stack, sample["device"])
    graph = json.loads(params["ManifestPayload"]["PayloadData"])
    graph["nodeGraph"]["edges"][0]["consumer"] = "code_node.video_inn"
    graph["nodeGraph"]["packages"][1]["version"] = "9.9"
    overrides = json.loads(params["ManifestOverridesPayload"]["PayloadData"])
    overrides["nodeGraphOverrides"]["nodeOverrides"][0]["replace"] = "regionn"
    params["ManifestPayload"] = {"PayloadData": json.dumps(graph)}
    params["ManifestOverridesPayload"] = {"PayloadData": json.dumps(overrides)}
    before = client.list_application_instances()["ApplicationInstances"]
    err = raises(client, "ValidationException", client.create_application_instance, **params)
    message = err["Error"]["Message"]
    paths = [f["Name"] for f in err["Fields"]]
    for path in (
        "nodeGraph.edges[0].consumer",
        "nodeGraph.packages[1].name",
        "nodeGraphOverrides.nodeOverrides[0].replace",
    ):
        assert path in paths
        assert f"\n{path}: " in message
    assert "3 problem(s)" in message or f"{len(paths)} problem(s)" in message
    assert "'code_node' has no input 'video_inn'" in message
    assert err["Reason"] == "FIELD_VALIDATION_FAILED"
    assert client.list_application_instances()["ApplicationInstances"] == before
    # Not JSON at all names the member; an unknown device names the parameter.
    err = raises(
        client,
        "ValidationException",
        client.create_application_instance,
        DefaultRuntimeContextDevice=sample["device"],
        ManifestPayload={"PayloadData": "{not json"},
    )
    assert err["Fields"][0]["Name"] == "ManifestPayload.PayloadData"
    err = raises(
        client,
        "ValidationException",
        client.create_application_instance,
        **deploy_params(stack, "device-nope"),
    )
    assert err["Fields"][0]["Name"] == "DefaultRuntimeContextDevice"


def test_devices_jobs_tags_and_removal(stack: Stack, client: Any, sample: dict) -> None:
    device = sample["device"]
    out = client.describe_device(DeviceId=device)
    assert out["ProvisioningStatus"] == "SUCCEEDED" and out["Name"] == "my-appliance"
    assert client.update_device_metadata(DeviceId=device, Description="lobby")["DeviceId"] == device
    assert client.describe_device(DeviceId=device)["Description"] == "lobby"
    assert device in {d["DeviceId"] for d in client.list_devices(NameFilter="my-")["Devices"]}

    job = client.create_job_for_devices(DeviceIds=[device], JobType="REBOOT")["Jobs"][0]
    assert client.describe_device_job(JobId=job["JobId"])["JobType"] == "REBOOT"
    listed = client.list_devices_jobs(DeviceId=device)["DeviceJobs"]
    assert [j["JobId"] for j in listed] == [job["JobId"]]
    err = raises(
        client,
        "ConflictException",
        client.create_job_for_devices,
        DeviceIds=[device],
        JobType="REBOOT",
    )
    assert err["ResourceId"] == device
    fresh = provision(stack, "not-yet-up", online=False)
    raises(
        client,
        "ConflictException",
        client.create_job_for_devices,
        DeviceIds=[fresh],
        JobType="REBOOT",
    )
    raises(
        client,
        "ValidationException",
        client.create_job_for_devices,
        DeviceIds=[device],
        JobType="OTA",
    )

    arn = stack.arn("device", device)
    client.tag_resource(ResourceArn=arn, Tags={"site": "hq", "floor": "2"})
    assert client.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"site": "hq", "floor": "2"}
    client.untag_resource(ResourceArn=arn, TagKeys=["floor"])
    assert client.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"site": "hq"}
    raises(client, "ValidationException", client.tag_resource, ResourceArn=arn, Tags={"aws:x": "y"})

    # A device with a running application cannot be deleted; removal is asynchronous.
    err = raises(client, "ConflictException", client.delete_device, DeviceId=device)
    assert err["ResourceId"] == device
    raises(client, "ConflictException", client.provision_device, Name="my-appliance")
    client.remove_application_instance(ApplicationInstanceId=sample["app"])
    removed = client.describe_application_instance(ApplicationInstanceId=sample["app"])
    assert removed["Status"] == "REMOVAL_PENDING"
    raises(
        client,
        "ConflictException",
        client.remove_application_instance,
        ApplicationInstanceId=sample["app"],
    )
    assert client.delete_device(DeviceId=fresh)["DeviceId"] == fresh
    raises(client, "ResourceNotFoundException", client.describe_device, DeviceId=fresh)


def test_provision_device_returns_a_usable_certificates_archive(stack: Stack, client: Any):
    out = client.provision_device(Name="archive-check", Description="lab")
    files = read_archive(out["Certificates"])
    assert files["provisioning.json"]["DeviceId"] == out["DeviceId"]
    assert files["provisioning.json"]["Endpoints"] == [stack.url]
    assert out["Status"] == "AWAITING_PROVISIONING"


def test_package_lifecycle_register_deregister_delete(stack: Stack, client: Any) -> None:
    job = register_camera(stack, "LIFECYCLE_CAM")
    assert client.describe_node_from_template_job(JobId=job)["Status"] == "SUCCEEDED"
    package = next(
        p
        for p in client.list_packages(MaxResults=25)["Packages"]
        if p["PackageName"] == "LIFECYCLE_CAM"
    )
    pid = package["PackageId"]
    patch = client.describe_package_version(PackageId=pid, PackageVersion="1.0")["PatchVersion"]
    raises(
        client,
        "AccessDeniedException",
        client.deregister_package_version,
        OwnerAccount="999999999999",
        PackageId=pid,
        PackageVersion="1.0",
        PatchVersion=patch,
    )
    client.deregister_package_version(PackageId=pid, PackageVersion="1.0", PatchVersion=patch)
    err = raises(
        client,
        "ResourceNotFoundException",
        client.deregister_package_version,
        PackageId=pid,
        PackageVersion="1.0",
        PatchVersion=patch,
    )
    assert err["ResourceType"] == "packageVersion"
    client.delete_package(PackageId=pid, ForceDelete=True)
    err = raises(client, "ResourceNotFoundException", client.describe_package, PackageId=pid)
    assert (err["ResourceId"], err["ResourceType"]) == (pid, "package")


# --- every modeled error path --------------------------------------------------------

UNKNOWN = {
    "DeleteDevice": {"DeviceId": "device-unknown"},
    "DescribeDevice": {"DeviceId": "device-unknown"},
    "UpdateDeviceMetadata": {"DeviceId": "device-unknown", "Description": "x"},
    "ListDevicesJobs": {"DeviceId": "device-unknown"},
    "CreateJobForDevices": {"DeviceIds": ["device-unknown"], "JobType": "REBOOT"},
    "DescribeDeviceJob": {"JobId": "device-unknown-0"},
    "DeletePackage": {"PackageId": "package-unknown"},
    "DescribePackage": {"PackageId": "package-unknown"},
    "DescribePackageVersion": {"PackageId": "package-unknown", "PackageVersion": "1.0"},
    "DeregisterPackageVersion": {
        "PackageId": "package-unknown",
        "PackageVersion": "1.0",
        "PatchVersion": "a" * 64,
    },
    "DescribeNode": {"NodeId": "NOPE-1.0-abcdefgh-interface"},
    "DescribeNodeFromTemplateJob": {"JobId": "job-unknown"},
    "DescribePackageImportJob": {"JobId": "job-unknown"},
    "DescribeApplicationInstance": {"ApplicationInstanceId": "applicationInstance-unknown"},
    "DescribeApplicationInstanceDetails": {"ApplicationInstanceId": "applicationInstance-unknown"},
    "ListApplicationInstanceDependencies": {"ApplicationInstanceId": "applicationInstance-unknown"},
    "ListApplicationInstanceNodeInstances": {
        "ApplicationInstanceId": "applicationInstance-unknown"
    },
    "RemoveApplicationInstance": {"ApplicationInstanceId": "applicationInstance-unknown"},
    "SignalApplicationInstanceNodeInstances": {
        "ApplicationInstanceId": "applicationInstance-unknown",
        "NodeSignals": [{"NodeInstanceId": "camera_node", "Signal": "PAUSE"}],
    },
    "ListTagsForResource": {
        "ResourceArn": "arn:aws:panorama:us-east-1:{account}:device/device-unknown"
    },
    "TagResource": {
        "ResourceArn": "arn:aws:panorama:us-east-1:{account}:package/package-unknown",
        "Tags": {"a": "b"},
    },
    "UntagResource": {
        "ResourceArn": "arn:aws:panorama:us-east-1:{account}:applicationInstance/x-1",
        "TagKeys": ["a"],
    },
}


@pytest.mark.parametrize("operation", sorted(UNKNOWN))
def test_unknown_ids_are_resource_not_found(stack: Stack, client: Any, operation: str) -> None:
    params = {
        k: v.format(account=stack.account) if isinstance(v, str) else v
        for k, v in UNKNOWN[operation].items()
    }
    call = getattr(client, botocore_name(operation))
    err = raises(client, "ResourceNotFoundException", call, **params)
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert err["ResourceId"] and err["ResourceType"]
    assert err["ResourceId"] in err["Error"]["Message"]


def _invalid_variants(operation: str) -> list[tuple[str, dict[str, Any], str]]:
    """(what, params, member) for each way the model lets a request be invalid."""
    op = MODEL.operation_model(operation)
    shape = op.input_shape
    valid = {name: _valid(m) for name, m in shape.members.items() if name in shape.required_members}
    out = []
    for name, member in shape.members.items():
        meta = member.metadata
        in_path = member.serialization.get("location") == "uri"
        if name in shape.required_members and not in_path:
            out.append(("missing", {k: v for k, v in valid.items() if k != name}, name))
        if member.type_name == "string" and meta.get("enum"):
            out.append(("bad enum", {**valid, name: "NOT_A_VALUE"}, name))
        elif member.type_name == "string" and "max" in meta and meta["max"] < 100_000:
            out.append(("too long", {**valid, name: "a" * (meta["max"] + 1)}, name))
        elif member.type_name in ("integer", "long") and "max" in meta:
            out.append(("too big", {**valid, name: meta["max"] + 1}, name))
    return out


def _valid(shape: Any) -> Any:
    from protocol_examples import example

    return example(shape)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_model_constraints_are_validation_exceptions(lax: Any, operation: str) -> None:
    call = getattr(lax, botocore_name(operation))
    variants = _invalid_variants(operation)
    assert variants, f"{operation}: no way to make it invalid?"
    for what, params, member in variants:
        err = raises(lax, "ValidationException", call, **params)
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 400, (what, member)
        fields = [f["Name"] for f in err.get("Fields", [])]
        assert any(f.split(".")[0].split("[")[0] == member for f in fields) or (
            member in err["Error"]["Message"]
        ), (operation, what, member, err["Error"]["Message"])


def test_quotas_are_service_quota_exceeded(low: Stack) -> None:
    client = watched(low)
    publish_sample_app(low)
    for cam in ("CAMERA_A", "CAMERA_B"):
        register_camera(low, cam)
    # packages: 5 (SAMPLE_CODE, SQUEEZENET_PYTORCH, MY_CAMERA, CAMERA_A, CAMERA_B)
    err = raises(client, "ServiceQuotaExceededException", client.create_package, PackageName="P6")
    assert err["QuotaCode"] == "panorama-packages" and err["ServiceCode"] == "panorama"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 402

    first = provision(low, "one")
    provision(low, "two", online=False)
    err = raises(client, "ServiceQuotaExceededException", client.provision_device, Name="three")
    assert err["QuotaCode"] == "panorama-devices"

    client.create_application_instance(**deploy_params(low, first))
    err = raises(
        client,
        "ServiceQuotaExceededException",
        client.create_application_instance,
        **deploy_params(low, first),
    )
    assert err["QuotaCode"] == "panorama-application-instances"
    assert err["ResourceId"] == first

    multicam = compact(
        for_account((SAMPLE_APP / "graphs/my-app/override-multicam.json").read_text(), low.account)
    )
    params = deploy_params(low, first, ManifestOverridesPayload={"PayloadData": multicam})
    err = raises(
        client, "ServiceQuotaExceededException", client.create_application_instance, **params
    )
    assert err["QuotaCode"] in ("panorama-camera-streams", "panorama-application-instances")


def test_signal_over_a_lowered_camera_quota(stack: Stack, client: Any, sample: dict) -> None:
    for cam in ("CAMERA_A", "CAMERA_B"):
        register_camera(stack, cam)
    device = provision(stack, "multicam")
    multicam = compact(
        for_account(
            (SAMPLE_APP / "graphs/my-app/override-multicam.json").read_text(), stack.account
        )
    )
    params = deploy_params(stack, device, ManifestOverridesPayload={"PayloadData": multicam})
    app = client.create_application_instance(**params)["ApplicationInstanceId"]
    nodes = client.list_application_instance_node_instances(ApplicationInstanceId=app)
    cams = [
        n["NodeInstanceId"]
        for n in nodes["NodeInstances"]
        if n["NodeName"] in ("CAMERA_A", "CAMERA_B")
    ]
    assert len(cams) == 2
    env = stack.server.backend.env
    saved = env.settings
    # The operator lowers the camera quota after the deployment.
    env.settings = replace(saved, limits=replace(saved.limits, camera_streams_per_application=1))
    try:
        err = raises(
            client,
            "ServiceQuotaExceededException",
            client.signal_application_instance_node_instances,
            ApplicationInstanceId=app,
            NodeSignals=[{"NodeInstanceId": c, "Signal": "RESUME"} for c in cams],
        )
        assert err["QuotaCode"] == "panorama-camera-streams" and err["ResourceId"] == app
    finally:
        env.settings = saved
    client.remove_application_instance(ApplicationInstanceId=app)


def test_other_accounts_packages_are_access_denied(client: Any, sample: dict) -> None:
    other = "999999999999"
    calls = {
        "RegisterPackageVersion": dict(
            PackageId=sample["code_id"], PackageVersion="1.0", PatchVersion=sample["code"]
        ),
        "DescribePackageVersion": dict(PackageId=sample["code_id"], PackageVersion="1.0"),
        "ListNodes": {},
        "DescribeNode": dict(NodeId=client.list_nodes()["Nodes"][0]["NodeId"]),
    }
    for operation, params in calls.items():
        call = getattr(client, botocore_name(operation))
        err = raises(client, "AccessDeniedException", call, OwnerAccount=other, **params)
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert other in err["Error"]["Message"]


def test_unknown_disabled_and_wrong_keys_are_refused(stack: Stack) -> None:
    db, secrets = stack.server.backend.db, stack.server.backend.env.secrets
    key_id, secret = DbCredentialStore(db, secrets).create_key(
        stack.account, "retired", datetime.now(UTC)
    )
    assert stack.client(key_id, secret).list_devices()["Devices"] is not None
    with db.transaction() as session:
        session.execute(
            update(AccessKey).where(AccessKey.access_key_id == key_id).values(enabled=False)
        )
    for who, client in (
        ("disabled", stack.client(key_id, secret)),
        ("unknown", stack.client("AKIAUNKNOWNUNKNOWN00", secret)),
        ("wrong secret", stack.client(stack.key_id, "not-the-secret")),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            client.list_devices()
        response = caught.value.response
        # AWS answers a bad key before any operation runs (no AccessDeniedException:
        # that one is for an authenticated caller without permission).
        expected = (
            "InvalidSignatureException"
            if who == "wrong secret"
            else ("UnrecognizedClientException")
        )
        assert response["Error"]["Code"] == expected, who
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 403


# --- raw requests: malformed JSON, a body over the limit ------------------------------


def _signed_post(stack: Stack, path: str, body: bytes) -> tuple[int, dict, bytes]:
    request = AWSRequest(
        method="POST",
        url=stack.url + path,
        data=body,
        headers={"Content-Type": "application/json"},
    )
    SigV4Auth(Credentials(stack.key_id, stack.secret), "panorama", "us-east-1").add_auth(request)
    prepared = request.prepare()
    raw = urllib.request.Request(
        prepared.url, data=body, headers=dict(prepared.headers.items()), method="POST"
    )
    try:
        with urllib.request.urlopen(raw, timeout=30) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            return response.status, headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"PackageName": 7}', b"\xff\xfe"])
def test_malformed_json_is_a_validation_exception(stack: Stack, body: bytes) -> None:
    status, headers, payload = _signed_post(stack, "/packages", body)
    assert status == 400
    assert headers["x-amzn-errortype"].split(":")[0] == "ValidationException"
    assert json.loads(payload)["message"]


def test_a_body_over_the_limit_is_a_validation_exception(lax: Any) -> None:
    limit = 8 << 20  # panoptes.cloud.app.Limits.api_body_bytes
    err = raises(lax, "ValidationException", lax.create_package, PackageName="x" * (limit + 1024))
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert lax.list_packages()["Packages"] is not None  # the server is fine


# --- pagination with NextToken ------------------------------------------------------
# Panorama's published model has no paginators (paginators-1.json is empty), so scripts
# loop on NextToken themselves; the shipped model stays byte-identical to it.

PAGINATED = {
    "list_devices": ("Devices", "DeviceId", {}),
    "list_packages": ("Packages", "PackageId", {}),
    "list_nodes": ("Nodes", "NodeId", {}),
    "list_node_from_template_jobs": ("NodeFromTemplateJobs", "JobId", {}),
    "list_application_instances": ("ApplicationInstances", "ApplicationInstanceId", {}),
    "list_devices_jobs": ("DeviceJobs", "JobId", {}),
    "list_package_import_jobs": ("PackageImportJobs", "JobId", {}),
    "list_application_instance_node_instances": ("NodeInstances", "NodeInstanceId", "app"),
    "list_application_instance_dependencies": ("PackageObjects", "PatchVersion", "app"),
}


def test_next_token_walks_every_page(stack: Stack, client: Any, sample: dict) -> None:
    for i in range(4):
        provision(stack, f"page-{i}", online=False)
    # A second device job: the first one finishes, the device reboots again.
    device = sample["device"]
    (first,) = client.list_devices_jobs(DeviceId=device)["DeviceJobs"]
    for status in ("IN_PROGRESS", "COMPLETED"):
        stack.view.report_job_status(device, first["JobId"], status, datetime.now(UTC))
    client.create_job_for_devices(DeviceIds=[device], JobType="REBOOT")
    # A second import job (its source is missing: it fails, and is listed all the same).
    client.create_package_import_job(
        ClientToken="import-missing",
        JobType="NODE_PACKAGE_VERSION",
        InputConfig={
            "PackageVersionInputConfig": {
                "S3Location": {"BucketName": "import-src", "ObjectKey": "nothing/package.json"}
            }
        },
        OutputConfig={
            "PackageVersionOutputConfig": {"PackageName": "NOTHING", "PackageVersion": "1.0"}
        },
    )
    assert set(client.meta.service_model.operation_names) >= {
        "".join(w.title() for w in name.split("_")) for name in PAGINATED
    }
    for name, (key, ident, extra) in PAGINATED.items():
        params = {"ApplicationInstanceId": sample["app"]} if extra == "app" else {}
        assert not client.can_paginate(name), name  # as with the published model
        whole = getattr(client, name)(MaxResults=25, **params)
        assert "NextToken" not in whole, name
        expected = [item[ident] for item in whole[key]]
        assert len(expected) >= 2, (name, expected)
        walked, pages, token = [], 0, None
        while True:
            page = getattr(client, name)(
                MaxResults=1, **params, **({"NextToken": token} if token else {})
            )
            pages += 1
            walked += [item[ident] for item in page[key]]
            token = page.get("NextToken")
            if not token:
                break
        assert walked == expected, name
        assert pages >= len(expected), name
    names, token = [], None
    while True:
        page = client.list_devices(
            SortBy="NAME", MaxResults=2, **({"NextToken": token} if token else {})
        )
        names += [d["Name"] for d in page["Devices"]]
        token = page.get("NextToken")
        if not token:
            break
    assert names == sorted(names) and {f"page-{i}" for i in range(4)} <= set(names)


# --- coverage: every operation answered, on this database ------------------------


def test_every_operation_succeeded_and_failed_at_least_once(
    kind: str, request: pytest.FixtureRequest
) -> None:
    ran = {i.originalname for i in request.session.items if i.module is request.module}
    if len(ran) < 15:
        pytest.skip("only a selection of this module ran")
    seen = SEEN[kind]
    never_ok = [op for op in OPERATIONS if "ok" not in seen[op]]
    never_failed = [op for op in OPERATIONS if not seen[op] - {"ok"}]
    assert never_ok == [] and never_failed == []
    declared = {op: {e.name for e in MODEL.operation_model(op).error_shapes} for op in OPERATIONS}
    seen_declared = {(op, code) for op in OPERATIONS for code in seen[op] if code in declared[op]}
    missing = sorted(
        (op, code)
        for op in OPERATIONS
        for code in declared[op] - {"InternalServerException"}
        if code not in seen[op]
    )
    # What cannot happen here: Panoptes has no IAM (an account's keys may do anything;
    # the one denial is another account's packages), and reads change nothing that
    # could conflict. UpdateDeviceMetadata only writes a description; registering a
    # patch conflicts only while that patch is mid-(de)registration (never seen here:
    # both complete within their request).
    owner_checked = {
        "RegisterPackageVersion",
        "DeregisterPackageVersion",
        "DescribePackageVersion",
        "DescribeNode",
        "ListNodes",
    }
    unreachable = [
        (op, code)
        for op, code in missing
        if (code == "AccessDeniedException" and op not in owner_checked)
        or (code in ("ConflictException", "ResourceNotFoundException") and _reads(op))
        or (op, code) == ("UpdateDeviceMetadata", "ConflictException")
        or (op, code) == ("RegisterPackageVersion", "ConflictException")
    ]
    assert missing == unreachable
    assert len(seen_declared) >= 60, sorted(seen_declared)


def _reads(operation: str) -> bool:
    return operation.startswith(("Describe", "List"))


# --- fuzz: hypothesis params for every operation, real backend, never a 500 ---------


def _strategy(shape: Any, ids: list[str], depth: int = 0) -> st.SearchStrategy:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "string":
        options = [st.text(max_size=30), st.just(example_string(shape)), st.sampled_from(ids)]
        if meta.get("enum"):
            options.append(st.sampled_from(meta["enum"]))
        if "max" in meta and meta["max"] < 100_000:
            options.append(st.just("x" * (meta["max"] + 1)))
        return st.one_of(options)
    if kind in ("integer", "long"):
        return st.integers(-(2**40), 2**40) | st.integers(0, 30)
    if kind in ("float", "double"):
        return st.floats(allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return st.datetimes()
    if kind == "blob":
        return st.binary(max_size=32)
    if depth > 4:
        return st.none()
    if kind == "list":
        return st.lists(_strategy(shape.member, ids, depth + 1), max_size=3)
    if kind == "map":
        return st.dictionaries(
            _strategy(shape.key, ids, depth + 1), _strategy(shape.value, ids, depth + 1), max_size=3
        )
    members = {n: _strategy(m, ids, depth + 1) for n, m in shape.members.items()}
    return st.fixed_dictionaries({}, optional=members)


JSON_JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


@st.composite
def _params(draw, operation: str, ids: list[str]) -> dict[str, Any]:
    shape = MODEL.operation_model(operation).input_shape
    params: dict[str, Any] = {}
    for name, member in shape.members.items():
        present = name in shape.required_members and draw(st.integers(0, 9)) > 0
        if not (present or draw(st.booleans())):
            continue
        in_body = "location" not in member.serialization
        if in_body and draw(st.integers(0, 9)) == 0:
            params[name] = draw(JSON_JUNK)  # the wrong type altogether
        else:
            params[name] = draw(_strategy(member, ids))
    return params


@pytest.fixture(scope="module")
def known_ids(stack: Stack, client: Any, sample: dict) -> list[str]:
    nodes = client.list_nodes()["Nodes"]
    return [
        sample["device"],
        sample["app"],
        sample["code_id"],
        sample["code"],
        sample["camera_job"],
        nodes[0]["NodeId"],
        stack.arn("device", sample["device"]),
        stack.arn("package", sample["code_id"]),
        "1.0",
        "",
    ]


def test_a_nul_character_is_refused_naming_the_field(client: Any) -> None:
    """No database Panoptes runs on stores NUL: a clear 400, not a 500 (fuzzing found it
    in a tag key on PostgreSQL)."""
    for params in (
        {"Name": "nul-tag", "Tags": {"\x00f4": "v"}},
        {"Name": "nul-description", "Description": "bad\x00"},
    ):
        with pytest.raises(botocore.exceptions.ClientError) as err:
            client.provision_device(**params)
        error = err.value.response["Error"]
        assert error["Code"] == "ValidationException", error
        assert "NUL character" in error["Message"], error
        assert ("Tags" if "Tags" in params else "Description") in error["Message"], error
    names = [d["Name"] for d in client.list_devices()["Devices"]]
    assert "nul-tag" not in names and "nul-description" not in names


@pytest.mark.parametrize("operation", OPERATIONS)
def test_fuzzed_params_never_reach_a_500(
    stack: Stack, lax: Any, known_ids: list[str], operation: str
) -> None:
    call = getattr(lax, botocore_name(operation))

    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(params=_params(operation, known_ids))
    def run(params: dict[str, Any]) -> None:
        try:
            call(**params)
        except botocore.exceptions.ClientError as err:
            status = err.response["ResponseMetadata"]["HTTPStatusCode"]
            code = err.response["Error"]["Code"]
            assert status < 500 and code != "InternalServerException", (params, err.response)
        except botocore.exceptions.HTTPClientError:
            raise
        except (TypeError, ValueError, AttributeError, KeyError):
            pass  # botocore could not even serialize the junk: nothing was sent

    run()


# --- the guide's device scripts through the AWS CLI --------------------------------


def test_aws_cli_update_and_reboot_flow(stack: Stack, tmp_path: Path) -> None:
    """provision-device.sh, then check-updates.sh / reboot as the guide writes them."""
    import base64
    import os
    import subprocess

    from panoptes.cloud.protocol.models import data_path

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        HOME=str(tmp_path),
        AWS_DATA_PATH=str(data_path()),
        AWS_ACCESS_KEY_ID=stack.key_id,
        AWS_SECRET_ACCESS_KEY=stack.secret,
        AWS_DEFAULT_REGION="us-east-1",
    )
    aws = [str(Path(sys.executable).parent / "aws"), "panorama", "--endpoint-url", stack.url]

    def cli(*args: str) -> dict:
        done = subprocess.run([*aws, *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    device = cli("provision-device", "--name", "cli-appliance")
    # The appliance boots with the USB archive and reports in.
    bring_online(stack, device["DeviceId"], base64.b64decode(device["Certificates"]))
    # Same major version as the device runs (0.1.0): no AllowMajorVersionUpdate needed.
    stack.publish_software("0.2.0")
    config = '{"OTAJobConfig": {"ImageVersion": "0.2.0"}}'
    ota = cli(
        "create-job-for-devices", "--device-ids", device["DeviceId"],
        "--device-job-config", config, "--job-type", "OTA",
    )  # fmt: skip
    (job,) = ota["Jobs"]
    assert job["DeviceId"] == device["DeviceId"]
    described = cli("describe-device-job", "--job-id", job["JobId"])
    assert described["ImageVersion"] == "0.2.0"
    assert described["DeviceName"] == "cli-appliance"
    listed = cli("list-devices-jobs", "--device-id", device["DeviceId"])
    assert [j["JobId"] for j in listed["DeviceJobs"]] == [job["JobId"]]
