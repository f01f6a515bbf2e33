"""`panoptes serve` as a user runs it starts the device link; the link's CLI commands."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from api_helpers import REGION, admin_key, panorama_session, read_archive
from link_support import LinkStack, exchange, new_key_and_csr, wait_until
from typer.testing import CliRunner

from panoptes import link
from panoptes.cli.main import app
from panoptes.settings import ServiceRecord
from serve_support import running_panoptes

pytestmark = pytest.mark.e2e


def test_serve_starts_broker_and_device_endpoint(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_panoptes(data, tmp_path) as url:
        record = ServiceRecord.read(data)
        assert record is not None and record.broker_url and record.device_endpoint
        port = int(url.rsplit(":", 1)[1])
        assert record.broker_url == f"mqtts://127.0.0.1:{port + 2}"
        assert record.device_endpoint == f"https://127.0.0.1:{port + 1}"
        key_id, secret = admin_key(data)

        def client():  # type: ignore[no-untyped-def]
            return panorama_session().client(
                "panorama",
                endpoint_url=url,
                region_name=REGION,
                aws_access_key_id=key_id,
                aws_secret_access_key=secret,
            )

        ls = LinkStack(url, client, port + 2, port + 1, data, "embedded")
        device = ls.device("served")
        mqtt_client = device.connect()
        device.online(mqtt_client, software="0.1.0")
        wait_until(
            lambda: (
                client().describe_device(DeviceId=device.id)["DeviceConnectionStatus"] == "ONLINE"
            ),
            "the device online through `panoptes serve`",
        )
        status, body = device.https(link.DEVICE_HTTP_DESIRED)
        assert status == 200 and device.id.encode() in body

        # A software image published with the CLI becomes LatestSoftware.
        wheel = tmp_path / "panoptes-0.5.0-py3-none-any.whl"
        wheel.write_bytes(b"wheel bytes")
        env = {"HOME": str(tmp_path), "PANOPTES_DATA_DIR": str(data)}
        result = CliRunner().invoke(app, ["software", "publish", str(wheel)], env=env)
        assert result.exit_code == 0, result.output
        wait_until(
            lambda: client().describe_device(DeviceId=device.id)["LatestSoftware"] == "0.5.0",
            "LatestSoftware 0.5.0",
        )
        device.close()


def test_a_provisioning_credential_works_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_panoptes(data, tmp_path) as url:
        key_id, secret = admin_key(data)
        api = panorama_session().client(
            "panorama",
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )
        out = api.provision_device(Name="once")
        token = read_archive(out["Certificates"])["provisioning.json"]["ProvisioningCredential"][
            "Token"
        ]
        assert exchange(url, token, new_key_and_csr()[1])[0] == 200
        status, body = exchange(url, token, new_key_and_csr()[1])
        assert status == 403 and "already used" in body["message"]


def test_broker_config_writes_a_mosquitto_listener(tmp_path: Path) -> None:
    out = tmp_path / "mosq"
    result = CliRunner().invoke(
        app,
        ["broker-config", "--out", str(out), "--data-dir", str(tmp_path / "d"),
         "--port", "18883", "--name", "broker.example"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    conf = (out / "mosquitto.conf").read_text()
    assert "require_certificate true" in conf and "use_identity_as_username true" in conf
    assert "listener 18883 0.0.0.0" in conf
    acl = (out / "acl").read_text()
    assert f"pattern readwrite {link.TOPIC_ROOT}/%u/#" in acl
    assert f"user {link.BRIDGE_IDENTITY}" in acl
    assert (out / "ca.pem").read_text() == (tmp_path / "d" / "ca" / "ca.pem").read_text()
    assert oct(os.stat(out / "server.key").st_mode & 0o777) == "0o600"
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((out / "server.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "broker.example" in san.get_values_for_type(x509.DNSName)


def test_an_external_broker_url_must_be_mqtts(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["serve", "--data-dir", str(tmp_path / "d"), "--broker", "mqtt://host:1883"]
    )
    assert result.exit_code == 1
    assert "mqtts://HOST:PORT" in " ".join(result.output.split())
