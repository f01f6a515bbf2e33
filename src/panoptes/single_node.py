"""`panoptes up`: the whole platform on one machine.

Beside the control plane (`cloud.server.serve`), once its API answers:

1. the local device: provisioned once through the API (ProvisionDevice, exactly as
   a user provisions an appliance), its archive kept in DATA_DIR/device/, and a
   `panoptes agent` child process running on it;
2. with ``--demo``: a looping test camera (GStreamer's RTSP server, on a port kept
   in DATA_DIR/demo.json so the registered camera stays valid across restarts) and
   the demo application (`panoptes.demo`) published and deployed on the local
   device; the console page with its live video is printed once it runs.

Everything goes through the public API, so what `up` does a user can do by hand
(the README shows it step by step).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from panoptes.procs import die_with_parent
from panoptes.project.errors import ProjectError
from panoptes.project.package_app import Clients, connect

DEVICE_NAME = "local-device"
ONLINE_TIMEOUT = 120.0
RUNNING_TIMEOUT = 300.0  # the first deployment compiles the model


class SingleNode:
    def __init__(self, data_dir: Path, *, demo: bool, say: Callable[[str], None]) -> None:
        self.data_dir = data_dir
        self.device_dir = data_dir / "device"
        self.demo, self.say = demo, say
        self.agent: subprocess.Popen | None = None
        self.camera: Any = None  # media.testcamera.CameraServer
        self._stopped = threading.Event()

    # -- what `serve` runs once the API answers ------------------------------------------

    def on_ready(self, server: Any) -> None:
        """Start the device (and the demo); then keep this thread until the end: the
        children die with the thread that started them (PR_SET_PDEATHSIG), so nothing
        outlives `panoptes up`, even when it is killed."""
        try:
            self._start(server)
            self._stopped.wait()
        except ProjectError as e:
            self.say(f"error: {e.message}" + (f"\n  fix: {e.hint}" if e.hint else ""))
        except Exception as e:  # the API keeps serving; the user must still hear of it
            self.say(f"error: starting the local device failed: {e!r}")

    def _start(self, server: Any) -> None:
        clients = connect(data_dir=self.data_dir)
        device_id = self.ensure_device(clients)
        self.start_agent()
        self.say(f"Local device {device_id}: agent log in {self.device_dir / 'agent.log'}")
        if self.demo:
            self.run_demo(clients, server.admin.account_id, device_id, server.config.endpoint_url)

    def ensure_device(self, clients: Clients) -> str:
        """The local device's id: provisioned on the first run, reused afterwards."""
        record = self.device_dir / "device.json"
        api = clients.panorama
        if record.exists():
            device_id = json.loads(record.read_text())["DeviceId"]
            try:
                api.describe_device(DeviceId=device_id)
                return device_id
            except api.exceptions.ResourceNotFoundException:
                self.say(f"{device_id} was deleted: provisioning a new local device")
                _clear(self.device_dir)
        self.device_dir.mkdir(parents=True, exist_ok=True)
        name = DEVICE_NAME
        existing = {d["Name"] for d in api.list_devices()["Devices"]}
        if name in existing:  # provisioned by an earlier data dir's agent, now gone
            name = f"{DEVICE_NAME}-{int(time.time())}"
        out = api.provision_device(Name=name, Description="this machine (panoptes up)")
        archive = self.device_dir / f"certificates-omni_{name}.zip"
        archive.write_bytes(out["Certificates"])
        archive.chmod(0o600)
        record.write_text(json.dumps({"DeviceId": out["DeviceId"], "Archive": archive.name}))
        return out["DeviceId"]

    def start_agent(self) -> None:
        info = json.loads((self.device_dir / "device.json").read_text())
        argv = [sys.executable, "-m", "panoptes", "agent", "--data-dir", str(self.device_dir)]
        archive = self.device_dir / info["Archive"]
        if archive.exists():
            argv += ["--config", str(archive)]
        log = (self.device_dir / "agent.log").open("a")
        self.agent = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )
        log.close()

    # -- the demo ------------------------------------------------------------------------

    def run_demo(self, clients: Clients, account: str, device_id: str, endpoint: str) -> None:
        from panoptes.demo.deploy import deploy_demo
        from panoptes.media import testcamera

        why = testcamera.unavailable()
        if why is not None:
            self.say(f"demo camera unavailable: {why}")
            return
        self.camera = testcamera.CameraServer(
            self._demo_port(), path="demo", size=(640, 360), fps=15, pattern="ball"
        ).start()
        self.say(f"Demo camera (looping test pattern) at {self.camera.url}")
        self._wait(lambda: _connection(clients, device_id) == "ONLINE", ONLINE_TIMEOUT, "online")
        instance = deploy_demo(
            clients, self.data_dir / "demo", account, device_id, self.camera.url, self.say
        )
        self._wait(lambda: _running(clients, instance), RUNNING_TIMEOUT, "running the demo")
        self.say(f"The demo runs. Watch it live: {endpoint}/console/instances/{instance}")

    def _demo_port(self) -> int:
        from panoptes.media.testcamera import free_port

        record = self.data_dir / "demo.json"
        if record.exists():
            return int(json.loads(record.read_text())["CameraPort"])
        port = free_port()
        record.write_text(json.dumps({"CameraPort": port}))
        return port

    def _wait(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if self.agent is not None and self.agent.poll() is not None:
                raise ProjectError(
                    f"the local agent exited ({self.agent.returncode}) before {what}",
                    f"see {self.device_dir / 'agent.log'}",
                )
            time.sleep(1.0)
        raise ProjectError(
            f"the local device is not {what} after {timeout:.0f} s",
            f"see {self.device_dir / 'agent.log'} and `panoptes logs tail`",
        )

    # -- stop ------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopped.set()
        if self.agent is not None and self.agent.poll() is None:
            self.agent.terminate()
            try:
                self.agent.wait(30)
            except subprocess.TimeoutExpired:
                self.agent.kill()
        if self.camera is not None:
            self.camera.kill()


def _connection(clients: Clients, device_id: str) -> str:
    return clients.panorama.describe_device(DeviceId=device_id).get("DeviceConnectionStatus", "")


def _running(clients: Clients, instance: str) -> bool:
    desc = clients.panorama.describe_application_instance(ApplicationInstanceId=instance)
    if desc["Status"] == "DEPLOYMENT_FAILED":
        raise ProjectError(
            f"the demo deployment failed: {desc.get('StatusDescription')}",
            "see `panoptes logs tail` for the device's and the application's logs",
        )
    return desc["Status"] == "DEPLOYMENT_SUCCEEDED" and desc.get("HealthStatus") == "RUNNING"


def _clear(folder: Path) -> None:
    import shutil

    if folder.exists():
        shutil.rmtree(folder)
