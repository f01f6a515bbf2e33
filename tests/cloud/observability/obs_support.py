"""The observability services on a real database, called as the protocol layer calls
them (World), for the tests in this folder."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from panoptes.cloud.context import RequestContext
from panoptes.cloud.db import Database
from panoptes.cloud.db.models import ApplicationInstance
from panoptes.cloud.errors import ServiceError
from panoptes.cloud.services import PanoramaBackend, Secrets, Settings
from panoptes.cloud.services.observability import CloudWatchBackend, LogsBackend
from panoptes.cloud.storage.filesystem import FilesystemStore

ACCOUNT = "123456789012"
OTHER = "210987654321"


class World:
    """One control plane: Panorama (to make devices), CloudWatch Logs and CloudWatch."""

    def __init__(self, db: Database, tmp: Path) -> None:
        settings = Settings(data_dir=tmp / "data")
        self.panorama = PanoramaBackend(
            db, FilesystemStore(tmp / "objects"), settings, Secrets(b"k" * 32)
        )
        self.env = self.panorama.env
        self.logs_backend = LogsBackend(self.env)
        self.cw_backend = CloudWatchBackend(self.env)
        # Real time: ingest_batch and put_device_metric stamp with the clock.
        self.now = datetime.now(UTC).replace(microsecond=0)

    def ctx(self, account: str = ACCOUNT) -> RequestContext:
        return RequestContext(account, "us-east-1", "AKIDTEST", "admin", now=self.now)

    def logs(self, operation: str, account: str = ACCOUNT, **params: Any) -> dict[str, Any]:
        return self.logs_backend.handle(operation, self.ctx(account), params)

    def cw(self, operation: str, account: str = ACCOUNT, **params: Any) -> dict[str, Any]:
        return self.cw_backend.handle(operation, self.ctx(account), params)

    def fails(self, code: str, call: Any, operation: str, **params: Any) -> ServiceError:
        with pytest.raises(ServiceError) as info:
            call(operation, **params)
        assert info.value.code == code, info.value.message
        return info.value

    def device(self, name: str = "lobby", account: str = ACCOUNT) -> str:
        return self.panorama.handle("ProvisionDevice", self.ctx(account), {"Name": name})[
            "DeviceId"
        ]

    def instance(self, device_id: str, account: str = ACCOUNT, name: str = "my-app") -> str:
        """An application instance row on the device (what a deployment leaves behind)."""
        instance_id = f"applicationInstance-{name}{device_id[-6:]}"
        with self.env.db.transaction() as session:
            session.add(
                ApplicationInstance(
                    id=instance_id, account_id=account, region="us-east-1", name=name,
                    description=None, device_id=device_id, manifest_payload="{}",
                    overrides_payload=None, plan={}, status="DEPLOYMENT_SUCCEEDED",
                    status_description=None, health_status="RUNNING", replaces_id=None,
                    runtime_role_arn=None, runtime_context_states=None,
                    created=self.now, updated=self.now,
                )
            )  # fmt: skip
        return instance_id


# --- notification sinks ---------------------------------------------------------------


class WebhookSink:
    """An HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.received: list[dict[str, Any]] = []
        self.arrived = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with sink.arrived:
                    sink.received.append({"path": self.path, **json.loads(body)})
                    sink.arrived.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
        return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpSink:
    """A local SMTP server (aiosmtpd) that keeps every message it accepts."""

    def __init__(self) -> None:
        import threading
        from email import message_from_bytes

        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        self.arrived = threading.Condition()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                with sink.arrived:
                    sink.messages.append(message_from_bytes(envelope.content))
                    sink.arrived.notify_all()
                return "250 Message accepted for delivery"

        from serve_support import free_port

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        self.url = f"smtp://127.0.0.1:{self.port}?from=alarms@panoptes.test"

    def wait_for(self, count: int, timeout: float = 60) -> list[Any]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.messages) >= count, timeout)
        return list(self.messages)

    def close(self) -> None:
        self.controller.stop()


# --- clients as applications run them -------------------------------------------------


def legacy_endpoints(folder: Path, endpoint_url: str, services: tuple[str, ...]) -> Path:
    """An endpoints.json that routes old botocore (no AWS_ENDPOINT_URL before 1.31) to
    ``endpoint_url`` for ``services`` (endpoint prefixes), when ``folder`` is on
    AWS_DATA_PATH: how unchanged `boto3.resource('cloudwatch')` code finds Panoptes."""
    from urllib.parse import urlparse

    parsed = urlparse(endpoint_url)
    endpoint = {"hostname": parsed.netloc, "protocols": [parsed.scheme]}
    document = {
        "version": 3,
        "partitions": [{
            "partition": "aws", "partitionName": "AWS", "dnsSuffix": "amazonaws.com",
            "regionRegex": "^(us|eu|ap|sa|ca|me|af|il|mx)\\-\\w+\\-\\d+$",
            "regions": {"us-east-1": {"description": "US East (N. Virginia)"}},
            "defaults": {"hostname": "{service}.{region}.{dnsSuffix}",
                         "protocols": ["https"], "signatureVersions": ["v4"]},
            "services": {s: {"endpoints": {"us-east-1": endpoint}} for s in services},
        }],
    }  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "endpoints.json").write_text(json.dumps(document))
    return folder


def old_boto3_venv(root: Path, spec: str = "boto3==1.24.*") -> Path:
    """A virtualenv with an old boto3 (apps pin them); returns its python."""
    import subprocess
    import venv

    python = root / "bin" / "python"
    if not python.exists():
        venv.create(root, with_pip=True)
    check = subprocess.run([str(python), "-c", "import boto3"], capture_output=True)
    if check.returncode != 0:
        res = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", spec],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if res.returncode != 0:
            pytest.fail(f"pip install {spec} failed (is PyPI reachable?):\n{res.stderr[-2000:]}")
    return python
