"""`panoptes serve`: wire database, object store, keys and services into one ASGI app.

One port serves the Panorama API, the S3 subset for package assets, the device
provisioning exchange and /healthz. The device link (panoptes.cloud.channel) adds
the MQTT broker (embedded by default, or an external one by URL) and the device
endpoint (mutual TLS, API port + 1). Defaults are embedded (SQLite, a filesystem
store, amqtt); production swaps in PostgreSQL, S3 and Mosquitto by URL.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from panoptes.cloud.app import Limits, create_app
from panoptes.cloud.channel.notify import NotifyingBackend
from panoptes.cloud.channel.service import DeviceLink, LinkConfigError, LinkSettings, parse_broker
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
from panoptes.cloud.services.iotdata import IotDataBackend
from panoptes.cloud.services.notifications import Notifier, SmtpSettings
from panoptes.cloud.services.observability import (
    CloudWatchBackend,
    LogsBackend,
    Upkeep,
    observe_link,
)
from panoptes.cloud.services.observability_http import prometheus_route
from panoptes.cloud.services.quotas import Limits as Quotas
from panoptes.cloud.services.roles import IamBackend
from panoptes.cloud.storage.base import ObjectStore
from panoptes.cloud.storage.filesystem import FilesystemStore
from panoptes.console.app import build_console
from panoptes.console.feeds import LiveVideoByFunction
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
    #: The device link's MQTT broker: "embedded" (amqtt in this process) or
    #: mqtts://HOST:PORT (Mosquitto set up with `panoptes broker-config`).
    broker: str = "embedded"
    #: The embedded broker's port (default: API port + 2).
    broker_port: int | None = None
    #: The device endpoint's port (mutual TLS; default: API port + 1).
    device_port: int | None = None
    #: The host name devices dial (default: --host, or this machine's name for 0.0.0.0).
    public_host: str | None = None
    #: How often the bridge compares every device's desired state (seconds).
    sweep_seconds: float = 10.0
    #: Where alarm e-mails go: smtp[s]://[user:pass@]host[:port]?from=addr[&starttls=true].
    smtp: str | None = None
    #: How often alarms are evaluated (seconds).
    alarm_interval: float = 10.0

    @property
    def endpoint_url(self) -> str:
        # Clients on this machine reach a wildcard bind through loopback.
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def link(self) -> LinkSettings:
        wildcard = self.host in ("0.0.0.0", "::", "")
        return LinkSettings(
            broker=self.broker,
            bind_host=self.host,
            broker_port=self.broker_port if self.broker_port is not None else self.port + 2,
            device_port=self.device_port if self.device_port is not None else self.port + 1,
            public_host=self.public_host or (socket.getfqdn() if wildcard else self.host),
            sweep_seconds=self.sweep_seconds,
        )

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
    #: The device link, built but not started (serve() starts it; tests may).
    link: DeviceLink
    #: The backend the HTTP front calls: reports devices whose desired state changed.
    notifying: NotifyingBackend
    #: The web console's state (its LiveVideo seam is set here) and its first user.
    console: ConsoleState
    console_user: BootstrapUser

    def start_link(self, timeout: float = 30.0) -> DeviceLink:
        """Start broker, bridge and device endpoint; API changes reach devices at once."""
        self.link.start(timeout)
        if self.link.changed not in self.notifying.listeners:
            self.notifying.listeners.append(self.link.changed)
        return self.link

    def stop_link(self) -> None:
        if self.link.changed in self.notifying.listeners:
            self.notifying.listeners.remove(self.link.changed)
        self.link.stop()

    #: Alarm evaluation and log limits; `serve` starts it, tests may call run_once.
    upkeep: Upkeep | None = None


def build_server(config: ServerConfig) -> Server:
    """Open (and migrate) the database, the store and the keys; build the app."""
    try:
        parse_broker(config.broker)
    except LinkConfigError as e:
        raise ConfigError(str(e)) from None
    config.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(config.data_dir, 0o700)  # keys and the database live here
    db = Database.open(config.database_url)
    store = open_store(config.object_store, config.data_dir)
    secrets = Secrets.from_data_dir(config.data_dir)
    link = config.link
    settings = Settings(
        data_dir=config.data_dir,
        endpoints=(config.endpoint_url,),
        limits=config.quotas,
        broker_url=link.broker_url,
        device_endpoint=link.device_endpoint,
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

    try:
        smtp = SmtpSettings.from_url(config.smtp) if config.smtp else None
    except ValueError as exc:
        raise ConfigError(f"--smtp: {exc}") from None
    upkeep = Upkeep(backend.env, Notifier(smtp), interval=config.alarm_interval)
    notifying = NotifyingBackend(backend)
    device_link = DeviceLink(devices, link, config.data_dir)
    observe_link(device_link, backend.env)
    # The API front and the console call the same backends (the console as the signed-in
    # user's account): a deployment made in the console reaches its device like an API one.
    backends = {
        "panorama": notifying,
        "logs": LogsBackend(backend.env),
        "cloudwatch": CloudWatchBackend(backend.env),
        "iam": IamBackend(db),
        "iot-data": IotDataBackend.over(db, device_link.publish),
    }
    console = build_console(
        backends,
        store,
        db,
        config.region,
        camera_stream=lambda account, name, version: camera_stream(
            backend.env, account, name, version
        ),
        # The output URL each instance's device reports (health reports): the console's
        # /console/instances/{id}/live.mjpg relays it.
        live=LiveVideoByFunction(lambda ctx, iid: devices.output_url(ctx.account_id, iid)),
    )
    console_user = bootstrap_console_user(console.state.users, config.data_dir, admin.account_id)
    app = create_app(
        backends,
        DbCredentialStore(db, secrets),
        store,
        limits=config.limits,
        extra_routes=[
            Route(PROVISIONING_EXCHANGE, exchange, methods=["POST"]),
            prometheus_route(backend.env, config.data_dir),
            *console.routes,
        ],
    )
    return Server(
        app,
        config,
        backend,
        admin,
        device_link,
        notifying,
        console.state,
        console_user,
        upkeep,
    )


def serve(
    config: ServerConfig,
    announce: Callable[[str], None] = print,
    on_ready: Callable[[Server], None] | None = None,
) -> None:
    """Run until interrupted; tells clients where it is through DATA_DIR/service.json.

    ``on_ready(server)`` runs in a thread once the API answers (`panoptes up` starts
    the local device there).
    """
    import uvicorn

    server = build_server(config)
    link = config.link
    try:
        server.start_link()
    except OSError as e:
        raise ConfigError(
            f"the device link cannot start ({e}): free ports {link.device_port} and "
            f"{link.broker_port}, or pick others with --device-port/--broker-port"
        ) from None
    if server.upkeep is not None:
        server.upkeep.start()
    try:
        ServiceRecord(
            config.endpoint_url,
            config.region,
            os.getpid(),
            broker_url=link.broker_url,
            device_endpoint=link.device_endpoint,
        ).write(config.data_dir)
        announce(server.admin.message())
        announce(server.console_user.message(f"{config.endpoint_url}/console/"))
        announce(f"Panoptes API at {config.endpoint_url} (data in {config.data_dir})")
        announce(f"Device link: broker {link.broker_url}, device endpoint {link.device_endpoint}")
        announce(f'Point AWS clients at it: eval "$(panoptes env --data-dir {config.data_dir})"')
        announce(
            f"Prometheus metrics at {config.endpoint_url}/_panoptes/metrics "
            f"(bearer token in {config.data_dir / 'prometheus-token'})"
        )
        if on_ready is not None:
            threading.Thread(
                target=_when_answering, args=(config, server, on_ready), daemon=True
            ).start()
        uvicorn.run(server.app, host=config.host, port=config.port, log_level="warning")
    finally:
        if server.upkeep is not None:
            server.upkeep.stop()
        server.stop_link()


def _when_answering(config: ServerConfig, server: Server, then: Callable[[Server], None]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(config.endpoint_url + "/healthz", timeout=2):
                break
        except OSError:
            time.sleep(0.2)
    try:
        then(server)
    except Exception:  # the API keeps serving; say what failed
        log.exception("starting what runs beside the API failed")
