"""The control plane's side of the device link, for agent tests, with real components.

* `Pki`: certificates from the control plane's own platform CA (DATA/ca).
* `running_broker`: Mosquitto on a free port, TLS with client certificates, the CN as
  user name and an ACL that keeps each device under its own topics (panoptes.link).
* `running_asset_server`: the device endpoint's asset route (link.DEVICE_HTTP_ASSETS)
  over mutual TLS, reading the control plane's object store, Range supported.
* `Bridge`: an MQTT client with the control plane's identity that publishes the
  retained desired state and collects the device's reports.
* `desired_state`: DeviceView.desired_state plus what the contract adds (Revision,
  Manifest, Overrides, Packages with their assets), read through the public API.

The channel room (panoptes.cloud.channel) builds the production versions of the last
three; these exist so that the agent is tested against real TLS, MQTT and HTTP now.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import os
import ssl
import subprocess
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from api_helpers import Stack, deploy_params, publish_package, running_stack, serve_in_thread
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from panoptes import link
from panoptes.cloud.services.provisioning import PlatformCA
from serve_support import free_port

MOSQUITTO = "/usr/sbin/mosquitto"


@pytest.fixture(scope="module", name="stack")
def stack_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A control plane built as `panoptes serve` builds it, on SQLite, in a thread."""
    with running_stack("sqlite", tmp_path_factory.mktemp("control-plane")) as s:
        yield s


@pytest.fixture(scope="module", name="pki")
def pki_fixture(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(stack.server.config.data_dir, tmp_path_factory.mktemp("pki"))


class Pki:
    """Issue certificates signed by the control plane's platform CA."""

    def __init__(self, data_dir: Path, out: Path) -> None:
        self.ca = PlatformCA.load_or_create(data_dir, datetime.now(UTC))
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.ca_path = out / "ca.pem"
        self.ca_path.write_text(self.ca.pem)

    def issue(self, cn: str, server: bool = False) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.ca.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            ).add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        else:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        cert = builder.sign(self.ca.key, hashes.SHA256())
        cert_path, key_path = self.out / f"{cn}.pem", self.out / f"{cn}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        return cert_path, key_path


# --- the broker ---------------------------------------------------------------------------


