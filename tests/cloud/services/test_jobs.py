"""Device jobs: OTA and reboot, created by the API and driven by the device."""

from __future__ import annotations

import pytest

from panoptes.cloud.errors import Conflict


def test_ota_job_lifecycle(api):
    device = api.provision()
    api.publish_software("0.2.0")
    out = api(
        "CreateJobForDevices",
        DeviceIds=[device],
        JobType="OTA",
        DeviceJobConfig={"OTAJobConfig": {"ImageVersion": "0.2.0"}},
    )
    assert out == {"Jobs": [{"DeviceId": device, "JobId": f"{device}-0"}]}
    job = api("DescribeDeviceJob", JobId=f"{device}-0")
    assert job["Status"] == "PENDING" and job["ImageVersion"] == "0.2.0"
    assert job["DeviceName"] == "my-appliance" and job["DeviceType"] == "PANORAMA_APPLIANCE"
    assert job["DeviceArn"].endswith(f":device/{device}")
    api.fails("ConflictException", "CreateJobForDevices", DeviceIds=[device], JobType="REBOOT")
    assert api.view.desired_state(device)["Jobs"][0]["JobId"] == f"{device}-0"
    for status in ("IN_PROGRESS", "DOWNLOADING", "VERIFYING", "REBOOTING"):
        api.view.report_job_status(device, f"{device}-0", status, api.now)
    assert api("DescribeDevice", DeviceId=device)["DeviceAggregatedStatus"] == "REBOOTING"
    with pytest.raises(Conflict):
        api.view.report_job_status(device, f"{device}-0", "DOWNLOADING", api.now)
    api.view.report_job_status(device, f"{device}-0", "COMPLETED", api.now)
    d = api("DescribeDevice", DeviceId=device)
    assert d["CurrentSoftware"] == "0.2.0"
    assert d["LatestDeviceJob"] == {
        "ImageVersion": "0.2.0",
        "JobType": "OTA",
        "Status": "COMPLETED",
    }
    reboot = api("CreateJobForDevices", DeviceIds=[device], JobType="REBOOT")["Jobs"][0]["JobId"]
    assert reboot == f"{device}-1"
    api.tick(seconds=1)
    jobs = api("ListDevicesJobs", DeviceId=device)["DeviceJobs"]
    assert [j["JobId"] for j in jobs] == [f"{device}-1", f"{device}-0"]
    assert api("ListDevicesJobs")["DeviceJobs"] == jobs


def test_job_errors(api):
    device = api.provision()
    err = api.fails("ValidationException", "CreateJobForDevices", DeviceIds=[device], JobType="OTA")
    assert err.fields["Fields"][0]["Name"] == "DeviceJobConfig.OTAJobConfig.ImageVersion"
    err = api.fails(
        "ValidationException",
        "CreateJobForDevices",
        DeviceIds=[device],
        JobType="OTA",
        DeviceJobConfig={"OTAJobConfig": {"ImageVersion": "1.0.0"}},
    )
    assert "AllowMajorVersionUpdate" in err.fields["Fields"][0]["Name"]
    api.publish_software("1.0.0")
    api(
        "CreateJobForDevices",
        DeviceIds=[device],
        JobType="OTA",
        DeviceJobConfig={
            "OTAJobConfig": {"ImageVersion": "1.0.0", "AllowMajorVersionUpdate": True}
        },
    )
    api.fails(
        "ResourceNotFoundException", "CreateJobForDevices", DeviceIds=["device-x"], JobType="REBOOT"
    )
    fresh = api.provision("fresh", online=False)
    api.fails("ConflictException", "CreateJobForDevices", DeviceIds=[fresh], JobType="REBOOT")
    api.fails("ResourceNotFoundException", "DescribeDeviceJob", JobId="device-x-0")
    api.fails("ResourceNotFoundException", "ListDevicesJobs", DeviceId="device-x")


def test_an_ota_to_an_unpublished_version_is_refused_at_once(api):
    device = api.provision()  # runs 0.1.0
    api.publish_software("0.1.2")
    api.publish_software("0.1.10")
    err = api.fails(
        "ValidationException",
        "CreateJobForDevices",
        DeviceIds=[device],
        JobType="OTA",
        DeviceJobConfig={"OTAJobConfig": {"ImageVersion": "0.1.3"}},
    )
    assert err.fields["Fields"][0]["Name"] == "DeviceJobConfig.OTAJobConfig.ImageVersion"
    assert "0.1.3 is not published (published: 0.1.2, 0.1.10)" in err.message
    assert "panoptes software publish" in err.message
    assert api("ListDevicesJobs", DeviceId=device)["DeviceJobs"] == []  # nothing half-made
    # The version the device already runs needs no image: the agent reports it at once.
    api(
        "CreateJobForDevices",
        DeviceIds=[device],
        JobType="OTA",
        DeviceJobConfig={"OTAJobConfig": {"ImageVersion": "0.1.0"}},
    )
