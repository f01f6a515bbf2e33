"""Devices: DescribeDevice, ListDevices, UpdateDeviceMetadata, DeleteDevice.

Connection and aggregated statuses are derived when read from what the device last
reported over the link (its heartbeat lease, its presence, its latest job), so a
silent device turns OFFLINE without anybody having to write that down.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import aliased

from panoptes.cloud.db.models import ApplicationInstance, Device, DeviceJob
from panoptes.cloud.errors import Conflict, ResourceNotFound
from panoptes.cloud.services import software, states
from panoptes.cloud.services.common import (
    Call,
    drop_tags,
    get_owned,
    iso,
    paginate,
    tags_of,
    tags_of_many,
)
from panoptes.cloud.services.provisioning import revoke_certificates
from panoptes.link import OFFLINE


def get_device(call: Call, device_id: str) -> Device:
    return get_owned(call, Device, device_id, "device")


def _devices_with_latest_job() -> Select[tuple[Device, DeviceJob]]:
    """Devices each with its latest job (or None): one query, not one per device."""
    job = aliased(DeviceJob)
    latest = (
        select(job.id)
        .where(job.device_id == Device.id)
        .order_by(job.created.desc(), job.id.desc())
        .limit(1)
        .correlate(Device)
        .scalar_subquery()
    )
    return select(Device, DeviceJob).outerjoin(DeviceJob, DeviceJob.id == latest)


_WITH_LATEST_JOB = _devices_with_latest_job()
_DESCRIBE = _WITH_LATEST_JOB.where(
    Device.id == bindparam("device_id"), Device.account_id == bindparam("account")
)
_LIST = _WITH_LATEST_JOB.where(Device.account_id == bindparam("account"))


def connection_status(call: Call, device: Device) -> str:
    """ONLINE while the heartbeat lease holds and no last will came after it; OFFLINE
    after the last will or the lease; NOT_AVAILABLE before the first heartbeat."""
    if device.provisioning_status == "AWAITING_PROVISIONING":
        return "AWAITING_CREDENTIALS"
    if device.provisioning_status in ("FAILED", "DELETING"):
        return "NOT_AVAILABLE"
    if device.provisioning_status == "ERROR":
        return "ERROR"
    if device.last_heartbeat is None:
        return "NOT_AVAILABLE"
    if device.presence == OFFLINE:
        return "OFFLINE"
    lease = device.lease_expiration or (device.last_heartbeat + call.env.settings.heartbeat_timeout)
    return "ONLINE" if call.now < lease else "OFFLINE"


def latest_software(call: Call) -> str:
    """The highest published software image (settings' version when none is)."""
    return software.latest(call.env.store, call.env.settings.latest_software)


def aggregated_status(call: Call, device: Device, job: DeviceJob | None) -> str:
    status = device.provisioning_status
    if status in ("AWAITING_PROVISIONING", "PENDING", "FAILED", "ERROR", "DELETING"):
        return status
    if job is not None and job.status == "REBOOTING":
        return "REBOOTING"
    conn = connection_status(call, device)
    if conn == "ONLINE" and _older(device.current_software, latest_software(call)):
        return "UPDATE_NEEDED"
    return "ONLINE" if conn == "ONLINE" else "OFFLINE"


def _older(current: str | None, latest: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        return tuple(int(x) if x.isdigit() else 0 for x in v.split("."))

    return current is not None and parts(current) < parts(latest)


def _summary(
    call: Call, device: Device, job: DeviceJob | None, tags: dict[str, str]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Brand": device.brand,
        "CreatedTime": device.created,
        "DeviceAggregatedStatus": aggregated_status(call, device, job),
        "DeviceId": device.id,
        "LastUpdatedTime": device.updated,
        "Name": device.name,
        "ProvisioningStatus": device.provisioning_status,
        "Tags": tags,
        "Type": device.device_type,
    }
    if device.current_software:
        out["CurrentSoftware"] = device.current_software
    if device.description is not None:
        out["Description"] = device.description
    if device.lease_expiration:
        out["LeaseExpirationTime"] = device.lease_expiration
    if job is not None:
        out["LatestDeviceJob"] = _job_brief(job)
    return out


def _job_brief(job: DeviceJob) -> dict[str, Any]:
    brief = {"JobType": job.job_type, "Status": job.status}
    if job.image_version:
        brief["ImageVersion"] = job.image_version
    return brief


def describe_device(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    found = call.session.execute(
        _DESCRIBE, {"device_id": p["DeviceId"], "account": call.account}
    ).first()
    if found is None:
        raise ResourceNotFound(p["DeviceId"], "device")
    device, job = found
    out = _summary(call, device, job, tags_of(call.session, call.arn("device", device.id)))
    out.pop("LastUpdatedTime")
    out.update(
        Arn=call.arn("device", device.id),
        DeviceConnectionStatus=connection_status(call, device),
        LatestSoftware=latest_software(call),
        AlternateSoftwares=[{"Version": v} for v in device.alternate_softwares or []],
    )
    if device.alternate_softwares:
        out["LatestAlternateSoftware"] = device.alternate_softwares[-1]
    if device.serial_number:
        out["SerialNumber"] = device.serial_number
    if device.networking_configuration is not None:
        out["NetworkingConfiguration"] = device.networking_configuration
    if device.network_status is not None:
        out["CurrentNetworkingStatus"] = {
            **device.network_status,
            "LastUpdatedTime": device.network_status_time,
        }
    return out


_SORT_KEYS = {
    "DEVICE_ID": lambda d: (d["DeviceId"],),
    "CREATED_TIME": lambda d: (iso(d["CreatedTime"]), d["DeviceId"]),
    "NAME": lambda d: (d["Name"], d["DeviceId"]),
    "DEVICE_AGGREGATED_STATUS": lambda d: (d["DeviceAggregatedStatus"], d["DeviceId"]),
}


def list_devices(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    rows = call.session.execute(_LIST, {"account": call.account}).all()
    tags = tags_of_many(call.session, [call.arn("device", d.id) for d, _ in rows])
    items = [_summary(call, d, job, tags[call.arn("device", d.id)]) for d, job in rows]
    if name := p.get("NameFilter"):
        # The console's filter matches names that start with the text typed.
        items = [d for d in items if d["Name"].startswith(name)]
    if status := p.get("DeviceAggregatedStatusFilter"):
        items = [d for d in items if d["DeviceAggregatedStatus"] == status]
    sort_by = p.get("SortBy") or "CREATED_TIME"
    descending = p.get("SortOrder") == "DESCENDING"
    scope = f"ListDevices|{name}|{status}|{sort_by}|{descending}"
    page = paginate(items, _SORT_KEYS[sort_by], p, scope, descending=descending)
    return page.out("Devices", lambda d: d)


def update_device_metadata(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    device = get_device(call, p["DeviceId"])
    if "Description" in p:
        device.description = p["Description"]
        device.updated = call.now
    return {"DeviceId": device.id}


def delete_device(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    device = get_device(call, p["DeviceId"])
    running = call.session.scalars(
        select(ApplicationInstance.id).where(
            ApplicationInstance.device_id == device.id,
            ApplicationInstance.status.in_(states.ACTIVE_INSTANCE_STATUSES),
        )
    ).all()
    if running:
        raise Conflict(
            f"device {device.id} has application instances ({', '.join(running)}): "
            "remove them first",
            device.id,
            "device",
        )
    # DELETING is momentary here: the row goes in the same transaction, and the
    # device's certificates stop opening the control plane's doors at once.
    device.provisioning_status = states.DEVICE.next(device.provisioning_status, "delete", device.id)
    revoke_certificates(call.session, device.id, call.now)
    drop_tags(call.session, call.arn("device", device.id))
    call.session.delete(device)
    return {"DeviceId": device.id}
