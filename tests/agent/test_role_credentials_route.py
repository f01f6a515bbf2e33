"""The device endpoint's credentials route, asked the way the agent asks it
(role_credentials.device_endpoint_fetch over mutual TLS with the device certificate)."""

from __future__ import annotations

import ssl
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for _folder in (TESTS / "cloud" / "channel", TESTS / "cloud" / "roles"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from api_helpers import publish_sample_app  # noqa: E402
from link_support import LinkStack, TestDevice, link_stack  # noqa: E402
from roles_support import create_role, deploy, session_client, statement  # noqa: E402

from panoptes.agent.role_credentials import (  # noqa: E402
    RoleCredentialsProvider,
    device_endpoint_fetch,
)


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LinkStack]:
    with link_stack("sqlite", "embedded", tmp_path_factory.mktemp("creds-route")) as ls:
        publish_sample_app(ls.api)
        create_role(ls.api, "route-app", statement("panorama:ListDevices"))
        yield ls


def _tls(ls: LinkStack, device: TestDevice) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ls.ca))
    ctx.load_cert_chain(str(device.cert), str(device.key))
    return ctx


def _endpoint(ls: LinkStack) -> str:
    return f"https://127.0.0.1:{ls.device_port}"


def test_an_instance_with_a_role_gets_working_credentials(linked: LinkStack) -> None:
    device = linked.device("route-role")
    instance = deploy(linked.api, device.id, "route-app")
    provider = RoleCredentialsProvider(
        device_endpoint_fetch(_endpoint(linked), _tls(linked, device), instance)
    )
    creds = provider()
    assert creds is not None and creds["AccessKeyId"].startswith("ASIA")
    listed = session_client(linked.api, "panorama", creds).list_devices()["Devices"]
    assert device.id in {d["DeviceId"] for d in listed}
    assert provider() == creds  # cached: most of its hour is left


def test_no_role_or_another_devices_instance_gets_none(linked: LinkStack) -> None:
    device = linked.device("route-none")
    other = linked.device("route-other")
    bare = deploy(linked.api, device.id, None)
    with_role = deploy(linked.api, other.id, "route-app")
    tls = _tls(linked, device)
    assert device_endpoint_fetch(_endpoint(linked), tls, bare)() is None
    # Another device's instance: the same 404, no hint that it exists.
    assert device_endpoint_fetch(_endpoint(linked), tls, with_role)() is None


def test_a_deleted_device_is_refused(linked: LinkStack) -> None:
    device = linked.device("route-deleted")
    instance = deploy(linked.api, device.id, "route-app")
    tls = _tls(linked, device)
    linked.api.client().remove_application_instance(ApplicationInstanceId=instance)
    linked.api.client().delete_device(DeviceId=device.id)
    with pytest.raises(OSError, match="403"):
        device_endpoint_fetch(_endpoint(linked), tls, instance)()
