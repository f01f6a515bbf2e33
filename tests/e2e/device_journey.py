"""Helpers of the real-process device journeys (tests/e2e/test_device_journey*.py).

A `ControlPlane` is a `panoptes serve` process (stoppable and restartable on the same
ports, as devices know them from their archive); a `Device` is a `panoptes agent`
process (launcher + worker) provisioned from that control plane; `deploy_demo_app`
publishes the demo application with package-application and deploys it with
CreateApplicationInstance, as a user does with the CLI and the API.
"""

from __future__ import annotations

import json
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
from api_helpers import REGION, admin_key, panorama_session

from panoptes.demo.deploy import compact, overrides, register_camera
from panoptes.demo.project import CODE, graph_path, make_demo_project
from panoptes.project.package_app import Clients, package_application
from serve_support import BIN, clean_env, free_port_run, running_panoptes
from unit_files import unit_service

AWS = str(BIN / "aws")
CODE_STREAM = "code_node"  # the demo's code node: its log stream


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy (returned); fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")


class ControlPlane:
    """`panoptes serve` in a process; ``stop()``/``start()`` keep its ports and data."""

    def __init__(self, tmp: Path, args: tuple[str, ...] = ()) -> None:
        self.tmp, self.args = tmp, args
        self.data = tmp / "control-plane"
        self.home = tmp / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = free_port_run()
        self.url = f"http://127.0.0.1:{self.port}"
        self._running: AbstractContextManager[str] | None = None

    def start(self) -> ControlPlane:
        self._running = running_panoptes(
            self.data, self.home, log=self.tmp / "serve.log", port=self.port, args=self.args
        )
        self._running.__enter__()
        return self

    def stop(self) -> None:
        if self._running is not None:
            self._running.__exit__(None, None, None)
            self._running = None

    # -- clients --------------------------------------------------------------------------

    def client(self, service: str, **creds: str) -> Any:
        from botocore.config import Config

        if not creds:
            key_id, secret = admin_key(self.data)
            creds = {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
        return panorama_session().client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            config=Config(
                s3={"addressing_style": "path"}, retries={"mode": "standard", "max_attempts": 10}
            ),
            **creds,
        )

    def clients(self) -> Clients:
        return Clients(self.client("panorama"), self.client("s3"), self.url, "panoptes serve")

    def aws(self, *argv: str, timeout: float = 60) -> str:
        """The AWS CLI as a user runs it after `eval "$(panoptes env ...)"`."""
        script = f'eval "$(panoptes env --data-dir {self.data})" && "{AWS}" "$@"'
        res = subprocess.run(
            ["bash", "-c", script, "aws", *argv],
            capture_output=True,
            text=True,
            env=clean_env(self.home),
            timeout=timeout,
        )
        assert res.returncode == 0, f"aws {' '.join(argv)}\n{res.stdout}\n{res.stderr}"
        return res.stdout

    # -- the console ----------------------------------------------------------------------

    def console(self) -> httpx.Client:
        """A signed-in console session (user admin, its first password)."""
        http = httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)
        form = http.get("/console/signin").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token, form[:500]
        password = (self.data / "console-password").read_text().strip().splitlines()[-1]
        answer = http.post(
            "/console/signin",
            data={"csrf_token": token.group(1), "username": "admin", "password": password,
                  "next": "/console/instances"},
        )  # fmt: skip
        assert answer.status_code == 303, answer.text[:500]
        return http


def first_jpeg(http: httpx.Client, path: str, timeout: float = 20.0) -> bytes | None:
    """One JPEG out of an MJPEG relay at ``path``, or None (no output yet / not 200)."""
    try:
        with http.stream("GET", path, timeout=timeout) as response:
            if response.status_code != 200:
                return None
            buf = b""
            for chunk in response.iter_bytes():
                buf += chunk
                start = buf.find(b"\xff\xd8")
                end = buf.find(b"\xff\xd9", start + 2) if start >= 0 else -1
                if end >= 0:
                    return buf[start : end + 2]
                if len(buf) > 8 << 20:
                    return None
    except httpx.HTTPError:
        return None
    return None


