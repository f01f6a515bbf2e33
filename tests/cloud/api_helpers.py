"""The whole control plane over real HTTP, for boto3 tests and the API benchmark.

`running_stack(kind, tmp)` builds the server exactly as `panoptes serve` does
(build_server: protocol layer, PanoramaBackend, SQLite or a fresh PostgreSQL
database, filesystem object store, admin key in DATA_DIR/credentials) and runs it
under uvicorn on 127.0.0.1 in a thread. Clients are unchanged boto3 clients that
know Panorama from the model Panoptes ships.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import uvicorn
from botocore.config import Config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from panoptes.cloud.app import NO_LIMITS, Limits
from panoptes.cloud.protocol.models import data_path
from panoptes.cloud.server import Server, ServerConfig, build_server
from panoptes.cloud.services.device_view import DeviceView
from panoptes.cloud.services.quotas import Limits as Quotas
from pg_support import fresh_pg_database
from sample_app import SAMPLE_APP, sample_packages
from serve_support import free_port

REGION = "us-east-1"
#: The account id the developer guide's manifests are written for.
SAMPLE_ACCOUNT = "123456789012"


@contextmanager
def serve_in_thread(app: Any, port: int, **options: Any) -> Iterator[str]:
    """``app`` under uvicorn on 127.0.0.1:PORT in a daemon thread; yields the base URL.

    ``options`` go to uvicorn.Config (``ssl_certfile=...``: the URL is then https)."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start on port {port}")
        threading.Event().wait(0.02)
    try:
        yield f"{'https' if options.get('ssl_certfile') else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def panorama_session() -> boto3.Session:
    """A boto3 session that knows Panorama from the model Panoptes ships."""
    core = botocore.session.Session()
    core.get_component("data_loader").search_paths.insert(0, str(data_path()))
    return boto3.Session(botocore_session=core)


@dataclass
class Stack:
    kind: str  # "sqlite" or "postgresql"
    url: str
    server: Server
    key_id: str
    secret: str
    #: (event, handler) registered on every client this stack makes.
    hooks: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def account(self) -> str:
        return self.server.admin.account_id

    @property
    def view(self) -> DeviceView:
        return DeviceView(self.server.backend.env)

    def client(self, key_id: str | None = None, secret: str | None = None, **cfg: Any) -> Any:
        cfg.setdefault("retries", {"mode": "standard", "total_max_attempts": 1})
        client = panorama_session().client(
            "panorama",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=key_id or self.key_id,
            aws_secret_access_key=secret or self.secret,
            config=Config(**cfg),
        )
        for event, handler in self.hooks:
            client.meta.events.register(event, handler)
        return client

    def publish_software(self, version: str) -> None:
        """Publish a (token) Panoptes wheel as `panoptes software publish` does."""
        import tempfile

        from panoptes.cloud.channel.software import publish_wheel

        with tempfile.TemporaryDirectory() as tmp:
            wheel = Path(tmp) / f"panoptes-{version}-py3-none-any.whl"
            wheel.write_bytes(b"PK\x03\x04 a token wheel")
            publish_wheel(self.s3(), wheel)

    def s3(self) -> Any:
        return panorama_session().client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=self.key_id,
            aws_secret_access_key=self.secret,
            config=Config(s3={"addressing_style": "path"}),
        )

    def arn(self, kind: str, resource_id: str) -> str:
        return f"arn:aws:panorama:{REGION}:{self.account}:{kind}/{resource_id}"


def admin_key(data_dir: Path) -> tuple[str, str]:
    parser = configparser.ConfigParser()
    parser.read(data_dir / "credentials")
    section = parser["panoptes"]
    return section["aws_access_key_id"], section["aws_secret_access_key"]


@contextmanager
def running_stack(
    kind: str,
    data_dir: Path,
    *,
    limits: Limits = NO_LIMITS,
    quotas: Quotas | None = None,
    database: str | None = None,
    **config: Any,
) -> Iterator[Stack]:
    """build_server on SQLite (in DATA_DIR) or PostgreSQL (DATABASE, else a fresh one).

    ``config``: more ServerConfig fields (the device link's ports, the broker)."""

    @contextmanager
    def open_database() -> Iterator[str | None]:
        if kind == "sqlite" or database:
            yield database
        else:
            with fresh_pg_database("panoptes_api") as url:
                yield url

    with open_database() as db_url:
        port = free_port()
        server_config = ServerConfig(
            data_dir,
            port=port,
            database=db_url,
            limits=limits,
            quotas=quotas or Quotas(),
            **config,
        )
        server = build_server(server_config)
        try:
            with serve_in_thread(server.app, port) as url:
                yield Stack(kind, url, server, *admin_key(data_dir))
        finally:
            server.backend.db.dispose()


