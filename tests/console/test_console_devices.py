"""Devices in the console: the setup wizard and its archive, the list, the detail's actions."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

from api_helpers import bring_online
from console_client import ConsoleClient, second_account_user


def _create(console: ConsoleClient, **fields) -> object:
    return console.submit("/console/devices/new", "/console/devices/new", fields)


def test_the_wizard_creates_the_device_and_hands_over_the_archive(stack, console):
    response = _create(
        console,
        name="lobby-box",
        description="lobby appliance",
        tags="site=lobby\nfloor=1",
        network="static",
        ip="192.168.0.50",
        mask="255.255.255.0",
        gateway="192.168.0.1",
        dns="192.168.0.1, 8.8.8.8",
        eth1_network="static",
        eth1_ip="10.0.0.2",
        eth1_mask="255.0.0.0",
        eth1_gateway="10.0.0.1",
        eth1_dns="10.0.0.1",
        ntp="0.pool.ntp.org",
    )
    assert response.status_code == 303
    page_url = response.headers["location"]
    device_id = page_url.split("/")[3]
    page = console.http.get(page_url)
    assert "valid until" in page.text and "left" in page.text
    archive = console.http.get(f"/console/devices/{device_id}/certificates.zip")
    assert archive.status_code == 200
    assert 'filename="certificates-omni_lobby-box.zip"' in archive.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zf:
        info = json.loads(zf.read("provisioning.json"))
        network = json.loads(zf.read("network.json"))
    assert info["DeviceId"] == device_id and info["DeviceName"] == "lobby-box"
    expires = datetime.fromisoformat(info["ProvisioningCredential"]["ExpiresAt"])
    assert timedelta(minutes=4) < expires - datetime.now(UTC) <= timedelta(minutes=5)
    assert network["Ethernet0"]["StaticIpConnectionInfo"]["Dns"] == ["192.168.0.1", "8.8.8.8"]
    assert network["Ethernet1"]["StaticIpConnectionInfo"]["IpAddress"] == "10.0.0.2"
    assert network["Ntp"] == {"NtpServers": ["0.pool.ntp.org"]}
    # What the API says about it: the same device, with its tags and settings.
    described = stack.client().describe_device(DeviceId=device_id)
    assert described["Tags"] == {"site": "lobby", "floor": "1"}
    assert described["Description"] == "lobby appliance"
    assert described["ProvisioningStatus"] == "AWAITING_PROVISIONING"
    # The archive works: the device trades its token for a certificate.
    bring_online(stack, device_id, archive.content)
    assert stack.client().describe_device(DeviceId=device_id)["DeviceConnectionStatus"] == "ONLINE"


def test_the_archive_is_gone_once_its_credential_expired(stack, console):
    device_id = _create(console, name="slow-user").headers["location"].split("/")[3]
    users = stack.server.console.users
    real_now = users.now
    users.now = lambda: real_now() + timedelta(minutes=5, seconds=1)
    try:
        # The session is older than the archive's credential, but not idle: still signed in.
        page = console.http.get(f"/console/devices/{device_id}/provisioned")
        assert "no longer available" in page.text
        archive = console.http.get(f"/console/devices/{device_id}/certificates.zip")
        assert archive.status_code == 410
    finally:
        users.now = real_now


def test_bad_settings_name_the_field_and_create_nothing(stack, console):
    response = _create(console, name="bad box")
    assert response.status_code == 400
    assert "Name" in response.text and "must match the pattern" in response.text
    response = _create(console, name="box", network="static", ip="300.1.1.1", mask="x",
                       gateway="y", dns="z")  # fmt: skip
    assert response.status_code == 400
    assert "NetworkingConfiguration.Ethernet0.StaticIpConnectionInfo.IpAddress" in response.text
    response = _create(console, name="box", tags="no equals sign")
    assert response.status_code == 400 and "key=value" in response.text
    assert stack.client().list_devices()["Devices"] == []


def test_the_list_shows_connection_software_and_network(stack, console):
    device_id = _create(console, name="edge-1").headers["location"].split("/")[3]
    archive = console.http.get(f"/console/devices/{device_id}/certificates.zip").content
    bring_online(stack, device_id, archive)
    stack.view.heartbeat(
        device_id,
        datetime.now(UTC),
        network_status={"Ethernet0Status": {"ConnectionStatus": "CONNECTED",
                                            "IpAddress": "10.1.2.3", "HwAddress": "aa"}},
    )  # fmt: skip
    html = console.http.get("/console/devices").text
    assert "edge-1" in html and "ONLINE" in html and "0.1.0" in html and "10.1.2.3" in html


def test_reboot_update_and_delete_from_the_detail_page(stack, console):
    device_id = _create(console, name="edge-2").headers["location"].split("/")[3]
    page = f"/console/devices/{device_id}"
    bring_online(stack, device_id, console.http.get(page + "/certificates.zip").content)
    # Up to date: no update offered, and a forged update request is refused.
    assert "Update software" not in console.http.get(page).text
    assert console.submit(page, page + "/update").status_code == 409
    response = console.submit(page, page + "/reboot")
    assert response.status_code == 303
    assert "Reboot requested" in console.http.get(page).text
    job = stack.client().describe_device(DeviceId=device_id)["LatestDeviceJob"]
    assert job["JobType"] == "REBOOT"
    # Deleting takes the device's exact name.
    response = console.submit(page, page + "/delete", {"confirm_name": "edge"})
    assert response.status_code == 400 and "to confirm the deletion" in response.text
    assert len(stack.client().list_devices()["Devices"]) == 1
    response = console.submit(page, page + "/delete", {"confirm_name": "edge-2"})
    assert response.status_code == 303
    assert stack.client().list_devices()["Devices"] == []


def test_an_update_is_offered_when_newer_software_exists(stack, console):
    device_id = _create(console, name="old-box").headers["location"].split("/")[3]
    page = f"/console/devices/{device_id}"
    archive = console.http.get(page + "/certificates.zip").content
    bring_online(stack, device_id, archive)
    stack.view.heartbeat(device_id, datetime.now(UTC), current_software="0.0.9")
    stack.publish_software("0.1.0")
    assert "Update software to 0.1.0" in console.http.get(page).text
    assert console.submit(page, page + "/update").status_code == 303
    job = stack.client().describe_device(DeviceId=device_id)["LatestDeviceJob"]
    assert job == {"JobType": "OTA", "Status": "PENDING", "ImageVersion": "0.1.0"}


def test_another_accounts_device_does_not_exist_for_the_user(stack, console):
    other = second_account_user(stack)
    device_id = _create(console, name="first-accounts-box").headers["location"].split("/")[3]
    assert other.http.get(f"/console/devices/{device_id}").status_code == 404
    assert "first-accounts-box" not in other.http.get("/console/devices").text
    assert other.http.get(f"/console/devices/{device_id}/certificates.zip").status_code == 404
