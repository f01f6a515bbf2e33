"""Device jobs: CreateJobForDevices (OTA, REBOOT), DescribeDeviceJob, ListDevicesJobs.

Job ids are the device id and a per-device counter (``device-...-0``), as the
developer guide's examples show. The device agent reports progress through
device_view, which walks the DEVICE_JOB table.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from panoptes.cloud.db.models import DeviceJob
from panoptes.cloud.errors import Conflict
from panoptes.cloud.services import software, states
from panoptes.cloud.services.common import Call, get_owned, invalid, newest_first
from panoptes.cloud.services.devices import get_device


def create_job_for_devices(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    job_type = p["JobType"]
    ota = (p.get("DeviceJobConfig") or {}).get("OTAJobConfig")
    if job_type == "OTA" and not (ota and ota.get("ImageVersion")):
        raise invalid("DeviceJobConfig.OTAJobConfig.ImageVersion", "required for an OTA job")
    if job_type == "REBOOT" and ota:
        raise invalid("DeviceJobConfig", "a REBOOT job takes no OTAJobConfig")
    jobs = []
    published: dict[str, software.Image] | None = None
    for device_id in p["DeviceIds"]:
        device = get_device(call, device_id)
        if device.provisioning_status != "SUCCEEDED":
            raise Conflict(
                f"device {device.id} is {device.provisioning_status}: it runs jobs once "
                "provisioned",
                device.id,
                "device",
            )
        busy = call.session.scalars(
            select(DeviceJob.id).where(
                DeviceJob.device_id == device.id,
                DeviceJob.status.not_in(states.FINISHED_JOB_STATUSES),
            )
        ).first()
        if busy:
            raise Conflict(f"device {device.id} is running job {busy}", device.id, "device")
        if job_type == "OTA":
            _check_major(device.current_software, ota["ImageVersion"], ota)
            if ota["ImageVersion"] != device.current_software:  # else: nothing to install
                if published is None:  # read now, not cached: the wheel may be seconds old
                    published = software.images(call.env.store)
                _check_published(ota["ImageVersion"], published)
        job = DeviceJob(
            id=f"{device.id}-{device.job_counter}",
            account_id=call.account,
            device_id=device.id,
            job_type=job_type,
            image_version=ota["ImageVersion"] if job_type == "OTA" else None,
            allow_major_update=bool(ota and ota.get("AllowMajorVersionUpdate")),
            status="PENDING",
            created=call.now,
            updated=call.now,
        )
        device.job_counter += 1
        call.session.add(job)
        jobs.append({"DeviceId": device.id, "JobId": job.id})
    call.session.flush()
    return {"Jobs": jobs}


def _check_major(current: str | None, wanted: str, ota: dict[str, Any]) -> None:
    if current is None or ota.get("AllowMajorVersionUpdate"):
        return
    major = current.split(".")[0]
    if wanted.split(".")[0] != major:
        raise invalid(
            "DeviceJobConfig.OTAJobConfig.AllowMajorVersionUpdate",
            f"{wanted} is another major version than the device's {current}: set it to true",
        )


def _check_published(wanted: str, published: dict[str, software.Image]) -> None:
    if wanted not in published:
        listed = ", ".join(sorted(published, key=software.version_key)) or "none"
        raise invalid(
            "DeviceJobConfig.OTAJobConfig.ImageVersion",
            f"software {wanted} is not published (published: {listed}): publish its wheel "
            f"first, `panoptes software publish panoptes-{wanted}-py3-none-any.whl`",
        )


def get_job(call: Call, job_id: str) -> DeviceJob:
    return get_owned(call, DeviceJob, job_id, "job")


def describe_device_job(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    job = get_job(call, p["JobId"])
    out = {
        "CreatedTime": job.created,
        "DeviceArn": call.arn("device", job.device_id),
        "DeviceId": job.device_id,
        "DeviceName": job.device.name,
        "DeviceType": job.device.device_type,
        "JobId": job.id,
        "JobType": job.job_type,
        "Status": job.status,
    }
    if job.image_version:
        out["ImageVersion"] = job.image_version
    return out


def list_devices_jobs(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    query = select(DeviceJob).where(DeviceJob.account_id == call.account)
    if device_id := p.get("DeviceId"):
        get_device(call, device_id)
        query = query.where(DeviceJob.device_id == device_id)
    rows = call.session.scalars(query).all()
    return newest_first(
        rows,
        p,
        f"ListDevicesJobs|{device_id}",
        "DeviceJobs",
        lambda j: {
            "CreatedTime": j.created,
            "DeviceId": j.device_id,
            "DeviceName": j.device.name,
            "JobId": j.id,
            "JobType": j.job_type,
        },
    )
