"""The device agent end to end: a real control plane, Mosquitto over mutual TLS, an RTSP
camera, `panoptes agent` as a process, the developer guide's sample app with a real model.

The test plays the control plane's channel (tests/agent/agent_support.py): it publishes
the retained desired state built from the real database and applies the device's
reports through DeviceView, so what the agent says is checked with the public API.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parents[1]
for _folder in (TESTS / "cloud", TESTS / "agent"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

import appkit  # noqa: E402
from agent_support import (  # noqa: E402
    Bridge,
    Broker,
    Pki,
    apply_report,
    archive_for_link,
    next_desired,
    pki_fixture,  # noqa: F401  (fixture)
    publish_sample,
    running_asset_server,
    sample_params,
    stack_fixture,  # noqa: F401  (fixture)
)
from api_helpers import Stack  # noqa: E402

from panoptes import link  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CAMERA_NODE = "camera_node_override"  # the sample's overrides put MY_CAMERA there


def _failed(instance_id: str) -> Any:
    return lambda r: (
        r.get("Status") == "DEPLOYMENT_FAILED" and r.get("ApplicationInstanceId") == instance_id
    )


class Device:
    """`panoptes agent` as a process, and the control plane's side of its link."""

    def __init__(self, stack: Stack, pki: Pki, tmp: Path, asset_url: str) -> None:
        self.stack, self.pki, self.tmp = stack, pki, tmp
        self.broker = Broker(pki, tmp / "broker").start()
        self.bridge = Bridge(pki, self.broker, lambda d, r: apply_report(stack.view, d, r))
        out = stack.client().provision_device(Name="lobby")
        self.device_id = out["DeviceId"]
        self.archive = archive_for_link(
            out["Certificates"], tmp / "certificates-omni_lobby.zip", self.broker.url, asset_url
        )
        self.data = tmp / "device"
        self.proc: subprocess.Popen | None = None
        self.revision = 0
        self.assets: Any = None  # the asset server: what the device downloaded

    def start_agent(self) -> None:
        log = (self.tmp / "agent.log").open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "panoptes", "agent", "--config", str(self.archive),
             "--data-dir", str(self.data), "--verbose"],
            stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip

    def stop_agent(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)

    def publish(self) -> None:
        """What the channel does on every change: publish the desired state, retained."""
        desired = next_desired(self.stack, self.device_id, self.revision)
        self.revision = rev = desired["Revision"]
        self.bridge.publish_desired(self.device_id, desired)
        self.bridge.wait_for(
            lambda r: r.get("Type") == link.REPORT_ACK and r.get("Revision") == rev,
            timeout=60,
            what=f"ack of revision {rev}",
        )

    def deploy(self, **extra: Any) -> str:
        params = sample_params(self.stack, self.device_id, **extra)
        return self.stack.client().create_application_instance(**params)["ApplicationInstanceId"]

    def described(self, instance_id: str) -> dict[str, Any]:
        return self.stack.client().describe_application_instance(ApplicationInstanceId=instance_id)

    def frames(self, instance_id: str) -> int:
        """Frames the instance's output sink has written (the runtime's sink.json)."""
        try:
            doc = json.loads((self.data / "instances" / instance_id / "sink.json").read_text())
        except (OSError, ValueError):
            return 0
        return int(doc.get("frames", 0))

    def frames_flow(self, instance_id: str, timeout: float = 60) -> None:
        start = self.frames(instance_id)
        appkit.wait_until(
            lambda: self.frames(instance_id) > start + 5, timeout, f"frames of {instance_id}"
        )

    def health(self, instance_id: str, node: str, status: str, after: int = 0) -> None:
        self.bridge.wait_for(
            lambda r: (
                r.get("Type") == link.REPORT_HEALTH
                and r.get("ApplicationInstanceId") == instance_id
                and r["Nodes"].get(node) == status
            ),
            timeout=60,
            what=f"{node} {status}",
            since=after,
        )

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self.bridge.close()
        self.broker.stop()


@pytest.fixture
def device(
    stack: Stack, pki: Pki, tmp_path: Path, squeezenet: Path, rtsp_server: Any
) -> Iterator[Device]:
    publish_sample(stack, tmp_path / "project", squeezenet, rtsp_server.url)
    with running_asset_server(pki, stack.server.backend.env.store) as (asset_url, assets):
        dev = Device(stack, pki, tmp_path, asset_url)
        dev.assets = assets
        try:
            yield dev
        finally:
            dev.close()
            print((tmp_path / "agent.log").read_text()[-6000:])


