"""Provisioning, devices, certificates and the device's heartbeat."""

from __future__ import annotations

import pytest
from device_helpers import csr_pem, read_archive
from svc_constants import ACCOUNT

from panoptes.cloud.errors import AccessDenied

NETWORK = {
    "Ethernet0": {
        "ConnectionType": "STATIC_IP",
        "StaticIpConnectionInfo": {
            "IpAddress": "192.168.0.10",
            "Mask": "255.255.255.0",
            "DefaultGateway": "192.168.0.1",
            "Dns": ["192.168.0.1"],
        },
    },
    "Ntp": {"NtpServers": ["pool.ntp.org"]},
}


def test_provision_device_returns_the_certificates_archive(api):
    out = api(
        "ProvisionDevice",
        Name="my-appliance",
        Description="lobby",
        NetworkingConfiguration=NETWORK,
        Tags={"site": "hq"},
    )
    device_id = out["DeviceId"]
    assert device_id.startswith("device-") and len(device_id) == 7 + 26
    assert device_id[7:].isalnum() and device_id == device_id.lower()
    assert out["Status"] == "AWAITING_PROVISIONING"
    assert out["Arn"] == f"arn:aws:panorama:us-east-1:{ACCOUNT}:device/{device_id}"
    files = read_archive(out["Certificates"])
    assert set(files) == {"ca.pem", "provisioning.json", "network.json"}
    assert files["ca.pem"].startswith("-----BEGIN CERTIFICATE-----")
    info = files["provisioning.json"]
    assert info["DeviceId"] == device_id and info["AccountId"] == ACCOUNT
    assert info["Endpoints"] and info["ProvisioningCredential"]["Token"]
    assert files["network.json"] == NETWORK
    described = api("DescribeDevice", DeviceId=device_id)
    assert described["ProvisioningStatus"] == "AWAITING_PROVISIONING"
    assert described["DeviceConnectionStatus"] == "AWAITING_CREDENTIALS"
    assert described["NetworkingConfiguration"] == NETWORK
    assert described["Tags"] == {"site": "hq"} and described["Description"] == "lobby"
    api.fails("ConflictException", "ProvisionDevice", Name="my-appliance")


def test_static_ip_needs_its_settings(api):
    err = api.fails(
        "ValidationException",
        "ProvisionDevice",
        Name="d",
        NetworkingConfiguration={"Ethernet0": {"ConnectionType": "STATIC_IP"}},
    )
    assert err.fields["Fields"][0]["Name"].endswith("StaticIpConnectionInfo")


def test_credential_exchange_heartbeat_and_offline(api):
    out = api("ProvisionDevice", Name="d1")
    device_id = out["DeviceId"]
    token = read_archive(out["Certificates"])["provisioning.json"]["ProvisioningCredential"][
        "Token"
    ]
    cert = api.view.exchange_provisioning_credential(token, csr_pem(), api.now)
    assert cert.startswith("-----BEGIN CERTIFICATE-----")
    assert api.view.device_of_certificate(cert, api.now) == device_id
    assert api("DescribeDevice", DeviceId=device_id)["ProvisioningStatus"] == "PENDING"
    with pytest.raises(AccessDenied):  # one time only
        api.view.exchange_provisioning_credential(token, csr_pem(), api.now)
    api.view.heartbeat(
        device_id,
        api.now,
        current_software="0.1.0",
        serial_number="1234567890",
        network_status={"Ethernet0Status": {"ConnectionStatus": "CONNECTED"}},
    )
    d = api("DescribeDevice", DeviceId=device_id)
    assert (d["ProvisioningStatus"], d["DeviceConnectionStatus"]) == ("SUCCEEDED", "ONLINE")
    assert d["DeviceAggregatedStatus"] == "ONLINE" and d["SerialNumber"] == "1234567890"
    assert d["CurrentNetworkingStatus"]["Ethernet0Status"]["ConnectionStatus"] == "CONNECTED"
    assert d["CurrentSoftware"] == d["LatestSoftware"] == "0.1.0"
    api.tick(minutes=10)
    d = api("DescribeDevice", DeviceId=device_id)
    assert (d["DeviceConnectionStatus"], d["DeviceAggregatedStatus"]) == ("OFFLINE", "OFFLINE")
    # Deleting revokes the certificate.
    api("DeleteDevice", DeviceId=device_id)
    assert api.view.device_of_certificate(cert, api.now) is None
    api.fails("ResourceNotFoundException", "DescribeDevice", DeviceId=device_id)


