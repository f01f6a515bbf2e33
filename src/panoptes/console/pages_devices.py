"""Devices: the list, the setup wizard (ending in the provisioning archive), the detail page."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from panoptes.cloud.errors import ServiceError
from panoptes.console.web import PREFIX, PageRequest, Refused, field_errors


def _parse_tags(text: str) -> dict[str, str]:
    """``key=value`` per line (the console's tag box)."""
    tags: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"tags line {n}: write key=value")
        tags[key.strip()] = value.strip()
    return tags


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.replace(",", " ").split() if x.strip()]


#: The appliance's two ports and the prefix of their fields in the wizard's form.
PORTS = (("Ethernet0", ""), ("Ethernet1", "eth1_"))
_PORT_FIELDS = ("network", "ip", "mask", "gateway", "dns")


def _networking(req: PageRequest) -> dict[str, Any] | None:
    """NetworkingConfiguration from the advanced settings (None: DHCP, the default NTP)."""
    out: dict[str, Any] = {}
    for port, prefix in PORTS:
        if req.field(prefix + "network") != "static":
            continue  # DHCP, the device's default
        out[port] = {
            "ConnectionType": "STATIC_IP",
            "StaticIpConnectionInfo": {
                "IpAddress": req.field(prefix + "ip").strip(),
                "Mask": req.field(prefix + "mask").strip(),
                "DefaultGateway": req.field(prefix + "gateway").strip(),
                "Dns": _split(req.field(prefix + "dns")),
            },
        }
    if servers := _split(req.field("ntp")):
        out["Ntp"] = {"NtpServers": servers}
    return out or None


def _describe_all(req: PageRequest) -> list[dict[str, Any]]:
    devices = req.state.console.all_pages(req.user, "ListDevices", "Devices", {"SortBy": "NAME"})
    out = []
    for d in devices:
        try:
            out.append(
                req.state.console.call(req.user, "DescribeDevice", {"DeviceId": d["DeviceId"]})
            )
        except ServiceError:
            continue  # deleted between the two calls
    return out


async def devices_list(req: PageRequest) -> Response:
    devices = await run_in_threadpool(_describe_all, req)
    return req.render("devices.html", devices=devices, title="Devices")


async def device_new_form(req: PageRequest) -> Response:
    return req.render("device_new.html", title="Set up a device", values={}, errors=[])


async def device_new(req: PageRequest) -> Response:
    keys = ["name", "description", "tags", "ntp"]
    keys += [prefix + f for _, prefix in PORTS for f in _PORT_FIELDS]
    values = {k: req.field(k) for k in keys}
    params: dict[str, Any] = {"Name": values["name"].strip()}
    if values["description"].strip():
        params["Description"] = values["description"].strip()
    try:
        if tags := _parse_tags(values["tags"]):
            params["Tags"] = tags
    except ValueError as exc:
        return req.render("device_new.html", 400, title="Set up a device", values=values,
                          errors=[str(exc)])  # fmt: skip
    if net := _networking(req):
        params["NetworkingConfiguration"] = net
    try:
        out = await req.call("ProvisionDevice", params)
    except ServiceError as exc:
        return req.render("device_new.html", 400, title="Set up a device", values=values,
                          errors=field_errors(exc))  # fmt: skip
    archive: bytes = out["Certificates"]
    expires = _archive_expiry(archive) or req.state.now()
    req.state.archives[(req.user.id, out["DeviceId"])] = (archive, expires)
    return req.redirect(f"{PREFIX}/devices/{out['DeviceId']}/provisioned")


def _archive_expiry(archive: bytes) -> datetime | None:
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            info = json.loads(zf.read("provisioning.json"))
        return datetime.fromisoformat(info["ProvisioningCredential"]["ExpiresAt"])
    except (KeyError, ValueError, zipfile.BadZipFile):
        return None


def _archive(req: PageRequest, device_id: str) -> tuple[bytes, datetime] | None:
    now = req.state.now()
    for key, (_, expires) in list(req.state.archives.items()):
        if expires <= now:
            req.state.archives.pop(key, None)  # the token inside is dead: drop it
    return req.state.archives.get((req.user.id, device_id))


async def device_provisioned(req: PageRequest) -> Response:
    device = await req.call("DescribeDevice", {"DeviceId": req.param("device_id")})
    held = _archive(req, device["DeviceId"])
    return req.render(
        "device_provisioned.html",
        title=f"Device {device['Name']} created",
        device=device,
        expires=held[1] if held else None,
        seconds_left=int((held[1] - req.state.now()).total_seconds()) if held else 0,
    )


async def device_archive(req: PageRequest) -> Response:
    device = await req.call("DescribeDevice", {"DeviceId": req.param("device_id")})
    held = _archive(req, device["DeviceId"])
    if held is None:
        raise Refused(
            410,
            "the provisioning archive is no longer available (its one-time credential is "
            "valid for 5 minutes): delete the device and set it up again",
        )
    name = f"certificates-omni_{device['Name']}.zip"
    return Response(
        held[0],
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def _newer(latest: str | None, current: str | None) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        return tuple(int(x) if x.isdigit() else 0 for x in v.split("."))

    return bool(latest and current and parts(latest) > parts(current))


async def device_detail(req: PageRequest) -> Response:
    device = await req.call("DescribeDevice", {"DeviceId": req.param("device_id")})
    apps = await req.all_pages(
        "ListApplicationInstances", "ApplicationInstances", {"DeviceId": device["DeviceId"]}
    )
    return req.render(
        "device.html",
        title=device["Name"],
        device=device,
        apps=[a for a in apps if a["Status"] != "REMOVAL_SUCCEEDED"],
        update_available=_newer(device.get("LatestSoftware"), device.get("CurrentSoftware")),
    )


async def device_reboot(req: PageRequest) -> Response:
    device_id = req.param("device_id")
    await req.call("CreateJobForDevices", {"DeviceIds": [device_id], "JobType": "REBOOT"})
    return req.redirect(f"{PREFIX}/devices/{device_id}", "Reboot requested.")


async def device_update(req: PageRequest) -> Response:
    device_id = req.param("device_id")
    device = await req.call("DescribeDevice", {"DeviceId": device_id})
    latest = device.get("LatestSoftware")
    if not _newer(latest, device.get("CurrentSoftware")):
        raise Refused(409, "the device already runs the latest software")
    await req.call(
        "CreateJobForDevices",
        {
            "DeviceIds": [device_id],
            "JobType": "OTA",
            "DeviceJobConfig": {
                "OTAJobConfig": {
                    "ImageVersion": latest,
                    "AllowMajorVersionUpdate": req.field("allow_major") == "on",
                }
            },
        },
    )
    return req.redirect(f"{PREFIX}/devices/{device_id}", f"Software update to {latest} requested.")


async def device_delete(req: PageRequest) -> Response:
    device_id = req.param("device_id")
    device = await req.call("DescribeDevice", {"DeviceId": device_id})
    if req.field("confirm_name") != device["Name"]:
        raise Refused(400, f"type the device's name ({device['Name']}) to confirm the deletion")
    await req.call("DeleteDevice", {"DeviceId": device_id})
    return req.redirect(f"{PREFIX}/devices", f"Device {device['Name']} deleted.")
