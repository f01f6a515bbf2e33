"""The device agent against the real control plane: `panoptes serve` (its embedded broker,
bridge and device endpoint) and `panoptes agent`, two processes, as a user runs them.

Skipped until the control plane's device link (panoptes.cloud.channel) is there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parents[1]
for _folder in (TESTS / "cloud", TESTS / "agent"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

import appkit  # noqa: E402
from agent_support import publish_sample, sample_params  # noqa: E402
from api_helpers import REGION, admin_key, panorama_session  # noqa: E402

from panoptes.agent.identity import read_archive  # noqa: E402
from serve_support import running_panoptes  # noqa: E402

pytest.importorskip("panoptes.cloud.channel.bridge", reason="the device link is not built yet")
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class Remote:
    """boto3 clients of a `panoptes serve` process (what the helpers need of a Stack)."""

    def __init__(self, url: str, data: Path) -> None:
        from botocore.config import Config

        self.url = url
        key_id, secret = admin_key(data)
        self._session = panorama_session()
        self._kw = {
            "endpoint_url": url,
            "region_name": REGION,
            "aws_access_key_id": key_id,
            "aws_secret_access_key": secret,
        }
        self._config = Config(
            s3={"addressing_style": "path"}, retries={"mode": "standard", "max_attempts": 10}
        )
        self.account = ""  # known from the first certificates archive

    def client(self) -> Any:
        return self._session.client("panorama", config=self._config, **self._kw)

    def s3(self) -> Any:
        return self._session.client("s3", config=self._config, **self._kw)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Remote]:
    data = tmp_path / "control-plane"
    with running_panoptes(data, tmp_path) as url:
        yield Remote(url, data)


def test_serve_and_agent_deploy_and_remove_the_sample(
    served: Remote, tmp_path: Path, squeezenet: Path, rtsp_server: Any
) -> None:
    api = served.client()
    publish_sample(served, tmp_path / "project", squeezenet, rtsp_server.url)
    out = api.provision_device(Name="real-link")
    device_id = out["DeviceId"]
    archive = tmp_path / "certificates-omni_real-link.zip"
    archive.write_bytes(out["Certificates"])
    info = read_archive(archive).info
    served.account = info["AccountId"]
    assert info.get("Broker") and info.get("DeviceEndpoint")  # the link's endpoints
    log = (tmp_path / "agent.log").open("w")
    agent = subprocess.Popen(
        [sys.executable, "-m", "panoptes", "agent", "--config", str(archive),
         "--data-dir", str(tmp_path / "device"), "--verbose"],
        stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        appkit.wait_until(
            lambda: api.describe_device(DeviceId=device_id)["DeviceConnectionStatus"] == "ONLINE",
            60,
            "the device online",
        )
        instance = api.create_application_instance(**sample_params(served, device_id))[
            "ApplicationInstanceId"
        ]

        def described() -> dict[str, Any]:
            return api.describe_application_instance(ApplicationInstanceId=instance)

        appkit.wait_until(
            lambda: described()["Status"] in ("DEPLOYMENT_SUCCEEDED", "DEPLOYMENT_FAILED"),
            240,
            "the deployment",
        )
        assert described()["Status"] == "DEPLOYMENT_SUCCEEDED", described()
        appkit.wait_until(lambda: described()["HealthStatus"] == "RUNNING", 60, "health")
        nodes = api.list_application_instance_node_instances(ApplicationInstanceId=instance)
        by_id = {n["NodeInstanceId"]: n["CurrentStatus"] for n in nodes["NodeInstances"]}
        appkit.wait_until(
            lambda: (
                {
                    n["NodeInstanceId"]: n["CurrentStatus"]
                    for n in api.list_application_instance_node_instances(
                        ApplicationInstanceId=instance
                    )["NodeInstances"]
                }.get("camera_node_override")
                == "RUNNING"
            ),
            60,
            f"the camera node RUNNING ({by_id})",
        )

        api.remove_application_instance(ApplicationInstanceId=instance)
        appkit.wait_until(lambda: described()["Status"] == "REMOVAL_SUCCEEDED", 120, "the removal")
        assert not (tmp_path / "device" / "instances" / instance).exists()
    finally:
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(60)
        log.close()
        print((tmp_path / "agent.log").read_text()[-5000:])
    assert code == 0
