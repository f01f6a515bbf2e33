"""The metric store: CloudWatch's PutMetricData, GetMetricStatistics, GetMetricData and
ListMetrics over SQL, per account, plus the device metrics and a Prometheus view.

A metric (series) is namespace + name + its exact set of dimensions. Each datum is
kept as a statistic set (count, sum, min, max), which is all SampleCount, Sum,
Average, Minimum and Maximum need at any period; percentiles would need the raw
values and are refused with a clear error. The device metrics of the Panorama guide
(``PanoramaDeviceMetrics``: DeviceActive, ApplicationErrors) come in through
``put_device_metric``, which the MQTT bridge calls on heartbeats and health reports.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from panoptes.cloud.db.observability_models import MetricPoint, MetricSeries
from panoptes.cloud.errors import ServiceError
from panoptes.cloud.services.common import Call, make_token, resume_key

if TYPE_CHECKING:
    from panoptes.cloud.services.backend import Services

DEVICE_NAMESPACE = "PanoramaDeviceMetrics"
DEVICE_ACTIVE = "DeviceActive"  # dimensions DeviceId, DeviceName
APPLICATION_ERRORS = "ApplicationErrors"  # dimensions ApplicationInstanceName, ...Id

STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
#: CloudWatch keeps data 15 months; it refuses data older than 2 weeks or 2 h ahead.
TOO_OLD = timedelta(days=14)
TOO_NEW = timedelta(hours=2)
MAX_DATAPOINTS = 1440
LIST_PAGE = 500


def invalid_value(message: str) -> ServiceError:
    return ServiceError("InvalidParameterValueException", message)


def invalid_combination(message: str) -> ServiceError:
    return ServiceError("InvalidParameterCombinationException", message)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def dimensions_key(dimensions: Iterable[dict[str, str]]) -> str:
    """The canonical form of a dimension set (order does not matter to CloudWatch)."""
    pairs = sorted((d["Name"], d["Value"]) for d in dimensions)
    return json.dumps(pairs, separators=(",", ":"))


@dataclass(frozen=True)
class Stats:
    """A statistic set: what one datum, or a period of them, adds up to."""

    count: float
    total: float
    low: float
    high: float

    def merge(self, other: Stats) -> Stats:
        return Stats(
            self.count + other.count,
            self.total + other.total,
            min(self.low, other.low),
            max(self.high, other.high),
        )

    def value(self, statistic: str) -> float:
        if statistic == "SampleCount":
            return self.count
        if statistic == "Sum":
            return self.total
        if statistic == "Minimum":
            return self.low
        if statistic == "Maximum":
            return self.high
        return self.total / self.count if self.count else 0.0


# --- writing ----------------------------------------------------------------------------


def _datum_stats(datum: dict[str, Any], path: str) -> Stats:
    given = [k for k in ("Value", "StatisticValues", "Values") if datum.get(k) is not None]
    if len(given) != 1:
        raise invalid_combination(
            f"{path}: give exactly one of Value, StatisticValues or Values (got {given or 'none'})"
        )
    if "Value" in given:
        value = datum["Value"]
        return Stats(1.0, value, value, value)
    if "StatisticValues" in given:
        s = datum["StatisticValues"]
        if s["SampleCount"] <= 0 or s["Minimum"] > s["Maximum"]:
            raise invalid_value(f"{path}.StatisticValues: SampleCount > 0 and Minimum <= Maximum")
        return Stats(s["SampleCount"], s["Sum"], s["Minimum"], s["Maximum"])
    values = datum["Values"]
    counts = datum.get("Counts") or [1.0] * len(values)
    if len(counts) != len(values) or not values:
        raise invalid_value(f"{path}: Values and Counts must have the same, non-zero length")
    return Stats(
        float(sum(counts)),
        float(sum(v * c for v, c in zip(values, counts, strict=True))),
        min(values),
        max(values),
    )


def _series_id(
    session: Session, account: str, namespace: str, name: str, dims: list[dict], now_ms: int
) -> int:
    key = dimensions_key(dims)
    where = (
        MetricSeries.account_id == account,
        MetricSeries.namespace == namespace,
        MetricSeries.name == name,
        MetricSeries.dimensions_key == key,
    )
    found = session.scalars(select(MetricSeries).where(*where)).first()
    if found is None:
        try:
            with session.begin_nested():
                found = MetricSeries(
                    account_id=account,
                    namespace=namespace,
                    name=name,
                    dimensions_key=key,
                    dimensions=[{"Name": n, "Value": v} for n, v in json.loads(key)],
                    last_put_ms=now_ms,
                )
                session.add(found)
        except IntegrityError:  # another writer created it first
            found = session.scalars(select(MetricSeries).where(*where)).one()
    found.last_put_ms = max(found.last_put_ms, now_ms)
    return found.id


def store_data(
    session: Session, account: str, namespace: str, data: Sequence[dict[str, Any]], now: datetime
) -> int:
    """Validate and store MetricDatum dicts (the API's shape); returns how many."""
    rows = []
    now_ms = ms(now)
    for index, datum in enumerate(data):
        path = f"MetricData.member.{index + 1}"
        stats = _datum_stats(datum, path)
        if not all(math.isfinite(v) for v in (stats.count, stats.total, stats.low, stats.high)):
            raise invalid_value(f"{path}: values must be finite numbers")
        dims = datum.get("Dimensions") or []
        if len({d["Name"] for d in dims}) != len(dims):
            raise invalid_value(f"{path}.Dimensions: each dimension name may appear once")
        moment = datum.get("Timestamp") or now
        if moment < now - TOO_OLD or moment > now + TOO_NEW:
            raise invalid_value(
                f"{path}.Timestamp {moment.isoformat()} must be within the last two weeks and "
                "at most two hours ahead"
            )
        series = _series_id(session, account, namespace, datum["MetricName"], dims, now_ms)
        rows.append(
            {
                "series_id": series,
                "timestamp_ms": ms(moment),
                "sample_count": stats.count,
                "sum": stats.total,
                "minimum": stats.low,
                "maximum": stats.high,
                "unit": datum.get("Unit") or "None",
            }
        )
    if rows:
        session.execute(insert(MetricPoint), rows)
    return len(rows)


def put_metric_data(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    namespace = params["Namespace"]
    if namespace.startswith("AWS/"):
        raise invalid_value(f"Namespace {namespace}: the AWS/ prefix is reserved for AWS")
    if params.get("EntityMetricData"):
        raise invalid_value("EntityMetricData is not supported by Panoptes; use MetricData")
    store_data(call.session, call.account, namespace, params.get("MetricData") or [], call.now)
    return {}


def put_device_metric(
    env: Services,
    account_id: str,
    name: str,
    dimensions: dict[str, str],
    value: float,
    unit: str = "Count",
    timestamp: datetime | None = None,
) -> None:
    """One datum of a Panorama device metric (namespace PanoramaDeviceMetrics).

    DeviceActive: dimensions {"DeviceId", "DeviceName"}, value 1 per heartbeat.
    ApplicationErrors: {"ApplicationInstanceName", "ApplicationInstanceId"}, the number
    of errors seen in a health report (0 when healthy, so alarms can resolve).
    """
    now = datetime.now(UTC)
    datum = {
        "MetricName": name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        "Value": float(value),
        "Unit": unit,
        "Timestamp": timestamp or now,
    }
    with env.db.transaction() as session:
        store_data(session, account_id, DEVICE_NAMESPACE, [datum], now)


# --- reading ----------------------------------------------------------------------------


def find_series(
    session: Session, account: str, namespace: str, name: str, dims: list[dict]
) -> int | None:
    return session.scalars(
        select(MetricSeries.id).where(
            MetricSeries.account_id == account,
            MetricSeries.namespace == namespace,
            MetricSeries.name == name,
            MetricSeries.dimensions_key == dimensions_key(dims),
        )
    ).first()


def period_stats(
    session: Session,
    series_id: int | None,
    start: datetime,
    end: datetime,
    period: int,
    unit: str | None = None,
) -> tuple[dict[int, Stats], str | None]:
    """{bucket start (epoch s): Stats} over [start, end), buckets aligned to ``period``."""
    if series_id is None:
        return {}, None
    query = (
        select(
            (MetricPoint.timestamp_ms // (period * 1000)).label("bucket"),
            func.sum(MetricPoint.sample_count),
            func.sum(MetricPoint.sum),
            func.min(MetricPoint.minimum),
            func.max(MetricPoint.maximum),
            func.min(MetricPoint.unit),
        )
        .where(
            MetricPoint.series_id == series_id,
            MetricPoint.timestamp_ms >= ms(start),
            MetricPoint.timestamp_ms < ms(end),
        )
        .group_by("bucket")
    )
    if unit:
        query = query.where(MetricPoint.unit == unit)
    out: dict[int, Stats] = {}
    found_unit = None
    for b, count, total, low, high, point_unit in session.execute(query):
        out[int(b) * period] = Stats(count, total, low, high)
        found_unit = found_unit or point_unit
    return out, found_unit


def _check_period(period: int, start: datetime, end: datetime) -> None:
    if period not in (1, 5, 10, 30) and period % 60:
        raise invalid_value(f"Period {period}: use 1, 5, 10, 30 or a multiple of 60 seconds")
    if end <= start:
        raise invalid_value("EndTime must be after StartTime")


def get_metric_statistics(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    statistics = params.get("Statistics") or []
    if params.get("ExtendedStatistics"):
        raise invalid_value(
            "ExtendedStatistics (percentiles) are not kept by Panoptes; use Statistics"
        )
    if not statistics:
        raise ServiceError("MissingRequiredParameterException", "Give Statistics")
    start, end, period = params["StartTime"], params["EndTime"], params["Period"]
    _check_period(period, start, end)
    if (end - start).total_seconds() / period > MAX_DATAPOINTS:
        raise invalid_combination(
            f"You have requested up to {int((end - start).total_seconds() / period)} datapoints,"
            f" which exceeds the limit of {MAX_DATAPOINTS}; use a longer Period or a shorter span"
        )
    series = find_series(
        call.session,
        call.account,
        params["Namespace"],
        params["MetricName"],
        params.get("Dimensions") or [],
    )
    buckets, unit = period_stats(call.session, series, start, end, period, params.get("Unit"))
    datapoints = []
    for moment, stats in sorted(buckets.items()):
        point: dict[str, Any] = {
            "Timestamp": datetime.fromtimestamp(moment, UTC),
            "Unit": params.get("Unit") or unit or "None",
        }
        for statistic in statistics:
            point[statistic] = stats.value(statistic)
        datapoints.append(point)
    return {"Label": params["MetricName"], "Datapoints": datapoints}


def get_metric_data(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    start, end = params["StartTime"], params["EndTime"]
    descending = params.get("ScanBy", "TimestampDescending") == "TimestampDescending"
    results = []
    for query in params["MetricDataQueries"]:
        if query.get("Expression"):
            raise invalid_value(
                f"MetricDataQueries {query['Id']}: metric math expressions are not supported "
                "by Panoptes; give MetricStat"
            )
        stat = query.get("MetricStat")
        if stat is None:
            raise ServiceError(
                "MissingRequiredParameterException", f"MetricDataQueries {query['Id']}: MetricStat"
            )
        if stat["Stat"] not in STATISTICS:
            raise invalid_value(
                f"MetricDataQueries {query['Id']}: Stat {stat['Stat']!r}: use one of "
                + ", ".join(STATISTICS)
            )
        _check_period(stat["Period"], start, end)
        metric = stat["Metric"]
        series = find_series(
            call.session,
            call.account,
            metric.get("Namespace", ""),
            metric.get("MetricName", ""),
            metric.get("Dimensions") or [],
        )
        buckets, _ = period_stats(
            call.session, series, start, end, stat["Period"], stat.get("Unit")
        )
        ordered = sorted(buckets.items(), reverse=descending)
        if query.get("ReturnData", True):
            results.append(
                {
                    "Id": query["Id"],
                    "Label": query.get("Label") or metric.get("MetricName", ""),
                    "Timestamps": [datetime.fromtimestamp(t, UTC) for t, _ in ordered],
                    "Values": [s.value(stat["Stat"]) for _, s in ordered],
                    "StatusCode": "Complete",
                }
            )
    return {"MetricDataResults": results, "Messages": []}


def list_metrics(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    filters = params.get("Dimensions") or []
    scope = f"ListMetrics/{params.get('Namespace')}/{params.get('MetricName')}/{filters}"
    query = select(MetricSeries).where(MetricSeries.account_id == call.account)
    if namespace := params.get("Namespace"):
        query = query.where(MetricSeries.namespace == namespace)
    if name := params.get("MetricName"):
        query = query.where(MetricSeries.name == name)
    if params.get("RecentlyActive") == "PT3H":
        query = query.where(MetricSeries.last_put_ms >= ms(call.now - timedelta(hours=3)))
    last = resume_key({"NextToken": params.get("NextToken")}, scope)
    if last is not None:
        query = query.where(MetricSeries.id > int(last[0]))
    metrics, last_id = [], None
    for series in call.session.scalars(query.order_by(MetricSeries.id)):
        dims = {d["Name"]: d["Value"] for d in series.dimensions}
        if all(
            f["Name"] in dims and (f.get("Value") is None or dims[f["Name"]] == f["Value"])
            for f in filters
        ):
            if len(metrics) == LIST_PAGE:
                return {"Metrics": metrics, "NextToken": make_token([str(last_id)], scope)}
            metrics.append(
                {
                    "Namespace": series.namespace,
                    "MetricName": series.name,
                    "Dimensions": series.dimensions,
                }
            )
            last_id = series.id
    return {"Metrics": metrics}


# --- Prometheus ---------------------------------------------------------------------------

_NAME_BAD = re.compile(r"[^a-zA-Z0-9_:]")
_LABEL_BAD = re.compile(r"[^a-zA-Z0-9_]")


def _prom_name(namespace: str, name: str) -> str:
    text = _NAME_BAD.sub("_", f"{namespace}_{name}")
    return text if not text[0].isdigit() else f"_{text}"


def _prom_label(name: str) -> str:
    text = _LABEL_BAD.sub("_", name)
    return text if text and not text[0].isdigit() and not text.startswith("__") else f"d_{text}"


def _prom_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus_exposition(env: Services, now: datetime, window: timedelta) -> str:
    """Every series' newest datum within ``window``, in the Prometheus text format.

    Each CloudWatch metric becomes a gauge ``NAMESPACE_NAME`` with labels account_id,
    its dimensions (names made label-safe) and unit; the value is the datum's average.
    """
    newest = (
        select(MetricPoint.series_id, func.max(MetricPoint.id).label("point_id"))
        .where(MetricPoint.timestamp_ms >= ms(now - window))
        .group_by(MetricPoint.series_id)
        .subquery()
    )
    query = (
        select(MetricSeries, MetricPoint)
        .join(newest, newest.c.series_id == MetricSeries.id)
        .join(MetricPoint, MetricPoint.id == newest.c.point_id)
    )
    families: dict[str, list[str]] = {}
    with env.db.reading() as session:
        for series, point in session.execute(query):
            labels = {"account_id": series.account_id, "unit": point.unit}
            for dim in series.dimensions:
                labels[_prom_label(dim["Name"])] = dim["Value"]
            text = ",".join(f'{k}="{_prom_value(v)}"' for k, v in labels.items())
            value = point.sum / point.sample_count if point.sample_count else 0.0
            family = _prom_name(series.namespace, series.name)
            families.setdefault(family, []).append(
                f"{family}{{{text}}} {value!r} {point.timestamp_ms}"
            )
    lines = []
    for family in sorted(families):
        lines.append(f"# TYPE {family} gauge")
        lines.extend(sorted(families[family]))
    return "\n".join(lines) + "\n"


OPERATIONS = {
    "GetMetricData": get_metric_data,
    "GetMetricStatistics": get_metric_statistics,
    "ListMetrics": list_metrics,
    "PutMetricData": put_metric_data,
}
