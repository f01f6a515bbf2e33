"""Packages, versions and nodes: the package-application flow and its failures."""

from __future__ import annotations

import hashlib
import json

import pytest
from package_helpers import package_doc, publish, upload, with_assets
from svc_constants import ACCOUNT


def test_create_package_returns_storage_location(api):
    out = api("CreatePackage", PackageName="SAMPLE_CODE", Tags={"team": "vision"})
    assert out["PackageId"].startswith("package-")
    assert out["Arn"] == f"arn:aws:panorama:us-east-1:{ACCOUNT}:package/{out['PackageId']}"
    loc = out["StorageLocation"]
    prefix = f"{ACCOUNT}/nodePackages/SAMPLE_CODE"
    assert loc == {
        "Bucket": f"panoptes-{ACCOUNT}",
        "RepoPrefixLocation": prefix,
        "GeneratedPrefixLocation": f"{prefix}/generated",
        "BinaryPrefixLocation": f"{prefix}/binaries",
        "ManifestPrefixLocation": f"{prefix}/manifests",
    }
    assert api.store.bucket_exists(loc["Bucket"])
    described = api("DescribePackage", PackageId=out["PackageId"])
    assert described["Tags"] == {"team": "vision"} and described["PackageName"] == "SAMPLE_CODE"
    api.fails("ConflictException", "CreatePackage", PackageName="SAMPLE_CODE")
    # The name form panorama-cli uses finds the same package; an unknown name does not.
    by_name = api("DescribePackage", PackageId="packageName/SAMPLE_CODE")
    assert by_name["PackageId"] == out["PackageId"]
    api.fails("ResourceNotFoundException", "DescribePackage", PackageId="packageName/NOPE")
    listed = api("ListPackages")["Packages"]
    assert [p["PackageId"] for p in listed] == [out["PackageId"]]


def test_register_flow_creates_nodes(api):
    doc, files = with_assets(package_doc("SAMPLE_CODE"), {"code_asset": ("tar.gz", b"code")})
    doc["nodePackage"]["interfaces"][0]["asset"] = "code_asset"
    package_id, patch = publish(api, doc, files)
    v = api("DescribePackageVersion", PackageId=package_id, PackageVersion="1.0")
    assert v["Status"] == "REGISTER_COMPLETED" and v["IsLatestPatch"] is True
    assert v["PatchVersion"] == patch and v["OwnerAccount"] == ACCOUNT
    assert v["RegisteredTime"] == api.now
    nodes = api("ListNodes", PackageName="SAMPLE_CODE")["Nodes"]
    assert [n["NodeId"] for n in nodes] == [f"SAMPLE_CODE-1.0-{patch[:8]}-interface"]
    assert nodes[0]["Category"] == "BUSINESS_LOGIC" and nodes[0]["PatchVersion"] == patch
    node = api("DescribeNode", NodeId=nodes[0]["NodeId"])
    assert node["AssetName"] == "code_asset"
    assert node["NodeInterface"] == {
        "Inputs": [{"Name": "video_in", "Type": "MEDIA"}],
        "Outputs": [{"Name": "video_out", "Type": "MEDIA"}],
    }
    assert api("ListNodes", Category="ML_MODEL")["Nodes"] == []
    assert api("ListNodes", PatchVersion=patch)["Nodes"] == nodes
    assert api("ListNodes", PackageVersion="2.0")["Nodes"] == []
    api.fails("ResourceNotFoundException", "DescribeNode", NodeId="nope-1.0-x-y")
    # Registering the same patch again (a re-run) is harmless.
    api("RegisterPackageVersion", PackageId=package_id, PackageVersion="1.0", PatchVersion=patch)


def test_tampered_asset_is_named_and_nothing_is_registered(api):
    doc, files = with_assets(package_doc("M"), {"model": ("tar.gz", b"weights")})
    package_id = api("CreatePackage", PackageName="M")["PackageId"]
    (uri,) = [u for u in files if u.endswith(".tar.gz")]
    files[uri] = b"tampered weights"
    patch = upload(api, package_id, doc, files)
    err = api.fails(
        "ValidationException",
        "RegisterPackageVersion",
        PackageId=package_id,
        PackageVersion="1.0",
        PatchVersion=patch,
    )
    assert uri in err.message and "altered" in err.message
    assert err.fields["Fields"][0]["Name"] == "nodePackage.assets[0].implementations[0].assetUri"
    api.fails(
        "ResourceNotFoundException",
        "DescribePackageVersion",
        PackageId=package_id,
        PackageVersion="1.0",
    )
    assert api("ListNodes")["Nodes"] == []