class Broker:
    def __init__(self, pki: Pki, folder: Path, port: int | None = None) -> None:
        self.pki, self.folder = pki, folder
        self.port = port or free_port()
        self.url = f"mqtts://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)
        cert, key = pki.issue("broker", server=True)
        acl = folder / "acl"
        acl.write_text(
            f"user {link.BRIDGE_IDENTITY}\ntopic readwrite {link.TOPIC_ROOT}/#\n\n"
            f"pattern readwrite {link.TOPIC_ROOT}/%u/#\n"
        )
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"cafile {pki.ca_path}\ncertfile {cert}\nkeyfile {key}\n"
            "require_certificate true\nuse_identity_as_username true\n"
            f"acl_file {acl}\npersistence false\nlog_dest stderr\n"
            # As root, mosquitto drops to its own user, who cannot read pytest's tmp.
            + ("user root\n" if os.geteuid() == 0 else "")
            + "log_type error\nlog_type warning\nlog_type notice\n"
        )

    def start(self, timeout: float = 15.0) -> Broker:
        log = (self.folder / "mosquitto.log").open("a")
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            import socket

            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(
            f"mosquitto did not start: {(self.folder / 'mosquitto.log').read_text()}"
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextmanager
def running_broker(pki: Pki, folder: Path) -> Iterator[Broker]:
    broker = Broker(pki, folder).start()
    try:
        yield broker
    finally:
        broker.stop()


class Bridge:
    """The control plane's MQTT client: publishes desired states, collects reports."""

    def __init__(
        self,
        pki: Pki,
        broker: Broker,
        on_report: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        cert, key = pki.issue(link.BRIDGE_IDENTITY)
        self.on_report = on_report
        ctx = ssl.create_default_context(cafile=str(pki.ca_path))
        ctx.load_cert_chain(str(cert), str(key))
        self.reports: list[dict[str, Any]] = []
        self.presence: dict[str, str] = {}
        self.cond = threading.Condition()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=link.BRIDGE_IDENTITY, clean_session=True
        )
        self.client.tls_set_context(ctx)
        self.client.on_message = self._message
        subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: (
            c.subscribe([(f"{link.TOPIC_ROOT}/+/{link.REPORT}", 1),
                         (f"{link.TOPIC_ROOT}/+/{link.PRESENCE}", 1)]),
            subscribed.set(),
        )  # fmt: skip
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        if not subscribed.wait(15):
            raise RuntimeError("the bridge could not connect to the broker")

    def _message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        parsed = link.parse_topic(msg.topic)
        if parsed is None:
            return
        device, kind = parsed
        with self.cond:
            if kind == link.PRESENCE:
                self.presence[device] = msg.payload.decode()
            else:
                report = link.decode(msg.payload)
                self.reports.append({"DeviceId": device, **report})
                if self.on_report is not None and kind == link.REPORT:
                    self.on_report(device, report)
            self.cond.notify_all()

    def publish_desired(self, device_id: str, desired: dict[str, Any]) -> None:
        info = self.client.publish(
            link.topic(device_id, link.DESIRED), link.encode(desired), qos=1, retain=True
        )
        info.wait_for_publish(10)

    def wait_for(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 60,
        what: str = "",
        fail: Callable[[dict[str, Any]], bool] | None = None,
        since: int = 0,
    ) -> dict[str, Any]:
        """The first report from ``since`` on (an index into ``reports``) that satisfies
        ``predicate``; one that satisfies ``fail`` first ends the wait at once."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for r in self.reports[since:]:
                    if predicate(r):
                        return r
                    if fail is not None and fail(r):
                        raise AssertionError(f"while waiting for {what or 'a report'}: {r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    kinds = [(r.get("Type"), r.get("Status") or r.get("HealthStatus"))
                             for r in self.reports[-15:]]  # fmt: skip
                    raise AssertionError(f"timed out waiting for {what or 'a report'}: {kinds}")
                self.cond.wait(min(left, 0.5))

    def statuses(self, instance_id: str) -> list[str]:
        with self.cond:
            return [
                r["Status"]
                for r in self.reports
                if r.get("Type") == link.REPORT_INSTANCE
                and r.get("ApplicationInstanceId") == instance_id
            ]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# --- the device endpoint's asset route ----------------------------------------------------


class AssetServer:
    """link.DEVICE_HTTP_ASSETS/{bucket}/{key} from an object store, over mutual TLS.

    ``cut_after``: the first response of each object stops after that many bytes (an
    interrupted download); ``corrupt``: object keys served with one byte flipped.
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self.cut_after: int | None = None
        self.corrupt: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        self._cut_done: set[str] = set()

    async def asset(self, request: Request) -> Response:
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        rng = request.headers.get("range")
        self.requests.append((key, rng))
        info = self.store.head(bucket, key)
        if info is None:
            return Response("no such asset", status_code=404)
        with self.store.open(bucket, key) as f:
            data = f.read()
        if key in self.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = int(rng.removeprefix("bytes=").split("-")[0]) if rng else 0
        body = data[start:]
        headers = {"Content-Length": str(len(body)), "Accept-Ranges": "bytes"}
        status = 200
        if rng:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        if self.cut_after is not None and key not in self._cut_done:
            self._cut_done.add(key)
            part = body[: self.cut_after]

            async def interrupted() -> Any:
                yield part
                raise ConnectionResetError("cut on purpose")  # the connection drops

            return StreamingResponse(interrupted(), status_code=status, headers=headers)
        return Response(body, status_code=status, headers=headers)

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route(link.DEVICE_HTTP_ASSETS + "/{bucket}/{key:path}", self.asset)]
        )


