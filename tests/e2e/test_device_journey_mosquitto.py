"""The basic deployment with Mosquitto as the device link's broker: `panoptes serve
--broker mqtts://...` (Mosquitto set up as `panoptes broker-config` writes it) and a
real `panoptes agent`; the demo app deploys, runs and its output reaches the console."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for _folder in (TESTS / "cloud", TESTS / "agent", TESTS / "cloud" / "channel"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from device_journey import (  # noqa: E402
    ControlPlane,
    Device,
    demo_params,
    first_jpeg,
    publish_demo,
    wait_for,
)
from link_support import mosquitto  # noqa: E402

from panoptes.media import testcamera  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_deploy_through_mosquitto(tmp_path: Path, rtsp_available: None) -> None:
    camera = testcamera.CameraServer(
        log=tmp_path / "camera.log", username="demo", password="demo"
    ).start()
    cp = ControlPlane(tmp_path)
    device = None
    try:
        with mosquitto(cp.data) as port:
            cp.args = ("--broker", f"mqtts://127.0.0.1:{port}")
            cp.start()
            device = Device(cp, tmp_path, "mosquitto-journey").start()
            api = cp.client("panorama")
            wait_for(
                lambda: api.describe_device(DeviceId=device.id)["DeviceConnectionStatus"]
                == "ONLINE",
                60, f"the device ONLINE through Mosquitto\n{device.tail()}",
            )  # fmt: skip
            assert device.provisioning()["Broker"] == f"mqtts://127.0.0.1:{port}"
            account = device.provisioning()["AccountId"]
            project = publish_demo(cp, tmp_path / "v1", account, camera.url)
            t0 = time.monotonic()
            instance = api.create_application_instance(**demo_params(project, account, device.id))[
                "ApplicationInstanceId"
            ]

            def status() -> str:
                return api.describe_application_instance(ApplicationInstanceId=instance)["Status"]

            wait_for(
                lambda: status() in ("DEPLOYMENT_SUCCEEDED", "DEPLOYMENT_FAILED"), 180,
                f"the deployment\n{device.tail()}",
            )  # fmt: skip
            assert status() == "DEPLOYMENT_SUCCEEDED"
            print(f"FIGURE mosquitto_create_to_deployment_succeeded: {time.monotonic() - t0:.2f} s")
            http = cp.console()
            try:
                wait_for(
                    lambda: first_jpeg(http, f"/console/instances/{instance}/live.mjpg"), 120,
                    "an output frame through the console relay",
                )  # fmt: skip
            finally:
                http.close()
            assert device.stop() == 0
    finally:
        if device is not None:
            device.stop()
            print(device.tail())
        cp.stop()
        camera.kill()