def test_missing_asset_and_bad_manifest_are_listed(api):
    doc, files = with_assets(package_doc("M"), {"model": ("tar.gz", b"weights")})
    package_id = api("CreatePackage", PackageName="M")["PackageId"]
    missing = next(u for u in files if u.endswith(".tar.gz"))
    del files[missing]
    patch = upload(api, package_id, doc, files)
    err = api.fails(
        "ValidationException",
        "RegisterPackageVersion",
        PackageId=package_id,
        PackageVersion="1.0",
        PatchVersion=patch,
    )
    assert f"asset {missing} is not in" in err.message
    bad = package_doc("M")
    bad["nodePackage"]["interfaces"][0]["category"] = "nonsense"
    bad["nodePackage"]["version"] = "1.0"
    patch = upload(api, package_id, bad, {})
    err = api.fails(
        "ValidationException",
        "RegisterPackageVersion",
        PackageId=package_id,
        PackageVersion="1.0",
        PatchVersion=patch,
    )
    assert "nodePackage.interfaces[0].category" in err.message


def test_patch_must_be_the_manifest_sha256_and_uploaded(api):
    package_id = api("CreatePackage", PackageName="M")["PackageId"]
    err = api.fails(
        "ValidationException",
        "RegisterPackageVersion",
        PackageId=package_id,
        PackageVersion="1.0",
        PatchVersion="a" * 64,
    )
    assert err.fields["Fields"][0]["Name"] == "PatchVersion" and "upload it" in err.message
    loc = api("DescribePackage", PackageId=package_id)["StorageLocation"]
    raw = json.dumps(package_doc("M")).encode()
    api.store.put(loc["Bucket"], f"{loc['ManifestPrefixLocation']}/1.0/{'b' * 64}.json", raw)
    err = api.fails(
        "ValidationException",
        "RegisterPackageVersion",
        PackageId=package_id,
        PackageVersion="1.0",
        PatchVersion="b" * 64,
    )
    assert hashlib.sha256(raw).hexdigest() in err.message
    # The name and version inside must be the package's.
    other = package_doc("OTHER")
    patch = upload(api, package_id, other, {})
    err = api.fails(
        "ValidationException",
        "RegisterPackageVersion",
        PackageId=package_id,
        PackageVersion="1.0",
        PatchVersion=patch,
    )
    assert "nodePackage.name" in err.message


def test_latest_patch_and_deregistration(api):
    first = package_doc("P")
    package_id, p1 = publish(api, first)
    second = package_doc("P")
    second["nodePackage"]["description"] = "rebuilt"
    _, p2 = publish(api, second, mark_latest=False)
    latest = api("DescribePackageVersion", PackageId=package_id, PackageVersion="1.0")
    assert latest["PatchVersion"] == p1  # not marked: the first stays latest
    pinned = api(
        "DescribePackageVersion", PackageId=package_id, PackageVersion="1.0", PatchVersion=p2
    )
    assert pinned["IsLatestPatch"] is False
    api(
        "RegisterPackageVersion",
        PackageId=package_id,
        PackageVersion="1.0",
        PatchVersion=p2,
        MarkLatest=True,
    )
    assert (
        api("DescribePackageVersion", PackageId=package_id, PackageVersion="1.0")["PatchVersion"]
        == p2
    )
    api.fails(
        "ValidationException",
        "DeregisterPackageVersion",
        PackageId=package_id,
        PackageVersion="1.0",
        PatchVersion=p2,
        UpdatedLatestPatchVersion="c" * 64,
    )
    api(
        "DeregisterPackageVersion",
        PackageId=package_id,
        PackageVersion="1.0",
        PatchVersion=p2,
        UpdatedLatestPatchVersion=p1,
    )
    assert (
        api("DescribePackageVersion", PackageId=package_id, PackageVersion="1.0")["PatchVersion"]
        == p1
    )
    assert [n["PatchVersion"] for n in api("ListNodes")["Nodes"]] == [p1]
    api.fails(
        "ResourceNotFoundException",
        "DeregisterPackageVersion",
        PackageId=package_id,
        PackageVersion="1.0",
        PatchVersion=p2,
    )
    api.fails(
        "AccessDeniedException",
        "DeregisterPackageVersion",
        PackageId=package_id,
        PackageVersion="1.0",
        PatchVersion=p1,
        OwnerAccount="999999999999",
    )


