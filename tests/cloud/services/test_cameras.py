"""Cameras from templates: the package they make, and the password that never leaks."""

from __future__ import annotations

import json

from package_helpers import register_camera
from sqlalchemy import text
from svc_constants import ACCOUNT

PASSWORD = "Tr0ub4dor&3-unique"


def _all_outputs(api) -> str:
    outs = [api("ListNodeFromTemplateJobs"), api("ListNodes"), api("ListPackages")]
    for job in outs[0]["NodeFromTemplateJobs"]:
        outs.append(api("DescribeNodeFromTemplateJob", JobId=job["JobId"]))
    for node in outs[1]["Nodes"]:
        outs.append(api("DescribeNode", NodeId=node["NodeId"]))
        outs.append(api("DescribePackage", PackageId=node["PackageId"]))
        outs.append(
            api(
                "DescribePackageVersion",
                PackageId=node["PackageId"],
                PackageVersion=node["PackageVersion"],
            )
        )
    return json.dumps(outs, default=str)


def test_camera_becomes_a_media_source_package(api):
    job_id = register_camera(api, "exterior-south", password=PASSWORD, NodeDescription="gate")
    job = api("DescribeNodeFromTemplateJob", JobId=job_id)
    assert job["Status"] == "SUCCEEDED" and job["StatusMessage"]
    assert job["TemplateType"] == "RTSP_CAMERA_STREAM"
    assert job["OutputPackageName"] == "exterior-south" and job["NodeName"] == "exterior-south"
    assert job["TemplateParameters"]["Password"] != PASSWORD
    assert job["TemplateParameters"]["StreamUrl"] == "rtsp://10.0.0.5:554/exterior-south"
    (node,) = api("ListNodes", Category="MEDIA_SOURCE")["Nodes"]
    assert node["PackageName"] == "exterior-south" and node["Name"] == "exterior-south"
    assert node["OwnerAccount"] == ACCOUNT
    interface = api("DescribeNode", NodeId=node["NodeId"])["NodeInterface"]
    assert interface["Outputs"] == [{"Name": "video_out", "Type": "MEDIA"}]
    listed = api("ListNodeFromTemplateJobs")["NodeFromTemplateJobs"]
    assert [j["JobId"] for j in listed] == [job_id]


def test_password_never_in_outputs_nor_stored_in_clear(api):
    register_camera(api, "cam-a", password=PASSWORD)
    api(
        "CreateNodeFromTemplateJob",
        TemplateType="RTSP_CAMERA_STREAM",
        OutputPackageName="cam-b",
        OutputPackageVersion="1.0",
        NodeName="cam-b",
        TemplateParameters={"StreamUrl": f"rtsp://viewer:{PASSWORD}@10.0.0.6/live"},
    )
    assert PASSWORD not in _all_outputs(api)
    with api.backend.db.engine.connect() as conn:
        for table in ("camera_sources", "node_from_template_jobs", "package_versions", "nodes"):
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                dump = repr(tuple(row))
                assert PASSWORD not in dump and PASSWORD.encode().hex() not in dump, table
    for bucket in api.store.buckets.values():
        for raw, _ in bucket.values():
            assert PASSWORD.encode() not in raw


def test_bad_parameters_and_conflicts(api):
    def make(**params):
        base = {
            "TemplateType": "RTSP_CAMERA_STREAM",
            "OutputPackageName": "cam",
            "OutputPackageVersion": "1.0",
            "NodeName": "cam",
            "TemplateParameters": {"StreamUrl": "rtsp://10.0.0.5/live"},
        }
        return {**base, **params}

    err = api.fails(
        "ValidationException",
        "CreateNodeFromTemplateJob",
        **make(TemplateParameters={"StreamUrl": "http://10.0.0.5/live"}),
    )
    assert err.fields["Fields"][0]["Name"] == "TemplateParameters.StreamUrl"
    api.fails(
        "ValidationException",
        "CreateNodeFromTemplateJob",
        **make(TemplateParameters={"StreamUrl": "rtsp://h/x", "Colour": "red"}),
    )
    api("CreateNodeFromTemplateJob", **make())
    api.fails("ConflictException", "CreateNodeFromTemplateJob", **make())
    api("CreateNodeFromTemplateJob", **make(OutputPackageVersion="2.0"))
    assert len(api("ListNodes", PackageName="cam")["Nodes"]) == 2


def test_quota_failure_is_a_failed_job(api, tmp_path):
    from dataclasses import replace

    api.backend.env.settings = replace(
        api.backend.env.settings, limits=replace(api.backend.env.settings.limits, packages=0)
    )
    job_id = register_camera(api, "cam")
    job = api("DescribeNodeFromTemplateJob", JobId=job_id)
    assert job["Status"] == "FAILED" and "at most 0 packages" in job["StatusMessage"]
    assert api("ListPackages")["Packages"] == []
