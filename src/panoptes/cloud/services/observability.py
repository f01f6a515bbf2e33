"""The observability services behind the protocol layer, and their periodic upkeep.

``LogsBackend`` answers CloudWatch Logs (signing name ``logs``, json 1.1) and
``CloudWatchBackend`` CloudWatch (``monitoring``: cbor, json or query) on the same
port as Panorama. They share the Panorama backend's ``Services`` (database, clock
free): an operation runs in one transaction, reads outside one, exactly as
PanoramaBackend does. ``Upkeep`` is the thread that evaluates alarms, sends their
notifications and applies log retention and size limits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from panoptes.cloud.context import RequestContext
from panoptes.cloud.errors import InternalError, ServiceError
from panoptes.cloud.services import alarms, logs, metrics
from panoptes.cloud.services.backend import Services
from panoptes.cloud.services.common import Call
from panoptes.cloud.services.notifications import Notifier

log = logging.getLogger(__name__)

Operation = Callable[[Call, dict[str, Any]], dict[str, Any]]


class _Backend:
    service = ""
    operations: dict[str, Operation] = {}  # noqa: RUF012 (set once per subclass)

    def __init__(self, env: Services) -> None:
        self.env = env

    def handle(self, operation: str, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        func = self.operations.get(operation)
        if func is None:
            raise ServiceError(
                "UnknownOperationException" if self.service == "logs" else "InvalidAction",
                f"{operation} is not implemented by Panoptes (it serves: "
                f"{', '.join(sorted(self.operations))})",
            )
        db = self.env.db
        reads = operation.startswith(("Describe", "Get", "List", "Filter"))
        try:
            with db.reading() if reads else db.transaction() as session:
                return func(Call(session, ctx, self.env), params)
        except ServiceError:
            raise
        except Exception:
            log.exception("%s %s failed (request %s)", self.service, operation, ctx.request_id)
            raise InternalError(f"internal error (request {ctx.request_id})") from None


class LogsBackend(_Backend):
    service = "logs"
    operations = logs.OPERATIONS


class CloudWatchBackend(_Backend):
    service = "cloudwatch"
    operations = {**metrics.OPERATIONS, **alarms.OPERATIONS}  # noqa: RUF012


@dataclass
class Upkeep:
    """Evaluates alarms every ``interval`` seconds; trims logs every ``log_every``-th run."""

    env: Services
    notifier: Notifier = field(default_factory=Notifier)
    interval: float = 10.0
    log_limits: logs.LogLimits = field(default_factory=logs.LogLimits)
    log_every: int = 60
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    runs: int = 0

    def run_once(self, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        notifications = alarms.evaluate_all(self.env, now)
        alarms.deliver(self.env, self.notifier, notifications, now)
        if self.runs % self.log_every == 0:
            removed = logs.enforce_log_limits(self.env, now, self.log_limits)
            if removed:
                log.info("log limits: removed %d events", removed)
        self.runs += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # keep evaluating: one bad pass must not end alarms
                log.exception("observability upkeep failed; retrying in %.0f s", self.interval)
            self._stop.wait(self.interval)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="panoptes-upkeep", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
