"""DeviceLink: the channel's parts started and stopped together by `panoptes serve`.

    link = DeviceLink(view, LinkSettings(...), data_dir)
    link.on_logs(store_batch)   # handler(device_id, batch): the log store's entry
    link.start()     # certificates, embedded broker (or none), bridge, device endpoint
    backend.listeners.append(link.changed)   # API changes -> publish at once
    link.stop()

The link's certificates are issued from the platform CA into DATA_DIR/link at every
start. With ``broker="embedded"`` amqtt listens on ``broker_port``; with
``mqtts://HOST:PORT`` the bridge connects to that broker (Mosquitto configured by
`mosquitto.write_config`, which trusts the same CA).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

from panoptes.cloud.channel.access import Gatekeeper
from panoptes.cloud.channel.bridge import Bridge, LogHandler
from panoptes.cloud.channel.broker import EmbeddedBroker
from panoptes.cloud.channel.certs import LinkCredentials, host_names
from panoptes.cloud.channel.endpoint import DeviceEndpoint
from panoptes.cloud.channel.notify import EVERY_DEVICE
from panoptes.cloud.services.device_view import DeviceView

log = logging.getLogger(__name__)

EMBEDDED = "embedded"


class LinkConfigError(ValueError):
    """A broker option that cannot work, with the fix in the message."""


def parse_broker(url: str) -> tuple[str, int] | None:
    """``embedded`` -> None; ``mqtts://HOST[:PORT]`` -> (HOST, PORT); else LinkConfigError."""
    if url == EMBEDDED:
        return None
    parsed = urlparse(url)
    if parsed.scheme != "mqtts" or not parsed.hostname:
        raise LinkConfigError(
            f"--broker {url}: use 'embedded' or mqtts://HOST:PORT (TLS; plain mqtt:// "
            "cannot carry the devices' certificates)"
        )
    return parsed.hostname, parsed.port or 8883


@dataclass(frozen=True)
class LinkSettings:
    #: "embedded" or mqtts://HOST:PORT of an external broker (Mosquitto).
    broker: str = EMBEDDED
    #: Where the embedded broker and the device endpoint listen.
    bind_host: str = "127.0.0.1"
    broker_port: int = 8883
    device_port: int = 8081
    #: The host name devices dial (in the certificates archive and the certificates).
    public_host: str = "127.0.0.1"
    #: How often the bridge compares every device's desired state.
    sweep_seconds: float = 10.0

    @property
    def broker_url(self) -> str:
        """What devices dial (provisioning.json "Broker")."""
        external = parse_broker(self.broker)
        if external is not None:
            return self.broker
        return f"mqtts://{self.public_host}:{self.broker_port}"

    @property
    def device_endpoint(self) -> str:
        return f"https://{self.public_host}:{self.device_port}"


class DeviceLink:
    def __init__(self, view: DeviceView, settings: LinkSettings, data_dir: Path) -> None:
        self.view, self.settings, self.data_dir = view, settings, Path(data_dir)
        self.external = parse_broker(settings.broker)
        self.broker: EmbeddedBroker | None = None
        self.bridge: Bridge | None = None
        self.endpoint: DeviceEndpoint | None = None
        self.credentials: LinkCredentials | None = None
        self._log_handlers: list[LogHandler] = []

    def on_logs(self, handler: LogHandler) -> None:
        """Register ``handler(device_id, batch)`` for every device log batch
        (link.LOGS); works before and after start()."""
        self._log_handlers.append(handler)
        if self.bridge is not None:
            self.bridge.on_logs(handler)

    def start(self, timeout: float = 30.0) -> None:
        now = datetime.now(UTC)
        s = self.settings
        names = host_names(s.public_host, s.bind_host)
        self.credentials = creds = LinkCredentials.issue_into(
            self.data_dir / "link", self.view.env.ca(now), now, names
        )
        try:
            if self.external is None:
                gate = Gatekeeper(self.view)
                self.broker = EmbeddedBroker(
                    creds.server_context(), gate.identify, s.bind_host, s.broker_port
                )
                self.broker.start(timeout)
                host, port = _loopback(s.bind_host), self.broker.port
            else:
                host, port = self.external
            self.bridge = Bridge(
                self.view,
                host,
                port,
                creds.bridge_context(),
                sweep_seconds=s.sweep_seconds,
                shared_group="panoptes" if self.external else None,
            )
            for handler in self._log_handlers:
                self.bridge.on_logs(handler)
            self.bridge.start(timeout if self.external is None else 5.0)
            self.endpoint = DeviceEndpoint(
                self.view, creds.server_context(), s.bind_host, s.device_port
            )
            self.endpoint.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for part in (self.endpoint, self.bridge, self.broker):
            if part is not None:
                try:
                    part.stop()
                except Exception:
                    log.exception("device link: stopping %s failed", type(part).__name__)
        self.endpoint = self.bridge = self.broker = None

    def changed(self, operation: str, device_ids: Sequence[str]) -> None:
        """The notify hook: an API operation changed these devices' desired state."""
        if self.bridge is None:
            return
        if EVERY_DEVICE in device_ids:
            self.bridge.sweep()
            return
        if operation == "DeleteDevice" and self.broker is not None:
            for device_id in device_ids:
                self.broker.disconnect(device_id)  # its certificate is revoked already
        self.bridge.notify(device_ids)


def _loopback(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