def test_the_agent_provisions_deploys_signals_replaces_restarts_and_removes(
    device: Device,
) -> None:
    bridge, stack = device.bridge, device.stack
    device.start_agent()
    # Provisioned, connected, present, and reporting in.
    beat = bridge.wait_for(lambda r: r.get("Type") == link.REPORT_HEARTBEAT, 60, "a heartbeat")
    assert beat["DeviceId"] == device.device_id and beat["CurrentSoftware"]
    assert beat["NetworkStatus"]["Ethernet0Status"]["ConnectionStatus"] in (
        "CONNECTED", "NOT_CONNECTED",
    )  # fmt: skip
    appkit.wait_until(lambda: bridge.presence.get(device.device_id) == link.ONLINE, 30, "online")
    described = stack.client().describe_device(DeviceId=device.device_id)
    assert described["ProvisioningStatus"] == "SUCCEEDED"
    key = device.data / "identity" / "device.key"
    assert key.stat().st_mode & 0o777 == 0o600

    # Deploy the sample: IN_PROGRESS, then SUCCEEDED once its code runs; frames flow.
    first = device.deploy()
    device.publish()
    bridge.wait_for(
        lambda r: (
            r.get("Status") == "DEPLOYMENT_SUCCEEDED" and r.get("ApplicationInstanceId") == first
        ),
        240,
        "the first deployment",
        fail=_failed(first),
    )
    assert bridge.statuses(first)[:2] == ["DEPLOYMENT_IN_PROGRESS", "DEPLOYMENT_SUCCEEDED"]
    device.health(first, CAMERA_NODE, "RUNNING")
    device.frames_flow(first)
    shown = device.described(first)
    assert shown["Status"] == "DEPLOYMENT_SUCCEEDED" and shown["HealthStatus"] == "RUNNING"
    nodes = stack.client().list_application_instance_node_instances(ApplicationInstanceId=first)[
        "NodeInstances"
    ]
    assert {n["NodeInstanceId"]: n["CurrentStatus"] for n in nodes}[CAMERA_NODE] == "RUNNING"
    # The camera's credentials went into its URL, never into a log.
    logs = [device.tmp / "agent.log", *(device.data / "instances" / first).rglob("*.log")]
    assert not [p for p in logs if "pa:ss" in p.read_text() or "pa%3Ass" in p.read_text()]

    # PAUSE and RESUME the camera through the API.
    client = stack.client()
    client.signal_application_instance_node_instances(
        ApplicationInstanceId=first,
        NodeSignals=[{"NodeInstanceId": CAMERA_NODE, "Signal": "PAUSE"}],
    )
    mark = len(bridge.reports)
    device.publish()
    device.health(first, CAMERA_NODE, "PAUSED", after=mark)

    def settled() -> bool:  # frames in flight when the camera paused drain out
        before = device.frames(first)
        time.sleep(1)
        return device.frames(first) == before

    appkit.wait_until(settled, 30, "the output to stop while paused")
    paused_at = device.frames(first)
    time.sleep(2)
    assert device.frames(first) == paused_at
    client.signal_application_instance_node_instances(
        ApplicationInstanceId=first,
        NodeSignals=[{"NodeInstanceId": CAMERA_NODE, "Signal": "RESUME"}],
    )
    mark = len(bridge.reports)
    device.publish()
    device.health(first, CAMERA_NODE, "RUNNING", after=mark)
    device.frames_flow(first)

    # A replacement that cannot start fails, and the old instance keeps running.
    graph = sample_params(stack, device.device_id)
    broken_overrides = graph["ManifestOverridesPayload"]["PayloadData"].replace(
        '"name":"log_level_override","interface":"string","value":"INFO"',
        '"name":"log_level_override","interface":"string","value":"NOT_A_LEVEL"',
    )
    assert "NOT_A_LEVEL" in broken_overrides
    broken = device.deploy(
        ApplicationInstanceIdToReplace=first,
        ManifestOverridesPayload={"PayloadData": broken_overrides},
    )
    device.publish()
    failed = bridge.wait_for(
        lambda r: r.get("Status") == "DEPLOYMENT_FAILED" and r["ApplicationInstanceId"] == broken,
        240,
        "the broken replacement to fail",
    )
    assert "code_node" in failed["StatusDescription"]
    assert "failed to start" in failed["StatusDescription"]
    assert device.described(broken)["Status"] == "DEPLOYMENT_FAILED"
    assert device.described(first)["Status"] == "DEPLOYMENT_SUCCEEDED"
    device.frames_flow(first)

    # A good replacement: it runs, then the old one stops and is removed.
    second = device.deploy(ApplicationInstanceIdToReplace=first)
    device.publish()
    bridge.wait_for(
        lambda r: (
            r.get("Status") == "DEPLOYMENT_SUCCEEDED" and r["ApplicationInstanceId"] == second
        ),
        240,
        "the replacement",
        fail=_failed(second),
    )
    device.frames_flow(second)
    assert device.described(first)["Status"] == "REMOVAL_PENDING"  # applied by the control plane
    device.publish()  # the removal of the old one reaches the device
    bridge.wait_for(
        lambda r: r.get("Status") == "REMOVAL_SUCCEEDED" and r["ApplicationInstanceId"] == first,
        60,
        "the old instance's removal",
    )
    assert not (device.data / "instances" / first).exists()
    assert device.described(first)["Status"] == "REMOVAL_SUCCEEDED"

    # Restart the agent with the control plane's broker gone: the instance comes back.
    device.broker.stop()
    downloads = len(device.assets.requests)
    assert device.stop_agent() == 0
    stopped_at = device.frames(second)
    time.sleep(1.5)
    assert device.frames(second) == stopped_at  # its runtime stopped with the agent
    (device.data / "instances" / second / "sink.json").unlink()
    device.start_agent()
    device.frames_flow(second, timeout=180)
    assert len(device.assets.requests) == downloads  # all from the device's own cache
    assert "restoring the last desired state" in (device.tmp / "agent.log").read_text()
    # The broker returns: the agent reconnects and says where things stand.
    mark = len(bridge.reports)
    device.broker.start()
    bridge.wait_for(
        lambda r: r.get("Type") == link.REPORT_HEALTH and r["ApplicationInstanceId"] == second,
        90,
        "health after the reconnect",
        since=mark,
    )

    # Remove: stopped, cleaned up, REMOVAL_SUCCEEDED.
    client.remove_application_instance(ApplicationInstanceId=second)
    device.publish()
    bridge.wait_for(
        lambda r: r.get("Status") == "REMOVAL_SUCCEEDED" and r["ApplicationInstanceId"] == second,
        60,
        "the removal",
    )
    assert not (device.data / "instances" / second).exists()
    assert device.described(second)["Status"] == "REMOVAL_SUCCEEDED"
    assert device.stop_agent() == 0
