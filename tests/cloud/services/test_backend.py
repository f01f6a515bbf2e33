"""PanoramaBackend as the protocol layer sees it: 34 operations, errors, keys, secrets."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from package_helpers import SAMPLE_APP, publish_sample_app, sample_payloads
from svc_constants import ACCOUNT, REGION

from panoptes.cloud.context import RequestContext
from panoptes.cloud.errors import InternalError
from panoptes.cloud.services import OPERATIONS, DbCredentialStore, Secrets, bootstrap_admin
from panoptes.cloud.services.secrets import MASTER_KEY_ENV, SecretError, load_master_key

MODEL = (
    SAMPLE_APP.parents[3] / "botocore-panorama/panorama/2019-07-24/service-2.json"
    if SAMPLE_APP.exists()
    else Path("/nonexistent")
)


def test_operations_are_exactly_the_models():
    model = json.loads(MODEL.read_text())
    assert set(OPERATIONS) == set(model["operations"]) and len(OPERATIONS) == 34


def test_every_operation_in_one_journey(api):
    called = set()
    original = api.backend.handle

    def spy(operation, ctx, params):
        called.add(operation)
        return original(operation, ctx, params)

    api.backend.handle = spy
    publish_sample_app(
        api
    )  # CreatePackage, DescribePackage, ListPackages, Register..., template job
    device = api.provision()
    g, o = sample_payloads()
    app = api(
        "CreateApplicationInstance",
        DefaultRuntimeContextDevice=device,
        ManifestPayload={"PayloadData": g},
        ManifestOverridesPayload={"PayloadData": o},
    )["ApplicationInstanceId"]
    package = api("ListPackages")["Packages"][0]
    api("DescribePackageVersion", PackageId=package["PackageId"], PackageVersion="1.0")
    node = api("ListNodes")["Nodes"][0]
    api("DescribeNode", NodeId=node["NodeId"])
    job = api("ListNodeFromTemplateJobs")["NodeFromTemplateJobs"][0]
    api("DescribeNodeFromTemplateJob", JobId=job["JobId"])
    api.store.create_bucket("src")
    manifest = SAMPLE_APP / "packages/123456789012-SAMPLE_CODE-1.0/package.json"
    api.store.put("src", "SAMPLE_CODE/package.json", manifest.read_bytes())
    imp = api(
        "CreatePackageImportJob",
        ClientToken="t1",
        JobType="NODE_PACKAGE_VERSION",
        InputConfig={
            "PackageVersionInputConfig": {
                "S3Location": {"BucketName": "src", "ObjectKey": "SAMPLE_CODE/package.json"}
            }
        },
        OutputConfig={
            "PackageVersionOutputConfig": {"PackageName": "SAMPLE_CODE", "PackageVersion": "1.0"}
        },
    )["JobId"]
    api("DescribePackageImportJob", JobId=imp)
    api("ListPackageImportJobs")
    for op in (
        "DescribeApplicationInstance",
        "DescribeApplicationInstanceDetails",
        "ListApplicationInstanceDependencies",
        "ListApplicationInstanceNodeInstances",
    ):
        api(op, ApplicationInstanceId=app)
    api("ListApplicationInstances", DeviceId=device)
    api(
        "SignalApplicationInstanceNodeInstances",
        ApplicationInstanceId=app,
        NodeSignals=[{"NodeInstanceId": "camera_node_override", "Signal": "PAUSE"}],
    )
    arn = f"arn:aws:panorama:{REGION}:{ACCOUNT}:device/{device}"
    api("TagResource", ResourceArn=arn, Tags={"a": "b"})
    api("ListTagsForResource", ResourceArn=arn)
    api("UntagResource", ResourceArn=arn, TagKeys=["a"])
    api("UpdateDeviceMetadata", DeviceId=device, Description="d")
    api("DescribeDevice", DeviceId=device)
    api("ListDevices")
    jid = api("CreateJobForDevices", DeviceIds=[device], JobType="REBOOT")["Jobs"][0]["JobId"]
    api("DescribeDeviceJob", JobId=jid)
    api("ListDevicesJobs")
    api("RemoveApplicationInstance", ApplicationInstanceId=app)
    api("DeleteDevice", DeviceId=device)
    camera = next(p for p in api("ListPackages")["Packages"] if p["PackageName"] == "MY_CAMERA")
    patch = api("DescribePackageVersion", PackageId=camera["PackageId"], PackageVersion="1.0")
    api(
        "DeregisterPackageVersion",
        PackageId=camera["PackageId"],
        PackageVersion="1.0",
        PatchVersion=patch["PatchVersion"],
    )
    api("DeletePackage", PackageId=camera["PackageId"])
    assert called == set(OPERATIONS)


def test_unknown_operation_and_unexpected_failures_are_internal_errors(api, caplog):
    ctx = RequestContext(ACCOUNT, REGION, "AKIA", "admin")
    with pytest.raises(InternalError):
        api.backend.handle("MakeCoffee", ctx, {})
    # A crash inside an operation rolls its transaction back and names the request.
    with pytest.raises(InternalError) as info:
        api.backend.handle("ProvisionDevice", ctx, {"Name": "x", "Tags": "not-a-dict"})
    assert ctx.request_id in info.value.message
    assert api("ListDevices")["Devices"] == []
    assert "not-a-dict" not in caplog.text  # parameters are never logged


def test_credential_store_and_bootstrap(db, tmp_path, monkeypatch):
    monkeypatch.delenv("PANOPTES_ADMIN_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("PANOPTES_ADMIN_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.setenv("PANOPTES_ACCOUNT_ID", ACCOUNT)
    secrets = Secrets(b"s" * 32)
    first = bootstrap_admin(db, secrets, tmp_path)
    assert first.created and first.account_id == ACCOUNT
    text = first.credentials_file.read_text()
    assert "[panoptes]" in text and first.access_key_id in text
    assert stat.S_IMODE(first.credentials_file.stat().st_mode) == 0o600
    store = DbCredentialStore(db, secrets)
    cred = store.lookup(first.access_key_id)
    assert cred is not None and cred.account_id == ACCOUNT and cred.principal == "admin"
    assert cred.secret_access_key in text and cred.secret_access_key not in first.message()
    assert store.lookup("AKIANOPE") is None
    again = bootstrap_admin(db, secrets, tmp_path)
    assert not again.created and again.access_key_id == first.access_key_id
    # The secret is not stored in clear.
    from sqlalchemy import text as sql

    with db.engine.connect() as conn:
        rows = conn.execute(sql("SELECT * FROM access_keys")).all()
    assert cred.secret_access_key not in repr(rows)
    monkeypatch.setenv("PANOPTES_ADMIN_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT1")
    monkeypatch.setenv("PANOPTES_ADMIN_SECRET_ACCESS_KEY", "x" * 40)
    seeded = bootstrap_admin(db, secrets, tmp_path)
    assert seeded.access_key_id == "AKIAFROMENVIRONMENT1"
    assert store.lookup("AKIAFROMENVIRONMENT1").secret_access_key == "x" * 40


def test_secrets_master_key_and_binding(tmp_path, monkeypatch):
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    key = load_master_key(tmp_path)
    path = tmp_path / "master.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_key(tmp_path) == key
    s = Secrets(key)
    blob = s.encrypt("pw", "camera:1:password")
    assert b"pw" not in blob and s.decrypt(blob, "camera:1:password") == "pw"
    with pytest.raises(SecretError):
        s.decrypt(blob, "camera:2:password")  # moved to another row
    with pytest.raises(SecretError):
        Secrets(os.urandom(32)).decrypt(blob, "camera:1:password")
    import base64

    monkeypatch.setenv(MASTER_KEY_ENV, base64.urlsafe_b64encode(b"e" * 32).decode())
    assert load_master_key(tmp_path) == b"e" * 32
    monkeypatch.setenv(MASTER_KEY_ENV, "short")
    with pytest.raises(SecretError):
        load_master_key(tmp_path)
