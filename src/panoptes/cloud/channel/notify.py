"""The in-process hook: which devices an API operation may have given new work.

`NotifyingBackend` wraps the Panorama backend the HTTP front calls. After an
operation that changes some device's desired state commits, it tells its listeners
which devices (``listener(operation, device_ids)``); the bridge publishes what
changed at once instead of at its next sweep. The services themselves stay unaware
of the channel. A listener's failure is logged, never returned to the API caller:
the periodic sweep publishes the change anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from panoptes.cloud.context import RequestContext
from panoptes.cloud.db.models import ApplicationInstance
from panoptes.cloud.services.backend import PanoramaBackend

log = logging.getLogger(__name__)

Listener = Callable[[str, Sequence[str]], None]
#: Operations after which every device is compared (cameras may feed any instance).
EVERY_DEVICE = "*"


class NotifyingBackend:
    """A PanoramaBackend that reports the devices each committed change concerns."""

    def __init__(self, backend: PanoramaBackend) -> None:
        self.backend = backend
        self.service = backend.service
        self.inline_operations = backend.inline_operations
        self.listeners: list[Listener] = []

    def handle(self, operation: str, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        result = self.backend.handle(operation, ctx, params)
        if self.listeners and operation in _AFFECTED:
            try:
                devices = _AFFECTED[operation](self.backend, params, result)
            except Exception:
                log.exception("notify: cannot tell which devices %s changed", operation)
                return result
            for listener in list(self.listeners):
                try:
                    listener(operation, devices)
                except Exception:
                    log.exception("notify: listener failed after %s", operation)
        return result


def _instance_device(backend: PanoramaBackend, params: dict[str, Any], _r: Any) -> list[str]:
    with backend.db.reading() as session:
        row = session.get(ApplicationInstance, params["ApplicationInstanceId"])
        return [row.device_id] if row is not None else []


_AFFECTED: dict[str, Callable[[PanoramaBackend, dict[str, Any], Any], list[str]]] = {
    "CreateApplicationInstance": lambda _b, p, _r: [p["DefaultRuntimeContextDevice"]],
    "RemoveApplicationInstance": _instance_device,
    "SignalApplicationInstanceNodeInstances": _instance_device,
    "CreateJobForDevices": lambda _b, _p, r: [j["DeviceId"] for j in r.get("Jobs", [])],
    "DeleteDevice": lambda _b, p, _r: [p["DeviceId"]],
    "CreateNodeFromTemplateJob": lambda _b, _p, _r: [EVERY_DEVICE],
}
