"""A stand-in for the log and metric services (other rooms' work, not merged yet).

It answers the operations the console uses with the CloudWatch Logs and CloudWatch
APIs' shapes (DescribeLogStreams, FilterLogEvents with streams, pattern, startTime and
nextToken; GetMetricStatistics) and records what it was asked, so the console's side
of the seam is what the tests check.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from panoptes.cloud.errors import ResourceNotFound


class LogsAndMetrics:
    """Answers the operations the console uses, with the services' shapes; records calls."""

    def __init__(self, group: str, events: list[tuple[str, str]]) -> None:
        base = int((datetime.now(UTC) - timedelta(minutes=10)).timestamp() * 1000)
        self.group = group
        self.events = [
            {"timestamp": base + i, "logStreamName": s, "message": m}
            for i, (s, m) in enumerate(events)
        ]
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def handle(self, operation: str, ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((operation, params))
        if operation == "GetMetricStatistics":
            now = params["EndTime"]
            stat = params["Statistics"][0]
            return {"Label": params["MetricName"], "Datapoints": [
                {"Timestamp": now - timedelta(minutes=m), stat: 10.0 + m, "Unit": "None"}
                for m in range(5)
            ]}  # fmt: skip
        if params.get("logGroupName") != self.group:
            raise ResourceNotFound(params.get("logGroupName", ""), "logGroup")
        if operation == "DescribeLogStreams":
            names = sorted({e["logStreamName"] for e in self.events})
            return {"logStreams": [{"logStreamName": n} for n in names]}
        events = self.events
        if streams := params.get("logStreamNames"):
            events = [e for e in events if e["logStreamName"] in streams]
        if pattern := params.get("filterPattern"):
            events = [e for e in events if pattern in e["message"]]
        events = [e for e in events if e["timestamp"] >= params.get("startTime", 0)]
        start = int(params.get("nextToken") or 0)
        page = events[start : start + params["limit"]]
        more = start + len(page) < len(events)
        return {"events": page, **({"nextToken": str(start + len(page))} if more else {})}

    def add(self, stream: str, message: str) -> None:
        """A new event, as the device's log shipping would store it."""
        last = self.events[-1]["timestamp"] if self.events else 0
        self.events.append({"timestamp": last + 1, "logStreamName": stream, "message": message})
