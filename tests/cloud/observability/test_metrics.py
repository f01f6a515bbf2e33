"""The metric store: PutMetricData in, statistics per period out, device metrics, Prometheus."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from obs_support import OTHER, World

from panoptes.cloud.services.metrics import (
    APPLICATION_ERRORS,
    DEVICE_ACTIVE,
    DEVICE_NAMESPACE,
    prometheus_exposition,
    put_device_metric,
)

NS = "AWSPanoramaApplication"
DIMS = [
    {"Name": "Application Name", "Value": "aws-panorama-sample"},
    {"Name": "Device ID", "Value": "d1"},
]


def minute(world: World, n: int) -> datetime:
    """The start of the n-th minute before the current one (aligned to the minute)."""
    aligned = world.now.replace(second=0)
    return aligned - timedelta(minutes=n)


def stats(world: World, name: str = "AverageInferenceTime", dims=DIMS, **extra) -> list[dict]:
    out = world.cw(
        "GetMetricStatistics",
        Namespace=NS,
        MetricName=name,
        Dimensions=dims,
        StartTime=minute(world, 10),
        EndTime=world.now + timedelta(minutes=1),
        Period=60,
        Statistics=["SampleCount", "Sum", "Average", "Minimum", "Maximum"],
        **extra,
    )
    return out["Datapoints"]


def test_values_come_back_per_period_with_every_statistic(world: World) -> None:
    put = [
        {"MetricName": "AverageInferenceTime", "Dimensions": DIMS, "Value": v,
         "Unit": "Milliseconds", "Timestamp": minute(world, 3) + timedelta(seconds=s)}
        for v, s in ((10.0, 1), (30.0, 20), (20.0, 59))
    ]  # fmt: skip
    put.append(
        {"MetricName": "AverageInferenceTime", "Dimensions": list(reversed(DIMS)),  # same metric
         "StatisticValues": {"SampleCount": 4, "Sum": 8, "Minimum": 1, "Maximum": 3},
         "Unit": "Milliseconds", "Timestamp": minute(world, 1)}
    )  # fmt: skip
    world.cw("PutMetricData", Namespace=NS, MetricData=put)
    points = stats(world)
    keys = ("Timestamp", "SampleCount", "Sum", "Minimum", "Maximum")
    assert [tuple(p[k] for k in keys) for p in points] == [
        (minute(world, 3), 3, 60, 10, 30),
        (minute(world, 1), 4, 8, 1, 3),
    ]
    assert [p["Average"] for p in points] == [20, 2]
    assert {p["Unit"] for p in points} == {"Milliseconds"}
    assert stats(world, Unit="Seconds") == []  # another unit: nothing
    assert stats(world, dims=DIMS[:1]) == []  # dimensions match exactly
    assert world.cw(
        "GetMetricStatistics", account=OTHER, Namespace=NS, MetricName="AverageInferenceTime",
        Dimensions=DIMS, StartTime=minute(world, 10), EndTime=world.now, Period=60,
        Statistics=["Sum"],
    )["Datapoints"] == []  # fmt: skip


def test_values_and_counts_and_bad_data(world: World) -> None:
    world.cw(
        "PutMetricData", Namespace=NS,
        MetricData=[{"MetricName": "FrameTime", "Values": [1.0, 5.0], "Counts": [3.0, 1.0],
                     "Timestamp": minute(world, 2)}],
    )  # fmt: skip
    (point,) = stats(world, "FrameTime", dims=[])
    assert (point["SampleCount"], point["Sum"], point["Maximum"]) == (4, 8, 5)
    one = [{"MetricName": "x", "Value": 1.0}]
    err = world.fails("InvalidParameterValueException", world.cw, "PutMetricData",
                      Namespace="AWS/EC2", MetricData=one)  # fmt: skip
    assert "reserved" in err.message
    old = world.now - timedelta(days=15)
    err = world.fails("InvalidParameterValueException", world.cw, "PutMetricData", Namespace=NS,
                      MetricData=[{"MetricName": "x", "Value": 1.0, "Timestamp": old}])  # fmt: skip
    assert "two weeks" in err.message
    world.fails("InvalidParameterCombinationException", world.cw, "PutMetricData", Namespace=NS,
                MetricData=[{"MetricName": "x"}])  # fmt: skip
    err = world.fails("InvalidParameterValueException", world.cw, "GetMetricStatistics",
                      Namespace=NS, MetricName="x", StartTime=minute(world, 5), EndTime=world.now,
                      Period=60, ExtendedStatistics=["p99"])  # fmt: skip
    assert "percentiles" in err.message


def test_list_metrics_and_get_metric_data(world: World) -> None:
    put_device_metric(world.env, "123456789012", DEVICE_ACTIVE,
                      {"DeviceId": "device-a", "DeviceName": "lobby"}, 1)  # fmt: skip
    app = {"ApplicationInstanceName": "my-app", "ApplicationInstanceId": "ai-1"}
    put_device_metric(world.env, "123456789012", APPLICATION_ERRORS, app, 2)
    world.cw("PutMetricData", Namespace=NS, MetricData=[{"MetricName": "A", "Value": 1.0}])
    listed = world.cw("ListMetrics", Namespace=DEVICE_NAMESPACE)["Metrics"]
    assert {m["MetricName"] for m in listed} == {DEVICE_ACTIVE, APPLICATION_ERRORS}
    by_device = world.cw("ListMetrics", Dimensions=[{"Name": "DeviceId", "Value": "device-a"}])
    assert [m["MetricName"] for m in by_device["Metrics"]] == [DEVICE_ACTIVE]
    assert (
        world.cw("ListMetrics", Dimensions=[{"Name": "DeviceId", "Value": "other"}])["Metrics"]
        == []
    )
    assert world.cw("ListMetrics", account=OTHER)["Metrics"] == []

    now = datetime.now(UTC)
    out = world.cw(
        "GetMetricData", StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=1),
        MetricDataQueries=[{
            "Id": "errors",
            "MetricStat": {
                "Metric": {"Namespace": DEVICE_NAMESPACE, "MetricName": APPLICATION_ERRORS,
                           "Dimensions": [{"Name": "ApplicationInstanceId", "Value": "ai-1"},
                                          {"Name": "ApplicationInstanceName", "Value": "my-app"}]},
                "Period": 60, "Stat": "Sum"},
        }],
    )  # fmt: skip
    (result,) = out["MetricDataResults"]
    assert result["Values"] == [2.0] and result["StatusCode"] == "Complete"
    assert result["Label"] == APPLICATION_ERRORS


def test_prometheus_shows_the_newest_value_of_each_metric(world: World) -> None:
    for value in (1.0, 0.0):
        put_device_metric(world.env, "123456789012", DEVICE_ACTIVE,
                          {"DeviceId": "device-a", "DeviceName": 'the "lobby"'}, value)  # fmt: skip
    world.cw("PutMetricData", Namespace=NS, MetricData=[
        {"MetricName": "AverageInferenceTime", "Dimensions": DIMS, "Value": 12.5}])  # fmt: skip
    text = prometheus_exposition(world.env, datetime.now(UTC), timedelta(minutes=10))
    lines = text.splitlines()
    assert "# TYPE PanoramaDeviceMetrics_DeviceActive gauge" in lines
    (active,) = [line for line in lines if line.startswith("PanoramaDeviceMetrics_DeviceActive{")]
    assert 'DeviceId="device-a"' in active and 'DeviceName="the \\"lobby\\""' in active
    assert active.split(" ")[-2] == "0.0"  # the newest datum, not the first
    (app,) = [line for line in lines if line.startswith("AWSPanoramaApplication_")]
    assert 'Application_Name="aws-panorama-sample"' in app and " 12.5 " in app