def test_expired_credential_is_refused(api):
    out = api("ProvisionDevice", Name="late")
    token = read_archive(out["Certificates"])["provisioning.json"]["ProvisioningCredential"][
        "Token"
    ]
    api.tick(minutes=5, seconds=1)
    with pytest.raises(AccessDenied, match="expired"):
        api.view.exchange_provisioning_credential(token, csr_pem(), api.now)
    with pytest.raises(AccessDenied):
        api.view.exchange_provisioning_credential("forged", csr_pem(), api.now)


def test_list_devices_sorts_filters_and_pages(api):
    ids = {}
    for name in ("charlie", "alpha", "bravo"):
        ids[name] = api.provision(name, online=name != "bravo")
        api.tick(seconds=1)
    names = [d["Name"] for d in api("ListDevices")["Devices"]]
    assert names == ["charlie", "alpha", "bravo"]  # CREATED_TIME ascending by default
    by_name = api("ListDevices", SortBy="NAME", SortOrder="DESCENDING")["Devices"]
    assert [d["Name"] for d in by_name] == ["charlie", "bravo", "alpha"]
    pending = api("ListDevices", DeviceAggregatedStatusFilter="AWAITING_PROVISIONING")
    assert [d["Name"] for d in pending["Devices"]] == ["bravo"]
    assert [d["Name"] for d in api("ListDevices", NameFilter="al")["Devices"]] == ["alpha"]
    first = api("ListDevices", SortBy="NAME", MaxResults=2)
    rest = api("ListDevices", SortBy="NAME", MaxResults=2, NextToken=first["NextToken"])
    assert [d["Name"] for d in first["Devices"] + rest["Devices"]] == ["alpha", "bravo", "charlie"]
    api.fails(
        "ValidationException", "ListDevices", SortBy="DEVICE_ID", NextToken=first["NextToken"]
    )


def test_update_and_delete(api):
    device_id = api.provision()
    assert api("UpdateDeviceMetadata", DeviceId=device_id, Description="new") == {
        "DeviceId": device_id
    }
    assert api("DescribeDevice", DeviceId=device_id)["Description"] == "new"
    for op in ("DescribeDevice", "DeleteDevice", "UpdateDeviceMetadata"):
        api.fails("ResourceNotFoundException", op, DeviceId="device-unknown")


def test_device_with_running_application_cannot_be_deleted(api):
    from package_helpers import publish_sample_app, sample_payloads

    publish_sample_app(api)
    device_id = api.provision()
    g, o = sample_payloads()
    app = api(
        "CreateApplicationInstance",
        DefaultRuntimeContextDevice=device_id,
        ManifestPayload={"PayloadData": g},
        ManifestOverridesPayload={"PayloadData": o},
    )["ApplicationInstanceId"]
    err = api.fails("ConflictException", "DeleteDevice", DeviceId=device_id)
    assert app in err.message
    api("RemoveApplicationInstance", ApplicationInstanceId=app)
    api("DeleteDevice", DeviceId=device_id)


def test_other_accounts_see_nothing(api):
    device_id = api.provision()
    api.account = "210987654321"
    api.fails("ResourceNotFoundException", "DescribeDevice", DeviceId=device_id)
    assert api("ListDevices")["Devices"] == []


class TestQuota:
    @pytest.fixture
    def limits(self, low_limits):
        return low_limits

    def test_devices(self, api):
        api.provision("a", online=False)
        api.provision("b", online=False)
        err = api.fails("ServiceQuotaExceededException", "ProvisionDevice", Name="c")
        assert err.fields["QuotaCode"] == "panorama-devices"
