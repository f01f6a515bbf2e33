"""Inbound ports on the device: a graph's networkRoutingRules open a device port only
when the deployment's overrides confirm the rule, and close with the instance.

The reconciler runs in-process against a real control plane (desired state from its
database, assets over mutual TLS, reports applied through DeviceView) and a real RTSP
camera; the application serves HTTP on its container port.
"""

from __future__ import annotations

import json
import ssl
import sys
import textwrap
import urllib.request
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
    Pki,
    apply_report,
    next_desired,
    pki_fixture,  # noqa: F401  (fixture)
    publish_project,
    register_rtsp_camera,
    running_asset_server,
    stack_fixture,  # noqa: F401  (fixture)
)
from api_helpers import Stack, compact, for_account, provision  # noqa: E402
from test_runtime_apps import _free_port  # noqa: E402

from panoptes import link  # noqa: E402
from panoptes.agent.assets import AssetCache  # noqa: E402
from panoptes.agent.reconciler import Reconciler  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PORT_APP = textwrap.dedent(
    """
    import http.server, threading
    import panoramasdk

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello from the app")

        def log_message(self, *args):
            pass

    node = panoramasdk.node()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", {port}), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    while True:
        node.outputs.video_out.put(node.inputs.video_in.get())
    """
)


class CallPoints:
    """Stands where agent/jobs.py's JobRunner and agent/logship.py's LogShipper plug in:
    records what the reconciler hands them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, Any]] = []

    def handle(self, job: dict[str, Any], software: dict[str, Any] | None = None) -> None:
        self.calls.append(("handle", job["JobId"], job["JobType"]))

    def watch(self, folder: Path, group: str) -> None:
        self.calls.append(("watch", Path(folder), group))

    def unwatch(self, folder: Path) -> None:
        self.calls.append(("unwatch", Path(folder), None))


class Device:
    """A reconciler in this process, reporting to the control plane's DeviceView."""

    def __init__(self, stack: Stack, pki: Pki, asset_url: str, data: Path) -> None:
        self.stack = stack
        self.device_id = provision(stack, "port-box")
        cert, key = pki.issue(self.device_id)
        tls = ssl.create_default_context(cafile=str(pki.ca_path))
        tls.load_cert_chain(str(cert), str(key))
        self.reports: list[dict[str, Any]] = []
        self.revision = 0
        self.points = CallPoints()
        self.reconciler = Reconciler(
            data,
            self.device_id,
            AssetCache(data / "cache" / "assets", asset_url, tls),
            self._publish,
            jobs=self.points,
            logs=self.points,
            runtime_options={"mjpeg_port": None},
        ).start()

    def _publish(self, kind: str, message: dict[str, Any]) -> bool:
        self.reports.append(message)
        apply_report(self.stack.view, self.device_id, message)
        return True

    def push(self) -> None:
        """The channel's part: hand over the next desired state."""
        desired = next_desired(self.stack, self.device_id, self.revision)
        self.revision = desired["Revision"]
        self.reconciler.set_desired(desired)

    def reached(self, instance_id: str, status: str, timeout: float = 180) -> None:
        def done() -> bool:
            seen = [
                r["Status"]
                for r in self.reports
                if r.get("ApplicationInstanceId") == instance_id and "Status" in r
            ]
            if status.startswith("DEPLOYMENT_"):  # waiting for a deployment: fail fast
                assert "DEPLOYMENT_FAILED" not in seen, self.reports[-3:]
            return status in seen

        appkit.wait_until(done, timeout, f"{instance_id} {status}")


@pytest.fixture
def device(stack: Stack, pki: Pki, tmp_path: Path) -> Iterator[Device]:
    with running_asset_server(pki, stack.server.backend.env.store) as (url, _server):
        dev = Device(stack, pki, url, tmp_path / "device")
        try:
            yield dev
        finally:
            dev.reconciler.stop()


def _get(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3) as resp:
            return resp.read().decode()
    except OSError as exc:
        return f"error: {exc}"


