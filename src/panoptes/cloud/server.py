"""`panoptes serve`: wire database, object store, keys and services into one ASGI app.

Everything runs behind one port: the Panorama API, the S3 subset for package assets,
the device provisioning exchange and /healthz. Defaults are embedded (SQLite and a
filesystem store in the data dir); production swaps in PostgreSQL and S3 by URL.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from panoptes.cloud.app import Limits, create_app
from panoptes.cloud.db.database import Database
from panoptes.cloud.errors import ServiceError
from panoptes.cloud.services import (
    BootstrapResult,
    DbCredentialStore,
    PanoramaBackend,
    Secrets,
    Settings,
    bootstrap_admin,
)
from panoptes.cloud.services.cameras import camera_stream
from panoptes.cloud.services.device_view import DeviceView
from panoptes.cloud.services.quotas import Limits as Quotas
from panoptes.cloud.storage.base import ObjectStore
from panoptes.cloud.storage.filesystem import FilesystemStore
from panoptes.console.app import build_console
from panoptes.console.users import BootstrapUser, bootstrap_console_user
from panoptes.console.web import ConsoleState
from panoptes.link import PROVISIONING_EXCHANGE
from panoptes.settings import DEFAULT_REGION, ServiceRecord

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A serve option that cannot work, with the fix in the message."""


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    database: str | None = None  # SQLAlchemy URL; default SQLite in the data dir
    object_store: str | None = None  # file://DIR or s3://; default DATA_DIR/objects
    region: str = DEFAULT_REGION
    #: Request limits of the HTTP front (body sizes, rate limits); NO_LIMITS in tests.
    limits: Limits = field(default_factory=Limits)
    #: The service quotas (devices, packages, ...) per account.
    quotas: Quotas = field(default_factory=Quotas)

    @property
    def endpoint_url(self) -> str:
        # Clients on this machine reach a wildcard bind through loopback.
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{self.data_dir / 'panoptes.db'}"


def open_store(url: str | None, data_dir: Path) -> ObjectStore:
    """``file://DIR`` (default DATA_DIR/objects) or ``s3://`` (standard AWS settings)."""
    if url is None:
        return FilesystemStore(data_dir / "objects")
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FilesystemStore(Path(parsed.netloc + parsed.path))
    if parsed.scheme == "s3":
        import boto3
        from botocore.config import Config

        from panoptes.cloud.storage.prefixed import PrefixedStore
        from panoptes.cloud.storage.s3 import S3Store

        # Standard AWS settings apply (AWS_ENDPOINT_URL_S3 for an S3-compatible server).
        client = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
        if not parsed.netloc:
            return S3Store(client)  # s3:// : Panoptes creates its own buckets
        return PrefixedStore(S3Store(client), parsed.netloc, parsed.path)
    raise ConfigError(f"--object-store {url}: use file:///path, s3:// or s3://BUCKET/PREFIX")


@dataclass
class Server:
    app: Starlette
    config: ServerConfig
    backend: PanoramaBackend
    admin: BootstrapResult
    #: The web console's state (its LiveVideo seam is set here) and its first user.
    console: ConsoleState
    console_user: BootstrapUser


def build_server(config: ServerConfig) -> Server:
    """Open (and migrate) the database, the store and the keys; build the app."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(config.data_dir, 0o700)  # keys and the database live here
    db = Database.open(config.database_url)
    store = open_store(config.object_store, config.data_dir)
    secrets = Secrets.from_data_dir(config.data_dir)
    settings = Settings(
        data_dir=config.data_dir, endpoints=(config.endpoint_url,), limits=config.quotas
    )
    backend = PanoramaBackend(db, store, settings, secrets)
    admin = bootstrap_admin(db, secrets, config.data_dir, config.region)
    devices = DeviceView(backend.env)

    async def exchange(request: Request) -> JSONResponse:
        # Not SigV4: the device has no key yet; the one-time token is its proof.
        try:
            body = json.loads(await request.body())
            token, csr = body["token"], body["csr"]
        except (ValueError, KeyError, TypeError):
            return JSONResponse(
                {"message": 'send JSON {"token": "...", "csr": "<PEM>"}'}, status_code=400
            )
        try:
            cert = devices.exchange_provisioning_credential(token, csr)
        except ServiceError as exc:
            log.info("provisioning exchange refused: %s", exc.message)
            status = 400 if exc.code == "ValidationException" else 403
            return JSONResponse({"code": exc.code, "message": exc.message}, status_code=status)
        return JSONResponse({"certificate": cert})

    backends = {"panorama": backend}
    # The console acts through the same backends as the API, as the signed-in account.
    console = build_console(
        backends,
        store,
        db,
        config.region,
        camera_stream=lambda account, name, version: camera_stream(
            backend.env, account, name, version
        ),
    )
    console_user = bootstrap_console_user(console.state.users, config.data_dir, admin.account_id)
    app = create_app(
        backends,
        DbCredentialStore(db, secrets),
        store,
        limits=config.limits,
        extra_routes=[Route(PROVISIONING_EXCHANGE, exchange, methods=["POST"]), *console.routes],
    )
    return Server(app, config, backend, admin, console.state, console_user)


def serve(config: ServerConfig, announce=print) -> None:  # type: ignore[no-untyped-def]
    """Run until interrupted; tells clients where it is through DATA_DIR/service.json."""
    import uvicorn

    server = build_server(config)
    ServiceRecord(config.endpoint_url, config.region, os.getpid()).write(config.data_dir)
    announce(server.admin.message())
    announce(server.console_user.message(f"{config.endpoint_url}/console/"))
    announce(f"Panoptes API at {config.endpoint_url} (data in {config.data_dir})")
    announce(f'Point AWS clients at it: eval "$(panoptes env --data-dir {config.data_dir})"')
    uvicorn.run(server.app, host=config.host, port=config.port, log_level="warning")