# --- device side -------------------------------------------------------------------


def csr_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def read_archive(archive: bytes) -> dict[str, Any]:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        return {
            n: json.loads(zf.read(n)) if n.endswith(".json") else zf.read(n).decode()
            for n in zf.namelist()
        }


def bring_online(stack: Stack, device_id: str, certificates: bytes) -> None:
    """What the appliance does first: trade the one-time token for a cert, report in."""
    token = read_archive(certificates)["provisioning.json"]["ProvisioningCredential"]["Token"]
    view = stack.view
    view.exchange_provisioning_credential(token, csr_pem())
    view.heartbeat(device_id, datetime.now(UTC), current_software="0.1.0")


def provision(stack: Stack, name: str, online: bool = True) -> str:
    out = stack.client().provision_device(Name=name)
    if online:
        bring_online(stack, out["DeviceId"], out["Certificates"])
    return out["DeviceId"]


# --- packages over boto3 + S3 ------------------------------------------------------


def for_account(text: str, account: str) -> str:
    """The guide's manifests name account 123456789012; users put in their own."""
    return text.replace(SAMPLE_ACCOUNT, account)


def publish_package(
    stack: Stack, doc: dict, files: dict[str, bytes] | None = None, mark_latest: bool = True
) -> tuple[str, str]:
    """CreatePackage (when new), upload to its StorageLocation over S3, register."""
    client, s3 = stack.client(), stack.s3()
    name = doc["nodePackage"]["name"]
    listed = {p["PackageName"]: p["PackageId"] for p in client.list_packages()["Packages"]}
    if name in listed:
        package_id = listed[name]
        loc = client.describe_package(PackageId=package_id)["StorageLocation"]
    else:
        created = client.create_package(PackageName=name)
        package_id, loc = created["PackageId"], created["StorageLocation"]
    for uri, content in (files or {}).items():
        s3.put_object(
            Bucket=loc["Bucket"], Key=f"{loc['BinaryPrefixLocation']}/{uri}", Body=content
        )
    raw = json.dumps(doc, indent=4).encode()
    patch = hashlib.sha256(raw).hexdigest()
    version = doc["nodePackage"]["version"]
    s3.put_object(
        Bucket=loc["Bucket"],
        Key=f"{loc['ManifestPrefixLocation']}/{version}/{patch}.json",
        Body=raw,
    )
    client.register_package_version(
        PackageId=package_id, PackageVersion=version, PatchVersion=patch, MarkLatest=mark_latest
    )
    return package_id, patch


def register_camera(stack: Stack, name: str, password: str = "s3cr3t-pw") -> str:
    return stack.client().create_node_from_template_job(
        TemplateType="RTSP_CAMERA_STREAM",
        OutputPackageName=name,
        OutputPackageVersion="1.0",
        NodeName=name,
        NodeDescription="lobby camera",
        TemplateParameters={
            "Username": "admin",
            "Password": password,
            "StreamUrl": f"rtsp://10.0.0.5:554/{name}",
        },
    )["JobId"]


def publish_sample_app(stack: Stack) -> dict[str, str]:
    """The developer guide's sample app: its two packages (tiny assets) and its camera."""
    code, model, files = sample_packages()
    code_id, code_patch = publish_package(stack, code)
    model_id, model_patch = publish_package(stack, model, files)
    camera_job = register_camera(stack, "MY_CAMERA")
    return {
        "code": code_patch,
        "model": model_patch,
        "code_id": code_id,
        "model_id": model_id,
        "camera_job": camera_job,
    }


def compact(text: str) -> str:
    """One line, as `jq -c` makes it: PayloadData's pattern ^.+$ takes no newlines."""
    return json.dumps(json.loads(text), separators=(",", ":"))


def sample_payloads(account: str) -> tuple[str, str]:
    graph = (SAMPLE_APP / "graphs/my-app/graph.json").read_text()
    overrides = (SAMPLE_APP / "graphs/my-app/override.json").read_text()
    return compact(for_account(graph, account)), compact(for_account(overrides, account))


def deploy_params(stack: Stack, device_id: str, **extra: Any) -> dict[str, Any]:
    graph, overrides = sample_payloads(stack.account)
    return {
        "Name": "aws-panorama-sample",
        "Description": "deployed with boto3",
        "DefaultRuntimeContextDevice": device_id,
        "ManifestPayload": {"PayloadData": graph},
        "ManifestOverridesPayload": {"PayloadData": overrides},
        "RuntimeRoleArn": f"arn:aws:iam::{stack.account}:role/panorama-sample-runtime",
        **extra,
    }