@contextmanager
def running_asset_server(pki: Pki, store: Any) -> Iterator[tuple[str, AssetServer]]:
    cert, key = pki.issue("device-endpoint", server=True)
    server = AssetServer(store)
    with serve_in_thread(
        server.app(),
        free_port(),
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        ssl_ca_certs=str(pki.ca_path),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    ) as url:
        yield url, server


# --- applying reports to the control plane, as its channel will -------------------------


def apply_report(view: Any, device_id: str, report: dict[str, Any]) -> None:
    """Record a device report as the bridge does; one it cannot apply is dropped."""
    from panoptes.cloud.channel import bridge

    try:
        bridge.apply_report(view, device_id, report, datetime.now(UTC))
    except Exception as exc:  # the contract: logged and dropped, the device repeats
        print(f"report dropped: {report}: {exc}")


# --- packages and cameras, as a developer publishes them -------------------------------


def publish_project(stack: Stack, project: Path, code_package: str) -> None:
    """Build the code package's source asset (no container engine), then upload and
    register every package of the project folder."""
    from typer.testing import CliRunner

    from panoptes.cli.app import app_cli

    code = project / "packages" / code_package
    (code / "requirements.txt").write_text("")
    (project / "assets").mkdir(exist_ok=True)
    res = CliRunner().invoke(
        app_cli,
        ["build-container", "--container-asset-name", "code_asset", "--package-path", str(code),
         "--engine", "none", "--no-wheelhouse", "--project-dir", str(project)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    for folder in sorted((project / "packages").iterdir()):
        doc = json.loads((folder / "package.json").read_text())
        files = {}
        for asset in doc["nodePackage"]["assets"]:
            for impl in asset["implementations"]:
                for uri in (impl.get("assetUri"), impl.get("descriptorUri")):
                    if uri:
                        files[uri] = (project / "assets" / uri).read_bytes()
        publish_package(stack, doc, files)


def register_rtsp_camera(stack: Stack, name: str, url: str, password: str = "pa:ss/w@rd") -> None:
    stack.client().create_node_from_template_job(
        TemplateType="RTSP_CAMERA_STREAM",
        OutputPackageName=name,
        OutputPackageVersion="1.0",
        NodeName=name,
        TemplateParameters={"Username": "admin", "Password": password, "StreamUrl": url},
    )


#: The sample's parameters as the guide's graph declares them (tests/e2e/appkit builds it).
SAMPLE_PARAMS = {
    "threshold": ("float32", 20.0),
    "region": ("string", "us-east-1"),
    "device_id": ("string", "1234ABCD"),
    "log_level": ("string", "INFO"),
}


def publish_sample(stack: Any, root: Path, squeezenet: Path, camera_url: str) -> None:
    """The guide's sample app (a real model, its code as a source asset) uploaded and
    registered, and its MY_CAMERA pointing at ``camera_url``. ``stack``: anything with
    client(), s3() and account (a Stack, or a client of a `panoptes serve` process)."""
    import appkit  # tests/e2e

    project = appkit.build_project(
        root,
        "sample",
        params=SAMPLE_PARAMS,
        model=squeezenet,
        extra_files={"squeezenet_classes.json": appkit.classes_json()},
        code_name="SAMPLE_CODE",
    )
    publish_project(stack, project, f"{appkit.ACCOUNT}-SAMPLE_CODE-1.0")
    register_rtsp_camera(stack, "MY_CAMERA", camera_url)


def sample_params(stack: Any, device_id: str, **extra: Any) -> dict[str, Any]:
    """The guide's deployment, with a real Region where its overrides say MY_REGION (the
    sample's boto3 client refuses that name and the application exits)."""
    params = deploy_params(stack, device_id)
    overrides = params["ManifestOverridesPayload"]["PayloadData"].replace("MY_REGION", "us-east-1")
    params["ManifestOverridesPayload"] = {"PayloadData": overrides}
    return {**params, **extra}


# --- the certificates archive and the desired state ---------------------------------------


def archive_for_link(certificates: bytes, path: Path, broker: str, device_endpoint: str) -> Path:
    """ProvisionDevice's archive with the two endpoints the channel room will add."""
    src = zipfile.ZipFile(io.BytesIO(certificates))
    with zipfile.ZipFile(path, "w") as out:
        for name in src.namelist():
            data = src.read(name)
            if name == "provisioning.json":
                info = json.loads(data)
                info["Broker"], info["DeviceEndpoint"] = broker, device_endpoint
                data = json.dumps(info, indent=2).encode()
            out.writestr(name, data)
    return path


def _package_entry(stack: Stack, ref: dict[str, Any]) -> dict[str, Any]:
    client, s3 = stack.client(), stack.s3()
    listed = client.list_packages()["Packages"]
    package_id = next(p["PackageId"] for p in listed if p["PackageName"] == ref["name"])
    loc = client.describe_package(PackageId=package_id)["StorageLocation"]
    key = f"{loc['ManifestPrefixLocation']}/{ref['version']}/{ref['patchVersion']}.json"
    manifest = json.loads(s3.get_object(Bucket=loc["Bucket"], Key=key)["Body"].read())
    assets = []
    for asset in manifest["nodePackage"].get("assets", []):
        for impl in asset.get("implementations", []):
            for name in (impl.get("assetUri"), impl.get("descriptorUri")):
                if not name or impl.get("type") == "system":
                    continue
                obj_key = f"{loc['BinaryPrefixLocation']}/{name}"
                body = s3.get_object(Bucket=loc["Bucket"], Key=obj_key)["Body"].read()
                assets.append(
                    {
                        "Name": name,
                        "Sha256": hashlib.sha256(body).hexdigest(),
                        "Size": len(body),
                        "Path": f"{link.DEVICE_HTTP_ASSETS}/{loc['Bucket']}/{obj_key}",
                    }
                )
    return {
        "Account": ref["account"],
        "Name": ref["name"],
        "Version": ref["version"],
        "PatchVersion": ref["patchVersion"],
        "Manifest": manifest,
        "Assets": assets,
    }


def next_desired(stack: Stack, device_id: str, last_revision: int) -> dict[str, Any]:
    """What the channel publishes after a change. Where DeviceView knows acks (the
    channel room's), it builds the state and the ack marks delivery; before that, the
    PENDING instances are marked delivered here."""
    view = stack.view
    if hasattr(view, "publishable_state"):
        return view.publishable_state(device_id)
    for entry in view.desired_state(device_id)["ApplicationInstances"]:
        if entry["Status"] in ("DEPLOYMENT_PENDING", "REMOVAL_PENDING"):
            view.mark_published(entry["ApplicationInstanceId"], datetime.now(UTC))
    return desired_state(stack, device_id, last_revision + 1)


def desired_state(stack: Stack, device_id: str, revision: int) -> dict[str, Any]:
    """The DesiredState message of panoptes.link for the device, from the real DB."""
    desired = stack.view.desired_state(device_id)
    client = stack.client()
    packages: dict[tuple, dict[str, Any]] = {}
    for entry in desired["ApplicationInstances"]:
        details = client.describe_application_instance_details(
            ApplicationInstanceId=entry["ApplicationInstanceId"]
        )
        entry["Manifest"] = details["ManifestPayload"]["PayloadData"]
        entry["Overrides"] = (details.get("ManifestOverridesPayload") or {}).get("PayloadData")
        for ref in entry["Plan"]["packages"]:
            if ref is None or ref["account"] == "panorama":
                continue
            key = (ref["account"], ref["name"], ref["version"], ref["patchVersion"])
            if key not in packages:
                packages[key] = _package_entry(stack, ref)
    desired["Revision"] = revision
    desired["Packages"] = list(packages.values())
    return desired