class Device:
    """`panoptes agent` (launcher + worker) provisioned from ``cp``."""

    def __init__(self, cp: ControlPlane, tmp: Path, name: str) -> None:
        self.cp, self.tmp = cp, tmp
        api = cp.client("panorama")
        out = api.provision_device(Name=name)
        self.id: str = out["DeviceId"]
        self.archive = tmp / f"certificates-omni_{name}.zip"
        self.archive.write_bytes(out["Certificates"])
        self.data = tmp / "device"
        self.log = tmp / "agent.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Device:
        """Start the agent as its systemd unit would (`panoptes agent --systemd-unit`)."""
        env = clean_env(self.cp.home)
        unit = subprocess.run(
            [sys.executable, "-m", "panoptes", "agent", "--config", str(self.archive),
             "--data-dir", str(self.data), "--output-host", "127.0.0.1", "--verbose",
             "--systemd-unit"],
            env=env, capture_output=True, text=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        argv, unit_env = unit_service(unit)
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env={**env, **unit_env}
            )
        return self

    def stop(self) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)
        finally:
            self.proc = None

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def tls(self) -> ssl.SSLContext:
        """The device's own mutual-TLS identity (DATA/identity)."""
        folder = self.data / "identity"
        ctx = ssl.create_default_context(cafile=str(folder / "ca.pem"))
        ctx.load_cert_chain(str(folder / "device.pem"), str(folder / "device.key"))
        return ctx

    def provisioning(self) -> dict[str, Any]:
        return json.loads((self.data / "identity" / "provisioning.json").read_text())


def code_node_env(instance_id: str) -> tuple[int, dict[str, str]] | None:
    """(pid, environment) of the instance's code node process, read from /proc."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"AppGraph_Uid={instance_id}".encode() not in raw:
            continue
        env = dict(
            item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item
        )
        if env.get("PANOPTES_NODE") == CODE_STREAM or "AWS_CONTAINER_CREDENTIALS_FULL_URI" in env:
            return int(entry.name), env
    return None


def run_as_app(env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    """Python ``code`` in the environment the app's code node has (boto3 as the app)."""
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def http_status(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def publish_demo(cp: ControlPlane, workdir: Path, account: str, camera_url: str,
                 marker: str | None = None,
                 edit: Callable[[str], str] | None = None) -> Path:  # fmt: skip
    """Build the demo project and publish it: package-application and the camera.

    ``marker``: a line its code logs at start, to tell a new version's code by;
    ``edit``: any other change to its application.py (text in, text out)."""
    from panoptes.project.containers import SourceOptions, build_container

    project = make_demo_project(workdir, account)
    if marker is not None:
        edit = _add_marker(marker, edit)
    if edit is not None:
        code_dir = project.packages_dir / f"{account}-{CODE}-1.0"
        app = code_dir / "src" / "application.py"
        app.write_text(edit(app.read_text()))
        build_container(
            project, "code_asset", code_dir, account, engine_choice="none",
            source=SourceOptions(wheelhouse=False),
        )  # fmt: skip
    clients = cp.clients()
    package_application(project, clients, say=lambda _m: None)
    register_camera(clients, camera_url)
    return project


def _add_marker(marker: str, then: Callable[[str], str] | None) -> Callable[[str], str]:
    def edit(text: str) -> str:
        text = text.replace(
            'log.info("demo application started',
            f'log.info("{marker}")\n        log.info("demo application started',
            1,
        )
        assert marker in text
        return then(text) if then else text

    return edit


def demo_params(project: Path | Any, account: str, device_id: str, **extra: Any) -> dict:
    """CreateApplicationInstance of the demo with overrides choosing the demo camera."""
    return {
        "Name": "journey-demo",
        "DefaultRuntimeContextDevice": device_id,
        "ManifestPayload": {"PayloadData": compact(graph_path(project).read_text())},
        "ManifestOverridesPayload": {"PayloadData": json.dumps(overrides(account))},
        **extra,
    }
