"""Logs and metrics put where the device link puts them, for the console's feed tests.

The control plane's MQTT bridge stores a device's log batches with
`logs.ingest_batch` and records DeviceActive / ApplicationErrors with
`metrics.device_active` / `metrics.application_errors` (cloud/services); these helpers
make the same calls, so the console reads them through the real CloudWatch Logs and
CloudWatch backends the server registered.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from api_helpers import Stack

from panoptes import link
from panoptes.cloud.services import logs, metrics

_sequence = itertools.count(1)


class DeviceFeeds:
    """What one device ships and reports about one of its application instances."""

    def __init__(self, stack: Stack, device_id: str, instance_id: str) -> None:
        self.env = stack.server.backend.env
        self.device_id, self.instance_id = device_id, instance_id
        self.group = link.instance_log_group(device_id, instance_id)
        self.last_ms = 0

    def ship(self, stream: str, *messages: str, at: datetime | None = None) -> list[int]:
        """One LogBatch of MESSAGES in STREAM (a node's log file); their timestamps."""
        base = int((at or datetime.now(UTC)).timestamp() * 1000)
        stamps = [max(base, self.last_ms + 1) + i for i in range(len(messages))]
        self.last_ms = stamps[-1]
        batch = {
            "Group": self.group,
            "Stream": stream,
            "Events": [
                {"timestamp": t, "message": m} for t, m in zip(stamps, messages, strict=True)
            ],
            "Sequence": next(_sequence),
        }
        assert logs.ingest_batch(self.env, self.device_id, batch) == len(messages)
        return stamps

    def heartbeat(self, when: datetime) -> None:
        assert metrics.device_active(self.env, self.device_id, when)

    def health(self, when: datetime, nodes: dict[str, str]) -> None:
        report: dict[str, Any] = {
            "Type": link.REPORT_HEALTH,
            "ApplicationInstanceId": self.instance_id,
            "HealthStatus": "ERROR" if "ERROR" in nodes.values() else "RUNNING",
            "Nodes": nodes,
        }
        assert metrics.application_errors(self.env, self.device_id, report, when)
