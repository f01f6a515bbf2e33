"""`panoptes up --demo`'s deployment step against a real control plane (API only)."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_helpers import provision, running_stack

from panoptes.demo.deploy import INSTANCE_NAME, deploy_demo
from panoptes.project.package_app import Clients


def _clients(stack) -> Clients:
    return Clients(stack.client(), stack.s3(), stack.url, "test stack")


@pytest.mark.slow
def test_demo_is_published_and_deployed_then_replaced(tmp_path: Path) -> None:
    with running_stack("sqlite", tmp_path / "data") as stack:
        device = provision(stack, "edge-1")
        clients = _clients(stack)
        url = "rtsp://127.0.0.1:8554/demo"
        first = deploy_demo(clients, tmp_path / "work", stack.account, device, url, say=str)
        api = stack.client()
        desc = api.describe_application_instance(ApplicationInstanceId=first)
        assert desc["Name"] == INSTANCE_NAME
        assert desc["Status"] == "DEPLOYMENT_PENDING"
        packages = {p["PackageName"] for p in api.list_packages()["Packages"]}
        assert {"DEMO_CODE", "DEMO_MODEL", "DEMO_CAMERA"} <= packages
        # The device is told the camera's URL (decrypted for it only).
        state = stack.view.desired_state(device)
        (inst,) = state["ApplicationInstances"]
        assert [c["StreamUrl"] for c in inst["Cameras"].values()] == [url]

        # Running the demo again with nothing changed keeps the running instance.
        again = deploy_demo(clients, tmp_path / "work", stack.account, device, url, say=str)
        assert again == first
        listed = api.list_application_instances(DeviceId=device)["ApplicationInstances"]
        assert [i["ApplicationInstanceId"] for i in listed] == [first]
