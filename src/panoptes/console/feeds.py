"""What the console shows that the Panorama API does not hold: logs, metrics, live video.

Each is one small seam so the services that provide them plug in without touching
the pages:

* logs    -- the CloudWatch Logs API of the backend registered as ``"logs"``
             (FilterLogEvents, DescribeLogStreams), as the signed-in account;
* metrics -- the CloudWatch API of the backend registered as ``"cloudwatch"``
             (GetMetricStatistics);
* live    -- a `LiveVideo`: where an instance's annotated output is served as MJPEG
             (the device agent reports it); the console proxies it so the browser
             only ever talks to the control plane.

Until a provider is there, each says so and the page tells the user.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from panoptes.cloud.context import RequestContext
from panoptes.cloud.errors import ServiceError
from panoptes.cloud.services.metrics import APPLICATION_ERRORS, DEVICE_ACTIVE, DEVICE_NAMESPACE
from panoptes.console.services import Console
from panoptes.console.users import User

LOGS_SERVICE = "logs"
METRICS_SERVICE = "cloudwatch"  # botocore's name (its signing name is "monitoring")


# --- logs -------------------------------------------------------------------------------


@dataclass
class LogPage:
    available: bool  # False: no log service in this build
    streams: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # timestamp, stream, message
    next_token: str | None = None
    error: str | None = None


def read_logs(
    console: Console,
    user: User,
    group: str,
    *,
    stream: str | None = None,
    pattern: str | None = None,
    next_token: str | None = None,
    start_ms: int | None = None,
    limit: int = 200,
) -> LogPage:
    """One page of a log group's events (oldest first) from START_MS, one stream, filtered.

    Follow mode passes NEXT_TOKEN while the service hands one out, then the last
    event's time + 1 as START_MS (FilterLogEvents gives no token past the end).
    """
    if not console.has(LOGS_SERVICE):
        return LogPage(available=False)
    try:
        described = console.call(
            user, "DescribeLogStreams", {"logGroupName": group}, service=LOGS_SERVICE
        )
        streams = sorted(s["logStreamName"] for s in described.get("logStreams", []))
        params: dict[str, Any] = {"logGroupName": group, "limit": limit}
        if stream:
            params["logStreamNames"] = [stream]
        if pattern:
            params["filterPattern"] = pattern
        if next_token:
            params["nextToken"] = next_token
        if start_ms is not None:
            params["startTime"] = start_ms
        out = console.call(user, "FilterLogEvents", params, service=LOGS_SERVICE)
    except ServiceError as exc:
        if exc.code == "ResourceNotFoundException":
            return LogPage(available=True)  # nothing shipped yet
        return LogPage(available=True, error=exc.message)
    events = [
        {
            "ms": e["timestamp"],
            "timestamp": datetime.fromtimestamp(e["timestamp"] / 1000, UTC),
            "stream": e.get("logStreamName", ""),
            "message": e.get("message", ""),
        }
        for e in out.get("events", [])
    ]
    return LogPage(True, streams, events, out.get("nextToken"))


# --- metrics ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Chart:
    """One chart of the instance page: a metric and the dimensions that name its series.

    A CloudWatch series is its namespace, name and exact set of dimensions, so every
    dimension the emitter sets is given; their values come from the instance
    (`chart_dimensions`).
    """

    title: str
    metric: str
    dimensions: tuple[str, ...]
    statistic: str
    unit: str = ""
    namespace: str = DEVICE_NAMESPACE


#: What the instance page charts: the metrics the control plane really records for
#: every device and instance (cloud/services/metrics.py: DeviceActive per heartbeat,
#: ApplicationErrors per health report), with the statistic the spec says to view
#: them with. Metrics an application publishes itself (the guide's sample puts
#: AverageInferenceTime in AWSPanoramaApplication when it has a role) carry dimensions
#: the application chooses, so the console cannot tell which series is whose: they
#: are read with the CloudWatch API, not charted here.
CHARTS: tuple[Chart, ...] = (
    Chart(
        "Application errors", APPLICATION_ERRORS,
        ("ApplicationInstanceName", "ApplicationInstanceId"), "Sum",
    ),
    Chart("Device active", DEVICE_ACTIVE, ("DeviceId", "DeviceName"), "Average"),
)  # fmt: skip

#: Where each dimension's value is in DescribeApplicationInstance's answer.
_DIMENSION_FIELDS = {
    "ApplicationInstanceId": "ApplicationInstanceId",
    "ApplicationInstanceName": "Name",
    "DeviceId": "DefaultRuntimeContextDevice",
    "DeviceName": "DefaultRuntimeContextDeviceName",
}


def chart_dimensions(chart: Chart, instance: dict[str, Any]) -> list[dict[str, str]]:
    """The chart's dimensions with their values for INSTANCE (DescribeApplicationInstance)."""
    return [
        {"Name": name, "Value": str(instance.get(_DIMENSION_FIELDS[name]) or "")}
        for name in chart.dimensions
    ]


@dataclass
class Series:
    chart: Chart
    points: list[tuple[datetime, float]]
    #: The span the chart shows (the window asked for); None: the points' own span.
    start: datetime | None = None
    end: datetime | None = None


def read_metric(
    console: Console,
    user: User,
    chart: Chart,
    dimensions: list[dict[str, str]],
    *,
    now: datetime,
    window: timedelta = timedelta(hours=1),
    period: int = 60,
) -> Series | None:
    """The chart's datapoints over the last WINDOW; None without a metrics service."""
    if not console.has(METRICS_SERVICE):
        return None
    start = now - window
    if any(not d["Value"] for d in dimensions):
        return Series(chart, [], start, now)  # e.g. an instance without a name: no series
    try:
        out = console.call(
            user,
            "GetMetricStatistics",
            {
                "Namespace": chart.namespace,
                "MetricName": chart.metric,
                "Dimensions": dimensions,
                "StartTime": start,
                "EndTime": now,
                "Period": period,
                "Statistics": [chart.statistic],
            },
            service=METRICS_SERVICE,
        )
    except ServiceError:
        return Series(chart, [], start, now)
    points = sorted((d["Timestamp"], float(d[chart.statistic])) for d in out.get("Datapoints", []))
    return Series(chart, points, start, now)


# --- live video -------------------------------------------------------------------------


class LiveVideo(Protocol):
    def mjpeg_url(self, ctx: RequestContext, instance_id: str) -> str | None:
        """The MJPEG URL of the instance's output (on the device), or None if none."""
        ...


@dataclass
class NoLiveVideo:
    """Before a device agent reports output URLs: no live video."""

    def mjpeg_url(self, ctx: RequestContext, instance_id: str) -> str | None:
        return None


@dataclass
class LiveVideoByFunction:
    """A LiveVideo from a function (tests, and the agent's report table at merge)."""

    lookup: Callable[[RequestContext, str], str | None]

    def mjpeg_url(self, ctx: RequestContext, instance_id: str) -> str | None:
        return self.lookup(ctx, instance_id)
