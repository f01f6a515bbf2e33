"""The device agent as one object: identity, link, asset cache and reconciler together.

    agent = Agent(data_dir, config=Path("certificates-omni_lobby.zip")).start()
    agent.device_id, agent.connected, agent.instances()
    agent.stop()

`start()` provisions on first use (blocking until the archive is there and the
control plane answered the exchange), restores what ran before from DATA/state.json
at once, and connects to the broker in the background: instances run whether or not
the control plane is reachable. `panoptes agent` runs it in the foreground; `panoptes
up` can run it in-process (`start`/`stop`) or as a child process (the CLI).

Jobs and log shipping come from agent/jobs.py and agent/logship.py: pass factories
``jobs=lambda agent: JobRunner(...)`` and ``logs=lambda agent: LogShipper(...)``
(called in `start`, once the identity is known; they publish with
``agent.publish(kind, message)``). The reconciler calls ``jobs.handle(job, software)``
once per JobId it sees and ``logs.watch(folder, group)`` / ``logs.unwatch(folder)`` as
instances start and go; the agent calls ``jobs.republish()`` after every (re)connect
and ``logs.close()`` at stop, where they exist. A job that needs the process to end
(REBOOT, OTA) calls ``agent.request_exit(code)``: the agent stops its runtimes and
`run()` / `panoptes agent` return that exit code to the launcher.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from panoptes.agent import identity as identity_mod
from panoptes.agent.assets import AssetCache
from panoptes.agent.identity import Identity
from panoptes.agent.link_client import LinkClient
from panoptes.agent.reconciler import JobHandler, LogWatcher, Reconciler
from panoptes.agent.role_credentials import RoleCredentialsProvider, device_endpoint_fetch

log = logging.getLogger("panoptes.agent")


class Agent:
    def __init__(
        self,
        data_dir: Path,
        *,
        config: Path | None = None,
        watch: Path | None = None,
        jobs: Callable[[Agent], JobHandler] | None = None,
        logs: Callable[[Agent], LogWatcher] | None = None,
        runtime_options: dict[str, Any] | None = None,
        heartbeat_seconds: float | None = None,
        alternate_softwares: Callable[[], list[str]] | None = None,
        say: Callable[[str], None] = log.info,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.config, self.watch = config, watch
        self._jobs_factory, self._logs_factory = jobs, logs
        self.runtime_options = runtime_options
        self.heartbeat_seconds = heartbeat_seconds
        self.alternate_softwares = alternate_softwares
        self.say = say
        self.identity: Identity | None = None
        self.link: LinkClient | None = None
        self.reconciler: Reconciler | None = None
        self.jobs: JobHandler | None = None
        self.logs: LogWatcher | None = None
        self.exit_code = 0
        self.exit_requested = threading.Event()
        self._stop = threading.Event()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Agent:
        """Provision (first start only), restore instances, connect. ProvisioningError
        when the archive is refused (expired or used credential) or unusable."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ident = identity_mod.ensure_identity(
            self.data_dir, config=self.config, watch=self.watch, stop=self._stop, say=self.say
        )
        self.identity = ident
        cache = AssetCache(
            self.data_dir / "cache" / "assets", ident.device_endpoint, ident.client_tls()
        )
        # Apps reach the control plane's API (CloudWatch, S3, ...) unchanged: boto3 reads
        # AWS_ENDPOINT_URL, and its role's credentials come from the runtime's endpoint.
        options = dict(self.runtime_options or {})
        options["app_env"] = {"AWS_ENDPOINT_URL": ident.api_endpoint, **options.get("app_env", {})}
        self.reconciler = Reconciler(
            self.data_dir,
            ident.device_id,
            cache,
            self.publish,
            runtime_options=options,
            credentials=self._role_credentials if ident.device_endpoint else None,
        )
        if self._jobs_factory is not None:
            self.jobs = self.reconciler.jobs = self._jobs_factory(self)
        if self._logs_factory is not None:
            self.logs = self.reconciler.logs = self._logs_factory(self)
        self.reconciler.start()
        if ident.broker is None:
            self.say(
                "the certificates archive names no broker: running the instances saved "
                "here, without a control plane"
            )
        else:
            extra = (
                {}
                if self.heartbeat_seconds is None
                else {"heartbeat_seconds": self.heartbeat_seconds}
            )
            self.link = LinkClient(
                ident,
                self.reconciler.set_desired,
                on_connected=self._connected,
                alternate_softwares=self.alternate_softwares,
                **extra,
            ).start()
        return self

    def stop(self) -> None:
        """Stop every runtime, ship what logs it can, disconnect (presence: offline)."""
        self._stop.set()
        if self.reconciler is not None:
            self.reconciler.stop()
        close = getattr(self.logs, "close", None)
        if close is not None:
            close()
        if self.link is not None:
            self.link.stop()

    def _role_credentials(self, instance_id: str) -> RoleCredentialsProvider:
        assert self.identity is not None and self.identity.device_endpoint
        return RoleCredentialsProvider(
            device_endpoint_fetch(
                self.identity.device_endpoint, self.identity.client_tls(), instance_id
            )
        )

    def request_exit(self, code: int) -> None:
        """End the agent with exit ``code`` (a job's REBOOT or OTA); returns at once."""
        self.exit_code = code
        self.exit_requested.set()

    def _connected(self) -> None:
        assert self.reconciler is not None
        self.reconciler.resend()
        republish = getattr(self.jobs, "republish", None)
        if republish is not None:
            republish()

    def run(self, stop: threading.Event) -> int:
        """`start`, wait for ``stop`` or `request_exit`, `stop`; the exit code."""
        self.start()
        try:
            while not stop.wait(0.5) and not self.exit_requested.is_set():
                pass
        finally:
            self.stop()
        return self.exit_code

    def __enter__(self) -> Agent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what it is doing ------------------------------------------------------------

    @property
    def device_id(self) -> str | None:
        return self.identity.device_id if self.identity else None

    @property
    def connected(self) -> bool:
        return self.link is not None and self.link.connected.is_set()

    @property
    def link_error(self) -> str:
        return self.link.last_error if self.link else ""

    def instances(self) -> list[dict[str, Any]]:
        return self.reconciler.snapshot() if self.reconciler else []

    def publish(self, kind: str, message: dict[str, Any]) -> bool:
        """Send on this device's ``kind`` topic (link.REPORT, link.LOGS); False offline."""
        return self.link.publish(kind, message) if self.link is not None else False