def test_a_port_opens_only_when_the_overrides_confirm_it_and_closes_with_the_instance(
    stack: Stack, device: Device, tmp_path: Path, rtsp_server: Any
) -> None:
    container, host = _free_port(20000, 30000), _free_port()
    rule = {"node": "code_node", "containerPort": container, "hostPort": host}
    project = appkit.build_project(
        tmp_path / "project",
        {"application.py": PORT_APP.format(port=container)},
        inbound_ports=(container,),
        routing=[rule],
        code_name="PORT_APP",
    )
    publish_project(stack, project, f"{appkit.ACCOUNT}-PORT_APP-1.0")
    register_rtsp_camera(stack, "PORT_CAM", rtsp_server.url)
    graph = compact(for_account((project / "graphs/app/graph.json").read_text(), stack.account))

    def overrides(confirm: bool) -> str:
        doc: dict[str, Any] = {
            "envelopeVersion": "2021-01-01",
            "packages": [{"name": f"{stack.account}::PORT_CAM", "version": "1.0"}],
            "nodes": [{"name": "cam", "interface": f"{stack.account}::PORT_CAM.PORT_CAM"}],
            "nodeOverrides": [{"replace": "camera_node", "with": [{"name": "cam"}]}],
        }
        if confirm:
            doc["networkRoutingRules"] = [rule]
        return json.dumps({"nodeGraphOverrides": doc})

    def deploy(confirm: bool, manifest: str = graph, **extra: Any) -> str:
        return stack.client().create_application_instance(
            DefaultRuntimeContextDevice=device.device_id,
            ManifestPayload={"PayloadData": manifest},
            ManifestOverridesPayload={"PayloadData": overrides(confirm)},
            **extra,
        )["ApplicationInstanceId"]

    def remove(instance_id: str) -> None:
        stack.client().remove_application_instance(ApplicationInstanceId=instance_id)
        device.push()
        device.reached(instance_id, "REMOVAL_SUCCEEDED", 60)

    # The graph asks for the port, the overrides do not confirm it: it stays closed,
    # though the application serves on its own port.
    unconfirmed = deploy(confirm=False)
    device.push()
    device.reached(unconfirmed, "DEPLOYMENT_SUCCEEDED")
    appkit.wait_until(lambda: _get(container) == "hello from the app", 30, "the app's server")
    assert _get(host).startswith("error:")
    remove(unconfirmed)

    # Confirmed: the device port forwards to the node's container port...
    confirmed = deploy(confirm=True)
    device.push()
    device.reached(confirmed, "DEPLOYMENT_SUCCEEDED")
    appkit.wait_until(lambda: _get(host) == "hello from the app", 30, "the device port")

    def acks() -> list[int]:
        return [r["Revision"] for r in device.reports if r.get("Type") == link.REPORT_ACK]

    appkit.wait_until(lambda: device.revision in acks(), 30, "the ack")  # after the apply
    assert acks() == sorted(acks())

    # A replacement that needs the same device port but cannot start: the old one
    # gives up the port for it, then runs again.
    broken = appkit.build_project(
        tmp_path / "broken",
        {"application.py": "raise SystemExit('this version cannot start')\n"},
        inbound_ports=(container,),
        routing=[rule],
        code_name="PORT_BAD",
    )
    publish_project(stack, broken, f"{appkit.ACCOUNT}-PORT_BAD-1.0")
    bad_graph = compact(for_account((broken / "graphs/app/graph.json").read_text(), stack.account))
    before = device.reconciler.running[confirmed].runtime
    bad = deploy(True, bad_graph, ApplicationInstanceIdToReplace=confirmed)
    device.push()
    appkit.wait_until(
        lambda: any(
            r.get("Status") == "DEPLOYMENT_FAILED" and r["ApplicationInstanceId"] == bad
            for r in device.reports
        ),
        180,
        "the broken replacement to fail",
    )
    failure = next(r for r in device.reports if r.get("ApplicationInstanceId") == bad and (
        r.get("Status") == "DEPLOYMENT_FAILED"))  # fmt: skip
    # It got the port (no "cannot open device port") and failed on its own.
    assert "failed to start" in failure["StatusDescription"], failure
    assert "this version cannot start" in failure["StatusDescription"]
    running = device.reconciler.running
    appkit.wait_until(lambda: confirmed in running, 60, "the old one to run again")
    assert running[confirmed].runtime is not before  # it was stopped, then restarted
    appkit.wait_until(lambda: _get(host) == "hello from the app", 60, "the old one's port")
    shown = stack.client().describe_application_instance(ApplicationInstanceId=confirmed)
    assert shown["Status"] == "DEPLOYMENT_SUCCEEDED"

    # A good replacement on the same port takes over from the old one.
    newer = deploy(True, ApplicationInstanceIdToReplace=confirmed)
    device.push()
    device.reached(newer, "DEPLOYMENT_SUCCEEDED")
    appkit.wait_until(lambda: _get(host) == "hello from the app", 30, "the replacement's port")
    device.push()  # the old one's removal (the control plane asked for it on success)
    device.reached(confirmed, "REMOVAL_SUCCEEDED", 60)

    # ... and the port closes with the instance.
    remove(newer)
    assert _get(host).startswith("error:")
    assert not (tmp_path / "device" / "instances" / newer).exists()

    # The call points of the jobs and log-shipping rooms.
    logs = tmp_path / "device" / "instances" / newer / "output" / "logs"
    group = link.instance_log_group(device.device_id, newer)
    calls = device.points.calls
    assert ("watch", logs, group) in calls and ("unwatch", logs, None) in calls
    assert calls.index(("watch", logs, group)) < calls.index(("unwatch", logs, None))
    job = stack.client().create_job_for_devices(DeviceIds=[device.device_id], JobType="REBOOT")
    job_id = job["Jobs"][0]["JobId"]
    device.push()
    appkit.wait_until(lambda: ("handle", job_id, "REBOOT") in calls, 30, "the job handed over")
    device.push()  # seen again: not handed over twice
    appkit.wait_until(lambda: device.revision in acks(), 30, "the ack")
    assert [c for c in calls if c[0] == "handle"] == [("handle", job_id, "REBOOT")]
    # The failed instance is kept (to be looked at) until removed; then nothing desired
    # names the packages any more, and their cached assets go too.
    assert list((tmp_path / "device" / "cache" / "assets").iterdir())
    remove(bad)
    device.push()
    appkit.wait_until(lambda: device.revision in acks(), 30, "the ack")
    appkit.wait_until(
        lambda: list((tmp_path / "device" / "cache" / "assets").iterdir()) == [],
        30,
        "the cache emptied",
    )