def test_delete_package_needs_force_when_versions_exist(api):
    package_id, _ = publish(api, package_doc("P"))
    err = api.fails("ConflictException", "DeletePackage", PackageId=package_id)
    assert "ForceDelete" in err.message
    api("DeletePackage", PackageId=package_id, ForceDelete=True)
    api.fails("ResourceNotFoundException", "DescribePackage", PackageId=package_id)
    assert api("ListNodes")["Nodes"] == []
    bucket = f"panoptes-{ACCOUNT}"
    assert list(api.store.list(bucket, prefix=f"{ACCOUNT}/nodePackages/P/")) == []
    empty = api("CreatePackage", PackageName="E")["PackageId"]
    api("DeletePackage", PackageId=empty)
    for op in ("DescribePackage", "DeletePackage"):
        api.fails("ResourceNotFoundException", op, PackageId="package-nope")


def test_versions_in_use_cannot_be_deregistered(api):
    from package_helpers import publish_sample_app, sample_payloads

    sample = publish_sample_app(api)
    device = api.provision()
    g, o = sample_payloads()
    api(
        "CreateApplicationInstance",
        DefaultRuntimeContextDevice=device,
        ManifestPayload={"PayloadData": g},
        ManifestOverridesPayload={"PayloadData": o},
    )
    err = api.fails(
        "ConflictException",
        "DeregisterPackageVersion",
        PackageId=sample["code_id"],
        PackageVersion="1.0",
        PatchVersion=sample["code"],
    )
    assert "applicationInstance-" in err.message


class TestQuotas:
    @pytest.fixture
    def limits(self, low_limits):
        return low_limits

    def test_packages_and_versions(self, api):
        package_id, _ = publish(api, package_doc("A"))
        api("CreatePackage", PackageName="B")
        err = api.fails("ServiceQuotaExceededException", "CreatePackage", PackageName="C")
        assert err.fields["QuotaCode"] == "panorama-packages"
        publish(api, package_doc("A", version="1.1"))
        patch = upload(api, package_id, package_doc("A", version="2.0"), {})
        err = api.fails(
            "ServiceQuotaExceededException",
            "RegisterPackageVersion",
            PackageId=package_id,
            PackageVersion="2.0",
            PatchVersion=patch,
        )
        assert err.fields["QuotaCode"] == "panorama-package-versions"


def test_package_import_job(api):
    doc, files = with_assets(package_doc("IMPORTED"), {"a": ("tar.gz", b"bits")})
    bucket = "my-bucket"
    api.store.create_bucket(bucket)
    raw = json.dumps(doc).encode()
    api.store.put(bucket, "exports/package.json", raw)
    for uri, content in files.items():
        api.store.put(bucket, f"exports/assets/{uri}", content)
    params = {
        "ClientToken": "token-1",
        "JobType": "NODE_PACKAGE_VERSION",
        "InputConfig": {
            "PackageVersionInputConfig": {
                "S3Location": {"BucketName": bucket, "ObjectKey": "exports/package.json"}
            }
        },
        "OutputConfig": {
            "PackageVersionOutputConfig": {
                "PackageName": "IMPORTED",
                "PackageVersion": "1.0",
                "MarkLatest": True,
            }
        },
        "JobTags": [{"ResourceType": "PACKAGE", "Tags": {"source": "import"}}],
    }
    job_id = api("CreatePackageImportJob", **params)["JobId"]
    assert api("CreatePackageImportJob", **params)["JobId"] == job_id  # idempotent
    job = api("DescribePackageImportJob", JobId=job_id)
    assert job["Status"] == "SUCCEEDED", job["StatusMessage"]
    patch = hashlib.sha256(raw).hexdigest()
    assert job["Output"]["PatchVersion"] == patch
    assert job["Output"]["OutputS3Location"]["BucketName"] == f"panoptes-{ACCOUNT}"
    package = api("DescribePackage", PackageId=job["Output"]["PackageId"])
    assert package["Tags"] == {"source": "import"}
    assert api("ListPackageImportJobs")["PackageImportJobs"][0]["JobId"] == job_id
    other = {**params, "JobType": "MARKETPLACE_NODE_PACKAGE_VERSION"}
    api.fails("ConflictException", "CreatePackageImportJob", **other)
    failed = api("CreatePackageImportJob", **{**other, "ClientToken": "token-2"})["JobId"]
    assert api("DescribePackageImportJob", JobId=failed)["Status"] == "FAILED"
    missing = json.loads(json.dumps(params))
    missing["ClientToken"] = "token-3"
    missing["InputConfig"]["PackageVersionInputConfig"]["S3Location"]["ObjectKey"] = "nope.json"
    job = api("DescribePackageImportJob", JobId=api("CreatePackageImportJob", **missing)["JobId"])
    assert job["Status"] == "FAILED" and "nope.json" in job["StatusMessage"]
    api.fails("ResourceNotFoundException", "DescribePackageImportJob", JobId="nope")
